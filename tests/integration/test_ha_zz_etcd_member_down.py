"""An etcd member stopped in the middle of a rolling etcd restart on the
kubeadm-ha lab (that test_ha_site.py hardened): the roll stops before the
next member, whose restart would take the cluster below quorum, with that
member untouched; the API keeps serving and writing through the load
balancer; once the member is back a rerun converges. The member is frozen
(SIGSTOP): alive but silent, as a hung etcd is, and the kubelet does not
replace it at once.

And a play killed (its whole process group, SIGKILL) while cp2's etcd member
restarts in the roll converges on rerun: under bench/availability.py's writer
and /readyz poller through the load balancer, across the kill and the rerun, no
acknowledged write is lost and no poll gets an answer but 200 (client timeouts
of the loaded machine are counted, not asserted); the three members end healthy
with the change, and HAProxy has every server back in rotation.
Marked ha_upgrade: make test-ha-upgrade."""

import json
import subprocess
import sys
import tempfile

import pytest
from conftest import REPO, ansible_playbook, playbook_command
from kubeguard_test.kill_mid_restart import MARK
from kubeguard_test.kube import Kubectl
from kubeguard_test.waiting import wait_for
from test_ha_site import API_PORT
from test_ha_zz_kubeadm_ops import ETCD_TLS, container, on
from test_ha_zz_lb_heal import UP_READY, lb_state

pytestmark = [pytest.mark.lab, pytest.mark.ha, pytest.mark.ha_upgrade]

CP = ("cp1", "cp2", "cp3")
QUORUM_KEY = "/kubeguard-test/written-while-cp3-is-down"


def etcd_process(host):
    """(pid, argv) of the etcd running on host, or (None, [])."""
    run = on(host, "pgrep", "-a", "-x", "etcd")
    words = run.stdout.split() if run.returncode == 0 else []
    return (words[0], words[1:]) if words else (None, [])


def api_write(kube):
    run = kube.kubectl(
        "-n", "default", "create", "configmap", "written-while-cp3-is-down", "--from-literal=k=v", check=False
    )
    return run.returncode == 0 or run.stderr.strip()


def cluster_healthy():
    run = on("cp1", "etcdctl", "--endpoints=https://127.0.0.1:2379", *ETCD_TLS, "endpoint", "health", "--cluster")
    return run.returncode == 0 or run.stdout + run.stderr


def heartbeat_change(values):
    """(flag, ansible-playbook arguments) that restart every etcd member: a heartbeat interval no member
    runs with yet (an extra flag stays once set, so each run picks anew)."""
    running = " ".join(etcd_process("cp1")[1])
    value = next(v for v in values if f"--heartbeat-interval={v}" not in running)
    change = (
        "--tags",
        "control_plane_etcd",
        "-e",
        json.dumps({"control_plane_etcd_extra_flags": {"heartbeat-interval": value}}),
    )
    return f"--heartbeat-interval={value}", change


