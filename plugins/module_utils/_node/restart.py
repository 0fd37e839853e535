# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to kubeguard.hardening: the one restart -> health -> rollback engine.

- The restart is queued (``systemctl restart --no-block``, after
  ``reset-failed``): a blocking restart of a Type=notify unit whose new process
  dies fails the systemctl call itself, before any rollback could run, and it
  leaves no room to bound an old apiserver's drain.
- Health is proven on a NEW process (another pid than the one replaced), so
  the old process answering before it exits proves nothing.
- ``DrainBound`` SIGKILLs an old kube-apiserver that stopped listening but
  still drains its watches, after a bounded grace.
- On failure the previous files are written back, the component is restarted
  and waited for again; the caller raises naming its variable.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time

from ansible_collections.kubeguard.hardening.plugins.module_utils._common import duration
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError
from ansible_collections.kubeguard.hardening.plugins.module_utils._node import files as nodefiles
from ansible_collections.kubeguard.hardening.plugins.module_utils._node import state, system

# What control_plane sets as --shutdown-watch-termination-grace-period (its role default):
# the drain an apiserver that does not bound its own gets, plus 2 s for in-flight requests.
WATCH_GRACE_SECONDS = 5
IN_FLIGHT_SECONDS = 2
DRAIN_POLL_SECONDS = 0.2  # how often a draining old apiserver is looked at


