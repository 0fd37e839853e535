"""Rotating the service-account signing key (cluster_pki_rotate_ca: [sa], docs/ca-rotation.md) on the hardened lab,
with /readyz polled every 200 ms through it (bench/availability.py).

One rotation in four runs: check mode writes nothing and lists the pods; a run stopped after trust (the API server
accepts both keys, the old one still signs); a run SIGKILLed as soon as the reissue step began in the store; the
rerun, stopped after verify (the new key signs, the old tokens still work); the last run removes the old public key.
Every claim about tokens is a real request to the real API server (a SelfSubjectReview with the token): a token made
before the rotation works until remove and gets 401 after; a token made after reissue is signed by the new key and
works to the end; a legacy token Secret is re-signed by the controller-manager at the pods step
(cluster_pki_rotate_ca_reissue_token_secrets): its old token gets 401 after remove, its new one 201; the pod whose
Deployment the pods step restarted holds a working token, the bare pod (listed, never restarted) holds an old one,
refused after remove until the kubelet refreshes it. The figures are printed (pytest -rA), not asserted. Each run of
this file is a new round."""

import base64
import hashlib
import json
import os
import time

import pytest
from conftest import ansible_playbook
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from kubeguard_test.kube import Kubectl
from rotation_lab import kill_when, next_round, pod_spec, read, self_review, store_tree, under_load

pytestmark = [pytest.mark.lab, pytest.mark.rotation]

NAMESPACE = "sa-rotation"
ORDER = ["generate", "trust", "reissue", "pods", "verify", "remove"]
TOKEN_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/token"


def public_keys(data):
    """The public keys of a PEM file, in order."""
    blocks = data.split(b"-----END PUBLIC KEY-----")
    return [serialization.load_pem_public_key(b + b"-----END PUBLIC KEY-----\n") for b in blocks if b"BEGIN" in b]


def fingerprint(key):
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "SHA256:" + hashlib.sha256(der).hexdigest()


def _b64url(part):
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def signed_by(token, key):
    """Whether the JWT ``token`` carries a valid signature of ``key`` (RS256 or ES256/384)."""
    header, payload, signature = token.split(".")
    data, sig = f"{header}.{payload}".encode(), _b64url(signature)
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(sig, data, padding.PKCS1v15(), hashes.SHA256())
        else:
            half = len(sig) // 2
            der = encode_dss_signature(int.from_bytes(sig[:half], "big"), int.from_bytes(sig[half:], "big"))
            key.verify(der, data, ec.ECDSA(hashes.SHA256() if half == 32 else hashes.SHA384()))
    except (InvalidSignature, TypeError, ValueError):
        return False
    return True


def review(lab, store, token):
    """(HTTP status, username) of a SelfSubjectReview the API server answers for ``token``."""
    return self_review(lab, store, {"Authorization": f"Bearer {token}"})


def node_keys(lab):
    """Fingerprints of cp1's sa.pub keys and of its sa.key's public half."""
    pub = lab.ssh("cp1", "sudo cat /etc/kubernetes/pki/sa.pub")
    key = lab.ssh("cp1", "sudo cat /etc/kubernetes/pki/sa.key")
    assert pub.returncode == 0 and key.returncode == 0, pub.stderr + key.stderr
    signing = serialization.load_pem_private_key(key.stdout.encode(), password=None).public_key()
    return [fingerprint(k) for k in public_keys(pub.stdout.encode())], fingerprint(signing)


def states(state_file):
    return json.loads(read(state_file))["rotations"]["sa"]


