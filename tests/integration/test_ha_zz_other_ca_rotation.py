"""Rotating the etcd CA, the front-proxy CA and the service-account key (cluster_pki_rotate_ca:
[etcd-ca, front-proxy-ca, sa], docs/ca-rotation.md) on the kubeadm-ha lab: three control planes run as
static pods with stacked etcd (three members) behind HAProxy, two workers.

One rotation of the three, in that order: the run is SIGKILLed as soon as etcd-ca's trust step is
recorded and rerun until it converges. etcd's static pods restart one member at a time (control_plane's
quorum check before each, the member's health and the quorum after), each control plane drained at the
load balancer while its etcd or apiserver restarts. A client polls /readyz and an authenticated GET through
the load balancer every 200 ms and writes a ConfigMap every 100 ms from the first run to the last
(bench/availability.py): no poll may get anything but 200 (the loaded machine's client timeouts are
counted, not asserted, as in test_ha_site.py), no acknowledged write may be lost. A ServiceAccount token
made before the rotation is sent (a SelfSubjectReview through the load balancer) every 2 s throughout: it
is accepted until sa's verify step is recorded, refused afterwards, and a token made after is accepted
and signed by the new key. Then, read from outside: no file on any node holds the old etcd or front-proxy
CA or a certificate it signed, every control plane's sa.pub holds the new key alone, etcdctl endpoint
health answers for the three members, the front-proxy client certificate reissued is accepted and the old
one refused, pods made before kept running, and `kubeadm certs check-expiration` passes on every control
plane. The figures are printed (pytest -rA). Each run of this file is a new round. Runs in make
test-ha-upgrade, after test_ha_site.py hardened the lab."""

import json
import os
import threading
import time
import urllib.error
from types import SimpleNamespace

import pytest
from ansible_collections.kubeguard.hardening.plugins.module_utils._pki import _crypto
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from kubeguard_test.kube import Kubectl
from rotation_lab import assert_pods_kept_running, fingerprints, kill_when, next_round, read, start_pods
from test_cluster_front_proxy_rotation import USER, as_proxy
from test_cluster_sa_rotation import fingerprint, public_keys, review, signed_by
from test_ha_zz_ca_rotation import node_certificates, pems, playbook
from test_ha_zz_encryption_rotation import assert_lb_kept_serving, start_probe, stop_probe
from test_ha_zz_kubeadm_ops import ETCD_TLS, on

pytestmark = [pytest.mark.lab, pytest.mark.ha, pytest.mark.ha_upgrade]

NAMESPACE = "other-ca-rotation"
PODS = {"rot-other-cp": "cp2", "rot-other-worker": "worker2"}
ROTATE = ["etcd-ca", "front-proxy-ca", "sa"]
CERT_CAS = {"etcd-ca": "etcd/ca.crt", "front-proxy-ca": "front-proxy-ca.crt"}
STEPS = {
    "etcd-ca": ["generate", "trust", "pods", "reissue", "verify", "remove"],
    "front-proxy-ca": ["generate", "trust", "pods", "reissue", "verify", "remove"],
    "sa": ["generate", "trust", "reissue", "pods", "verify", "remove"],
}


def rotations(state_file):
    return json.loads(read(state_file))["rotations"] if os.path.exists(state_file) else {}


class TokenProbe(threading.Thread):
    """Sends the pre-rotation token every 2 s; records (status or error, sa's recorded steps at that moment)."""

    def __init__(self, lab, store, token, state_file):
        super().__init__(daemon=True)
        self.lab, self.store, self.token, self.state_file = lab, store, token, state_file
        self.seen, self.stop = [], threading.Event()

    def run(self):
        while not self.stop.is_set():
            steps = list(rotations(self.state_file).get("sa", {}).get("steps", []))
            try:
                status = review(self.lab, self.store, self.token)[0]
            except (OSError, urllib.error.URLError) as exc:
                status = f"error: {exc}"
            self.seen.append((status, steps))
            self.stop.wait(2)


def etcd_health(host):
    """etcdctl endpoint health of every member, from ``host``, with its healthcheck client certificate."""
    return on(host, "etcdctl", "--endpoints=https://127.0.0.1:2379", *ETCD_TLS, "endpoint", "health", "--cluster")


