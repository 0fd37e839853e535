"""site.yml's fast rerun on the lab (docs/fast-rerun.md), after test_50_site: a rerun with nothing to do skips
every role (check mode too) and changes nothing; drift made behind the roles' back - the kubelet config's mode on
the control plane, a live sysctl and an sshd_config edit on one worker, a deleted firewall table on the other, a
deleted NetworkPolicy, a changed variable - is each named, sends the run down the full path, and is repaired
there; the run after that is fast again. None of the repairs restarts the apiserver (the tests after this file
create namespaces and pods right away)."""

import shlex

import pytest
from conftest import ansible_playbook
from kubeguard_test.kube import Kubectl

pytestmark = pytest.mark.lab

CONVERGED = "Nothing moved since the last converged run"
# The same value as the default, given as an extra var: an input of the run all the same.
EXTRA = ("-e", "kubeguard_fast_rerun_max_age_hours=23")
ROLES = ("ssh_hardening", "node_os", "cluster_pki", "control_plane", "kubelet", "rbac_baseline", "network_policy")
KUBELET_CONFIG = "/var/lib/kubelet/config.yaml"
SSHD_CONFIG = "/etc/ssh/sshd_config"
DRIFT_LINE = "# edited by hand"
SYSCTL = "net.ipv4.conf.all.send_redirects"
TABLE = ("inet", "kubeguard_node_os")


def site(lab, *extra):
    run, recap = ansible_playbook(lab.inventory, "site.yml", *extra)
    assert run.returncode == 0, (run.stdout[-4000:], run.stderr[-3000:])
    return run, recap


def roles_run(stdout):
    return [role for role in ROLES if f"TASK [kubeguard.hardening.{role} :" in stdout]


@pytest.fixture(scope="module")
def nodes(lab):
    control_plane, *_ = lab.groups["control_plane"]
    workers = lab.groups["workers"]
    assert len(workers) >= 2, "the drift needs two workers"
    return control_plane, workers[0], workers[1]


@pytest.fixture(scope="module")
def drifted(lab, lab_binaries, nodes):
    """Converge and record (two runs at most), drift, then run site.yml twice with the extra var."""
    kubectl = Kubectl(lab_binaries, lab.kubeconfig)
    run, _ = site(lab)
    if CONVERGED not in run.stdout:
        site(lab)
    fast, fast_recap = site(lab)
    check, check_recap = site(lab, "--check")
    control_plane, sysctl_worker, firewall_worker = nodes
    assert lab.podman_exec(control_plane, "chmod", "0644", KUBELET_CONFIG).returncode == 0
    assert lab.podman_exec(sysctl_worker, "sysctl", "-w", f"{SYSCTL}=1").returncode == 0
    append = f"echo {shlex.quote(DRIFT_LINE)} >> {SSHD_CONFIG}"
    assert lab.podman_exec(sysctl_worker, "sh", "-c", append).returncode == 0
    assert lab.podman_exec(firewall_worker, "nft", "delete", "table", *TABLE).returncode == 0
    kubectl("-n", "default", "delete", "networkpolicy", "kubeguard-default-deny")
    repair, repair_recap = site(lab, *EXTRA)
    again, again_recap = site(lab, *EXTRA)
    return {
        "kubectl": kubectl,
        "fast": (fast, fast_recap),
        "check": (check, check_recap),
        "repair": (repair, repair_recap),
        "again": (again, again_recap),
    }


def test_a_rerun_with_nothing_to_do_skips_every_role_and_changes_nothing(drifted, lab):
    for name in ("fast", "check"):
        run, recap = drifted[name]
        assert CONVERGED in run.stdout, (name, run.stdout[-3000:])
        assert roles_run(run.stdout) == [], name
        assert set(recap) == set(lab.hosts) and all(stats["changed"] == 0 for stats in recap.values()), (name, recap)
        # The audit still runs and reports.
        assert "TASK [Write report.json, report.xml, report.html and summary.txt on the controller]" in run.stdout


def test_every_drift_is_named(drifted, nodes):
    run, _ = drifted["repair"]
    control_plane, sysctl_worker, firewall_worker = nodes
    for reason in (
        "the kubeguard variables changed",
        f"{control_plane}: path:{KUBELET_CONFIG}",
        f"{sysctl_worker}: sysctls, tree:/etc",
        f"{firewall_worker}: nft:{' '.join(TABLE)}",
        "API: api:networkpolicies",
    ):
        assert reason in run.stdout, (reason, run.stdout[:6000])
    assert CONVERGED not in run.stdout
    assert roles_run(run.stdout) == list(ROLES)


def test_the_full_run_repairs_every_drift(drifted, lab, nodes):
    _, recap = drifted["repair"]
    control_plane, sysctl_worker, firewall_worker = nodes
    assert all(recap[host]["changed"] > 0 for host in nodes), recap
    assert lab.podman_exec(control_plane, "stat", "-c", "%a", KUBELET_CONFIG).stdout.strip() == "600"
    assert lab.podman_exec(sysctl_worker, "sysctl", "-n", SYSCTL).stdout.strip() == "0"
    assert DRIFT_LINE not in lab.podman_exec(sysctl_worker, "cat", SSHD_CONFIG).stdout
    assert lab.podman_exec(firewall_worker, "nft", "list", "table", *TABLE).returncode == 0
    drifted["kubectl"]("-n", "default", "get", "networkpolicy", "kubeguard-default-deny")


def test_the_run_after_the_repair_is_fast_again(drifted, lab):
    run, recap = drifted["again"]
    assert CONVERGED in run.stdout, run.stdout[-3000:]
    assert roles_run(run.stdout) == []
    assert all(stats["changed"] == 0 for stats in recap.values()), recap
