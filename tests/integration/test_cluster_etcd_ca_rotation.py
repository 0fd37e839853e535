"""Rotating the etcd CA (cluster_pki_rotate_ca: [etcd-ca], docs/ca-rotation.md) on the hardened lab, with /readyz
polled every 200 ms and one ConfigMap written every 500 ms through it (bench/availability.py): every write the
API acknowledged must still be there afterwards (0 lost).

One rotation in four runs: check mode writes nothing; a run stopped after trust (etcd and the API server trust
both etcd CAs); a run SIGKILLed as soon as the reissue step began in the store; the rerun (stopped after verify)
and the last run. etcd's health is read with etcdctl on cp1 with the healthcheck client certificate of the
moment (a real TLS handshake both ways), and the API server's own etcd check (/readyz/etcd) after each run."""

import json
import os

import pytest
from conftest import ansible_playbook
from kubeguard_test.kube import Kubectl
from rotation_lab import fingerprints, kill_when, next_round, read, store_tree, under_load

pytestmark = [pytest.mark.lab, pytest.mark.rotation]

NAME = "etcd-ca"
NAMESPACE = "etcd-rotation"
STEPS = ["generate", "trust", "pods", "reissue", "verify", "remove"]
PKI = "/etc/kubernetes/pki/etcd"


def under_writes(lab, extra):
    """Run the playbook while /readyz is polled and a ConfigMap written every 500 ms; (process, figures)."""
    return under_load(lab, extra, "--write-interval=0.5", f"--write-namespace={NAMESPACE}")


def etcd_health(lab):
    """etcdctl endpoint health on cp1 with the node's healthcheck client certificate and CA bundle."""
    tls = f"--cacert={PKI}/ca.crt --cert={PKI}/healthcheck-client.crt --key={PKI}/healthcheck-client.key"
    run = lab.ssh("cp1", f"sudo etcdctl --endpoints=https://127.0.0.1:2379 {tls} endpoint health", timeout=60)
    return run.returncode, (run.stdout + run.stderr).strip()


def node_bundle(lab):
    run = lab.ssh("cp1", f"sudo cat {PKI}/ca.crt")
    assert run.returncode == 0, run.stderr
    return fingerprints(run.stdout.encode())


def served_by(lab):
    """Whether the certificate etcd serves verifies against cp1's etcd CA file (openssl s_client, on cp1)."""
    run = lab.ssh("cp1", f"echo | sudo openssl s_client -connect 127.0.0.1:2379 -CAfile {PKI}/ca.crt 2>/dev/null")
    return "Verify return code: 0 (ok)" in run.stdout


def state(state_file):
    return json.loads(read(state_file))["rotations"][NAME]


