"""The CIS audit on the weak lab, before any role ran: it finds the failures we know are there, each with
its evidence, read from the processes, units and files of the lab as built (lab/node/*.sh)."""

import pytest
from kubeguard_test import audit

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def before(lab, tmp_path_factory):
    # Kept beside the lab state: the after-site.yml test compares with it (before/after in the HTML).
    dest = lab.state / "audit-before"
    run, doc = audit.playbook(lab, dest)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    return doc


def _layout(lab):
    host = lab.groups["control_plane"][0]
    return "kubeadm" if lab.podman_exec(host, "test", "-d", "/etc/kubernetes/manifests").returncode == 0 else "hardway"


def test_the_weak_control_plane_fails_with_its_evidence(lab, before):
    if _layout(lab) != "hardway":
        pytest.skip("the weak flags below are those of the hard-way layout")
    cp = audit.rows(before, lab.groups["control_plane"][0])
    expected = {
        "1.2.6": "--authorization-mode=AlwaysAllow",  # AlwaysAllow
        "1.2.1": "--anonymous-auth=true",  # anonymous auth
        "1.2.16": "--audit-log-path not set",  # no audit log
        "1.2.27": "--encryption-provider-config not set",  # no encryption at rest
        "1.2.15": "--profiling=true",
        "2.1": "clients served over plain HTTP: ",  # etcd over plain HTTP
        "2.2": "--client-cert-auth not set (default false)",
        "1.2.23": "--etcd-certfile not set",
    }
    for check_id, evidence in expected.items():
        row = cp[check_id]
        assert row["result"] == "fail", (check_id, row)
        assert any(evidence in line for line in row["evidence"]), (check_id, row["evidence"])
        assert row["remediation"]


def test_every_kubelet_fails_on_anonymous_auth_and_the_read_only_port(lab, before):
    for host in lab.hosts:
        rows = audit.rows(before, host)
        assert rows["4.2.4"]["result"] == "fail"
        assert "readOnlyPort: 10255 (/var/lib/kubelet/config.yaml)" in rows["4.2.4"]["evidence"]
        assert rows["4.2.1"]["result"] == "fail"
        assert "authentication.anonymous.enabled: true (/var/lib/kubelet/config.yaml)" in rows["4.2.1"]["evidence"]
        assert rows["4.2.2"]["result"] == "fail"


def test_workers_report_the_control_plane_checks_as_not_applicable(lab, before):
    worker = audit.rows(before, lab.groups["workers"][0])
    assert worker["1.2.6"]["result"] == "not_applicable"
    assert worker["1.2.6"]["reason"] == "no kube-apiserver on this node"
    assert worker["2.1"]["reason"] == "no etcd on this node"


def test_the_report_names_every_check_on_every_node_and_the_cluster(lab, before):
    ids = {r["id"] for r in before["results"]}
    assert {"1.1.1", "1.2.30", "2.7", "3.2.2", "4.3.1", "5.1.1", "5.6.4"} <= ids
    assert {r["node"] for r in before["results"]} == {*lab.hosts, "cluster"}
    assert before["totals"]["fail"] > 0
