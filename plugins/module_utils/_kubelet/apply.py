# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: ``apply_config`` (kubelet_config: validate, write, restart, wait
for the Node to be Ready with its pods, roll back) and ``apply_kube_proxy``
(kubelet_kube_proxy, CIS 4.3.1), on the node engine (_node/restart.py)."""

from __future__ import annotations

import os
import re
import time

from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError
from ansible_collections.kubeguard.hardening.plugins.module_utils._http import http_open
from ansible_collections.kubeguard.hardening.plugins.module_utils._kubelet import config as cfg
from ansible_collections.kubeguard.hardening.plugins.module_utils._kubelet import kube_proxy_guard
from ansible_collections.kubeguard.hardening.plugins.module_utils._kubelet.api import NodeAPI, ready_probe, running_pods
from ansible_collections.kubeguard.hardening.plugins.module_utils._kubelet.gather import process, sysctls
from ansible_collections.kubeguard.hardening.plugins.module_utils._kubelet.plan import (
    DEFAULT_CONFIG,
    SYSTEMD_DIR,
    _healthz_url,
    check_serving_cert,
    plan_flags,
    protect_kernel_defaults,
)
from ansible_collections.kubeguard.hardening.plugins.module_utils._node import state, system
from ansible_collections.kubeguard.hardening.plugins.module_utils._node.files import file_mode, read, write_all
from ansible_collections.kubeguard.hardening.plugins.module_utils._node.restart import Engine, Target, replace


def _pid(name):
    return lambda: (process(name) or {}).get("pid")


def _remember(params, name, files):
    """The files' contents before this run (an interrupted earlier run's record wins)."""
    before = {p: (read(p), file_mode(p) or mode) for p, (_unused, mode) in files.items()}
    return state.remember(params["state_dir"], name, before)


def _apply_sysctls(sysctl_files):
    for path in sysctl_files:
        rc, out, err = system.run(["sysctl", "-q", "-p", path])
        if rc != 0:
            raise KubeguardError(cfg.var("protect_kernel_defaults"), f"sysctl -p {path}: {(err or out).strip()}")
    live = sysctls()
    bad = sorted(k for k, v in cfg.KERNEL_DEFAULTS.items() if live.get(k) != v)
    if bad:
        raise KubeguardError(cfg.var("protect_kernel_defaults"), f"{', '.join(bad)} did not take their values")


def apply_config(params, check_mode):
    facts = params["facts"]
    kubelet = facts.get("kubelet")
    if not kubelet:
        return {"changed": False, "skipped_reason": "no kubelet on this node"}
    warnings = cfg.validate(params, kubelet["binary"].get("cipher_suites") or ())
    flags = {**kubelet["flags"], **kubelet["running_flags"]}
    if "hostname-override" in flags and not params["hostname_override_allowed"]:
        raise KubeguardError(
            cfg.var("hostname_override_allowed"),
            f"the kubelet runs with --hostname-override={flags['hostname-override']} (CIS 4.2.7); remove it, "
            "or set this to true where the cloud provider needs it (the documented exception)",
        )
    check_serving_cert(params)
    config_path = kubelet["config_path"] or DEFAULT_CONFIG
    protect, sysctl_files, pkd_warnings = protect_kernel_defaults(params, facts, check_mode)
    warnings += pkd_warnings
    current = params.get("current_config") or {}
    wanted = cfg.desired(current, params, protect)
    text = cfg.render(wanted)
    files = {config_path: (text, 0o600)}  # CIS 4.1.9
    flag_files, removed = plan_flags(kubelet, config_path)
    files.update(flag_files)
    files.update(sysctl_files)
    before = {p: read(p) for p in files}
    changed_files = sorted(p for p, (content, _unused) in files.items() if before[p] != content)
    modes_fixed = sorted(p for p, (_unused, mode) in files.items() if before[p] is not None and file_mode(p) != mode)
    new_flags = {k: v for k, v in kubelet["flags"].items() if k not in removed}
    new_flags.setdefault("config", config_path)
    pending = kubelet["running"] and kubelet["running_flags"] != new_flags
    restart = bool(set(changed_files) - set(sysctl_files)) or pending
    result = {
        "changed": bool(changed_files or modes_fixed or pending),
        "config_path": config_path,
        "changed_files": changed_files,
        "modes_fixed": modes_fixed,
        "removed_flags": removed,
        "config_changes": cfg.changes(current, wanted),
        "protect_kernel_defaults": protect,
        "restarted": False,
        "warnings": warnings,
        "diff": {
            "before": kubelet["config_text"] + "".join(f"# flag --{n}={flags.get(n)}\n" for n in removed),
            "after": text,
            "before_header": config_path,
            "after_header": f"{config_path} ({', '.join(changed_files) or 'unchanged'})",
        },
    }
    if not result["changed"] or check_mode:
        return result
    rollback = _remember(params, "kubelet", files)
    api = NodeAPI(kubelet["kubeconfig"]) if restart else None
    pods = running_pods(api, params["node_name"]) if restart else {}
    since, seen = time.time(), {}
    node_name = params["node_name"]
    target = Target(
        "kubelet",
        "kubelet.service",
        _pid("kubelet"),
        ready_probe(api, node_name, _healthz_url(wanted), since, pods, seen),
        daemon_reload=bool(set(changed_files) & set(flag_files)),
        interval=0.5,
    )
    outcome = replace(
        Engine(),
        target,
        files,
        rollback,
        params["state_dir"],
        params["restart_timeout"],
        restart=restart,
        dir_mode=0o755,
        after_write=lambda: _apply_sysctls(sysctl_files),
        keep=sysctl_files,
        rollback_healthy=lambda: ready_probe(api, node_name, _healthz_url(current), time.time(), {}, {}),
        rollback_timeout=120,
        rollback_new_pid=True,
    )
    if restart:
        result["restarted"] = True
        result["seconds_until_ready"] = seen.get("seconds")
        result["ready_false_seen"] = seen.get("ready_false", False)
    if not outcome["ok"]:
        raise KubeguardError(
            cfg.var("restart_timeout"),
            f"the kubelet was not Ready with its pods within {params['restart_timeout']} s ({outcome['detail']}); "
            f"the previous configuration was restored and {'is Ready' if outcome['restored_ok'] else 'is NOT Ready'}",
        )
    return result


def _metrics_ok(address):
    try:
        with http_open(f"http://{address}/metrics", timeout=3) as response:
            return response.status == 200
    except (OSError, ValueError):
        return False


def not_host_service(proxy, address):
    """Why kube-proxy is out of this node's reach, or "" when a systemd unit runs it.

    Without a unit it runs in a pod (kubeadm's DaemonSet): its --config path is
    inside the container and its configuration is the kube-system/kube-proxy
    ConfigMap, which a node-side edit cannot change (and a restart would undo)."""
    if proxy.get("unit"):
        return ""
    config = proxy.get("running_flags", {}).get("config") or proxy.get("flags", {}).get("config")
    where = f" (--config {config} is inside its container)" if config else ""
    return (
        f"kube-proxy runs without a systemd unit here, in a pod (kubeadm's DaemonSet?){where}: set "
        f"metricsBindAddress: {address} in the kube-system/kube-proxy ConfigMap (key config.conf) and roll "
        "the DaemonSet (CIS 4.3.1); kubelet_kube_proxy_metrics_bind_address is not applied"
    )


def apply_kube_proxy(params, check_mode):
    proxy = params["facts"].get("kube_proxy")
    address = params["metrics_bind_address"]
    if not re.match(r"^127\.[0-9.]+:[0-9]+$", address):
        raise KubeguardError(cfg.var("kube_proxy_metrics_bind_address"), f"{address!r} is not a 127.x address:port")
    if not proxy or not proxy["running"]:
        return {"changed": False, "skipped_reason": "kube-proxy does not run on this node"}
    reason = not_host_service(proxy, address)
    if reason:
        return {"changed": False, "skipped_reason": reason, "warnings": [reason]}
    flags = {**proxy["flags"], **proxy["running_flags"]}
    if flags.get("config"):
        # kube-proxy ignores its flags when --config is given: edit the file's top-level field.
        path = flags["config"]
        before = read(path)
        if before is None:
            raise KubeguardError(
                cfg.var("kube_proxy_metrics_bind_address"), f"kube-proxy's --config file {path} is unreadable"
            )
        text = cfg.set_top_level(before, "metricsBindAddress", address)
        mode = file_mode(path) or 0o600
        current = cfg.top_level(before, "metricsBindAddress") or "<default>"
        pending = False
    else:
        service = proxy["unit"]
        words = cfg.without(service["exec_start"], {"metrics-bind-address"})
        words.append(f"--metrics-bind-address={address}")
        path = os.path.join(SYSTEMD_DIR, "kube-proxy.service.d", cfg.DROPIN)
        text = cfg.render_dropin(words).replace("kubelet's command line", "kube-proxy's command line", 1)
        before, mode = read(path), 0o600
        current = proxy["running_flags"].get("metrics-bind-address", "<default>")
        pending = current != address
    guard_path = os.path.join(SYSTEMD_DIR, "kube-proxy.service.d", kube_proxy_guard.DROPIN)
    guard_pending = read(guard_path) != kube_proxy_guard.TEXT
    files = {path: (text, mode), guard_path: (kube_proxy_guard.TEXT, 0o644)}
    guard_state = "absent" if guard_pending else "present"
    result = {
        "changed": before != text or pending or guard_pending,
        "metrics_bind_address": address,
        "diff": {
            "before": f"metricsBindAddress: {current}\nnftables restart guard: {guard_state}\n",
            "after": f"metricsBindAddress: {address}\nnftables restart guard: present\n",
            "before_header": path,
            "after_header": path,
        },
    }
    if not result["changed"] or check_mode:
        return result
    if before == text and not pending:
        # Only the guard is new: it acts at kube-proxy's next start, which need not be now.
        write_all({guard_path: files[guard_path]}, 0o755)
        Engine().systemctl("daemon-reload")
        return result
    rollback = _remember(params, "kube-proxy", files)
    target = Target(
        "kube-proxy",
        "kube-proxy.service",
        _pid("kube-proxy"),
        lambda _pid: (_metrics_ok(address), f"no metrics on {address}"),
        interval=0.5,
    )
    outcome = replace(
        Engine(),
        target,
        files,
        rollback,
        params["state_dir"],
        params["restart_timeout"],
        dir_mode=0o755,
        rollback_healthy=lambda: lambda _pid: (True, "restarted"),
        rollback_new_pid=True,
    )
    if outcome["ok"]:
        result["restarted"] = True
        return result
    raise KubeguardError(
        cfg.var("restart_timeout"),
        f"kube-proxy did not serve metrics on {address} within {params['restart_timeout']} s; its unit was restored",
    )