@pytest.fixture(scope="module")
def rotation(lab, lab_binaries):
    kubectl = Kubectl(lab_binaries, lab.kubeconfig)
    store = lab.vars["kubeguard_pki_output_dir"]
    assert os.path.exists(os.path.join(store, "pki", "ca.crt")), "site.yml has not run (test_ha_site.py runs it)"
    state_file = os.path.join(store, "rotation", "state.json")
    round_ = max(next_round(store, name)[1] for name in ROTATE)
    asked = {"cluster_pki_rotate_ca": ROTATE, "cluster_pki_rotate_ca_round": round_}
    asked["cluster_pki_rotate_ca_restart_pods"] = True
    old = {name: read(os.path.join(store, "pki", path)) for name, path in CERT_CAS.items()}
    assert all(len(fingerprints(pem)) == 1 for pem in old.values()), "one CA of each before a rotation"
    old_sa = public_keys(read(os.path.join(store, "pki", "sa.pub")))
    assert len(old_sa) == 1, "one service-account key before a rotation"

    uids = start_pods(lab, kubectl, NAMESPACE, PODS)
    old_token = kubectl("-n", NAMESPACE, "create", "token", "probe", "--duration=2h").stdout.strip()
    facts = {
        "old": old,
        "old_sa": fingerprint(old_sa[0]),
        "old_proxy_client": read(os.path.join(store, "pki", "front-proxy-client.crt")),
        "uids": uids,
        "kubectl": kubectl,
        "store": store,
        "old_token": old_token,
        "old_token_before": review(lab, store, old_token),
        "proxy_before": as_proxy(lab, store, read(os.path.join(store, "pki", "front-proxy-client.crt"))),
        "etcd_before": {host: etcd_health(host) for host in lab.groups["control_plane"]},
    }

    tokens = TokenProbe(lab, store, old_token, state_file)
    probe = start_probe(SimpleNamespace(lab=lab), lab_binaries)  # start_probe reads enc.lab
    started = time.monotonic()
    try:
        tokens.start()
        # A real kill: SIGKILL of ansible-playbook as soon as etcd-ca's trust step is recorded.
        facts["killed_while_running"] = kill_when(
            lab, asked, lambda: "trust" in rotations(state_file).get("etcd-ca", {}).get("steps", []), 1800
        )
        facts["after_kill_state"] = rotations(state_file)
        facts["etcd_after_kill"] = {host: etcd_health(host) for host in lab.groups["control_plane"]}
        facts["final"] = playbook(lab, "cluster_pki.yml", asked)
    finally:
        facts["figures"] = stop_probe(probe)
        tokens.stop.set()
        tokens.join(30)
        facts["seconds"] = round(time.monotonic() - started)
    print("availability through the load balancer:", json.dumps(facts["figures"]))
    print("rotation seconds (both runs):", facts["seconds"])
    facts["tokens"] = tokens.seen
    facts["final_state"] = rotations(state_file)
    facts["new"] = {name: fingerprints(read(os.path.join(store, "pki", path))) for name, path in CERT_CAS.items()}
    facts["new_sa"] = [fingerprint(k) for k in public_keys(read(os.path.join(store, "pki", "sa.pub")))]
    yield facts
    kubectl("delete", "namespace", NAMESPACE, "--wait=false", check=False)


def test_no_poll_through_the_load_balancer_failed_and_no_write_was_lost(rotation):
    assert_lb_kept_serving(rotation["figures"])


def test_a_run_killed_after_etcd_trust_converges_on_rerun(rotation):
    assert rotation["killed_while_running"]
    assert rotation["after_kill_state"]["etcd-ca"]["steps"][:2] == ["generate", "trust"]
    # Killed with every member trusting old + new: the three members answer.
    for host, run in rotation["etcd_after_kill"].items():
        assert run.returncode == 0 and run.stdout.count("is healthy") == 3, (host, run.stdout + run.stderr)
    for name in ROTATE:
        state = rotation["final_state"][name]
        assert state["finished"] and state["steps"] == STEPS[name], (name, state)
    for name in CERT_CAS:
        assert len(rotation["new"][name]) == 1 and rotation["new"][name] != fingerprints(rotation["old"][name])
    assert len(rotation["new_sa"]) == 1 and rotation["new_sa"] != [rotation["old_sa"]]