@pytest.fixture(scope="module")
def rotation(lab, lab_binaries):
    kubectl = Kubectl(lab_binaries, lab.kubeconfig)
    store = lab.vars["kubeguard_pki_output_dir"]
    state_file, round_ = next_round(store, "sa")
    asked = {"cluster_pki_rotate_ca": ["sa"], "cluster_pki_rotate_ca_round": round_}
    asked["cluster_pki_rotate_ca_restart_pods"] = True
    asked["cluster_pki_rotate_ca_reissue_token_secrets"] = True
    old_keys = public_keys(read(os.path.join(store, "pki", "sa.pub")))
    assert len(old_keys) == 1, "the lab's store must hold one service-account key before a rotation"
    old = old_keys[0]

    kubectl.fresh_namespace(NAMESPACE)
    kubectl.apply({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "probe", "namespace": NAMESPACE}})
    image = lab.vars["kubeguard_lab_images"]["agnhost"]
    kubectl.apply(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "sa-bare", "namespace": NAMESPACE},
            "spec": {**pod_spec(image), "nodeName": "worker1"},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "sa-deploy", "namespace": NAMESPACE},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": "sa-deploy"}},
                "template": {"metadata": {"labels": {"app": "sa-deploy"}}, "spec": pod_spec(image)},
            },
        },
    )
    kubectl.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "kubernetes.io/service-account-token",
            "metadata": {
                "name": "legacy",
                "namespace": NAMESPACE,
                "annotations": {"kubernetes.io/service-account.name": "probe"},
            },
        }
    )
    kubectl("-n", NAMESPACE, "rollout", "status", "deployment/sa-deploy", "--timeout=180s")
    kubectl("-n", NAMESPACE, "wait", "--for=condition=Ready", "pod", "--all", "--timeout=180s")

    def pods():
        return {p["metadata"]["name"]: p["metadata"]["uid"] for p in kubectl.get("-n", NAMESPACE, "pods")["items"]}

    def pod_token(name):
        return kubectl("-n", NAMESPACE, "exec", name, "--", "cat", TOKEN_FILE).stdout.strip()

    def create_token():
        return kubectl("-n", NAMESPACE, "create", "token", "probe", "--duration=2h").stdout.strip()

    facts = {"round": round_, "old": old, "store": store, "kubectl": kubectl, "pods_before": pods()}

    def legacy_token():
        """The token the controller-manager filled into the legacy Secret (waits for it)."""
        for _attempt in range(60):
            data = kubectl.get("-n", NAMESPACE, "secret", "legacy").get("data") or {}
            if data.get("token"):
                return base64.b64decode(data["token"]).decode()
            time.sleep(1)
        raise AssertionError("the controller-manager did not fill the legacy token Secret in 60 s")

    facts["old_token"] = create_token()
    facts["old_legacy"] = legacy_token()
    facts["old_token_before"] = review(lab, store, facts["old_token"])

    before = store_tree(store)
    check, _recap = ansible_playbook(lab.inventory, "cluster_pki.yml", "--check", "-e", json.dumps(asked))
    facts["check"], facts["check_store_unchanged"] = check, store_tree(store) == before

    first, facts["trust_figures"] = under_load(lab, {**asked, "cluster_pki_rotate_ca_stop_after": "trust"})
    assert first.returncode == 0, (first.stdout[-4000:], first.stderr[-3000:])
    facts["after_trust"] = {"state": states(state_file), "node": node_keys(lab)}
    facts["after_trust"]["old_token"] = review(lab, store, facts["old_token"])
    facts["after_trust"]["token"] = create_token()

    # A real kill: SIGKILL ansible-playbook once the reissue step began in the store (sa.pub's first key changes).
    def reissue_began():
        current = public_keys(read(os.path.join(store, "pki", "sa.pub")))
        return bool(current) and fingerprint(current[0]) != fingerprint(old)

    facts["killed_while_running"] = kill_when(lab, asked, reissue_began)
    facts["after_kill_state"] = states(state_file)

    second, facts["reissue_figures"] = under_load(lab, {**asked, "cluster_pki_rotate_ca_stop_after": "verify"})
    assert second.returncode == 0, (second.stdout[-4000:], second.stderr[-3000:])
    new = public_keys(read(os.path.join(store, "pki", "sa.pub")))[0]
    facts["new"] = new
    facts["reissue_output"] = second.stdout
    facts["after_reissue"] = {"state": states(state_file), "node": node_keys(lab), "pods": pods()}
    facts["after_reissue"]["old_token"] = review(lab, store, facts["old_token"])
    facts["new_token"] = create_token()
    facts["after_reissue"]["new_token"] = review(lab, store, facts["new_token"])
    deploy_pod = next(n for n in facts["after_reissue"]["pods"] if n.startswith("sa-deploy-"))
    facts["deploy_token"], facts["bare_token"] = pod_token(deploy_pod), pod_token("sa-bare")
    facts["new_legacy"] = legacy_token()

    final, facts["remove_figures"] = under_load(lab, asked)
    assert final.returncode == 0, (final.stdout[-4000:], final.stderr[-3000:])
    facts["final"] = {"state": states(state_file), "node": node_keys(lab), "pods": pods()}
    facts["final"]["store"] = [fingerprint(k) for k in public_keys(read(os.path.join(store, "pki", "sa.pub")))]
    for name in ("old_token", "new_token", "deploy_token", "bare_token", "old_legacy", "new_legacy"):
        facts["final"][name] = review(lab, store, facts[name])
    print("availability, generate + trust:", facts["trust_figures"])
    print("availability, rerun after the kill (reissue, pods, verify):", facts["reissue_figures"])
    print("availability, remove:", facts["remove_figures"])
    yield facts
    kubectl("delete", "namespace", NAMESPACE, "--wait=false", check=False)


