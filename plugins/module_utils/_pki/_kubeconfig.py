# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to kubeguard.hardening: write and read kubeadm-style kubeconfigs.

The files have kubeadm's shape (one cluster, one user, one context, embedded
data). Reading needs no YAML library: it extracts the handful of keys the PKI
checks, and treats anything else (several clusters or users) as drift.
"""

from __future__ import annotations

import base64
import re

_FIELD = re.compile(
    r"^\s*-?\s*(certificate-authority-data|server|client-certificate-data|client-key-data|current-context):\s*['\"]?([^'\"\s]+)['\"]?\s*$",
    re.MULTILINE,
)


def render(cluster_name, server, user, ca_pem, cert_pem, key_pem):
    """A kubeconfig as kubeadm writes it (bytes)."""

    def b64(data):
        return base64.b64encode(data).decode("ascii")

    context = f"{user}@{cluster_name}"
    return (
        "apiVersion: v1\n"
        "clusters:\n"
        "- cluster:\n"
        f"    certificate-authority-data: {b64(ca_pem)}\n"
        f"    server: {server}\n"
        f"  name: {cluster_name}\n"
        "contexts:\n"
        "- context:\n"
        f"    cluster: {cluster_name}\n"
        f'    user: "{user}"\n'
        f'  name: "{context}"\n'
        f'current-context: "{context}"\n'
        "kind: Config\n"
        "preferences: {}\n"
        "users:\n"
        f'- name: "{user}"\n'
        "  user:\n"
        f"    client-certificate-data: {b64(cert_pem)}\n"
        f"    client-key-data: {b64(key_pem)}\n"
    ).encode("ascii")


def parse(data):
    """Return {'ca', 'server', 'cert', 'key'} (PEM bytes / str) or None when
    the file is not a single-cluster, single-user kubeconfig with embedded data."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    found = {}
    for name, value in _FIELD.findall(text):
        if name in found:
            return None  # more than one cluster or user: not ours
        found[name] = value
    wanted = ("certificate-authority-data", "server", "client-certificate-data", "client-key-data")
    if any(k not in found for k in wanted):
        return None
    try:
        return {
            "ca": base64.b64decode(found["certificate-authority-data"], validate=True),
            "server": found["server"],
            "cert": base64.b64decode(found["client-certificate-data"], validate=True),
            "key": base64.b64decode(found["client-key-data"], validate=True),
        }
    except ValueError:
        return None
