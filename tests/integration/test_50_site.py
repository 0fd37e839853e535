"""playbooks/site.yml against the lab, end to end: it converges, a second
run changes nothing, and real clients see the result."""

import pytest
from conftest import ansible_playbook

pytestmark = pytest.mark.lab


def run_site(lab):
    run, recap = ansible_playbook(lab.inventory, "site.yml")
    assert run.returncode == 0, (run.stdout[-3000:], run.stderr[-3000:])
    return recap


@pytest.fixture(scope="module")
def hardened(lab):
    first = run_site(lab)
    second = run_site(lab)
    return lab, first, second


def test_site_converges_every_node(hardened):
    lab, first, _ = hardened
    assert set(first) == set(lab.hosts)
    assert all(stats["failed"] == 0 and stats["unreachable"] == 0 for stats in first.values())
    assert all(stats["changed"] > 0 for stats in first.values())


def test_second_run_changes_nothing(hardened):
    _, _, second = hardened
    assert {host: stats["changed"] for host, stats in second.items()} == dict.fromkeys(second, 0)


def test_operator_key_login_still_works(hardened):
    lab = hardened[0]
    for host in lab.hosts:
        result = lab.ssh(host, "sudo -n id -u")
        assert (result.returncode, result.stdout.strip()) == (0, "0"), (host, result.stderr)


@pytest.mark.parametrize("user,password", [("operator", "operator"), ("root", "root")])
def test_password_login_is_refused(hardened, user, password):
    lab = hardened[0]
    for host in lab.hosts:
        result = lab.ssh(host, "true", user=user, password=password)
        assert result.returncode != 0, host
        assert "Permission denied" in result.stderr, (host, result.stderr)


def test_root_key_login_is_refused(hardened):
    lab = hardened[0]
    for host in lab.hosts:
        result = lab.ssh(host, "true", user="root")
        assert result.returncode != 0, host
        assert "Permission denied" in result.stderr, (host, result.stderr)