def listening(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def flag(argv, name):
    """The value of ``--name`` in a process argv (``--name=value`` or ``--name value``), or None."""
    for index, arg in enumerate(argv[1:], 1):
        if arg == f"--{name}":
            return argv[index + 1] if index + 1 < len(argv) else ""
        if arg.startswith(f"--{name}="):
            return arg.split("=", 1)[1]
    return None


def shutdown_delay(argv):
    """An apiserver's --shutdown-delay-duration in seconds (0 without it): it keeps
    serving that long after SIGTERM, so its restart takes that much longer."""
    try:
        return duration.parse(flag(argv or [], "shutdown-delay-duration") or "0s")
    except ValueError:
        return 0.0


class DrainBound:
    """A kube-apiserver started without --shutdown-watch-termination-grace-period
    holds its open watches on SIGTERM until it is killed: systemd's TimeoutStopSec
    (90 s), the pod's terminationGracePeriodSeconds (30 s) or --request-timeout,
    and the API is down all that time. Once the old process has stopped
    listening (it got SIGTERM), it gets ``grace`` seconds, then SIGKILL. Called
    on every round of the health wait."""

    def __init__(self, pid, argv, port, grace, clock=time.monotonic):
        self.pid, self.argv, self.port, self.grace = pid, argv, int(port), grace
        self.clock = clock
        self.since = None
        self.killed_after = None

    @classmethod
    def for_apiserver(cls, running, grace=WATCH_GRACE_SECONDS + IN_FLIGHT_SECONDS):
        """The bound for the running apiserver ``{"pid", "argv"}``, or None when it needs none."""
        if not running or not running.get("pid"):
            return None
        argv = running["argv"]
        if flag(argv, "shutdown-watch-termination-grace-period") is not None:
            return None  # it bounds its own drain
        port = int(flag(argv, "secure-port") or 6443)
        if not listening(port):
            return None  # not reachable on loopback: "stopped listening" could not be told apart
        return cls(running["pid"], argv, port, grace)

    def __call__(self):
        """One look at the old process; True while it is draining (the caller then looks
        again sooner: every second of the drain is API outage)."""
        if self.pid is None:
            return False
        argv = system.cmdline(self.pid)
        if argv == []:
            return False  # a zombie, or a process between fork and exec: look again next round
        if argv != self.argv:
            self.pid = None  # gone (or the pid was reused): nothing to bound
            return False
        if listening(self.port):
            return False  # not told to stop yet
        self.since = self.since or self.clock()
        if self.clock() - self.since >= self.grace:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            self.killed_after, self.pid = round(self.clock() - self.since, 1), None
            return False
        return True


class Engine:
    """systemd, sleeping and the clock; injectable for unit tests.

    ``command(*argv) -> (rc, output)`` runs systemctl.
    """

    def __init__(self, command=system.systemctl_status, sleep=time.sleep, clock=time.monotonic):
        self.command, self.sleep, self.clock = command, sleep, clock

    def systemctl(self, *args):
        rc, out = self.command(*args)
        if rc != 0:
            raise KubeguardError("", f"systemctl {' '.join(args)} failed: {out}")
        return out

    def show(self, unit, prop):
        rc, out = self.command("show", "-p", prop, "--value", unit)
        return out if rc == 0 else ""

    def loaded(self, unit):
        return self.show(unit, "LoadState") == "loaded"

    def main_pid(self, unit):
        pid = self.show(unit, "MainPID")
        return int(pid) if pid.isdigit() and int(pid) > 0 else None

    def queue_restart(self, unit, daemon_reload=False, kill=False):
        """Queue ``unit``'s restart and return; the health wait decides whether it worked."""
        if daemon_reload:
            self.systemctl("daemon-reload")
        if kill:
            self.systemctl("kill", "--signal=SIGKILL", unit)
        # A crash-looping unit (an operator's rerun to fix it) may have hit its start limit,
        # and systemd would refuse this start too.
        self.systemctl("reset-failed", unit)
        self.systemctl("restart", "--no-block", unit)

    def wait_new(self, name, current_pid, healthy, timeout, replaced_pid=None, tick=None, passes=1, interval=1.0):
        """``(ok, detail)``: wait until a process other than ``replaced_pid`` answers
        ``healthy(pid)`` ``passes`` times in a row (2 s apart); ``tick()`` runs every round."""
        deadline = self.clock() + timeout
        detail, streak = "not checked", 0
        while self.clock() < deadline:
            draining = bool(tick and tick())
            pid = current_pid()
            if pid is None or pid == replaced_pid:
                detail, streak = f"{name} has not been restarted yet", 0
            else:
                ok, detail = healthy(pid)
                streak = streak + 1 if ok else 0
                if streak >= passes:
                    return True, detail
            self.sleep(2 if streak else (DRAIN_POLL_SECONDS if draining else interval))
        return False, detail


class Target:
    """One component as the engine restarts it.

    ``unit`` is its systemd unit, or None when something else restarts it on a file
    change (the kubelet, for a kubeadm static pod); ``pid()`` finds its running
    process; ``healthy(pid)`` is one probe, ``(ok, detail)``.
    """

    def __init__(self, name, unit, pid, healthy, daemon_reload=True, kill=None, passes=1, interval=1.0):
        self.name, self.unit, self.pid, self.healthy = name, unit, pid, healthy
        self.daemon_reload, self.kill = daemon_reload, kill or (lambda: False)
        self.passes, self.interval = passes, interval

    def restart(self, engine):
        if self.unit:
            engine.queue_restart(self.unit, daemon_reload=self.daemon_reload, kill=self.kill())

    def wait(self, engine, healthy, timeout, replaced_pid=None, tick=None):
        return engine.wait_new(
            self.name, self.pid, healthy, timeout, replaced_pid, tick, passes=self.passes, interval=self.interval
        )


def replace(engine, target, files, rollback, state_dir, timeout, restart=True, **options):
    """Write ``files`` (``{path: (text or None, mode)}``), restart ``target`` and prove it healthy.

    ``rollback`` is what ``state.remember`` returned before the caller's own
    preparations. Options: ``dir_mode`` of created directories, ``after_write()``,
    ``drain`` (a DrainBound), ``rollback_healthy()`` (a factory, called once the
    previous files are back, of the probe the restored process must pass),
    ``rollback_timeout``, ``keep`` (paths not rolled back), ``rollback_new_pid``
    (the restored process must be a new one) and ``always_wait`` (prove health
    even when nothing is restarted). Returns a dict: ``ok``, ``detail``,
    ``restarted``, ``seconds`` and, on failure, ``restored_ok`` and ``restored_detail``.
    Nothing is raised for an unhealthy component: the caller names its variable.
    """
    dir_mode = options.get("dir_mode", 0o700)
    start = engine.clock()
    nodefiles.write_all(files, dir_mode)
    if options.get("after_write"):
        options["after_write"]()
    replaced = None
    if restart:
        replaced = target.pid()
        target.restart(engine)
    ok, detail = True, ""
    if restart or options.get("always_wait"):
        ok, detail = target.wait(engine, target.healthy, timeout, replaced, options.get("drain"))
    outcome = {"ok": ok, "detail": detail, "restarted": restart, "seconds": round(engine.clock() - start, 1)}
    if not ok:
        failed_pid = target.pid() if options.get("rollback_new_pid") else None
        keep = set(options.get("keep") or ())
        nodefiles.write_all({p: v for p, v in rollback.items() if p not in keep}, dir_mode)
        target.restart(engine)
        healthy = options["rollback_healthy"]() if options.get("rollback_healthy") else target.healthy
        back, back_detail = target.wait(engine, healthy, options.get("rollback_timeout") or timeout, failed_pid)
        outcome.update(restored_ok=back, restored_detail=back_detail)
    state.forget(state_dir, target.name)
    return outcome
