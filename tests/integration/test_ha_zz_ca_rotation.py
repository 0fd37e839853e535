"""Rotating the cluster CA (cluster_pki_rotate_ca: [ca], docs/ca-rotation.md) on the
kubeadm-ha lab: three control planes run as static pods behind HAProxy, two workers.

One rotation: the signer file is written (stop after generate), the
controller-manager pointed at it (control_plane.yml), then the rotation is
SIGKILLed as soon as the trust step is recorded and rerun until it converges. A
client polls /readyz and an authenticated GET through the load balancer every
200 ms and writes a ConfigMap every 100 ms from the first run to the last
(bench/availability.py): no poll may get anything but 200 (the loaded machine's
client timeouts are counted, not asserted, as in test_ha_site.py), no
acknowledged write may be lost. Then, read from outside: every certificate and
kubeconfig CA on every node lacks the old CA, the controller's kubeconfig holds
the new CA alone and kubectl verifies the API with it, kube-public/cluster-info
(what kubeadm join reads) carries the new CA alone, pods started before kept
running and logs and exec work, and `kubeadm certs check-expiration` passes on
every control plane. The figures are printed (pytest -rA). Each run of this file
is a new round. Runs in make test-ha-upgrade, after test_ha_site.py hardened the lab."""

import base64
import json
import os
import re
from types import SimpleNamespace

import pytest
import yaml
from ansible_collections.kubeguard.hardening.plugins.module_utils._pki import _crypto
from conftest import ansible_playbook
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from kubeguard_test.kube import Kubectl
from rotation_lab import assert_pods_kept_running, fingerprints, kill_when, next_round, read, start_pods
from test_ha_zz_encryption_rotation import assert_lb_kept_serving, start_probe, stop_probe

pytestmark = [pytest.mark.lab, pytest.mark.ha, pytest.mark.ha_upgrade]

NAMESPACE = "ca-rotation"
PODS = {"rot-cp": "cp1", "rot-worker": "worker1"}
SIGNER = "/etc/kubernetes/pki/ca-signer.crt"
ASKED = {"cluster_pki_rotate_ca_restart_pods": True, "cluster_pki_rotate_ca_signer_file": SIGNER}
STEPS = ["generate", "trust", "pods", "reissue", "verify", "remove"]
SCAN = "/etc/kubernetes /var/lib/kubelet/pki /var/lib/kube-proxy"
PEM = re.compile(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)
EMBEDDED = re.compile(r"^\s*(?:certificate-authority-data|client-certificate-data):\s*(\S+)", re.M)


def node_certificates(lab, host):
    """{path: [certificate, ...]} of every PEM certificate (in files and in kubeconfigs' embedded data) found
    under the rotation's scan paths on ``host``."""
    script = (
        f"for f in $(grep -rlsE 'BEGIN CERTIFICATE|certificate-authority-data|client-certificate-data' {SCAN}); do "
        'echo "=== $f"; cat "$f"; echo; done'
    )
    run = lab.podman_exec(host, "sh", "-c", script)
    assert run.returncode == 0, (host, run.stderr)
    found = {}
    for chunk in run.stdout.split("=== ")[1:]:
        path, _sep, text = chunk.partition("\n")
        pems = PEM.findall(text)
        for data in EMBEDDED.findall(text):
            pems += PEM.findall(base64.b64decode(data).decode("utf-8", "replace"))
        if pems:
            found[path] = [x509.load_pem_x509_certificate(pem.encode()) for pem in pems]
    return found


def ca_of(kubeconfig_text):
    data = yaml.safe_load(kubeconfig_text)["clusters"][0]["cluster"]["certificate-authority-data"]
    return fingerprints(base64.b64decode(data))


def playbook(lab, name, extra):
    run, _recap = ansible_playbook(lab.inventory, name, "-e", json.dumps(extra), timeout=2400)
    assert run.returncode == 0, (run.stdout[-4000:], run.stderr[-2000:])
    return run