@pytest.fixture(scope="module")
def rotation(lab, lab_binaries):
    kubectl = Kubectl(lab_binaries, lab.kubeconfig)
    store = lab.vars["kubeguard_pki_output_dir"]
    state_file, round_ = next_round(store, NAME)
    ca_file = os.path.join(store, "pki", "etcd", "ca.crt")
    asked = {"cluster_pki_rotate_ca": [NAME], "cluster_pki_rotate_ca_round": round_}
    old = fingerprints(read(ca_file))
    assert len(old) == 1, "the lab's store must hold one etcd CA before a rotation"
    kubectl.fresh_namespace(NAMESPACE)

    def readyz_etcd():
        return kubectl("get", "--raw", "/readyz/etcd", check=False).stdout.strip()

    facts = {"round": round_, "old": old[0], "health_before": etcd_health(lab)}
    before = store_tree(store)
    check, _recap = ansible_playbook(lab.inventory, "cluster_pki.yml", "--check", "-e", json.dumps(asked))
    facts["check"], facts["check_store_unchanged"] = check, store_tree(store) == before

    first, facts["trust_figures"] = under_writes(lab, {**asked, "cluster_pki_rotate_ca_stop_after": "trust"})
    assert first.returncode == 0, (first.stdout[-4000:], first.stderr[-3000:])
    facts["after_trust"] = {"state": state(state_file), "node": node_bundle(lab), "health": etcd_health(lab)}
    facts["after_trust"]["readyz"] = readyz_etcd()

    facts["killed_while_running"] = kill_when(lab, asked, lambda: (fingerprints(read(ca_file)) or old)[0] != old[0])
    facts["after_kill_state"] = state(state_file)

    second, facts["reissue_figures"] = under_writes(lab, {**asked, "cluster_pki_rotate_ca_stop_after": "verify"})
    assert second.returncode == 0, (second.stdout[-4000:], second.stderr[-3000:])
    facts["after_verify"] = {"node": node_bundle(lab), "health": etcd_health(lab), "readyz": readyz_etcd()}

    final, facts["remove_figures"] = under_writes(lab, asked)
    assert final.returncode == 0, (final.stdout[-4000:], final.stderr[-3000:])
    facts["final"] = {"state": state(state_file), "node": node_bundle(lab), "health": etcd_health(lab)}
    facts["final"].update(readyz=readyz_etcd(), served=served_by(lab))
    facts["new"] = fingerprints(read(ca_file))
    print("availability + writes, generate + trust:", facts["trust_figures"])
    print("availability + writes, rerun after the kill (pods, reissue, verify):", facts["reissue_figures"])
    print("availability + writes, remove:", facts["remove_figures"])
    yield facts
    kubectl("delete", "namespace", NAMESPACE, "--wait=false", check=False)


def test_etcd_check_mode_lists_the_steps_and_writes_nothing(rotation):
    check = rotation["check"]
    assert check.returncode == 0, check.stdout[-3000:]
    for step in STEPS:
        assert f"- {step}\n" in check.stdout
    assert "rotation/etcd-ca/new.key" in check.stdout
    assert rotation["check_store_unchanged"]


def test_after_trust_etcd_trusts_both_cas_and_is_healthy(rotation):
    assert rotation["health_before"][0] == 0, rotation["health_before"]
    after = rotation["after_trust"]
    assert after["state"]["steps"] == ["generate", "trust"]
    assert after["node"] == [rotation["old"], after["state"]["new"].split(":", 1)[1]]
    assert after["health"][0] == 0, after["health"]
    assert after["readyz"] == "ok"


def test_a_killed_etcd_run_converges_on_rerun(rotation):
    assert rotation["killed_while_running"]
    assert "reissue" not in rotation["after_kill_state"]["steps"]
    assert rotation["final"]["state"]["finished"]
    assert rotation["final"]["state"]["steps"] == STEPS


def test_etcd_serves_and_trusts_the_new_ca_only_after_remove(rotation):
    new = rotation["new"]
    assert len(new) == 1 and new[0] != rotation["old"]
    assert rotation["after_verify"]["node"] == [new[0], rotation["old"]]
    assert rotation["after_verify"]["health"][0] == 0 and rotation["after_verify"]["readyz"] == "ok"
    final = rotation["final"]
    assert final["node"] == new
    assert final["health"][0] == 0, final["health"]  # the reissued healthcheck client, the new CA only
    assert final["readyz"] == "ok"  # the API server's reissued etcd client certificate
    assert final["served"]  # etcd's reissued server certificate verifies with the new CA alone


def test_no_acknowledged_write_was_lost(rotation):
    for run in ("trust_figures", "reissue_figures", "remove_figures"):
        writes = rotation[run]["writes"]
        assert writes["acknowledged"] > 0, (run, writes)
        assert writes["lost"] == [], (run, writes["lost"])


def test_an_etcd_rerun_changes_nothing(lab, rotation):
    asked = {"cluster_pki_rotate_ca": [NAME], "cluster_pki_rotate_ca_round": rotation["round"]}
    run, recap = ansible_playbook(lab.inventory, "cluster_pki.yml", "-e", json.dumps(asked))
    assert run.returncode == 0, run.stdout[-3000:]
    assert all(stats["changed"] == 0 for stats in recap.values()), recap