USER = f"system:serviceaccount:{NAMESPACE}:probe"


def test_sa_check_mode_lists_the_steps_and_pods_and_writes_nothing(rotation):
    check = rotation["check"]
    assert check.returncode == 0, check.stdout[-3000:]
    for step in ORDER:
        assert f"- {step}\n" in check.stdout
    assert "rotation/sa/new.key" in check.stdout
    assert f"{NAMESPACE}/sa-bare" in check.stdout  # the pods that hold a token of the old key
    assert f"{NAMESPACE}/legacy" in check.stdout  # the legacy token Secret it would re-sign
    assert rotation["check_store_unchanged"]


def test_after_trust_both_keys_are_accepted_and_the_old_one_signs(rotation):
    old, after = fingerprint(rotation["old"]), rotation["after_trust"]
    assert rotation["old_token_before"] == (201, USER)
    assert after["state"]["steps"] == ["generate", "trust"]
    accepted, signing = after["node"]
    assert accepted == [old, after["state"]["new"]] and signing == old
    assert after["old_token"] == (201, USER)
    assert signed_by(after["token"], rotation["old"])  # tokens are still signed by the old key


def test_a_killed_sa_run_converges_on_rerun(rotation):
    assert rotation["killed_while_running"]
    assert "reissue" not in rotation["after_kill_state"]["steps"]
    assert rotation["after_reissue"]["state"]["steps"] == ["generate", "trust", "reissue", "pods", "verify"]
    assert rotation["final"]["state"]["finished"]
    assert rotation["final"]["state"]["steps"] == ORDER


def test_after_reissue_the_new_key_signs_and_old_tokens_still_work(rotation):
    old, new, after = fingerprint(rotation["old"]), fingerprint(rotation["new"]), rotation["after_reissue"]
    assert new != old and after["state"]["new"] == new
    assert after["node"] == ([new, old], new)
    assert after["old_token"] == (201, USER)
    assert after["new_token"] == (201, USER)
    assert signed_by(rotation["new_token"], rotation["new"]) and not signed_by(rotation["new_token"], rotation["old"])


def test_the_pods_step_restarted_the_deployment_and_listed_the_bare_pod(rotation):
    before, after = rotation["pods_before"], rotation["after_reissue"]["pods"]
    assert before["sa-bare"] == after["sa-bare"]  # a bare pod is listed, never restarted
    assert f"{NAMESPACE}/sa-bare" in rotation["reissue_output"]
    assert "Deployment/sa-rotation/sa-deploy" in rotation["reissue_output"]
    assert not set(n for n in before if n.startswith("sa-deploy-")) & set(after)  # the Deployment's pod is new
    assert signed_by(rotation["deploy_token"], rotation["new"])
    assert signed_by(rotation["bare_token"], rotation["old"])


def test_the_pods_step_had_the_legacy_token_secret_re_signed_by_the_new_key(rotation):
    assert signed_by(rotation["old_legacy"], rotation["old"])
    assert rotation["new_legacy"] != rotation["old_legacy"]
    assert signed_by(rotation["new_legacy"], rotation["new"]) and not signed_by(rotation["new_legacy"], rotation["old"])
    assert f"{NAMESPACE}/legacy" in rotation["reissue_output"]
    final = rotation["final"]
    assert final["new_legacy"] == (201, USER)  # the Secret's consumers keep working after remove
    assert final["old_legacy"][0] == 401  # a copy taken outside does not (service-account-lookup: not the Secret's)


def test_after_remove_only_the_new_key_is_accepted(rotation):
    final, new = rotation["final"], fingerprint(rotation["new"])
    assert final["node"] == ([new], new) and final["store"] == [new]
    assert final["new_token"] == (201, USER)
    assert final["deploy_token"] == (201, USER)
    assert final["old_token"][0] == 401
    # The bare pod's token (the old key's, not yet refreshed by its kubelet) is refused: docs/ca-rotation.md.
    assert final["bare_token"][0] == 401


def test_a_sa_rerun_changes_nothing(lab, rotation):
    asked = {"cluster_pki_rotate_ca": ["sa"], "cluster_pki_rotate_ca_round": rotation["round"]}
    run, recap = ansible_playbook(lab.inventory, "cluster_pki.yml", "-e", json.dumps(asked))
    assert run.returncode == 0, run.stdout[-3000:]
    assert all(stats["changed"] == 0 for stats in recap.values()), recap
