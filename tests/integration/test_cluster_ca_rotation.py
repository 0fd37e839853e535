"""Rotating the cluster CA (cluster_pki_rotate_ca: [ca], docs/ca-rotation.md) on the
hardened lab, with /readyz polled every 200 ms through it (bench/availability.py).

One rotation, in three runs: a check-mode run writes nothing; a run stopped after
the trust step (cluster_pki_rotate_ca_stop_after) leaves both CAs in every bundle; a
run killed (SIGKILL of ansible-playbook) as soon as the reissue step began in the
store; the rerun converges. Then: the pods kept running, logs and exec work, the
controller's kubeconfig verifies the API with the new CA only, a token made before
the rotation still works, every bundle and kubeconfig on every node holds the new
CA only, and a rerun changes nothing. The figures are printed (pytest -rA), not
asserted. The lab is left hardened, its PKI the controller store's (a new CA):
each run of this file is a new round."""

import base64
import json
import os
import subprocess
import time

import pytest
import yaml
from conftest import ansible_playbook
from kubeguard_test.kube import Kubectl
from rotation_lab import (
    assert_pods_kept_running,
    fingerprints,
    kill_when,
    next_round,
    read,
    start_pods,
    store_tree,
    under_load,
)

# Its own stream (make test-ca-rotation): about 10 minutes, over the lab stream's share of make test.
pytestmark = [pytest.mark.lab, pytest.mark.rotation]

NAMESPACE = "ca-rotation"
PODS = {"rot-cp": "cp1", "rot-worker": "worker1"}
# The controller-manager signs from a file of its own during the rotation (it accepts one certificate).
SIGNER = "/etc/kubernetes/pki/ca-signer.crt"
# The lab's kube-proxy and kube-router are node agents (cluster_pki_node_agents): their kubeconfigs come from
# the store and each step installs them. CoreDNS keeps the CA it read at start: its pods are restarted.
LAB_VARS = {
    "cluster_pki_rotate_ca_restart_pods": True,
    "cluster_pki_rotate_ca_signer_file": SIGNER,
}
SIGNER_VAR = "cluster_pki_rotate_ca_signer_file"
STEPS = ["generate", "trust", "pods", "reissue", "verify", "remove"]


def node_bundles(lab, host):
    """Fingerprints of /etc/kubernetes/pki/ca.crt and of every kubeconfig's CA data on ``host``."""
    script = (
        "sudo cat /etc/kubernetes/pki/ca.crt | base64 -w0; echo; "
        "for f in /etc/kubernetes/*.conf; do "
        "echo \"$f $(sudo sed -n 's/^ *certificate-authority-data: *//p' $f)\"; done"
    )
    run = lab.ssh(host, script)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.strip().splitlines()
    found = {"pki/ca.crt": fingerprints(base64.b64decode(lines[0]))}
    for line in lines[1:]:
        path, _sep, data = line.partition(" ")
        found[path] = fingerprints(base64.b64decode(data))
    return found


