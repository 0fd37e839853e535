"""Rotating the front-proxy CA (cluster_pki_rotate_ca: [front-proxy-ca], docs/ca-rotation.md) on the hardened
lab, with /readyz polled every 200 ms through it (bench/availability.py).

The lab has no aggregated API server, so the proof is the API server's own requestheader authentication: a
request that presents the front-proxy client certificate with X-Remote-User/X-Remote-Group headers is
authenticated as that user (a SelfSubjectReview answers it). The API server is pointed at the front-proxy files
first (control_plane_apiserver_extra_flags; the hard-way layout does not set them), and back afterwards.

One rotation in four runs: check mode writes nothing; a run stopped after trust; a run SIGKILLed as soon as the
reissue step began in the store; the rerun (stopped after verify) and the last run. The front-proxy client
certificate of before the rotation is accepted until remove and refused after; the reissued one throughout."""

import json
import os
import tempfile

import pytest
from conftest import ansible_playbook
from rotation_lab import fingerprints, kill_when, next_round, read, self_review, store_tree, under_load

pytestmark = [pytest.mark.lab, pytest.mark.rotation]

STEPS = ["generate", "trust", "pods", "reissue", "verify", "remove"]
PKI = "/etc/kubernetes/pki"
REQUESTHEADER = {
    "requestheader-client-ca-file": f"{PKI}/front-proxy-ca.crt",
    "requestheader-allowed-names": "front-proxy-client",
    "requestheader-username-headers": "X-Remote-User",
    "requestheader-group-headers": "X-Remote-Group",
    "requestheader-extra-headers-prefix": "X-Remote-Extra-",
    "proxy-client-cert-file": f"{PKI}/front-proxy-client.crt",
    "proxy-client-key-file": f"{PKI}/front-proxy-client.key",
}
USER = "rot-front-proxy-user"


def as_proxy(lab, store, cert_pem):
    """(HTTP status, username) of a SelfSubjectReview sent as the front proxy (``cert_pem`` + its key) for USER."""
    with tempfile.TemporaryDirectory() as tmp:
        cert = os.path.join(tmp, "client.crt")
        with open(cert, "wb") as handle:
            handle.write(cert_pem)
        pair = (cert, os.path.join(store, "pki", "front-proxy-client.key"))
        return self_review(lab, store, {"X-Remote-User": USER, "X-Remote-Group": "rot-group"}, pair)


def node_bundle(lab):
    run = lab.ssh("cp1", f"sudo cat {PKI}/front-proxy-ca.crt")
    assert run.returncode == 0, run.stderr
    return fingerprints(run.stdout.encode())


