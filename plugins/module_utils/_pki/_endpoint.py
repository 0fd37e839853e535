# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to kubeguard.hardening: before a node's kubeconfig is repointed,
prove from that node that the new API server endpoint resolves and completes
a TLS handshake verified against the cluster CA.

Standard library only (``socket``, ``ssl``): nodes lack ``cryptography``.
"""

from __future__ import annotations

import socket
import ssl
import urllib.parse

from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError
from ansible_collections.kubeguard.hardening.plugins.module_utils._pki import _files, _install, _kubeconfig

# The role variable behind each module option a server URL comes from.
ROLE_VARIABLES = {
    "control_plane_endpoint": "cluster_pki_control_plane_endpoint (default: kubeguard_control_plane_endpoint)",
    "api_port": "cluster_pki_api_port",
}


def repointed(roots, files):
    """(path, current server, new server, entry) of each kubeconfig on the node
    whose server would change. A kubeconfig that does not exist yet is not
    repointed: nothing uses it."""
    result = []
    for entry in files:
        if not entry.get("server"):
            continue
        path = _install.target_path(roots, entry)
        current = _files.read(path)
        parsed = _kubeconfig.parse(current) if current is not None else None
        if parsed is not None and parsed["server"] != entry["server"]:
            result.append((path, parsed["server"], entry["server"], entry, parsed["ca"]))
    return result


def probe(url, ca_pem, timeout):
    """None when ``url`` resolves and answers a TLS handshake whose chain
    verifies against ``ca_pem``; otherwise why not.

    The host name is not matched against the certificate: the cluster_pki
    role puts the endpoint into the apiserver certificate in the same run, so
    a running apiserver may not carry a new name yet. The chain is what proves
    that this is the cluster's own API server.
    """
    parts = urllib.parse.urlsplit(url)
    host, port = parts.hostname, parts.port or 443
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        return f"does not resolve ({getattr(exc, 'strerror', None) or exc})"
    try:
        context = ssl.create_default_context(cadata=ca_pem.decode("ascii", "replace"))
    except (ssl.SSLError, ValueError) as exc:
        return f"cannot be checked: the cluster CA certificate is unusable ({exc})"
    context.check_hostname = False
    reason = "has no address"
    for family, kind, proto, _unused, address in addresses:
        try:
            with socket.socket(family, kind, proto) as sock:
                sock.settimeout(timeout)
                sock.connect(address)
                with context.wrap_socket(sock, server_hostname=host):
                    return None
        except ssl.SSLCertVerificationError as exc:
            reason = (
                f"at {address[0]} presents a certificate that the cluster CA does not verify ({exc.verify_message})"
            )
        except (OSError, ssl.SSLError) as exc:
            reason = f"at {address[0]} does not complete a TLS handshake ({exc.strerror or exc})"
    return reason


def run(params, check_mode=False):
    """The cluster_pki_endpoint module: read-only, so the same in check mode."""
    del check_mode
    roots = _install.roots_of(params)
    ca_pem = (params.get("ca_certificate") or "").encode()
    checked, verdicts = [], {}
    for path, before, after, entry, current_ca in repointed(roots, params["files"]):
        if after not in verdicts:
            verdicts[after] = probe(after, ca_pem or current_ca, params["timeout"])
        reason = verdicts[after]
        if reason:
            option = entry.get("server_option") or "control_plane_endpoint"
            raise KubeguardError(
                option,
                f"{after} {reason} from {socket.gethostname()}, so {path} is not repointed from {before} and "
                f"nothing was written anywhere; set {ROLE_VARIABLES.get(option, option)} to host:port of this "
                "cluster's API server as every node reaches it",
            )
        checked.append({"path": path, "from": before, "to": after})
    return {"changed": False, "checked": checked}
