# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the CIS 4.1.x files of the kubelet and kube-proxy (kubelet_files)."""

from __future__ import annotations

import os
import re

from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError
from ansible_collections.kubeguard.hardening.plugins.module_utils._node.files import file_state, mode_ok


def cis_files(params):
    """The files CIS 4.1.x looks at, with the mode and owner each must have."""
    facts = params["facts"]
    kubelet = facts.get("kubelet") or {}
    wanted = []
    service = kubelet.get("unit") or {}
    for path in [service.get("fragment"), *service.get("dropins", [])]:
        if path:
            wanted.append((path, "0600", "CIS 4.1.1/4.1.2"))
    if kubelet.get("kubeconfig"):
        wanted.append((kubelet["kubeconfig"], "0600", "CIS 4.1.5/4.1.6"))
    wanted.append((params["client_ca_file"], params["client_ca_mode"], "CIS 4.1.7/4.1.8"))
    if kubelet.get("config_path"):
        wanted.append((kubelet["config_path"], "0600", "CIS 4.1.9/4.1.10"))
    proxy = facts.get("kube_proxy") or {}
    proxy_flags = {**proxy.get("flags", {}), **proxy.get("running_flags", {})}
    if proxy_flags.get("kubeconfig"):
        wanted.append((proxy_flags["kubeconfig"], "0600", "CIS 4.1.3/4.1.4"))
    return wanted


def fix_files(params, check_mode):
    if not re.fullmatch(r"0?[0-7]{3}", str(params["client_ca_mode"])):
        raise KubeguardError("client_ca_mode", f"{params['client_ca_mode']!r} is not an octal mode like 0644")
    fixed = []
    for path, want_mode, cis in cis_files(params):
        state = file_state(path, follow_symlinks=True)
        if not state["exists"]:
            continue
        mode_bad = not mode_ok(state["mode"], want_mode)
        owner_bad = state["owner"] != "root" or state["group"] != "root"
        if not (mode_bad or owner_bad):
            continue
        fixed.append({"path": path, "mode": state["mode"], "owner": f"{state['owner']}:{state['group']}", "cis": cis})
        if check_mode:
            continue
        if mode_bad:
            os.chmod(path, int(want_mode, 8))
        if owner_bad:
            os.chown(path, 0, 0)
    return {"changed": bool(fixed), "fixed": fixed}
