# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to kubeguard.hardening: restart the components whose PKI files
changed on a node, one at a time on the node engine (queued restart, health
of the new process, the old apiserver's drain bounded), each waiting for real
health; on failure
put the previous files back (from the backups ``_install`` kept), restart
what was restarted, and fail naming the component.

Healthy means: the systemd unit is active and one of the component's health
URLs answers 200 (or 401/403, or demands a client certificate: the server is
up and serving TLS, only this probe is not authenticated). A component
without health URLs must stay active for ``settle`` seconds.

With ``static_pod_dir`` set (the role sets it during a CA rotation), a
component without a systemd unit that runs as a kubeadm static pod (its
manifest in that directory) is restarted by the kubelet: the manifest's
``kubeguard.io/pki-restarted-at`` annotation changes (an atomic write), the
kubelet recreates the pod, whose new process reads the new files; healthy
means a new process of the component answers a health URL.

etcd's static pod (a stacked member) is restarted the same way, with
``control_plane``'s etcd checks (``_control_plane.health``, imported: one
source of truth): before the manifest changes, the other members must keep
the quorum without this one (else nothing is restarted, the files are put
back and the module fails naming the members down); after, the new process
must answer ``/health`` with the healthcheck client certificate and a quorum
of the members (itself included) must answer ``/health``, twice, 2 s apart,
before the next component or node.
"""

from __future__ import annotations

import os
import ssl
import time
import urllib.error
import urllib.request

from ansible_collections.kubeguard.hardening.plugins.module_utils._control_plane import health as cp_health
from ansible_collections.kubeguard.hardening.plugins.module_utils._control_plane import manifest as cp_manifest
from ansible_collections.kubeguard.hardening.plugins.module_utils._control_plane.flags import parse_argv
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError
from ansible_collections.kubeguard.hardening.plugins.module_utils._http import http_open
from ansible_collections.kubeguard.hardening.plugins.module_utils._node import restart, system
from ansible_collections.kubeguard.hardening.plugins.module_utils._node.files import atomic_write, read
from ansible_collections.kubeguard.hardening.plugins.module_utils._pki import _install, _model

# Dependencies first: etcd before the apiserver before its clients.
ORDER = (_model.ETCD, _model.APISERVER, _model.CONTROLLER_MANAGER, _model.SCHEDULER, _model.KUBELET)
_ALIVE_STATUSES = (200, 401, 403)
RESTARTED_AT = "kubeguard.io/pki-restarted-at"


systemctl = system.systemctl_status  # (rc, output); a node without systemd has no units


class NotRestarted(Exception):
    """A component the engine refused to restart (etcd: the others would lose the quorum without it)."""


def etcd_member_health(flags, params):
    """``(ok, detail)``: this member answers /health and a quorum of the members answers it too."""
    ok, detail = cp_health.health(_model.ETCD, flags, params)
    if not ok:
        return False, detail
    return cp_health.etcd_quorum(flags, params)


def answers(url, timeout=2.0):
    """Whether the health URL says the component is up (see the module docstring)."""
    context = ssl.create_default_context()
    # A loopback liveness probe that sends no credentials: the serving
    # certificate is not what is being tested here.
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with http_open(url, timeout=timeout, context=context) as response:
            return response.status in _ALIVE_STATUSES
    except urllib.error.HTTPError as exc:
        return exc.code in _ALIVE_STATUSES
    except urllib.error.URLError as exc:
        return "CERTIFICATE_REQUIRED" in str(exc.reason)
    except (OSError, ssl.SSLError) as exc:
        return "CERTIFICATE_REQUIRED" in str(exc)


def drain_bound(component, pid):
    """The old apiserver's drain bound (see _node.restart.DrainBound), or None."""
    if component != _model.APISERVER or not pid:
        return None
    return restart.DrainBound.for_apiserver({"pid": pid, "argv": system.cmdline(pid) or []})


