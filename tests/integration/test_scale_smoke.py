"""The scale benchmark's code path on five nodes (bench/scale.py runs it on 3, 10 and 30): a fresh fleet of
sshd-only nodes takes ssh_hardening.yml and node_os.yml, the rerun changes nothing, and every node is hardened
and still takes the operator's key."""

import importlib.util
import subprocess

import pytest
from kubeguard_test.fleet import REPO, Fleet

FORKS = 5
PLAYBOOKS = ("ssh_hardening.yml", "node_os.yml")


def _bench():
    spec = importlib.util.spec_from_file_location("scale_bench", REPO / "bench" / "scale.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    # Its own names, network and ports: the benchmark's fleet (kgscale-*) may run beside it. The packages concern is
    # proven on the lab (test_node_os.py); here its cost is Debian's (aide-common's ucf run alone takes about 19 s of
    # CPU per node), five times over, in a run that measures our code path.
    nodes = Fleet(
        name="smoke",
        size=5,
        state=tmp_path_factory.mktemp("fleet"),
        subnet="10.241.0.0/24",
        port_base=34100,
        inventory_vars={"node_os_packages_enabled": False},
    )
    yield nodes
    nodes.down()


@pytest.fixture(scope="module")
def measured(fleet):
    return _bench().measure(fleet, FORKS, PLAYBOOKS)


def test_every_playbook_converges_and_its_rerun_changes_nothing(measured):
    for name in PLAYBOOKS:
        assert measured[name]["first"][1] > 0, name  # the fresh nodes needed hardening
        assert measured[name]["rerun"][1] == 0, name


def test_every_node_is_hardened_and_takes_the_operators_key(fleet, measured):
    for _name, _container, _ip, port in fleet.nodes():
        login = fleet.ssh(port, "sudo", "sshd", "-T")
        assert login.returncode == 0, login.stderr
        effective = login.stdout.lower().splitlines()
        assert "passwordauthentication no" in effective and "permitrootlogin no" in effective
        umask = fleet.ssh(port, "grep", "-E", "^UMASK", "/etc/login.defs")
        assert umask.stdout.split() == ["UMASK", "027"], umask.stdout


def test_a_password_login_is_refused(fleet, measured):
    port = fleet.nodes()[0][3]
    refused = subprocess.run(
        ["ssh", "-p", str(port), "-o", "PreferredAuthentications=password", "-o", "PubkeyAuthentication=no",
         "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
         "operator@127.0.0.1", "true"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert refused.returncode == 255 and "Permission denied" in refused.stderr, refused.stderr
