# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to the kubeguard.hardening collection: the argument specs of the kubelet
concerns, in one place, because kubelet_plan checks them all in one call and
validates each concern's options with the spec of the module that applies it."""

from __future__ import annotations

from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import ROLE_VARS_SPEC

FACTS = {"facts": {"type": "dict", "required": True}}

CONFIG = {
    **ROLE_VARS_SPEC,
    **FACTS,
    "current_config": {"type": "dict", "default": {}},
    "node_name": {"type": "str", "required": True},
    "node_ip": {"type": "str", "required": True},
    "client_ca_file": {"type": "path", "required": True},
    "tls_cert_file": {"type": "path", "required": True},
    "tls_private_key_file": {"type": "path", "required": True},
    # raw: a string from the inventory is refused by name instead of coerced.
    "read_only_port": {"type": "raw", "default": 0},
    "streaming_connection_idle_timeout": {"type": "str", "default": "5m"},
    "event_record_qps": {"type": "raw", "default": 50},
    "pod_pids_limit": {"type": "raw", "default": 4096},
    "tls_cipher_suites": {"type": "list", "elements": "str", "required": True},
    "tls_min_version": {"type": "str", "default": "VersionTLS12"},
    "seccomp_default": {"type": "bool", "default": True},
    "protect_kernel_defaults": {"type": "bool", "default": True},
    "hostname_override_allowed": {"type": "bool", "default": False},
    "extra_config": {"type": "dict", "default": {}},
    "restart_timeout": {"type": "int", "default": 120},
    "state_dir": {"type": "path", "default": "/var/backups/kubeguard/kubelet"},
}

FILES = {
    **ROLE_VARS_SPEC,
    **FACTS,
    "client_ca_file": {"type": "path", "required": True},
    "client_ca_mode": {"type": "str", "default": "0644"},
}

KUBE_PROXY = {
    **ROLE_VARS_SPEC,
    **FACTS,
    "metrics_bind_address": {"type": "str", "default": "127.0.0.1:10249"},
    "state_dir": {"type": "path", "default": "/var/backups/kubeguard/kubelet"},
    "restart_timeout": {"type": "int", "default": 60},
}

CONCERNS = {"config": CONFIG, "files": FILES, "kube_proxy": KUBE_PROXY}