@pytest.fixture(scope="module")
def rotation(lab, lab_binaries):
    kubectl = Kubectl(lab_binaries, lab.kubeconfig)
    store = lab.vars["kubeguard_pki_output_dir"]
    state_file, round_ = next_round(store, "ca")
    asked = {"cluster_pki_rotate_ca": ["ca"], "cluster_pki_rotate_ca_round": round_, **LAB_VARS}
    old = fingerprints(read(os.path.join(store, "pki", "ca.crt")))
    assert len(old) == 1, "the lab's store must hold one CA before a rotation"

    uids = start_pods(lab, kubectl, NAMESPACE, PODS)
    token = kubectl("-n", NAMESPACE, "create", "token", "probe", "--duration=2h").stdout.strip()

    facts = {"round": round_, "old": old[0], "uids": uids, "token": token, "kubectl": kubectl, "store": store}
    # Refused while the controller-manager signs from pki/ca.crt; nothing is begun.
    refused, _recap = ansible_playbook(lab.inventory, "cluster_pki.yml", "-e", json.dumps({**asked, SIGNER_VAR: ""}))
    facts["refused"] = refused
    facts["refused_state"] = json.loads(read(state_file)) if os.path.exists(state_file) else {"rotations": {}}
    # The signer file first (generate only), then the controller-manager pointed at it.
    setup, _recap = ansible_playbook(
        lab.inventory, "cluster_pki.yml", "-e", json.dumps({**asked, "cluster_pki_rotate_ca_stop_after": "generate"})
    )
    assert setup.returncode == 0, setup.stdout[-3000:]
    flags = {"control_plane_controller_manager_extra_flags": {"cluster-signing-cert-file": SIGNER}}
    pointed, _recap = ansible_playbook(lab.inventory, "control_plane.yml", "-e", json.dumps(flags))
    assert pointed.returncode == 0, pointed.stdout[-3000:]
    before = store_tree(store)
    check, _recap = ansible_playbook(lab.inventory, "cluster_pki.yml", "--check", "-e", json.dumps(asked))
    facts["check"] = check
    facts["check_store_unchanged"] = store_tree(store) == before

    restarts = "systemctl show kube-controller-manager -p NRestarts --value"
    kcm_before = lab.ssh("cp1", restarts).stdout.strip()
    first, facts["first_figures"] = under_load(lab, {**asked, "cluster_pki_rotate_ca_stop_after": "trust"})
    assert first.returncode == 0, (first.stdout[-4000:], first.stderr[-3000:])
    # It exits once it holds the leader lease (~20 s after a restart): read after that.
    facts["kcm_restarts"] = (kcm_before, lab.ssh("cp1", f"sleep 25; {restarts}", timeout=60).stdout.strip())
    facts["after_trust_state"] = json.loads(read(state_file))["rotations"]["ca"]
    facts["after_trust_bundles"] = {host: node_bundles(lab, host) for host in lab.hosts}

    # A real kill: SIGKILL ansible-playbook once the reissue step has begun in the store.
    facts["killed_while_running"] = kill_when(
        lab, asked, lambda: (fingerprints(read(os.path.join(store, "pki", "ca.crt"))) or old)[0] != old[0]
    )
    facts["after_kill_state"] = json.loads(read(state_file))["rotations"]["ca"]

    final, facts["final_figures"] = under_load(lab, asked)
    assert final.returncode == 0, (final.stdout[-4000:], final.stderr[-3000:])
    facts["final_state"] = json.loads(read(state_file))["rotations"]["ca"]
    facts["new"] = fingerprints(read(os.path.join(store, "pki", "ca.crt")))
    print("availability, stop after trust:", facts["first_figures"])
    print("availability, rerun after the kill:", facts["final_figures"])
    yield facts
    kubectl("delete", "namespace", NAMESPACE, "--wait=false", check=False)
    # Back to the layout the lab stream expects: the controller-manager signs from pki/ca.crt (single again).
    ansible_playbook(lab.inventory, "control_plane.yml")


def test_refused_while_the_controller_manager_signs_from_the_bundle_file(rotation):
    refused = rotation["refused"]
    assert refused.returncode != 0
    assert "cluster_pki_rotate_ca_signer_file: kube-controller-manager on cp1 signs with" in refused.stdout
    entry = rotation["refused_state"]["rotations"].get("ca", {})
    assert entry.get("round", 0) < rotation["round"]  # nothing was begun


def test_check_mode_lists_the_steps_and_writes_nothing(rotation):
    check = rotation["check"]
    assert check.returncode == 0, check.stdout[-3000:]
    for step in STEPS[1:]:  # generate ran with the signer file
        assert f"- {step}\n" in check.stdout
    assert "coredns" in check.stdout  # the pods that hold the old root CA are listed
    assert "rotation/ca/new.key" in check.stdout
    assert rotation["check_store_unchanged"]


