# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: ``apply`` (control_plane_component): validate, write, restart,
wait for health, roll back, on the node engine (_node/restart.py)."""

from __future__ import annotations

import os

from ansible_collections.kubeguard.hardening.plugins.module_utils._control_plane import desired, preflight
from ansible_collections.kubeguard.hardening.plugins.module_utils._control_plane import flags as flaglib
from ansible_collections.kubeguard.hardening.plugins.module_utils._control_plane.checks import (
    check_known_flags,
    check_pki,
)
from ansible_collections.kubeguard.hardening.plugins.module_utils._control_plane.cis import (
    _etcd_data_dirs,
    _own_trees,
    _unowned,
    ensure_etcd_user,
)
from ansible_collections.kubeguard.hardening.plugins.module_utils._control_plane.gather import processes
from ansible_collections.kubeguard.hardening.plugins.module_utils._control_plane.health import (
    drain_bound,
    etcd_peer_urls,
    etcd_quorum_without_me,
    etcd_reachable,
    health,
)
from ansible_collections.kubeguard.hardening.plugins.module_utils._control_plane.plan import (
    _flags_of_files,
    etcd_user,
    plan,
    probe_anonymous,
)
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError, require_facts
from ansible_collections.kubeguard.hardening.plugins.module_utils._node import restart, state, system
from ansible_collections.kubeguard.hardening.plugins.module_utils._node.files import file_mode, read

# What etcd's clients dial and trust. While these stay, kube-apiserver can move to every
# member first and ride out this member's restart (TLS versions and suites aside: its Go
# client negotiates them).
CLIENT_SIDE = ("listen-client-urls", "cert-file", "key-file", "trusted-ca-file", "client-cert-auth")


def clients_kept(running, new_flags, sources):
    """Whether etcd's change leaves its client side as a client sees it: the same
    client URLs, serving certificate and key (a systemd credential counts as its
    source file), client CA and client-certificate rule."""
    if not running:
        return False

    def seen(flags, name):
        value = flags.get(name)
        if name == "listen-client-urls":
            return {url.rstrip("/") for url in (value or "").split(",") if url}
        return sources.get(value, value)

    return all(seen(running, name) == seen(new_flags, name) for name in CLIENT_SIDE)


def delay_seconds(flags):
    """An apiserver's --shutdown-delay-duration in seconds (0 without it)."""
    return desired.seconds((flags or {}).get("shutdown-delay-duration") or "0s")


def target(component, conf, flags, params):
    """The component as the node engine restarts it. systemd: a queued restart (an
    apiserver cut off from etcd is killed first: it could finish no request while
    draining); static pods: the kubelet recreates the pod when its manifest changes.
    Healthy: the new process runs with ``flags`` and answers twice, 2 s apart."""

    def pid():
        return (processes().get(component) or {}).get("pid")

    def kill():
        running = processes().get(component)
        return component == "kube-apiserver" and bool(running) and not etcd_reachable(running["argv"])

    unit = f"{component}.service" if conf["layout"] == "systemd" else None
    return restart.Target(component, unit, pid, healthy(component, flags, params), kill=kill, passes=2)


def healthy(component, flags, params, serving_only=False):
    def probe(pid):
        argv = system.cmdline(pid) or []
        if flaglib.parse_argv(argv)[1] != flags:
            return False, f"{component} is not running with the new flags yet"
        return health(component, flags, params, serving_only)

    return probe