def test_the_old_etcd_and_front_proxy_cas_are_gone_from_every_file_on_every_node(lab, rotation):
    """No file holds an old CA, and no certificate is signed by one (its signature checked, not its name)."""
    olds = {name: x509.load_pem_x509_certificate(pem) for name, pem in rotation["old"].items()}
    read_back = {}
    for host in lab.hosts:
        found = node_certificates(lab, host)
        assert found, host
        for name, old_ca in olds.items():
            old_fp = fingerprints(rotation["old"][name])[0]
            holding = [path for path, certs in found.items() if old_fp in fingerprints(pems(certs))]
            signed = [path for path, certs in found.items() if any(_crypto.signed_by(c, old_ca) for c in certs)]
            assert (holding, signed) == ([], []), (host, name)
        read_back[host] = (len(found), sum(len(certs) for certs in found.values()))
        if host in lab.groups["control_plane"]:
            for name, path in CERT_CAS.items():
                bundle = pems(found[f"/etc/kubernetes/pki/{path}"])
                assert fingerprints(bundle) == rotation["new"][name], (host, name)
    print("files, certificates read back per node:", read_back)


def test_every_control_plane_accepts_and_signs_with_the_new_service_account_key_alone(lab, rotation):
    for host in lab.groups["control_plane"]:
        pub, key = (on(host, "cat", f"/etc/kubernetes/pki/{f}") for f in ("sa.pub", "sa.key"))
        assert pub.returncode == 0 and key.returncode == 0, host
        assert [fingerprint(k) for k in public_keys(pub.stdout.encode())] == rotation["new_sa"], host
        signing = serialization.load_pem_private_key(key.stdout.encode(), password=None).public_key()
        assert [fingerprint(signing)] == rotation["new_sa"], host


def test_the_old_token_works_until_the_sa_rotation_verifies_and_a_new_one_after(lab, rotation):
    assert rotation["old_token_before"][0] == 201
    seen = rotation["tokens"]
    before = [status for status, steps in seen if "verify" not in steps]
    errors = [s for s in before if not isinstance(s, int)]
    print(f"old token probes: {len(seen)}, before sa verify {len(before)} ({len(errors)} client errors)")
    assert before and {s for s in before if isinstance(s, int)} == {201}, before
    assert len(errors) <= len(before) // 20, errors  # a loaded machine's client timeouts, counted
    assert review(lab, rotation["store"], rotation["old_token"])[0] == 401
    new_token = rotation["kubectl"]("-n", NAMESPACE, "create", "token", "probe").stdout.strip()
    assert review(lab, rotation["store"], new_token)[0] == 201
    new_key = public_keys(read(os.path.join(rotation["store"], "pki", "sa.pub")))[0]
    assert signed_by(new_token, new_key)


def test_the_reissued_front_proxy_client_is_accepted_and_the_old_one_refused(lab, rotation):
    assert rotation["proxy_before"] == (201, USER)
    store = rotation["store"]
    assert as_proxy(lab, store, read(os.path.join(store, "pki", "front-proxy-client.crt"))) == (201, USER)
    assert as_proxy(lab, store, rotation["old_proxy_client"])[0] == 401


def test_etcd_answers_on_every_member_with_the_new_ca_alone(lab, rotation):
    for host in lab.groups["control_plane"]:
        before = rotation["etcd_before"][host]
        assert before.returncode == 0 and before.stdout.count("is healthy") == 3, (host, before.stderr)
        run = etcd_health(host)  # the node's etcd/ca.crt is the new CA alone (checked above)
        assert run.returncode == 0 and run.stdout.count("is healthy") == 3, (host, run.stdout + run.stderr)


def test_pods_kept_running_and_logs_and_exec_work(rotation):
    assert_pods_kept_running(rotation["kubectl"], NAMESPACE, rotation["uids"])


def test_kubeadm_certs_check_expiration_passes_on_every_control_plane(lab, rotation):
    for host in lab.groups["control_plane"]:
        run = on(host, "kubeadm", "certs", "check-expiration")
        assert run.returncode == 0, (host, run.stdout[-2000:], run.stderr[-2000:])