@pytest.fixture(scope="module")
def rotation(lab):
    store = lab.vars["kubeguard_pki_output_dir"]
    state_file, round_ = next_round(store, "front-proxy-ca")
    ca_file, client_file = (os.path.join(store, "pki", f) for f in ("front-proxy-ca.crt", "front-proxy-client.crt"))
    asked = {"cluster_pki_rotate_ca": ["front-proxy-ca"], "cluster_pki_rotate_ca_round": round_}
    old = fingerprints(read(ca_file))
    assert len(old) == 1, "the lab's store must hold one front-proxy CA before a rotation"

    flags = {"control_plane_apiserver_extra_flags": REQUESTHEADER}
    pointed, _recap = ansible_playbook(lab.inventory, "control_plane.yml", "-e", json.dumps(flags))
    assert pointed.returncode == 0, pointed.stdout[-3000:]
    old_client = read(client_file)
    facts = {"round": round_, "old": old[0], "store": store, "old_client": old_client}
    facts["before"] = as_proxy(lab, store, old_client)

    before = store_tree(store)
    check, _recap = ansible_playbook(lab.inventory, "cluster_pki.yml", "--check", "-e", json.dumps(asked))
    facts["check"], facts["check_store_unchanged"] = check, store_tree(store) == before

    first, facts["trust_figures"] = under_load(lab, {**asked, "cluster_pki_rotate_ca_stop_after": "trust"})
    assert first.returncode == 0, (first.stdout[-4000:], first.stderr[-3000:])
    facts["after_trust"] = {"state": json.loads(read(state_file))["rotations"]["front-proxy-ca"]}
    facts["after_trust"].update(node=node_bundle(lab), old_client=as_proxy(lab, store, old_client))

    facts["killed_while_running"] = kill_when(lab, asked, lambda: (fingerprints(read(ca_file)) or old)[0] != old[0])
    facts["after_kill_state"] = json.loads(read(state_file))["rotations"]["front-proxy-ca"]

    second, facts["reissue_figures"] = under_load(lab, {**asked, "cluster_pki_rotate_ca_stop_after": "verify"})
    assert second.returncode == 0, (second.stdout[-4000:], second.stderr[-3000:])
    new_client = read(client_file)
    facts["new_client_changed"] = new_client != old_client
    facts["after_verify"] = {"node": node_bundle(lab), "old_client": as_proxy(lab, store, old_client)}
    facts["after_verify"]["new_client"] = as_proxy(lab, store, new_client)

    final, facts["remove_figures"] = under_load(lab, asked)
    assert final.returncode == 0, (final.stdout[-4000:], final.stderr[-3000:])
    facts["final"] = {"state": json.loads(read(state_file))["rotations"]["front-proxy-ca"], "node": node_bundle(lab)}
    facts["final"].update(old_client=as_proxy(lab, store, old_client), new_client=as_proxy(lab, store, new_client))
    facts["new"] = fingerprints(read(ca_file))
    print("availability, generate + trust:", facts["trust_figures"])
    print("availability, rerun after the kill (pods, reissue, verify):", facts["reissue_figures"])
    print("availability, remove:", facts["remove_figures"])
    yield facts
    ansible_playbook(lab.inventory, "control_plane.yml")  # back to the lab's flags


def test_front_proxy_check_mode_lists_the_steps_and_writes_nothing(rotation):
    check = rotation["check"]
    assert check.returncode == 0, check.stdout[-3000:]
    for step in STEPS:
        assert f"- {step}\n" in check.stdout
    assert "rotation/front-proxy-ca/new.key" in check.stdout
    assert rotation["check_store_unchanged"]


def test_after_trust_the_api_server_trusts_both_front_proxy_cas(rotation):
    assert rotation["before"] == (201, USER)
    after = rotation["after_trust"]
    assert after["state"]["steps"] == ["generate", "trust"]
    assert after["node"] == [rotation["old"], after["state"]["new"].split(":", 1)[1]]
    assert after["old_client"] == (201, USER)


def test_a_killed_front_proxy_run_converges_on_rerun(rotation):
    assert rotation["killed_while_running"]
    assert "reissue" not in rotation["after_kill_state"]["steps"]
    assert rotation["final"]["state"]["finished"]
    assert rotation["final"]["state"]["steps"] == STEPS


def test_the_reissued_client_certificate_is_accepted_and_the_old_one_until_remove(rotation):
    new = rotation["new"]
    assert len(new) == 1 and new[0] != rotation["old"]
    assert rotation["new_client_changed"]
    assert rotation["after_verify"]["node"] == [new[0], rotation["old"]]
    assert rotation["after_verify"]["old_client"] == (201, USER)
    assert rotation["after_verify"]["new_client"] == (201, USER)
    assert rotation["final"]["node"] == new
    assert rotation["final"]["new_client"] == (201, USER)
    # Signed by the old front-proxy CA only: no longer a front proxy (its headers are not believed).
    assert rotation["final"]["old_client"][0] == 401


def test_a_front_proxy_rerun_changes_nothing(lab, rotation):
    asked = {"cluster_pki_rotate_ca": ["front-proxy-ca"], "cluster_pki_rotate_ca_round": rotation["round"]}
    run, recap = ansible_playbook(lab.inventory, "cluster_pki.yml", "-e", json.dumps(asked))
    assert run.returncode == 0, run.stdout[-3000:]
    assert all(stats["changed"] == 0 for stats in recap.values()), recap
