# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the options of the control_plane modules, in one place. NODE_OPTIONS are
the node's (documented by the doc fragment kubeguard.hardening.control_plane);
COMPONENT_OPTIONS what one component adds (control_plane_component's own options,
an item of control_plane_plan's ``components``)."""

from __future__ import annotations

from ansible_collections.kubeguard.hardening.plugins.module_utils._control_plane.desired import COMPONENTS

NODE_OPTIONS = {
    "node_name": {"type": "str", "required": True},
    "node_ip": {"type": "str", "required": True},
    "kubernetes_dir": {"type": "path", "default": "/etc/kubernetes"},
    "pki_dir": {"type": "path", "default": "/etc/kubernetes/pki"},
    "config_dir": {"type": "path", "default": "/etc/kubernetes/kubeguard"},
    "state_dir": {"type": "path", "default": "/var/lib/kubeguard/control_plane"},
    "etcd_servers": {"type": "list", "elements": "str", "default": []},
    "etcd_data_dir": {"type": "path", "default": "/var/lib/etcd"},
    "etcd_non_root": {"type": "bool", "default": True},
    "service_cidr": {"type": "str", "default": "10.96.0.0/12"},
    "service_account_issuer": {"type": "str", "default": "https://kubernetes.default.svc.cluster.local"},
    "tls_min_version": {"type": "str", "default": "VersionTLS12"},
    "tls_cipher_suites": {"type": "list", "elements": "str", "default": []},
    "authorization_modes": {"type": "list", "elements": "str", "default": ["Node", "RBAC"]},
    "allow_always_allow": {"type": "bool", "default": False},
    "admission_plugins": {
        "type": "list",
        "elements": "str",
        "default": ["NodeRestriction", "EventRateLimit", "DenyServiceExternalIPs"],
    },
    "always_pull_images": {"type": "bool", "default": False},
    "event_rate_limits": {"type": "list", "elements": "dict", "default": []},
    "audit_policy": {"type": "str", "default": ""},
    "audit_log_path": {"type": "path", "default": "/var/log/kubernetes/audit/audit.log"},
    "audit_log_maxage": {"type": "int", "default": 30},
    "audit_log_maxbackup": {"type": "int", "default": 10},
    "audit_log_maxsize": {"type": "int", "default": 100},
    "request_timeout": {"type": "str", "default": "60s"},
    "shutdown_watch_termination_grace_period": {"type": "str", "default": "5s"},
    "shutdown_delay_duration": {"type": "str", "default": "0s"},
    "terminated_pod_gc_threshold": {"type": "int", "default": 10},
    "health_timeout": {"type": "int", "default": 120},
}

COMPONENT_OPTIONS = {
    "component": {"type": "str", "required": True, "choices": list(COMPONENTS)},
    "extra_flags": {"type": "dict", "default": {}},
    "contributed_flags": {"type": "dict", "default": {}},
    "contributed_files": {"type": "dict", "default": {}, "no_log": True},
    "defer_to_apiserver": {"type": "bool", "default": False},
}
