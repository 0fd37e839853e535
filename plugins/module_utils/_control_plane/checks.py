# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the checks before a component's files are replaced: its
certificates (with the one reader, _node/x509.py) and its flags against the
installed binary."""

from __future__ import annotations

import os

from ansible_collections.kubeguard.hardening.plugins.module_utils._control_plane import desired
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError
from ansible_collections.kubeguard.hardening.plugins.module_utils._node import x509


def check_pki(component, flags, params, writing=()):
    """Every referenced file readable (but the ones this run writes), each cert matches
    its key and chains to its CA, SANs cover the addresses."""
    option = desired.var("pki_dir")
    for path in sorted(set(desired.referenced_files(flags)) - set(writing)):
        if not os.access(path, os.R_OK):
            raise KubeguardError(option, f"{component} needs {path}, which is missing or unreadable")
    for cert_flag, key_flag, ca_flag in desired.KEY_PAIRS[component]:
        cert, key, ca = flags.get(cert_flag), flags.get(key_flag), flags.get(ca_flag)
        if not (cert and key and ca):
            continue
        if not x509.matches_key(cert, key):
            raise KubeguardError(option, f"{cert} does not match its key {key}")
        problem = x509.chain_problem(cert, ca)
        if problem:
            raise KubeguardError(option, f"{cert} does not chain to {ca}: {problem}")
    if component == "etcd":
        _require_sans(flags["cert-file"], ["127.0.0.1", params["node_ip"]], option)
    elif component == "kube-apiserver":
        _require_sans(flags["tls-cert-file"], ["127.0.0.1", params["node_ip"]], option)
        _require_sans(flags["tls-cert-file"], [desired.service_ip(params["service_cidr"])], desired.var("service_cidr"))
        for pub, priv in ((flags.get("service-account-key-file"), flags.get("service-account-signing-key-file")),):
            if pub and priv and not x509.matches_key(pub, priv):
                raise KubeguardError(option, f"{pub} is not the public key of {priv}")


def _require_sans(cert, addresses, option):
    have = set(x509.ip_sans(cert))
    missing = [a for a in addresses if a not in have]
    if missing:
        raise KubeguardError(option, f"{cert} has no SAN for {', '.join(missing)} (SANs: {', '.join(sorted(have))})")


def check_known_flags(component, flags, binary, params):
    known = set(binary.get("help_flags") or [])
    if not known:
        return
    unknown = sorted(set(flags) - known)
    if unknown:
        raise KubeguardError(
            desired.var(f"{desired.CONCERNS[component]}_extra_flags"),
            f"the installed {component} ({binary.get('version')}) does not know --{', --'.join(unknown)}",
        )
