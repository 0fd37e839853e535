"""An etcd member stopped in the middle of a rolling etcd restart on the
kubeadm-ha lab (that test_ha_site.py hardened): the roll stops before the
next member, whose restart would take the cluster below quorum, with that
member untouched; the API keeps serving and writing through the load
balancer; once the member is back a rerun converges. The member is frozen
(SIGSTOP): alive but silent, as a hung etcd is, and the kubelet does not
replace it at once. Marked ha_upgrade: make test-ha-upgrade."""

import json
import os
import subprocess
import tempfile

import pytest
from conftest import CONTAINERS_CONF, REPO, ansible_playbook
from kubeguard_test.kube import Kubectl
from kubeguard_test.waiting import wait_for
from test_ha_zz_kubeadm_ops import ETCD_TLS, on

pytestmark = [pytest.mark.lab, pytest.mark.ha, pytest.mark.ha_upgrade]

FLAG = "--heartbeat-interval=150"
CHANGE = (
    "--tags",
    "control_plane_etcd",
    "-e",
    json.dumps({"control_plane_etcd_extra_flags": {"heartbeat-interval": "150"}}),
)
BACK = ("--tags", "control_plane_etcd")


def etcd_process(host):
    """(pid, argv) of the etcd running on host, or (None, [])."""
    run = on(host, "pgrep", "-a", "-x", "etcd")
    words = run.stdout.split() if run.returncode == 0 else []
    return (words[0], words[1:]) if words else (None, [])


def cluster_healthy():
    run = on("cp1", "etcdctl", "--endpoints=https://127.0.0.1:2379", *ETCD_TLS, "endpoint", "health", "--cluster")
    return run.returncode == 0 or run.stdout + run.stderr


def test_a_member_stopped_mid_roll_stops_it_and_a_rerun_converges(lab, lab_binaries):
    kube = Kubectl(lab_binaries, lab.kubeconfig)
    assert cluster_healthy() is True
    before = {host: etcd_process(host)[0] for host in ("cp1", "cp2", "cp3")}
    env = dict(
        os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_FORCE_COLOR="0", CONTAINERS_CONF=CONTAINERS_CONF
    )
    argv = [
        str(REPO / ".venv/bin/ansible-playbook"),
        "-i",
        str(lab.inventory),
        str(REPO / "playbooks/control_plane.yml"),
    ]
    with tempfile.TemporaryFile("w+") as out:
        play = subprocess.Popen([*argv, *CHANGE], stdout=out, stderr=subprocess.STDOUT, text=True, env=env, cwd=REPO)
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
            assert FLAG in etcd_process("cp1")[1] and FLAG not in etcd_process("cp2")[1]
            # cp1 and cp2 hold the quorum: the API still writes through the load balancer.
            kube.kubectl("-n", "default", "create", "configmap", "written-while-cp3-is-down", "--from-literal=k=v")
        finally:
            if play.poll() is None:
                play.kill()
            on("cp3", "pkill", "-CONT", "-x", "etcd")
    wait_for(cluster_healthy, 300, "all three etcd members healthy again")
    assert kube.get("-n", "default", "configmap", "written-while-cp3-is-down")["data"] == {"k": "v"}
    run, _ = ansible_playbook(lab.inventory, "control_plane.yml", *CHANGE, timeout=1500)
    assert run.returncode == 0, run.stdout[-3000:]
    assert all(FLAG in etcd_process(host)[1] for host in ("cp1", "cp2", "cp3"))
    # Back to the inventory's etcd flags, so the tests after this one see the lab as site.yml left it.
    run, _ = ansible_playbook(lab.inventory, "control_plane.yml", *BACK, timeout=1500)
    assert run.returncode == 0, run.stdout[-3000:]
    assert not any(FLAG in etcd_process(host)[1] for host in ("cp1", "cp2", "cp3"))
    kube.kubectl("-n", "default", "delete", "configmap", "written-while-cp3-is-down")