def apply(params, check_mode):
    component = params["component"]
    conf = require_facts(params["facts"], "control_plane_facts", components=dict)["components"].get(component)
    if conf is None:
        return {"changed": False, "skipped_reason": f"{component} does not run on this node"}
    params = probe_anonymous(params)
    user, user_warning = etcd_user(conf, params) if component == "etcd" else (None, "")
    params = {**params, "etcd_user": user}
    conf, new_flags, files, sources = plan(component, params)
    data_dirs = _etcd_data_dirs(new_flags) if user else []
    unowned = _unowned(data_dirs, user) if user else []
    before = {path: read(path) for path in files}
    changed_files = sorted(p for p, (content, _unused) in files.items() if before[p] != content)
    modes_fixed = sorted(p for p, (_unused, mode) in files.items() if before[p] is not None and file_mode(p) != mode)
    pending = conf["running_flags"] != new_flags
    result = {
        "changed": bool(changed_files or pending or modes_fixed or unowned),
        "component": component,
        "layout": conf["layout"],
        "changed_files": changed_files,
        "modes_fixed": modes_fixed,
        "flag_changes": flaglib.diff_lines(conf["running_flags"] or conf["flags"], new_flags),
        "restarted": False,
        "warnings": (desired.below_cis(params) + params.get("probe_warnings", []))
        if component == "kube-apiserver"
        else [w for w in [user_warning] if w],
    }
    if component == "etcd":
        result["user"] = user or "root"
        result["data_dir_entries_chowned"] = len(unowned)
    result["diff"] = {
        "before": "\n".join(f"--{k}={v}" for k, v in sorted((conf["running_flags"] or conf["flags"]).items())) + "\n",
        "after": "\n".join(f"--{k}={v}" for k, v in sorted(new_flags.items())) + "\n",
        "before_header": f"{component} flags",
        "after_header": f"{component} flags ({', '.join(changed_files) or 'restart only'})",
    }
    if not result["changed"]:
        return result
    check_known_flags(component, new_flags, conf["binary"], params)
    check_pki(component, {k: sources.get(v, v) for k, v in new_flags.items()}, params, writing=files)
    if component == "kube-apiserver" and (changed_files or pending):
        # The installed apiserver judges the candidate before any write (in check mode too:
        # read-only on the node), so a refused CEL rule or config restarts nothing.
        result["preflight_seconds"] = preflight.judge(conf, new_flags, files, params["config_dir"])
    if (
        component == "etcd"
        and params.get("defer_to_apiserver")
        and clients_kept(conf["running_flags"], new_flags, sources)
    ):
        # kube-apiserver first: kubeadm points it at this member alone, so this restart
        # would fail its /readyz behind the load balancer; the caller applies etcd after it.
        return {**{k: v for k, v in result.items() if k != "diff"}, "changed": False, "deferred": True}
    if component == "etcd" and (changed_files or pending):
        # Read-only, in check mode too: a member already down means this restart would take
        # the cluster below quorum, so the roll stops here, before anything is written.
        kept, detail = etcd_quorum_without_me(conf["running_flags"] or conf["flags"], params)
        if not kept:
            raise KubeguardError("", f"etcd on this node is not restarted: {detail}. Bring the member back, then rerun")
    if check_mode:
        return result
    rollback = state.remember(
        params["state_dir"], component, {p: (before[p], mode) for p, (_unused, mode) in files.items()}
    )
    if component == "etcd":
        etcd_peer_urls(conf["flags"], new_flags, params)
    if component == "kube-apiserver":
        os.makedirs(os.path.dirname(params["audit_log_path"]), mode=0o700, exist_ok=True)
    if user:
        ensure_etcd_user(check_mode=False)
        if unowned:
            _own_trees(data_dirs, user)
    drain = drain_bound(params) if component == "kube-apiserver" else None
    outcome = restart.replace(
        restart.Engine(),
        target(component, conf, new_flags, params),
        files,
        rollback,
        params["state_dir"],
        # The process being replaced keeps serving through its shutdown delay before it stops.
        params["health_timeout"] + delay_seconds(conf["running_flags"]),
        restart=bool(changed_files or pending),
        always_wait=True,
        drain=drain,
        rollback_timeout=params["health_timeout"] + delay_seconds(new_flags),
        rollback_healthy=lambda: healthy(component, _flags_of_files(component, conf, rollback), params, True),
    )
    result["restarted"] = outcome["restarted"]
    if drain and drain.killed_after is not None:
        result["old_process_killed_after_drain_seconds"] = drain.killed_after
    result["restart_seconds"] = outcome["seconds"]
    if not outcome["ok"]:
        back = "is healthy" if outcome["restored_ok"] else "is NOT healthy: " + outcome["restored_detail"]
        raise KubeguardError(
            desired.var("health_timeout"),
            f"{component} did not become healthy within {params['health_timeout']} s ({outcome['detail']}); "
            f"the previous configuration was restored and {back}",
        )
    return result