@pytest.fixture(scope="module")
def rotation(lab, lab_binaries):
    kubectl = Kubectl(lab_binaries, lab.kubeconfig)
    store = lab.vars["kubeguard_pki_output_dir"]
    assert os.path.exists(os.path.join(store, "pki", "ca.crt")), "site.yml has not run (test_ha_site.py runs it)"
    state_file, round_ = next_round(store, "ca")
    asked = {"cluster_pki_rotate_ca": ["ca"], "cluster_pki_rotate_ca_round": round_, **ASKED}
    old = fingerprints(read(os.path.join(store, "pki", "ca.crt")))
    assert len(old) == 1, "the lab's store must hold one CA before a rotation"

    uids = start_pods(lab, kubectl, NAMESPACE, PODS)
    facts = {
        "old": old[0],
        "old_pem": read(os.path.join(store, "pki", "ca.crt")),
        "uids": uids,
        "kubectl": kubectl,
        "store": store,
    }

    probe = start_probe(SimpleNamespace(lab=lab), lab_binaries)  # start_probe reads enc.lab
    try:
        playbook(lab, "cluster_pki.yml", {**asked, "cluster_pki_rotate_ca_stop_after": "generate"})
        playbook(
            lab,
            "control_plane.yml",
            {"control_plane_controller_manager_extra_flags": {"cluster-signing-cert-file": SIGNER}},
        )
        # A real kill: SIGKILL of ansible-playbook as soon as the trust step is recorded.
        facts["killed_while_running"] = kill_when(
            lab, asked, lambda: "trust" in json.loads(read(state_file))["rotations"]["ca"].get("steps", []), 1800
        )
        facts["after_kill_state"] = json.loads(read(state_file))["rotations"]["ca"]
        facts["after_kill_cluster_info"] = ca_of(
            kubectl.get("-n", "kube-public", "configmap", "cluster-info")["data"]["kubeconfig"]
        )
        facts["final"] = playbook(lab, "cluster_pki.yml", asked)
    finally:
        facts["figures"] = stop_probe(probe)
    print("availability through the load balancer:", json.dumps(facts["figures"]))
    facts["final_state"] = json.loads(read(state_file))["rotations"]["ca"]
    facts["new"] = fingerprints(read(os.path.join(store, "pki", "ca.crt")))
    yield facts
    kubectl("delete", "namespace", NAMESPACE, "--wait=false", check=False)


def test_no_poll_through_the_load_balancer_failed_and_no_write_was_lost(rotation):
    assert_lb_kept_serving(rotation["figures"])


def test_a_run_killed_after_trust_converges_on_rerun(rotation):
    assert rotation["killed_while_running"]
    assert rotation["after_kill_state"]["steps"][:2] == ["generate", "trust"]
    # Killed after trust: kubeadm join's cluster-info already trusts both CAs.
    new = rotation["after_kill_state"]["new"].split(":", 1)[1]
    assert rotation["after_kill_cluster_info"] == [rotation["old"], new]
    assert rotation["final_state"]["finished"] and rotation["final_state"]["steps"] == STEPS
    assert rotation["new"] == [new]


def test_the_old_ca_is_gone_from_every_file_on_every_node(lab, rotation):
    """No file holds the old CA, and no certificate is signed by it (its signature checked, not its name)."""
    old_ca = x509.load_pem_x509_certificate(rotation["old_pem"])
    read_back = {}
    for host in lab.hosts:
        found = node_certificates(lab, host)
        assert found, host
        holding = [path for path, certs in found.items() if rotation["old"] in fingerprints(pems(certs))]
        signed = [path for path, certs in found.items() if any(_crypto.signed_by(c, old_ca) for c in certs)]
        assert (holding, signed) == ([], []), host
        read_back[host] = (len(found), sum(len(certs) for certs in found.values()))
        if host in lab.groups["control_plane"]:
            assert fingerprints(pems(found["/etc/kubernetes/pki/ca.crt"])) == rotation["new"], host
    print("files, certificates read back per node:", read_back)


def pems(certs):
    return b"".join(c.public_bytes(Encoding.PEM) for c in certs)


def test_the_controller_kubeconfig_and_cluster_info_carry_the_new_ca_alone(lab, rotation):
    assert ca_of(lab.kubeconfig.read_text()) == rotation["new"]
    # kubectl verifies the serving certificate with that CA and presents the reissued client certificate.
    assert rotation["kubectl"]("get", "nodes").returncode == 0
    info = rotation["kubectl"].get("-n", "kube-public", "configmap", "cluster-info")["data"]["kubeconfig"]
    assert ca_of(info) == rotation["new"]


def test_pods_kept_running_and_logs_and_exec_work(rotation):
    assert_pods_kept_running(rotation["kubectl"], NAMESPACE, rotation["uids"])


def test_kubeadm_certs_check_expiration_passes_on_every_control_plane(lab, rotation):
    for host in lab.groups["control_plane"]:
        run = lab.podman_exec(host, "kubeadm", "certs", "check-expiration")
        assert run.returncode == 0, (host, run.stdout[-2000:], run.stderr[-2000:])
