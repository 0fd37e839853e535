"""Every tag of the role runs alone on the converged nodes, and a change made under one tag sticks.

The play is role.yml (a static role, so --tags reaches its tasks); the tag
list is read from the role's tasks/main.yml, so a new concern is covered too.
"""

from __future__ import annotations

import pathlib

import pytest
import yaml
from kubeguard_test import molecule, sshcheck

ROLE = pathlib.Path(__file__).resolve().parents[3] / "roles" / "ssh_hardening"
PLAY = str(pathlib.Path(__file__).resolve().parents[1] / "role.yml")
MAIN = yaml.safe_load((ROLE / "tasks" / "main.yml").read_text())
TAGS = sorted({tag for task in MAIN for tag in task.get("tags", [])} - {"always"})
# Files that run for every tag (facts, input checks) are not concerns of their own.
EVERY_TAG = {task.get("ansible.builtin.import_tasks") for task in MAIN if "always" in task.get("tags", [])}


def test_every_concern_has_a_tag():
    assert "ssh_hardening" in TAGS
    for path in (ROLE / "tasks").glob("*.yml"):
        if path.stem not in ("main", "apply") and path.name not in EVERY_TAG:
            assert f"ssh_hardening_{path.stem}" in TAGS, path.name


@pytest.mark.parametrize("tag", TAGS)
def test_tag_alone_succeeds_and_changes_nothing(tag):
    proc, recap = molecule.playbook(PLAY, "--tags", tag)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert recap, proc.stdout[-3000:]
    for host, counts in recap.items():
        assert counts["failed"] == counts["unreachable"] == counts["changed"] == 0, (host, counts)


def test_config_tag_alone_applies_and_disarms(host):
    """A real change under --tags ssh_hardening_config alone is reloaded, proved and kept."""
    name = host.ansible.get_variables()["inventory_hostname"]
    change = ("--tags", "ssh_hardening_config", "--limit", name)
    since = host.check_output("date +%s")
    try:
        proc, recap = molecule.playbook(PLAY, *change, "-e", "ssh_hardening_login_grace_time=25")
        assert proc.returncode == 0, proc.stdout[-3000:]
        assert recap[name]["changed"] >= 2, recap
        # The handler ran under the single tag: reload, fresh connection, disarm.
        for task in ("Prove access with a fresh SSH connection", "Disarm the rollback"):
            assert f"{task} as" in proc.stdout or task in proc.stdout, proc.stdout[-3000:]
        assert host.run("systemctl is-active kubeguard-ssh-rollback.timer").stdout.strip() != "active"
        sshcheck.assert_rollback_disarmed(host, since)
        assert "LoginGraceTime 25" in host.file("/etc/ssh/sshd_config").content_string
        assert "restored" not in host.run("cat /var/lib/kubeguard/ssh_hardening/rollback.log").stdout
        result = sshcheck.until(lambda: sshcheck.ssh_key(sshcheck.port_of(host), "operator", "true"))
        assert result.returncode == 0, result.stderr
    finally:
        proc, _ = molecule.playbook(PLAY, *change)
        assert proc.returncode == 0, proc.stdout[-3000:]
    assert "LoginGraceTime 30" in host.file("/etc/ssh/sshd_config").content_string
