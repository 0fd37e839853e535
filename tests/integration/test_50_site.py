"""playbooks/site.yml against the lab, end to end: it converges, a second
run changes nothing, and real clients see the result. The second run goes
through every role's check (the fast rerun off); the fast rerun itself is
test_52_fast_rerun.py's."""

import json
import subprocess

import pytest
from conftest import ansible_playbook
from kubeguard_test.waiting import wait_for

pytestmark = pytest.mark.lab


def run_site(lab, *extra):
    run, recap = ansible_playbook(lab.inventory, "site.yml", *extra)
    assert run.returncode == 0, (run.stdout[-3000:], run.stderr[-3000:])
    return recap


def starts(lab):
    """How often systemd has started etcd and kube-apiserver on each control-plane node (journal)."""
    counts = {}
    for host in lab.groups["control_plane"]:
        for unit in ("etcd", "kube-apiserver"):
            log = lab.podman_exec(host, "journalctl", "-u", unit, "-o", "cat", "--no-pager").stdout
            counts[host, unit] = sum(1 for line in log.splitlines() if line.startswith("Started "))
    return counts


@pytest.fixture(scope="module")
def hardened(lab):
    first = run_site(lab)
    after_first = starts(lab)
    # Every role checks again: a fast rerun would skip them (docs/fast-rerun.md).
    second = run_site(lab, "-e", "kubeguard_fast_rerun_enabled=false")
    return lab, first, second, (after_first, starts(lab))


def test_site_converges_every_node(hardened):
    lab, first, _, _ = hardened
    assert set(first) == set(lab.hosts)
    assert all(stats["failed"] == 0 and stats["unreachable"] == 0 for stats in first.values())
    assert all(stats["changed"] > 0 for stats in first.values())


def test_second_run_changes_nothing(hardened):
    _, _, second, _ = hardened
    assert {host: stats["changed"] for host, stats in second.items()} == dict.fromkeys(second, 0)


def test_second_run_restarts_neither_etcd_nor_the_apiserver(hardened):
    after_first, after_second = hardened[3]
    assert after_second == after_first


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


def test_the_cluster_keeps_running(hardened, lab_binaries):
    """The hardening moved etcd, the apiserver and every kubeconfig onto the
    cluster PKI; the kubelets, kube-proxy, kube-router and CoreDNS must not
    notice: every node Ready, every kube-system pod Running."""
    lab = hardened[0]

    def get(*args):
        run = subprocess.run(
            [str(lab_binaries / "kubectl"), f"--kubeconfig={lab.kubeconfig}", "--request-timeout=15s", "get", *args],
            capture_output=True,
            text=True,
            check=False,
        )
        return json.loads(run.stdout) if run.returncode == 0 else {"error": run.stderr}

    def ready_nodes():
        nodes = get("nodes", "-o", "json").get("items", [])
        ready = {
            n["metadata"]["name"]
            for n in nodes
            if any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"]["conditions"])
        }
        return ready == set(lab.hosts) or sorted(ready)

    def running_system_pods():
        pods = get("pods", "-n", "kube-system", "-o", "json").get("items", [])
        phases = {p["metadata"]["name"]: p["status"].get("phase") for p in pods}
        return (bool(phases) and set(phases.values()) == {"Running"}) or phases

    wait_for(ready_nodes, 120, "every node Ready after site.yml")
    wait_for(running_system_pods, 120, "kube-system pods Running after site.yml")
