# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the values a component really runs with, read the way it reads them.

Control-plane flags: the running process's argv first; where the configured
command line (unit or manifest) says something else, that value counts too,
since the next restart applies it. A flag set nowhere has the binary's default.

Kubelet: a command-line flag wins over the config file, a config-file field
counts where no flag is set, and the default counts where neither is: the
KubeletConfiguration v1beta1 default when a config file is used, the flag's
default when none is (they differ: anonymous auth, AlwaysAllow, port 10255).
Pure functions over gathered facts.
"""

from __future__ import annotations

from .._kubelet.config import FLAG_FIELDS

# The binaries' own defaults (Kubernetes v1.34, etcd v3.6) for the flags the benchmark reads.
DEFAULTS = {
    "kube-apiserver": {
        "anonymous-auth": "true",
        "authorization-mode": "AlwaysAllow",
        "profiling": "true",
        "service-account-lookup": "true",
        "service-account-extend-token-expiration": "true",
        "request-timeout": "1m0s",
    },
    "kube-controller-manager": {
        "profiling": "true",
        "use-service-account-credentials": "false",
        "bind-address": "0.0.0.0",  # noqa: S104 - the default the benchmark fails
        "terminated-pod-gc-threshold": "12500",
    },
    "kube-scheduler": {"profiling": "true", "bind-address": "0.0.0.0"},  # noqa: S104
    "etcd": {
        "client-cert-auth": "false",
        "peer-client-cert-auth": "false",
        "auto-tls": "false",
        "peer-auto-tls": "false",
    },
}
# KubeletConfiguration v1beta1 defaults (used with --config) and the flags' defaults (without it).
KUBELET_FILE_DEFAULTS = {
    "anonymous-auth": "false",
    "authorization-mode": "Webhook",
    "read-only-port": "0",
    "streaming-connection-idle-timeout": "4h0m0s",
    "make-iptables-util-chains": "true",
    "event-qps": "50",
    "rotate-certificates": "false",
    "pod-max-pids": "-1",
    "seccomp-default": "false",
}
KUBELET_FLAG_DEFAULTS = dict(
    KUBELET_FILE_DEFAULTS, **{"anonymous-auth": "true", "authorization-mode": "AlwaysAllow", "read-only-port": "10255"}
)
KUBELET_FIELDS = dict(
    {name: path for name, path in FLAG_FIELDS.items() if path},
    **{"feature-gates": ("featureGates",), "hostname-override": None, "kubeconfig": None},
)


def text(value):
    """A config value as the flag would spell it (YAML booleans as true/false, lists comma-joined)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    if isinstance(value, dict):
        return ",".join(f"{k}={text(v)}" for k, v in sorted(value.items()))
    return "" if value is None else str(value)


class View:
    """One command line of a component (the running one, or the configured one) with the defaults."""

    def __init__(self, flags, defaults, where):
        self.flags = flags
        self.defaults = defaults
        self.where = where

    def get(self, flag):
        return self.flags.get(flag, self.defaults.get(flag))

    def has(self, flag):
        return flag in self.flags

    def show(self, flag):
        if flag in self.flags:
            return f"--{flag}={self.flags[flag]}"
        default = self.defaults.get(flag)
        return f"--{flag} not set" + (f" (default {default})" if default is not None else "")


class Flags:
    """One control-plane component's flags: the running process's, and the configured ones where they differ."""

    def __init__(self, name, component):
        self.name = name
        self.component = component or {}
        running = self.component.get("running")
        configured = self.component.get("flags") or {}
        live = self.component.get("running_flags") or {}
        source = self.component.get("unit_file") or self.component.get("source") or "its configuration"
        defaults = DEFAULTS.get(name, {})
        self.views = []
        if running:
            self.views.append(View(live, defaults, f"{name} process {self.component.get('pid')}"))
        if not running or configured != live:
            where = f"configured in {source}" + (" (applies at the next restart)" if running else "")
            self.views.append(View(configured, defaults, where))

    def value(self, flag):
        """The effective value: what runs (or, when stopped, what is configured)."""
        return self.views[0].get(flag) if self.views else None


def list_value(value):
    return [v.strip() for v in (value or "").split(",") if v.strip()]


class Kubelet:
    """The kubelet's effective settings: flag > config-file field > default."""

    def __init__(self, component, config, config_path):
        self.component = component or {}
        flags = self.component.get("running_flags") or self.component.get("flags") or {}
        self.flags = flags
        self.where_flag = (
            f"kubelet process {self.component['pid']}" if self.component.get("running") else "kubelet unit"
        )
        self.config = config if isinstance(config, dict) else {}
        self.config_path = config_path
        self.defaults = KUBELET_FILE_DEFAULTS if config_path else KUBELET_FLAG_DEFAULTS

    def get(self, flag):
        """(value as text or None, where it comes from)."""
        if flag in self.flags:
            return self.flags[flag], f"--{flag}={self.flags[flag]} ({self.where_flag})"
        path = KUBELET_FIELDS.get(flag)
        if path and self.config_path:
            node = self.config
            for key in path:
                node = node.get(key) if isinstance(node, dict) else None
            if node is not None:
                return text(node), f"{'.'.join(path)}: {text(node)} ({self.config_path})"
        default = self.defaults.get(flag)
        label = ".".join(path) if path and self.config_path else f"--{flag}"
        if default is None:
            return None, f"{label} not set"
        kind = "config file default" if self.config_path else "flag default"
        return default, f"{label} not set ({kind} {default})"

    def feature_gate(self, gate):
        flag = self.flags.get("feature-gates", "")
        for item in list_value(flag):
            key, _unused, value = item.partition("=")
            if key == gate:
                return value.lower(), f"--feature-gates {item} ({self.where_flag})"
        gates = self.config.get("featureGates") if isinstance(self.config.get("featureGates"), dict) else {}
        if gate in gates:
            return text(gates[gate]), f"featureGates.{gate}: {text(gates[gate])} ({self.config_path})"
        return None, f"{gate} not set (the feature's default)"
