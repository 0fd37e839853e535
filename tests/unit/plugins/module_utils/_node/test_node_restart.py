"""The restart -> health -> rollback engine with systemd and the clock faked
(the lab tests restart real components through it)."""

import json
import os
import socket
import subprocess
import time

import pytest
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError
from ansible_collections.kubeguard.hardening.plugins.module_utils._node import restart, state, system


class FakeSystemd:
    """systemctl of one unit whose restart starts a new pid; ``fail`` makes a call fail."""

    def __init__(self, fail=()):
        self.calls, self.pid, self.now, self.fail = [], 100, 0.0, set(fail)

    def command(self, *argv):
        self.calls.append(argv)
        if argv[0] in self.fail:
            return 1, f"{argv[0]} refused"
        if argv[0] == "restart":
            self.pid += 1
        if argv[:3] == ("show", "-p", "MainPID"):
            return 0, str(self.pid)
        return 0, ""

    def sleep(self, seconds):
        self.now += seconds

    def clock(self):
        return self.now

    def engine(self):
        return restart.Engine(self.command, self.sleep, self.clock)


def test_the_restart_is_queued_after_reset_failed():
    fake = FakeSystemd()
    fake.engine().queue_restart("x.service", daemon_reload=True, kill=True)
    assert fake.calls == [
        ("daemon-reload",),
        ("kill", "--signal=SIGKILL", "x.service"),
        ("reset-failed", "x.service"),
        ("restart", "--no-block", "x.service"),
    ]
    with pytest.raises(KubeguardError, match=r"systemctl restart --no-block x\.service failed: restart refused"):
        FakeSystemd(fail=["restart"]).engine().queue_restart("x.service")


def test_health_counts_only_on_a_new_process():
    fake = FakeSystemd()
    engine = fake.engine()
    probed = []

    def healthy(pid):
        probed.append(pid)
        return True, "ok"

    # The old pid answering proves nothing: the wait times out without probing it.
    ok, detail = engine.wait_new("x", lambda: 100, healthy, 5, replaced_pid=100)
    assert (ok, detail, probed) == (False, "x has not been restarted yet", [])
    started = fake.now
    ok, _ = engine.wait_new("x", lambda: 101, healthy, 5, replaced_pid=100, passes=2)
    assert ok and probed == [101, 101] and fake.now - started == 2  # twice, 2 s apart


def test_replace_rolls_back_the_files_and_restarts_when_unhealthy(tmp_path):
    fake = FakeSystemd()
    conf = tmp_path / "etc" / "x.conf"
    conf.parent.mkdir()
    conf.write_text("old\n")
    os.chmod(conf, 0o600)
    state_dir = str(tmp_path / "state")
    rollback = state.remember(state_dir, "x", {str(conf): ("old\n", 0o600)})
    assert json.loads((tmp_path / "state" / "x.rollback.json").read_text()) == {str(conf): ["old\n", 0o600]}
    target = restart.Target(
        "x", "x.service", lambda: fake.pid, lambda pid: (conf.read_text() == "old\n", f"pid {pid} unhealthy")
    )
    new = str(tmp_path / "etc" / "new.conf")
    outcome = restart.replace(
        fake.engine(), target, {str(conf): ("new\n", 0o600), new: ("added\n", 0o644)},
        {**rollback, new: (None, 0o644)}, state_dir, 10, rollback_new_pid=True,
    )  # fmt: skip
    assert not outcome["ok"] and outcome["detail"] == "pid 101 unhealthy"
    assert outcome["restored_ok"] and outcome["restored_detail"] == "pid 102 unhealthy"
    assert conf.read_text() == "old\n" and not os.path.exists(new)  # restored, the added file removed
    assert [c for c in fake.calls if c[0] == "restart"] == [("restart", "--no-block", "x.service")] * 2
    assert state.load(state_dir, "x") is None  # the record is gone once the old files are back