def test_stopped_after_trust_every_node_trusts_both_cas(lab, rotation):
    assert rotation["after_trust_state"]["steps"] == ["generate", "trust"]
    # The controller-manager kept running on its single signer file (it exits on a bundle, and systemd restarts it).
    before, after = rotation["kcm_restarts"]
    assert before == after
    new = rotation["after_trust_state"]["new"].split(":", 1)[1]
    for host, bundles in rotation["after_trust_bundles"].items():
        for path, found in bundles.items():
            assert found == [rotation["old"], new], (host, path)


def test_a_killed_run_converges_on_rerun(rotation):
    assert rotation["killed_while_running"]
    assert "reissue" not in rotation["after_kill_state"]["steps"]
    assert rotation["final_state"]["finished"]
    assert rotation["final_state"]["steps"] == STEPS


def test_every_bundle_on_every_node_holds_the_new_ca_only(lab, rotation):
    new = rotation["new"]
    assert len(new) == 1 and new[0] != rotation["old"]
    for host in lab.hosts:
        for path, found in node_bundles(lab, host).items():
            assert found == new, (host, path)


def test_the_controller_kubeconfig_verifies_the_api_with_the_new_ca(lab, rotation):
    data = yaml.safe_load(lab.kubeconfig.read_text())["clusters"][0]["cluster"]["certificate-authority-data"]
    assert fingerprints(base64.b64decode(data)) == rotation["new"]
    # kubectl verifies the serving certificate with that CA and presents the reissued client certificate.
    assert rotation["kubectl"]("get", "nodes").returncode == 0


def test_pods_kept_running_and_logs_and_exec_work(rotation):
    assert_pods_kept_running(rotation["kubectl"], NAMESPACE, rotation["uids"])


def test_cluster_dns_and_services_work_after(rotation):
    """CoreDNS (restarted at the pods step) and kube-proxy (its kubeconfig rewritten) still follow the API."""
    kubectl = rotation["kubectl"]
    lookup = kubectl("-n", NAMESPACE, "exec", "rot-worker", "--", "nslookup", "kubernetes.default.svc.cluster.local")
    assert "Address: 10.96.0.1\n" in lookup.stdout, lookup.stdout + lookup.stderr
    # A Service made after the rotation: kube-proxy must see it through the API to route it.
    kubectl.apply(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "rot-cp", "namespace": NAMESPACE},
            "spec": {"selector": {"app": "rot-cp"}, "ports": [{"port": 80, "targetPort": 8080}]},
        }
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        run = kubectl(
            "-n", NAMESPACE, "exec", "rot-worker", "--", "/agnhost", "connect", "rot-cp:80", "--timeout=2s", check=False
        )
        if run.returncode == 0:
            break
        time.sleep(2)
    assert run.returncode == 0, run.stdout + run.stderr


def test_a_token_made_before_the_rotation_still_works(lab, lab_binaries, rotation):
    server = yaml.safe_load(lab.kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
    ca = os.path.join(rotation["store"], "pki", "ca.crt")
    run = subprocess.run(
        [
            str(lab_binaries / "kubectl"),
            f"--server={server}",
            f"--certificate-authority={ca}",
            f"--token={rotation['token']}",
            "--kubeconfig=/dev/null",
            *("auth", "whoami", "-o", "json"),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["status"]["userInfo"]["username"] == f"system:serviceaccount:{NAMESPACE}:probe"


def test_a_rerun_changes_nothing(lab, rotation):
    asked = {"cluster_pki_rotate_ca": ["ca"], "cluster_pki_rotate_ca_round": rotation["round"], **LAB_VARS}
    run, recap = ansible_playbook(lab.inventory, "cluster_pki.yml", "-e", json.dumps(asked))
    assert run.returncode == 0, run.stdout[-3000:]
    assert all(stats["changed"] == 0 for stats in recap.values()), recap