def bump_manifest(path, stamp):
    """Rewrite the static-pod manifest at ``path`` with ``RESTARTED_AT`` set to ``stamp`` (atomic, same mode)."""
    import yaml  # the node's Python has it wherever kubeadm manifests are edited (_control_plane does too)

    text = read(path)
    try:
        pod = yaml.safe_load(text or "")
    except yaml.YAMLError as exc:
        raise KubeguardError("components", f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(pod, dict) or pod.get("kind") != "Pod":
        raise KubeguardError("components", f"{path} is not a static-pod manifest (kind Pod)")
    pod.setdefault("metadata", {}).setdefault("annotations", {})[RESTARTED_AT] = stamp
    mode = os.stat(path).st_mode & 0o7777
    atomic_write(path, yaml.safe_dump(pod, default_flow_style=False, sort_keys=False).encode(), mode)


class Restarter:
    """One node's restart sequence on the node engine; the callables are injectable for unit tests."""

    def __init__(
        self,
        params,
        command=systemctl,
        probe=answers,
        sleep=time.sleep,
        clock=time.monotonic,
        bound=drain_bound,
        processes=system.processes,
        etcd_quorum_without_me=cp_health.etcd_quorum_without_me,
        etcd_health=etcd_member_health,
    ):
        self.static_pod_dir = params.get("static_pod_dir") or ""  # empty: static pods are not restarted here
        self.etcd_quorum_without_me, self.etcd_health = etcd_quorum_without_me, etcd_health
        self.processes = processes
        self.services = params["services"]
        self.health = params.get("health_checks") or {}
        self.timeout = params["timeout"]
        self.settle = params.get("settle", 3)
        self.command, self.probe, self.sleep, self.clock, self.bound = command, probe, sleep, clock, bound
        self.engine = restart.Engine(command, sleep, clock)

    def unit(self, component):
        name = self.services.get(component)
        return f"{name}.service" if name else None

    def exists(self, unit):
        return self.engine.loaded(unit)

    def manifest(self, component):
        """The component's static-pod manifest, or None (a systemd unit, not on this node, or no static_pod_dir)."""
        if not self.static_pod_dir:
            return None
        path = os.path.join(self.static_pod_dir, f"{component}.yaml")
        return path if os.path.isfile(path) else None

    def runs(self, component, unit):
        return self.exists(unit) or self.manifest(component) is not None

    def pid(self, component):
        return (self.processes((component,)).get(component) or {}).get("pid")

    def etcd_params(self):
        """What _control_plane.health reads: kubeadm's PKI beside the manifests (``pki/etcd/healthcheck-client.*``)."""
        return {"pki_dir": os.path.join(os.path.dirname(self.static_pod_dir.rstrip("/")), "pki")}

    def etcd_flags(self, path):
        """The member's flags: the running process's, else its manifest's."""
        argv = (self.processes((_model.ETCD,)).get(_model.ETCD) or {}).get("argv")
        if not argv:
            import yaml  # see bump_manifest

            argv = cp_manifest.current_argv(yaml.safe_load(read(path) or "") or {}, _model.ETCD)
        return parse_argv(argv)[1]

    def restart_pod(self, component, path):
        """Change the manifest's annotation and wait for a new, healthy process: None, else the last reason.
        etcd: raises NotRestarted when the other members would lose the quorum without this one."""
        replaced = self.pid(component)
        drain = self.bound(component, replaced)
        healthy = self.healthy(component)
        if component == _model.ETCD:
            flags, params = self.etcd_flags(path), self.etcd_params()
            kept, detail = self.etcd_quorum_without_me(flags, params)
            if not kept:
                raise NotRestarted(detail)

            def etcd_healthy(_pid):
                return self.etcd_health(flags, params)

            healthy = etcd_healthy
        try:
            bump_manifest(path, f"{time.time():.3f}")
        except OSError as exc:
            return f"{path} could not be rewritten ({exc})"
        timeout = self.timeout + (restart.shutdown_delay(system.cmdline(replaced)) if replaced else 0)
        ok, detail = self.engine.wait_new(
            component, lambda: self.pid(component), healthy, timeout, replaced, drain, passes=2
        )
        return None if ok else detail

    def healthy(self, component, unit=None):
        """One probe of the new process: ``(ok, reason)``. ``unit`` None: a static pod (no unit state)."""
        urls = self.health.get(component) or []
        active_since = []

        def probe(_pid):
            state = self.engine.show(unit, "ActiveState") if unit else "active"
            if state != "active":
                active_since.clear()
                return False, f"the unit is {state or 'unknown'}"
            if urls:
                if any(self.probe(url) for url in urls):
                    return True, "healthy"
                return False, f"no health URL answered ({', '.join(urls)})"
            active_since[:] = active_since or [self.clock()]
            if self.clock() - active_since[0] >= self.settle:
                return True, "stayed active"
            return False, "the unit has not stayed active yet"

        return probe

    def restart(self, component, unit):
        """Queue the restart and wait for a new, healthy process: None, else the last reason."""
        if not self.exists(unit) and self.manifest(component):
            return self.restart_pod(component, self.manifest(component))
        replaced = self.engine.main_pid(unit)
        drain = self.bound(component, replaced)
        try:
            self.engine.queue_restart(unit)
        except KubeguardError as exc:
            return f"systemctl restart failed ({exc.message})"
        # The old apiserver keeps serving through its shutdown delay before it stops.
        timeout = self.timeout + (restart.shutdown_delay(system.cmdline(replaced)) if replaced else 0)
        ok, detail = self.engine.wait_new(
            component, lambda: self.engine.main_pid(unit), self.healthy(component, unit), timeout, replaced, drain
        )
        return None if ok else detail


def run(params, check_mode=False, restarter=None):
    """The cluster_pki_restart module."""
    restarter = restarter or Restarter(params)
    backup_dir = params.get("backup_dir") or ""
    wanted = set(params["components"]) | set(_install.read_manifest(backup_dir)["components"])
    # Node agents (cluster_pki_node_agents) come after the components, in name order.
    order = ORDER + tuple(sorted(set(restarter.services) - set(ORDER)))
    unknown = sorted(wanted - set(order))
    if unknown:
        raise KubeguardError("components", f"unknown components {unknown}; known: {', '.join(order)}")
    plan = [(c, restarter.unit(c)) for c in order if c in wanted and restarter.unit(c)]
    plan = [(c, u) for c, u in plan if restarter.runs(c, u)]
    if check_mode:
        return {"changed": bool(plan), "restarted": [c for c, _unused in plan]}
    done = []
    for component, unit in plan:
        try:
            reason = restarter.restart(component, unit)
        except NotRestarted as exc:
            _roll_back(backup_dir, restarter, done, component, unit, f"not restarted: {exc}", refused=True)
        done.append((component, unit))
        if reason:
            _roll_back(backup_dir, restarter, done, component, unit, reason)
    if backup_dir:
        _install.clear(backup_dir)
    return {"changed": bool(done), "restarted": [c for c, _unused in done]}


def _roll_back(backup_dir, restarter, done, component, unit, reason, refused=False):
    """Restore the backed-up files and restart what was restarted; ``refused``: ``component`` was never
    restarted (its guard said no), as opposed to restarted and unhealthy."""
    restored = _install.restore(backup_dir) if backup_dir else []
    after = []
    for other, other_unit in done:
        try:
            again = restarter.restart(other, other_unit)
        except NotRestarted as exc:
            again = f"not restarted: {exc}"
        after.append(f"{other} {'healthy' if again is None else 'STILL UNHEALTHY: ' + again}")
    if backup_dir:
        _install.clear(backup_dir)
    files = (
        f"restored the {len(restored)} previous file(s) ({', '.join(restored)})"
        if restored
        else "had no backup to restore"
    )
    what = (
        f"was {reason} (its certificates or kubeconfigs changed)"
        if refused
        else f"did not become healthy within {restarter.timeout} s after its certificates or kubeconfigs changed: "
        f"{reason}"
    )
    raise KubeguardError(
        "components",
        f"{component} ({unit}) {what}. Rolled back: {files}, then "
        f"{'restarted ' + '; '.join(after) if after else 'restarted nothing (nothing had been)'}. Fix what the new "
        "files break (see the unit's journal) before running again.",
    )
