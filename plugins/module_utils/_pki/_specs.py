# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to the kubeguard.hardening collection: the argument specs of the cluster_pki
node modules, in one place, because cluster_pki_node_plan checks their concerns in one
call and validates each concern's options with the spec of the module that applies it."""

from __future__ import annotations

from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import ROLE_VARS_SPEC

NODE_DIRS = {
    "kubernetes_dir": {"type": "path", "default": "/etc/kubernetes"},
    "kubelet_pki_dir": {"type": "path", "default": "/var/lib/kubelet/pki"},
}

# cluster_pki_endpoint
ENDPOINT = {
    **ROLE_VARS_SPEC,
    "files": {"type": "list", "elements": "dict", "required": True},
    "ca_certificate": {"type": "str", "default": ""},
    **NODE_DIRS,
    "timeout": {"type": "int", "default": 5},
}

# cluster_pki_install
INSTALL = {
    **ROLE_VARS_SPEC,
    "files": {"type": "list", "elements": "dict", "required": True},
    "contents": {"type": "list", "elements": "str", "required": True, "no_log": True},
    "planned": {"type": "list", "elements": "dict", "default": []},
    **NODE_DIRS,
    "owner": {"type": "str", "default": "root"},
    "group": {"type": "str", "default": "root"},
    "replace_ca": {"type": "bool", "default": False},
    "backup_dir": {"type": "path", "default": ""},
}

# cluster_pki_info
INFO = {
    **ROLE_VARS_SPEC,
    **NODE_DIRS,
    "renew_before_days": {"type": "int", "default": 30},
}

# cluster_pki_node_plan's concerns, in the order it checks them: the endpoint proof first.
CONCERNS = {"endpoint": ENDPOINT, "distribute": INSTALL, "node_agents": INSTALL, "report": INFO}
