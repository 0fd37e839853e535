"""After converge, every lockout case left the nodes in their original state; a killed play self-heals."""

from __future__ import annotations

import os
import signal
import subprocess
import time

from kubeguard_test import sshcheck
from kubeguard_test.molecule import inventory

SCENARIO = os.path.join(os.path.dirname(__file__), "..")


def node(name, command):
    """Look at a node through podman, independently of SSH (which may be broken on purpose)."""
    return subprocess.run(["podman", "exec", name, "sh", "-c", command], capture_output=True, text=True).stdout.strip()


def fingerprint(name):
    return node(name, "sha256sum < /etc/ssh/sshd_config; sshd -T | sha256sum")


def test_nodes_kept_their_original_config(host):
    # Every case was refused or rolled back: the image's weak config is still in force.
    assert "passwordauthentication yes" in host.check_output("sudo -n sshd -T")
    assert host.run("systemctl is-active kubeguard-ssh-rollback.timer").stdout.strip() != "active"
    # systemd answered, the timer the cases armed is the one asked about, and none is left armed.
    state, events = sshcheck.rollback_timer(host)
    assert state == "inactive", state
    assert "armed" in events and events[-1] != "armed", events


def test_trixie_is_still_socket_activated(host):
    if "trixie" in host.ansible.get_variables()["inventory_hostname"]:
        assert host.run("systemctl is-enabled ssh.socket").stdout.strip() == "enabled"
        assert host.run("systemctl is-active ssh.socket").stdout.strip() == "active"


def test_operator_still_gets_in(host):
    result = sshcheck.until(lambda: sshcheck.ssh_key(sshcheck.port_of(host), "operator", "id", "-un"))
    assert result.returncode == 0, result.stderr


def test_killed_play_self_heals(tmp_path):
    inv, ports = inventory()
    before = {name: fingerprint(name) for name in ports}
    log = tmp_path / "killed.log"
    with log.open("w") as out:
        play = subprocess.Popen(
            ["ansible-playbook", "-i", inv, os.path.join(SCENARIO, "killed.yml")],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        broken = set()
        deadline = time.monotonic() + 90
        while broken != set(ports) and time.monotonic() < deadline and play.poll() is None:
            for name, port in ports.items():
                armed = node(name, "systemctl is-active kubeguard-ssh-rollback.timer") == "active"
                if armed and sshcheck.ssh_key(port, "operator", "true").returncode != 0:
                    broken.add(name)
            time.sleep(1)
        assert broken == set(ports), (
            f"the bad config never went live on {set(ports) - broken}:\n{log.read_text()[-3000:]}"
        )
    finally:
        if play.poll() is None:
            os.killpg(play.pid, signal.SIGKILL)
        play.wait()
    # The play is dead; only the on-node timer can bring the nodes back.
    for name, port in ports.items():
        result = sshcheck.until(lambda port=port: sshcheck.ssh_key(port, "operator", "id", "-un"), seconds=90)
        assert result.returncode == 0, f"{name}: {result.stderr}"
        assert fingerprint(name) == before[name]
        assert "restored /etc/ssh/sshd_config" in node(name, "cat /var/lib/kubeguard/ssh_hardening/rollback.log")
