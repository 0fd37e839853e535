# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to the kubeguard.hardening collection: the argument specs of the node_os
concerns, in one place, because node_os_plan checks them all in one call and
validates each concern's options with the spec of the module that applies it."""

from __future__ import annotations

from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import ROLE_VARS_SPEC

LIST = {"type": "list", "elements": "str"}

FIREWALL = {
    **ROLE_VARS_SPEC,
    "roles": {**LIST, "required": True, "choices": ["control_plane", "etcd", "worker"]},
    "control_plane_ips": {**LIST, "default": []},
    "etcd_ips": {**LIST, "default": []},
    "node_ips": {**LIST, "default": []},
    "admin_networks": {**LIST, "default": []},
    "ssh_ports": {**LIST, "default": ["22"]},
    "lockout_check": {"type": "bool", "default": True},
    "api_sources": {**LIST, "default": ["0.0.0.0/0", "::/0"]},
    "api_port": {"type": "str", "default": "6443"},
    "etcd_client_sources": {**LIST, "default": []},
    "kubelet_sources": {**LIST, "default": []},
    "reject_sources": {**LIST, "default": []},
    "pod_cidrs": {**LIST, "required": True},
    "service_cidrs": {**LIST, "required": True},
    "cni": {"type": "str", "default": "bridge", "choices": ["bridge", "flannel", "calico", "cilium", "kube-router"]},
    "nodeports_enabled": {"type": "bool", "default": False},
    "nodeport_range": {"type": "str", "default": "30000-32767"},
    "nodeport_sources": {**LIST, "default": ["0.0.0.0/0", "::/0"]},
    "extra_ports": {"type": "list", "elements": "dict", "default": []},
    "path": {"type": "path", "default": "/etc/kubeguard/node-firewall.nft"},
    "header": {"type": "str", "default": "Managed by kubeguard.hardening node_os."},
    "rollback_timeout": {"type": "int", "default": 120},
    "state_dir": {"type": "path", "default": "/var/lib/kubeguard/node_os"},
    "boot_unit": {"type": "str"},
    "boot_unit_path": {"type": "path", "default": "/etc/systemd/system/kubeguard-node-firewall.service"},
}

KERNEL = {
    **ROLE_VARS_SPEC,
    "sysctls": {"type": "dict", "required": True},
    "sysctls_optional": {"type": "dict", "default": {}},
    "modules_blacklist": {"type": "list", "elements": "str", "default": []},
    "modules_in_use": {"type": "list", "elements": "str", "default": []},
    "core_dumps_restricted": {"type": "bool", "default": True},
    "sysctl_file": {"type": "path", "default": "/etc/sysctl.d/60-kubeguard-node-os.conf"},
    "modprobe_file": {"type": "path", "default": "/etc/modprobe.d/60-kubeguard-node-os.conf"},
    "header": {"type": "str", "default": "Managed by kubeguard.hardening node_os."},
}

AUDIT = {
    **ROLE_VARS_SPEC,
    "watches": {"type": "list", "elements": "dict", "required": True},
    "rules_file": {"type": "path", "default": "/etc/audit/rules.d/60-kubeguard-node-os.rules"},
    "header": {"type": "str", "default": "Managed by kubeguard.hardening node_os."},
}

LOGIN = {
    **ROLE_VARS_SPEC,
    "login_defs": {"type": "dict", "default": {}},
    "umask": {"type": "str", "default": "027"},
    "tmout": {"type": "int", "default": 900},
    "banner": {"type": "str", "default": ""},
    "profile_file": {"type": "path", "default": "/etc/profile.d/60-kubeguard-node-os-login.sh"},
    "header": {"type": "str", "default": "Managed by kubeguard.hardening node_os."},
}

# The packages concern has no module of its own: its plan is node_os_plan's, its apply the role's apt tasks.
PACKAGES = {
    "install": {**LIST, "default": []},
    "remove": {**LIST, "default": []},
    "cache_valid_time": {"type": "int", "default": 3600},
    "files": {"type": "dict", "default": {}},
    "lines": {"type": "dict", "default": {}},
}

# The concerns node_os_plan checks, by its option names.
CONCERNS = {"firewall": FIREWALL, "kernel": KERNEL, "audit": AUDIT, "login": LOGIN, "packages": PACKAGES}
