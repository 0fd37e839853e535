"""Formats cluster_pki_info results (ansible.posix.json output on stdin) as
one table, like `kubeadm certs check-expiration` for every node."""

import json
import sys

results = json.load(sys.stdin)["plays"][0]["tasks"][0]["hosts"]
print(f"  {'NODE':8} {'CERTIFICATE':28} {'EXPIRES':22} {'LEFT':>7}  STATE")
for host, result in sorted(results.items()):
    for cert in result.get("certificate_authorities", []) + result.get("certificates", []):
        state = "MISSING" if cert["missing"] else "EXPIRING" if cert["expiring"] else "ok"
        left = f"{cert['residual_days']} d" if cert.get("residual_days") is not None else "-"
        print(f"  {host:8} {cert['name']:28} {cert.get('expiration_date') or '-':22} {left:>7}  {state}")