def test_an_interrupted_runs_record_is_the_last_known_good(tmp_path):
    state_dir = str(tmp_path)
    state.remember(state_dir, "x", {"/a": ("first", 0o600)})
    assert state.remember(state_dir, "x", {"/a": ("second", 0o600)}) == {"/a": ("first", 0o600)}
    state.forget(state_dir, "x")
    state.forget(state_dir, "x")  # twice is fine
    assert state.remember(state_dir, "x", {"/a": ("second", 0o600)}) == {"/a": ("second", 0o600)}


def test_a_healthy_replace_needs_no_rollback_and_a_write_only_change_no_restart(tmp_path):
    fake = FakeSystemd()
    target = restart.Target("x", "x.service", lambda: fake.pid, lambda pid: (True, "ok"))
    path = str(tmp_path / "d" / "f")
    out = restart.replace(fake.engine(), target, {path: ("v", 0o640)}, {path: (None, 0o640)}, str(tmp_path), 5)
    assert out["ok"] and out["restarted"] and "restored_ok" not in out
    assert oct(os.stat(path).st_mode & 0o777) == "0o640"
    fake.calls.clear()
    out = restart.replace(fake.engine(), target, {path: ("w", 0o640)}, {}, str(tmp_path), 5, restart=False)
    assert out["ok"] and not out["restarted"] and fake.calls == []


def test_drain_bound_only_for_an_apiserver_that_does_not_bound_itself():
    assert restart.DrainBound.for_apiserver(None) is None
    bounded = ["kube-apiserver", "--shutdown-watch-termination-grace-period=5s"]
    assert restart.DrainBound.for_apiserver({"pid": 1, "argv": bounded}) is None
    # Nothing listens on its port: "stopped listening" could not be told apart.
    assert restart.DrainBound.for_apiserver({"pid": 1, "argv": ["kube-apiserver", "--secure-port=9"]}) is None
    listener = socket.create_server(("127.0.0.1", 0))
    try:
        port = str(listener.getsockname()[1])
        bound = restart.DrainBound.for_apiserver({"pid": 1, "argv": ["kube-apiserver", "--secure-port", port]})
        assert bound.port == int(port) and bound.grace == restart.WATCH_GRACE_SECONDS + restart.IN_FLIGHT_SECONDS
    finally:
        listener.close()


def test_drain_bound_kills_the_old_process_once_it_stopped_listening():
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    proc = subprocess.Popen(["sleep", "60"])
    while system.cmdline(proc.pid) != ["sleep", "60"]:
        time.sleep(0.01)  # still the forked python until exec: not yet the process to bound
    try:
        bound = restart.DrainBound(proc.pid, ["sleep", "60"], port, grace=0)
        assert bound() is False  # still listening: not told to stop
        assert proc.poll() is None and bound.killed_after is None
        listener.close()
        assert bound() is False  # killed at once (grace 0): nothing left to watch
        assert proc.wait(timeout=5) == -9 and bound.killed_after is not None
    finally:
        proc.kill()
        listener.close()


def test_a_draining_old_process_is_looked_at_more_often():
    fake = FakeSystemd()
    looks = iter([True, True, False])
    ok, _ = fake.engine().wait_new(
        "x", lambda: 100, lambda pid: (True, "ok"), 1.6, 100, tick=lambda: next(looks, False)
    )
    assert not ok and fake.now == pytest.approx(0.2 + 0.2 + 1 + 1)


@pytest.mark.parametrize(
    ("argv", "seconds"),
    [
        (["kube-apiserver", "--shutdown-delay-duration=10s"], 10),
        (["kube-apiserver", "--shutdown-delay-duration", "1m5s"], 65),
        (["kube-apiserver", "--secure-port=6443"], 0),
        (["kube-apiserver", "--shutdown-delay-duration=soon"], 0),  # unreadable: no longer wait
        (None, 0),  # the process is gone
    ],
)
def test_shutdown_delay_of_a_running_apiserver(argv, seconds):
    assert restart.shutdown_delay(argv) == seconds
