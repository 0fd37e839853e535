"""What the CA rotation lab tests share (test_cluster_*_rotation.py): reading the store, running cluster_pki.yml
under /readyz polling (bench/availability.py), a real SIGKILL of ansible-playbook at a store change, and a
SelfSubjectReview sent to the API server with the credentials under test."""

import hashlib
import json
import os
import re
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request

import yaml
from conftest import CONTAINERS_CONF, REPO
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

PEM = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)


def fingerprints(data):
    """SHA-256 of each certificate of a PEM bundle (DER), in order."""
    return [
        hashlib.sha256(x509.load_pem_x509_certificate(b).public_bytes(Encoding.DER)).hexdigest()
        for b in PEM.findall(data)
    ]


def read(path):
    with open(path, "rb") as handle:
        return handle.read()


def next_round(store, name):
    """(the rotation state file, the round after the last one recorded for ``name``): each run is a new round."""
    state_file = os.path.join(store, "rotation", "state.json")
    done = json.loads(read(state_file)) if os.path.exists(state_file) else {"rotations": {}}
    return state_file, done["rotations"].get(name, {}).get("round", 0) + 1


def store_tree(store):
    """Every file of the store with its content hash (check mode must change none)."""
    return {
        os.path.relpath(os.path.join(root, name), store): hashlib.sha256(read(os.path.join(root, name))).hexdigest()
        for root, _dirs, names in os.walk(store)
        for name in names
    }


def pod_spec(image):
    """A restricted agnhost pod of the ServiceAccount ``probe`` (its token is what the tests follow)."""
    return {
        "serviceAccountName": "probe",
        "terminationGracePeriodSeconds": 1,
        "securityContext": {"runAsNonRoot": True, "runAsUser": 65534, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [
            {
                "name": "agnhost",
                "image": image,
                "imagePullPolicy": "Never",
                "args": ["netexec", "--http-port=8080"],
                "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
            }
        ],
    }


def env():
    return dict(
        os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_FORCE_COLOR="0", CONTAINERS_CONF=CONTAINERS_CONF
    )


def playbook_argv(lab, extra):
    return [
        str(REPO / ".venv/bin/ansible-playbook"),
        "-i",
        str(lab.inventory),
        str(REPO / "playbooks" / "cluster_pki.yml"),
        "-e",
        json.dumps(extra),
    ]


def server(lab):
    return yaml.safe_load(lab.kubeconfig.read_text())["clusters"][0]["cluster"]["server"]


def under_load(lab, extra, *bench_options):
    """Run the playbook while /readyz is polled every 200 ms (and ``bench_options``); (process, figures)."""
    bench = [sys.executable, str(REPO / "bench" / "availability.py"), "--json", f"--url={server(lab)}/readyz"]
    bench += [f"--kubeconfig={lab.kubeconfig}", "--interval=0.2", "--max-seconds=1500", *bench_options, "--"]
    run = subprocess.run(
        bench + playbook_argv(lab, extra),
        capture_output=True,
        text=True,
        env=env(),
        cwd=REPO,
        check=False,
        timeout=1800,
    )
    return run, json.loads(run.stdout.strip().splitlines()[-1])


def kill_when(lab, extra, changed, timeout=900):
    """Start the playbook and SIGKILL it (its whole process group) as soon as ``changed()`` is true (a step
    began in the store); whether it was still running then."""
    killed = subprocess.Popen(
        playbook_argv(lab, extra),
        env=env(),
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and killed.poll() is None:
        if changed():
            break
        time.sleep(0.2)
    running = killed.poll() is None
    os.killpg(killed.pid, signal.SIGKILL)
    killed.wait()
    return running


def self_review(lab, store, headers, client_cert=None):
    """(HTTP status, username) of a SelfSubjectReview the API server answers for these credentials
    (``headers``, e.g. a bearer token; ``client_cert``: (certificate file, key file))."""
    context = ssl.create_default_context(cafile=os.path.join(store, "pki", "ca.crt"))
    if client_cert:
        context.load_cert_chain(*client_cert)
    body = json.dumps({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}).encode()
    request = urllib.request.Request(  # noqa: S310 - https only
        f"{server(lab)}/apis/authentication.k8s.io/v1/selfsubjectreviews",
        data=body,
        headers={**headers, "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, context=context, timeout=20) as answer:  # noqa: S310 - https only
            return answer.status, json.loads(answer.read())["status"]["userInfo"]["username"]
    except urllib.error.HTTPError as err:
        return err.code, ""


def start_pods(lab, kubectl, namespace, pods):
    """A fresh ``namespace`` with the ServiceAccount ``probe`` and one agnhost pod per ``{name: node}``, Ready;
    their ``{name: uid}``."""
    kubectl("delete", "namespace", namespace, "--ignore-not-found", "--wait=true")
    kubectl.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    kubectl.apply({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "probe", "namespace": namespace}})
    image = lab.vars["kubeguard_lab_images"]["agnhost"]
    kubectl.apply(
        *(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
                "spec": {**pod_spec(image), "nodeName": node},
            }
            for name, node in pods.items()
        )
    )
    kubectl("-n", namespace, "wait", "--for=condition=Ready", "pod", "--all", "--timeout=180s")
    return {p["metadata"]["name"]: p["metadata"]["uid"] for p in kubectl.get("-n", namespace, "pods")["items"]}


def assert_pods_kept_running(kubectl, namespace, uids):
    """The same pods (UIDs) still running; ``kubectl logs`` and ``exec`` work on each (apiserver <-> kubelet)."""
    pods = {p["metadata"]["name"]: p for p in kubectl.get("-n", namespace, "pods")["items"]}
    for name, uid in uids.items():
        assert pods[name]["metadata"]["uid"] == uid
        assert pods[name]["status"]["phase"] == "Running"
        assert kubectl("-n", namespace, "logs", name).returncode == 0
        assert kubectl("-n", namespace, "exec", name, "--", "/agnhost", "dns-suffix").returncode == 0
