"""LAYOUT=kubeadm: kubeadm writes the files, the lab runs the static pods.
Runs last: it recreates the lab in the kubeadm layout."""

import os
import socket
import subprocess
import time

import pytest
from conftest import CONTAINERS_CONF, LAB_LABEL, LAB_STATE, REPO, Lab

pytestmark = pytest.mark.lab


def lab_up(**env):
    return subprocess.run(
        [str(REPO / "lab" / "bin" / "lab-up")],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=900,
        check=False,
    )


def test_a_taken_port_fails_clearly_and_leaves_nothing_behind():
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        result = lab_up(LAB_FRESH="1", LAB_API_PORT=str(port))
    assert result.returncode != 0
    assert f"port 127.0.0.1:{port} is already taken" in result.stderr
    leftovers = subprocess.run(
        ["podman", "ps", "-aq", "--filter", f"label={LAB_LABEL}"],
        capture_output=True,
        text=True,
        env={**os.environ, "CONTAINERS_CONF": CONTAINERS_CONF},
        check=True,
    )
    assert leftovers.stdout == ""
    assert not LAB_STATE.exists()


@pytest.fixture(scope="module")
def kubeadm_lab():
    result = lab_up(LAYOUT="kubeadm", LAB_FRESH="1")
    assert result.returncode == 0, result.stderr[-2000:]
    return Lab(LAB_STATE)


def test_kubeadm_wrote_its_layout(kubeadm_lab):
    cp = kubeadm_lab.groups["control_plane"][0]
    files = [
        "pki/ca.crt",
        "pki/etcd/ca.crt",
        "pki/front-proxy-ca.crt",
        "pki/sa.pub",
        "admin.conf",
        "super-admin.conf",
        "controller-manager.conf",
        "scheduler.conf",
    ]
    files += [
        f"manifests/{pod}.yaml" for pod in ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")
    ]
    for name in files:
        assert kubeadm_lab.podman_exec(cp, "test", "-s", f"/etc/kubernetes/{name}").returncode == 0, name


def test_admin_conf_reaches_the_api_from_the_host(kubeadm_lab, lab_binaries):
    result = subprocess.run(
        [
            str(lab_binaries / "kubectl"),
            "--kubeconfig",
            str(kubeadm_lab.kubeconfig),
            "auth",
            "whoami",
            "-o",
            "jsonpath={.status.userInfo.groups}",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "kubeadm:cluster-admins" in result.stdout


def test_etcd_serves_tls_with_client_certs(kubeadm_lab):
    cp = kubeadm_lab.groups["etcd"][0]
    pki = "/etc/kubernetes/pki/etcd"
    base = ["etcdctl", "--endpoints=https://127.0.0.1:2379", f"--cacert={pki}/ca.crt", "endpoint", "health"]
    with_cert = kubeadm_lab.podman_exec(
        cp, *base, f"--cert={pki}/healthcheck-client.crt", f"--key={pki}/healthcheck-client.key"
    )
    assert with_cert.returncode == 0, with_cert.stderr
    without_cert = kubeadm_lab.podman_exec(cp, *base, "--command-timeout=3s")
    assert without_cert.returncode != 0


def test_a_changed_manifest_restarts_its_component(kubeadm_lab):
    cp = kubeadm_lab.groups["control_plane"][0]
    manifest = "/etc/kubernetes/manifests/kube-scheduler.yaml"
    edit = f"sed -i 's/    - --leader-elect=true/    - --leader-elect=true\\n    - --v=3/' {manifest}"
    assert kubeadm_lab.podman_exec(cp, "sh", "-c", edit).returncode == 0
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if "--v=3" in kubeadm_lab.podman_exec(cp, "pgrep", "-af", "kube-scheduler").stdout:
            break
        time.sleep(1)
    else:
        pytest.fail("kube-scheduler was not restarted with the manifest's new flag")
    assert kubeadm_lab.podman_exec(cp, "systemctl", "is-active", "static-pod-kube-scheduler").stdout.strip() == "active"
