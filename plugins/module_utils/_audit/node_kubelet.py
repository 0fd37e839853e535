# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the kubelet and kube-proxy checks (4.2.x, 4.3.1) over the effective settings:
a flag wins, a config-file field counts where no flag is set, the default where neither is."""

from __future__ import annotations

import re

from .effective import Kubelet, list_value
from .node_checks import STRONG_CIPHERS

_ZERO_DURATION = re.compile(r"^0+(?:\.0+)?(?:ns|us|µs|ms|s|m|h)?(?:0+(?:ns|us|µs|ms|s|m|h))*$")


def settings(facts):
    klet = facts["kubelet"].get("kubelet") or {}
    loaded = facts.get("kubelet_config") or {}
    return Kubelet(klet, loaded.get("data"), klet.get("config_path") or "")


def _explicit(where):
    return "not set" not in where


def checks(facts, kubelet):
    """{check id: (outcome, evidence)} for 4.2.x; 4.3.1 where kube-proxy runs."""
    out = {}
    loaded = facts.get("kubelet_config") or {}
    note = [f"{loaded['path']}: {loaded['error']} (read as if empty)"] if loaded.get("error") else []

    def rule(check_id, flag, ok):
        value, where = kubelet.get(flag)
        out[check_id] = ("pass" if ok(value, where) else "fail", [where, *note])

    rule("4.2.1", "anonymous-auth", lambda v, _: v == "false")
    rule("4.2.2", "authorization-mode", lambda v, _: v is not None and "AlwaysAllow" not in list_value(v))
    rule("4.2.3", "client-ca-file", lambda v, _: bool(v))
    rule("4.2.4", "read-only-port", lambda v, _: str(v) == "0")
    rule("4.2.5", "streaming-connection-idle-timeout", lambda v, _: not _ZERO_DURATION.match(str(v or "")))
    rule("4.2.6", "make-iptables-util-chains", lambda v, _: v == "true")
    rule("4.2.7", "hostname-override", lambda v, _: v is None)
    rule("4.2.8", "event-qps", lambda v, _: v is not None and float(v) >= 0)
    cert, cert_where = kubelet.get("tls-cert-file")
    key, key_where = kubelet.get("tls-private-key-file")
    bootstrap, boot_where = kubelet.get("rotate-server-certificates")
    ok = bool(cert and key) or bootstrap == "true"
    out["4.2.9"] = ("pass" if ok else "fail", [cert_where, key_where, *([boot_where] if bootstrap else []), *note])
    rule("4.2.10", "rotate-certificates", lambda v, where: not (_explicit(where) and v == "false"))
    gate, gate_where = kubelet.feature_gate("RotateKubeletServerCertificate")
    out["4.2.11"] = ("fail" if gate == "false" else "pass", [gate_where])
    suites, suites_where = kubelet.get("tls-cipher-suites")
    weak = [c for c in list_value(suites) if c not in STRONG_CIPHERS]
    ok = bool(list_value(suites)) and not weak
    out["4.2.12"] = (
        "pass" if ok else "fail",
        [suites_where if not suites else f"tlsCipherSuites: {len(list_value(suites))} suites"]
        + ([f"weak: {', '.join(weak)}"] if weak else [])
        + ([] if suites else ["Go's defaults include CBC suites"]),
    )
    rule("4.2.13", "pod-max-pids", lambda v, _: v is not None and int(v) > 0)
    rule("4.2.14", "seccomp-default", lambda v, _: v == "true")
    return out


def kube_proxy(facts, load):
    proxy = facts["kubelet"].get("kube_proxy")
    if not proxy:
        return {}
    flags = proxy.get("running_flags") or proxy.get("flags") or {}
    if "metrics-bind-address" in flags:
        value, where = flags["metrics-bind-address"], f"--metrics-bind-address={flags['metrics-bind-address']}"
    elif "metrics-port" in flags and flags["metrics-port"] == "0":
        return {"4.3.1": ("pass", ["--metrics-port=0 (metrics server off)"])}
    elif flags.get("config"):
        data = load(flags["config"]).get("data") or {}
        value = data.get("metricsBindAddress")
        where = f"metricsBindAddress: {value} ({flags['config']})" if value else "metricsBindAddress not set"
        value = value or "127.0.0.1:10249"
    else:
        value, where = "127.0.0.1:10249", "--metrics-bind-address not set (default 127.0.0.1:10249)"
    host = value.rsplit(":", 1)[0].strip("[]") if ":" in value else value
    local = host in ("127.0.0.1", "::1", "localhost") or host.startswith("127.")
    return {"4.3.1": ("pass" if local else "fail", [f"{where} (kube-proxy process {proxy.get('pid')})"])}