def test_a_member_stopped_mid_roll_stops_it_and_a_rerun_converges(lab, lab_binaries):
    kube = Kubectl(lab_binaries, lab.kubeconfig)
    assert cluster_healthy() is True
    flag, change = heartbeat_change(("150", "160", "170"))
    before = {host: etcd_process(host)[0] for host in CP}
    argv, env = playbook_command(lab.inventory, "control_plane.yml", *change)
    with tempfile.TemporaryFile("w+") as out:
        play = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, text=True, env=env, cwd=REPO)
        try:
            # cp1's member restarted with the change: the roll is under way; freeze cp3's.
            wait_for(
                lambda: etcd_process("cp1")[0] not in (None, before["cp1"]) or play.poll() is not None,
                600,
                "cp1's restart",
            )
            assert play.poll() is None, "the play ended before the roll reached cp2"
            assert on("cp3", "pkill", "-STOP", "-x", "etcd").returncode == 0
            rc = play.wait(timeout=900)
            out.seek(0)
            log = out.read()
            assert rc != 0, log[-3000:]
            assert "(down: cp3)" in log and "keep the quorum" in log, log[-3000:]
            assert etcd_process("cp2")[0] == before["cp2"]  # the roll stopped before cp2's restart
            assert flag in etcd_process("cp1")[1] and flag not in etcd_process("cp2")[1]
            # cp1 and cp2 hold the quorum: a write to etcd commits (raft needs a majority)...
            put = on("cp1", "etcdctl", "--endpoints=https://127.0.0.1:2379", *ETCD_TLS, "put", QUORUM_KEY, "v")
            assert put.returncode == 0 and put.stdout.strip() == "OK", put.stdout + put.stderr
            # ...and the API writes through the load balancer. An apiserver whose etcd client still
            # dials the frozen member fails a request until its keepalive gives that member up
            # ("keepalive ping failed to receive ACK"): a hung member, unlike a dead one, accepts
            # connections. So the write is retried for up to a minute.
            wait_for(lambda: api_write(kube), 60, "an API write through the load balancer")
        finally:
            if play.poll() is None:
                play.kill()
            on("cp3", "pkill", "-CONT", "-x", "etcd")
    wait_for(cluster_healthy, 300, "all three etcd members healthy again")
    assert kube.get("-n", "default", "configmap", "written-while-cp3-is-down")["data"] == {"k": "v"}
    run, _ = ansible_playbook(lab.inventory, "control_plane.yml", *change, timeout=1500)
    assert run.returncode == 0, run.stdout[-3000:]
    assert all(flag in etcd_process(host)[1] for host in CP)
    kube.kubectl("-n", "default", "delete", "configmap", "written-while-cp3-is-down")
    assert on("cp1", "etcdctl", "--endpoints=https://127.0.0.1:2379", *ETCD_TLS, "del", QUORUM_KEY).returncode == 0


def test_a_play_killed_while_a_member_restarts_converges_on_rerun_and_loses_no_write(lab, lab_binaries):
    assert cluster_healthy() is True
    assert lb_state(lab) == {"cp1": UP_READY, "cp2": UP_READY, "cp3": UP_READY}
    flag, change = heartbeat_change(("180", "190", "200"))
    bench = [sys.executable, str(REPO / "bench" / "availability.py"), "--json"]
    bench += [f"--url=https://127.0.0.1:{API_PORT}/readyz"]
    bench += [f"--kubeconfig={lab.kubeconfig}", "--write-interval=0.1", "--max-seconds=2400", "--"]
    argv, env = playbook_command(lab.inventory, "control_plane.yml", *change)
    # cp1's member restarts first in the roll, cp2's second: the kill lands in the middle of the roll.
    killer = [sys.executable, str(REPO / "tests" / "lib" / "kubeguard_test" / "kill_mid_restart.py")]
    killer += [container("cp2"), "etcd", "900", "--"]
    run = subprocess.run(bench + killer + argv, capture_output=True, text=True, env=env, cwd=REPO, check=False,
                         timeout=2700)  # fmt: skip
    (lab.state / "etcd_kill_mid_restart.log").write_text(run.stdout + run.stderr)
    assert run.returncode == 0, (run.stdout[-3000:], run.stderr[-3000:])
    killed = json.loads(next(line for line in run.stdout.splitlines() if line.startswith(MARK)).split(" ", 1)[1])
    assert killed["killed_while_running"] and killed["came_back"], killed
    assert killed["pid_back"] != killed["pid_before"], killed
    figures = json.loads(run.stdout.strip().splitlines()[-1])
    writes = figures["writes"]
    assert writes["acknowledged"] > 0 and writes["lost"] == [], writes
    assert figures["requests"] > 0 and set(figures["failure_kinds"]) <= {"timeout"}, figures
    print(
        f"\nkilled in cp2's etcd restart, then rerun: /readyz {figures['requests']} polls, "
        f"failures {figures['failure_kinds']}, longest gap {figures['longest_gap_seconds']} s; "
        f"writes {writes['acknowledged']} acknowledged, {len(writes['lost'])} lost"
    )
    wait_for(cluster_healthy, 300, "all three etcd members healthy")
    assert all(flag in etcd_process(host)[1] for host in CP)
    assert lb_state(lab) == {"cp1": UP_READY, "cp2": UP_READY, "cp3": UP_READY}
