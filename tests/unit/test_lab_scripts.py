"""The lab's entry points fail early and clearly, before touching anything."""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

LAB = Path(__file__).resolve().parents[2] / "lab"
LAB_UP = LAB / "bin" / "lab-up"


def run(argv, **env):
    return subprocess.run(argv, capture_output=True, text=True, env={**os.environ, **env}, timeout=60, check=False)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop to another user")
def test_refuses_to_run_without_root():
    # The checkout may sit in a directory other users cannot enter (a clone
    # under /root, or mktemp -d): run a world-readable copy of the script.
    copy = Path(tempfile.mkdtemp(prefix="kubeguard-lab-"))
    try:
        for part in ("bin/lab-up", "lib/common.sh"):
            (copy / part).parent.mkdir(exist_ok=True)
            shutil.copy(LAB / part, copy / part)
        for path in (copy, copy / "bin", copy / "lib", copy / "bin/lab-up"):
            path.chmod(0o755)
        result = run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", str(copy / "bin/lab-up")])
    finally:
        shutil.rmtree(copy)
    assert result.returncode != 0
    assert "must run as root" in result.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="the root check comes first")
def test_rejects_an_unknown_layout_naming_the_variable():
    result = run([str(LAB_UP)], LAYOUT="kind")
    assert result.returncode != 0
    assert "LAYOUT must be hardway, kubeadm or kubeadm-ha, not 'kind'" in result.stderr


def lab_env(lab_id, command):
    """Run `command` in bash after sourcing lab/lib/common.sh with LAB_ID set."""
    script = f'source "{LAB}/lib/common.sh"; {command}'
    return run(["bash", "-c", script], LAB_ID=lab_id, LAB_API_PORT="", LAYOUT="")


@pytest.mark.parametrize(
    ("lab_id", "first_node", "names"),
    [
        ("0", "cp1 bookworm 10.123.0.10 control_plane,etcd 22221", "kg- kubeguard-lab io.kubeguard.lab=1 16443"),
        (
            "2",
            "cp1 bookworm 10.125.0.10 control_plane,etcd 22421",
            "kg2- kubeguard-lab2 io.kubeguard.lab=instance-2 16643",
        ),
    ],
)
def test_lab_id_shifts_names_addresses_and_ports(lab_id, first_node, names):
    env = lab_env(lab_id, 'lab_nodes; echo "$LAB_CONTAINER_PREFIX $LAB_NETWORK $LAB_LABEL $LAB_API_PORT"')
    assert env.returncode == 0, env.stderr
    lines = env.stdout.splitlines()
    assert lines[0] == first_node
    assert [line.split()[0] for line in lines[:3]] == ["cp1", "worker1", "worker2"]
    assert lines[-1] == names


def test_rejects_a_bad_lab_id_naming_the_variable():
    result = lab_env("x1", "true")
    assert result.returncode != 0
    assert "LAB_ID must be a number from 0 to 99, not 'x1'" in result.stderr


def test_the_kubeadm_ha_layout_has_three_control_planes_and_two_workers():
    script = f'source "{LAB}/lib/common.sh"; lab_nodes'
    env = run(["bash", "-c", script], LAB_ID="23", LAB_API_PORT="", LAYOUT="kubeadm-ha")
    assert env.returncode == 0, env.stderr
    nodes = [line.split() for line in env.stdout.splitlines()]
    assert [n[0] for n in nodes] == ["cp1", "cp2", "cp3", "worker1", "worker2"]
    assert [n[3] for n in nodes] == ["control_plane,etcd"] * 3 + ["workers"] * 2
    # Debian 12 and 13 among the control planes; every address and SSH port shifted and distinct.
    assert {n[1] for n in nodes[:3]} == {"bookworm", "trixie"}
    assert all(n[2].startswith("10.146.0.") for n in nodes)
    assert len({n[2] for n in nodes}) == len({n[4] for n in nodes}) == 5
    assert all(2300 + 22221 <= int(n[4]) <= 2300 + 22225 for n in nodes)
