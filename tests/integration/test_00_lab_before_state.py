"""The lab is real and starts weak: these run first, on a fresh lab, before
any role hardens it (`make integration` recreates the lab)."""

import json
import ssl
import subprocess
import urllib.request

import pytest
from cryptography import x509

pytestmark = pytest.mark.lab


def test_every_node_accepts_the_operator_key(lab):
    for host in lab.hosts:
        result = lab.ssh(host, "hostname")
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == host


def test_password_login_works_before_hardening(lab):
    result = lab.ssh("worker1", "id -un", password="operator")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "operator"


def test_root_login_with_the_operator_key_works_before_hardening(lab):
    result = lab.ssh("worker2", "id -u", user="root")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "0"


def test_wrong_password_is_refused(lab):
    # Guards the test above against a client that "succeeds" regardless.
    result = lab.ssh("worker1", "true", password="not-the-password")
    assert result.returncode != 0
    # The server took the password and refused it (not a failed connection); sshpass
    # stops at that second prompt with its "incorrect password" status.
    assert "Permission denied, please try again." in result.stderr, result.stderr
    assert result.returncode == 5, result


def test_both_debian_releases_are_present(lab):
    releases = {lab.ssh(h, ". /etc/os-release; echo $VERSION_CODENAME").stdout.strip() for h in lab.hosts}
    assert {"bookworm", "trixie"} <= releases


def test_kubectl_reaches_the_api_from_the_host(lab, lab_binaries):
    kubectl = [str(lab_binaries / "kubectl"), "--kubeconfig", str(lab.kubeconfig)]
    namespaces = subprocess.run([*kubectl, "get", "ns", "-o", "name"], capture_output=True, text=True, check=False)
    assert namespaces.returncode == 0, namespaces.stderr
    assert "namespace/kube-system" in namespaces.stdout.split()
    healthz = subprocess.run([*kubectl, "get", "--raw", "/healthz"], capture_output=True, text=True, check=False)
    assert healthz.stdout == "ok"


def test_etcdctl_reaches_etcd_inside_the_control_plane_node(lab):
    host = lab.groups["etcd"][0]
    if lab.podman_exec(host, "test", "-d", "/etc/kubernetes/manifests").returncode == 0:
        tls = [
            "--endpoints=https://127.0.0.1:2379",
            "--cacert=/etc/kubernetes/pki/etcd/ca.crt",
            "--cert=/etc/kubernetes/pki/etcd/healthcheck-client.crt",
            "--key=/etc/kubernetes/pki/etcd/healthcheck-client.key",
        ]
    else:
        tls = ["--endpoints=http://127.0.0.1:2379"]
    result = lab.podman_exec(host, "etcdctl", *tls, "endpoint", "health")
    assert result.returncode == 0, result.stderr
    assert "is healthy" in result.stdout + result.stderr


def test_control_plane_starts_weak(lab):
    """The 'before' state the roles will harden (hard-way layout)."""
    host = lab.groups["control_plane"][0]
    manifest = lab.podman_exec(host, "test", "-f", "/etc/kubernetes/manifests/kube-apiserver.yaml")
    if manifest.returncode == 0:
        pytest.skip("kubeadm layout: flags live in the static-pod manifest")
    # Hard-way: the unit must be there; a failing systemctl is a broken lab, not a skip.
    unit = lab.podman_exec(host, "systemctl", "cat", "kube-apiserver.service")
    assert unit.returncode == 0, unit.stderr
    assert "--anonymous-auth=true" in unit.stdout
    assert "--authorization-mode=AlwaysAllow" in unit.stdout
    assert "--profiling=true" in unit.stdout
    assert "--audit-log-path" not in unit.stdout
    # And it really is open: under AlwaysAllow a user nobody granted anything
    # (a fresh client cert from the lab CA) may read every secret.
    # (kube-apiserver itself turns anonymous auth off under AlwaysAllow.)
    probe = (
        "cd /tmp && openssl req -new -newkey rsa:2048 -nodes -keyout nobody.key -subj /CN=nobody -out nobody.csr "
        "2>/dev/null && openssl x509 -req -in nobody.csr -CA /var/lib/kubernetes-lab/ca.crt "
        "-CAkey /var/lib/kubernetes-lab/ca.key -CAcreateserial -days 1 -out nobody.crt 2>/dev/null && "
        "curl -s -o /dev/null -w '%{http_code}' --cacert /var/lib/kubernetes-lab/ca.crt --cert nobody.crt "
        "--key nobody.key https://127.0.0.1:6443/api/v1/secrets"
    )
    assert lab.podman_exec(host, "sh", "-c", probe).stdout == "200"


def test_every_kubelet_starts_weak(lab):
    """Anonymous requests are served under AlwaysAllow, the read-only port is
    open, and the serving certificate is the kubelet's own self-signed one
    (issued by the "<node>-ca@<time>" CA the kubelet makes up at first start)."""
    # Nothing can verify a self-signed serving certificate: that is the weakness shown.
    unverified = ssl.create_default_context()
    unverified.check_hostname = False
    unverified.verify_mode = ssl.CERT_NONE
    for host in lab.hosts:
        ip = lab.hostvars[host]["kubeguard_node_ip"]
        anonymous = urllib.request.urlopen(f"https://{ip}:10250/pods", context=unverified, timeout=10)
        assert anonymous.status == 200, host
        assert json.load(anonymous)["kind"] == "PodList"
        read_only = urllib.request.urlopen(f"http://{ip}:10255/pods", timeout=10)
        assert read_only.status == 200, host
        cert = x509.load_pem_x509_certificate(ssl.get_server_certificate((ip, 10250)).encode())
        issuer = cert.issuer.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
        assert issuer.startswith(f"{host}-ca@"), (host, issuer)
