"""The generated PKI against the real components: openssl, kubeadm, etcd,
kube-apiserver and kubectl, all on loopback with temporary directories."""

import contextlib
import hashlib
import os
import pathlib
import shutil
import socket
import ssl
import subprocess
import threading
import time

import pytest
from kubeguard_test.waiting import wait_for

REPO = pathlib.Path(__file__).resolve().parents[2]

from ansible_collections.kubeguard.hardening.plugins.module_utils._pki import (  # noqa: E402
    _crypto,
    _engine,
    _info,
    _inputs,
    _kubeconfig,
    _model,
)

NODE_IP = "10.123.0.10"  # not local: kubeadm refuses loopback advertise addresses
KUBEADM_CONFIG = """\
apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
localAPIEndpoint:
  advertiseAddress: {ip}
  bindPort: 6443
nodeRegistration:
  name: cp1
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: v1.34.4
clusterName: kubeguard-test
certificatesDir: {pki}
controlPlaneEndpoint: "{ip}:6443"
networking:
  serviceSubnet: 10.96.0.0/12
  dnsDomain: cluster.local
apiServer:
  certSANs: [127.0.0.1, localhost]
"""


def params(out, **extra):
    base = {
        "output_dir": str(out),
        "cluster_name": "kubeguard-test",
        "control_plane_nodes": [{"name": "cp1", "ips": [NODE_IP], "dns_names": [], "etcd": True}],
        "worker_nodes": [{"name": "worker1", "ips": ["10.123.0.11"], "dns_names": ["worker1.lab"]}],
        "service_cidr": "10.96.0.0/12",
        "dns_domain": "cluster.local",
        "control_plane_endpoint": f"{NODE_IP}:6443",
        "api_port": 6443,
        "extra_sans": ["127.0.0.1", "localhost"],
        "key_algorithm": "RSA-2048",
        "ca_validity_days": 3650,
        "leaf_validity_days": 365,
        "renew_before_days": 30,
        "workers": 0,
    }
    base.update(extra)
    return base


def node_view(result, node, kubernetes_dir, kubelet_dir):
    """Lay the files of ``node`` out like the role does."""
    for entry in result["distribution"][node]:
        root = kubernetes_dir if entry["root"] == "kubernetes" else kubelet_dir
        dest = pathlib.Path(root, entry["dest"])
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(entry["src"], dest)
        os.chmod(dest, int(entry["mode"], 8))


def hashes(root):
    return {
        str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(pathlib.Path(root).rglob("*")) if p.is_file()
    }


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    out = tmp_path_factory.mktemp("pki") / "tree"
    result = _engine.run(params(out))
    assert result["changed"]
    return out, result


@pytest.fixture(scope="module")
def other_tree(tmp_path_factory):
    """A second, unrelated PKI: certificates from the wrong CAs."""
    out = tmp_path_factory.mktemp("pki-other") / "tree"
    _engine.run(params(out, key_algorithm="ECDSA-P256"))
    return out


@pytest.fixture(scope="module")
def cp1_view(tree, tmp_path_factory):
    base = tmp_path_factory.mktemp("cp1")
    node_view(tree[1], "cp1", base / "etc/kubernetes", base / "var/lib/kubelet/pki")
    return base


def _cert_of(path):
    data = path.read_bytes()
    if path.suffix == ".conf":
        data = _kubeconfig.parse(data)["cert"]
    return _crypto.load_cert(data)


def test_openssl_verifies_every_chain(tree, tmp_path):
    out, _ = tree
    cluster = _inputs.parse_cluster(params(out))
    checked = 0
    for item in _model.catalogue(cluster):
        if item.kind in ("ca", "sa"):
            continue
        leaf = out / _model.item_files(item)[0]
        if item.kind == "kubeconfig":
            leaf = tmp_path / f"{checked}.crt"
            leaf.write_bytes(_kubeconfig.parse((out / item.path).read_bytes())["cert"])
        ca = out / f"{item.signer}.crt"
        purpose = "sslserver" if "serverAuth" in item.eku else "sslclient"
        run = subprocess.run(
            ["openssl", "verify", "-x509_strict", "-purpose", purpose, "-CAfile", str(ca), str(leaf)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert run.returncode == 0, (item.path, run.stdout, run.stderr)
        checked += 1
    # 4 shared leaves, 2 cluster kubeconfigs, cp1: apiserver + etcd server/peer + 3 kubeconfigs + kubelet serving,
    # worker1: kubelet.conf + kubelet serving
    assert checked == 4 + 2 + 7 + 2
    # and the wrong CA is refused, so the check above can fail
    wrong = subprocess.run(
        [
            "openssl",
            "verify",
            "-CAfile",
            str(out / "pki/front-proxy-ca.crt"),
            str(out / "pki/apiserver-etcd-client.crt"),
        ],
        capture_output=True,
        check=False,
    )
    assert wrong.returncode != 0


def test_ca_and_leaf_extensions(tree):
    out, _ = tree
    serials = set()
    for crt in out.rglob("*.crt"):
        cert = _crypto.load_cert(crt.read_bytes())
        ext = {e.oid._name: e for e in cert.extensions}
        assert {"subjectKeyIdentifier", "authorityKeyIdentifier", "keyUsage", "basicConstraints"} <= set(ext), crt
        assert ext["keyUsage"].critical
        bc = ext["basicConstraints"].value
        if crt.name == "ca.crt" or crt.name == "front-proxy-ca.crt":
            assert bc.ca and bc.path_length == 0
            assert ext["keyUsage"].value.key_cert_sign
        else:
            assert not bc.ca
        serials.add(cert.serial_number)
    assert len(serials) == len(list(out.rglob("*.crt")))


def test_profiles_match_kubeadm(tree, lab_binaries, tmp_path):
    """kubeadm generates its own tree from the same configuration: every
    certificate we make has kubeadm's CN, O, EKU, key usage and SANs."""
    out, _ = tree
    ref = tmp_path / "ref"
    config = tmp_path / "kubeadm.yaml"
    config.write_text(KUBEADM_CONFIG.format(ip=NODE_IP, pki=ref / "pki"))
    for phase in (["certs", "all"], ["kubeconfig", "all", "--kubeconfig-dir", str(ref)]):
        subprocess.run(
            [str(lab_binaries / "kubeadm"), "init", "phase", *phase, "--config", str(config)],
            check=True,
            capture_output=True,
        )
    pairs = {
        "pki/ca.crt": "pki/ca.crt",
        "pki/front-proxy-ca.crt": "pki/front-proxy-ca.crt",
        "pki/etcd/ca.crt": "pki/etcd/ca.crt",
        "pki/apiserver.crt": "nodes/cp1/pki/apiserver.crt",
        "pki/apiserver-kubelet-client.crt": "pki/apiserver-kubelet-client.crt",
        "pki/front-proxy-client.crt": "pki/front-proxy-client.crt",
        "pki/etcd/server.crt": "nodes/cp1/pki/etcd/server.crt",
        "pki/etcd/peer.crt": "nodes/cp1/pki/etcd/peer.crt",
        "pki/etcd/healthcheck-client.crt": "pki/etcd/healthcheck-client.crt",
        "pki/apiserver-etcd-client.crt": "pki/apiserver-etcd-client.crt",
        "admin.conf": "admin.conf",
        "super-admin.conf": "super-admin.conf",
        "controller-manager.conf": "nodes/cp1/controller-manager.conf",
        "scheduler.conf": "nodes/cp1/scheduler.conf",
        "kubelet.conf": "nodes/cp1/kubelet.conf",
    }
    for theirs, ours in pairs.items():
        want, got = _crypto.describe(_cert_of(ref / theirs)), _crypto.describe(_cert_of(out / ours))
        for key in ("cn", "orgs", "dns", "ips", "eku", "key_usage", "is_ca", "algorithm"):
            assert got[key] == want[key], (ours, key, got[key], want[key])
    for conf in ("admin.conf", "super-admin.conf", "controller-manager.conf", "scheduler.conf", "kubelet.conf"):
        theirs = _kubeconfig.parse((ref / conf).read_bytes())["server"]
        ours = _kubeconfig.parse((out / pairs[conf]).read_bytes())["server"]
        assert ours == theirs, conf


def test_kubeadm_uses_every_existing_file_and_changes_nothing(cp1_view, lab_binaries, tmp_path):
    kdir = cp1_view / "etc/kubernetes"
    config = tmp_path / "kubeadm.yaml"
    config.write_text(KUBEADM_CONFIG.format(ip=NODE_IP, pki=kdir / "pki"))
    before = hashes(cp1_view)
    kubeadm = str(lab_binaries / "kubeadm")
    certs = subprocess.run(
        [kubeadm, "init", "phase", "certs", "all", "--config", str(config)], capture_output=True, text=True, check=False
    )
    assert certs.returncode == 0, certs.stderr
    confs = subprocess.run(
        [kubeadm, "init", "phase", "kubeconfig", "all", "--config", str(config), "--kubeconfig-dir", str(kdir)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert confs.returncode == 0, confs.stderr
    output = certs.stdout + confs.stdout
    assert output.count("Using existing") + output.count("Using the existing") == 3 + 7 + 1 + 5, output
    for word in ("Generating", "Writing", "WARNING", "unexpected"):
        assert word not in output + certs.stderr + confs.stderr
    assert hashes(cp1_view) == before


def test_kubeadm_check_expiration_reads_the_tree(cp1_view, lab_binaries, tmp_path):
    """kubeadm reads kubeconfigs from /etc/kubernetes only, so run it chrooted (--rootfs)."""
    import json

    root = tmp_path / "root"
    shutil.copytree(cp1_view, root)
    (root / "kubeadm.yaml").write_text(KUBEADM_CONFIG.format(ip=NODE_IP, pki="/etc/kubernetes/pki"))
    run = subprocess.run(
        [
            str(lab_binaries / "kubeadm"),
            "certs",
            "check-expiration",
            "--rootfs",
            str(root),
            "--config",
            "/kubeadm.yaml",
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(run.stdout)
    assert len(report["certificates"]) == 11
    assert not [c["name"] for c in report["certificates"] + report["certificateAuthorities"] if c["missing"]]
    assert all(363 <= c["residualTime"] // 86400 <= 365 for c in report["certificates"])
    # our info module reports the same certificates with the same expiry
    ours = _info.check_expiration(str(root / "etc/kubernetes"), str(root / "var/lib/kubelet/pki"))
    theirs = {c["name"]: c["expirationDate"] for c in report["certificates"]}
    # we also report what kubeadm leaves to the kubelet's rotation
    mine = {
        c["name"]: c["expiration_date"]
        for c in ours["certificates"]
        if c["name"] not in ("kubelet-serving", "kubelet.conf")
    }
    assert mine == theirs
    assert {c["name"] for c in ours["certificate_authorities"]} == {c["name"] for c in report["certificateAuthorities"]}
    assert not ours["unreadable"]


def test_kubelet_serving_cert_passes_hostname_verification(tree):
    """A TLS server with worker1's kubelet serving cert is trusted, for its name and IP, by a
    client that trusts only the cluster CA (what --kubelet-certificate-authority does)."""
    out, _ = tree
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(out / "nodes/worker1/kubelet/kubelet.crt", out / "nodes/worker1/kubelet/kubelet.key")
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]

        def serve():
            for _ in range(3):
                conn, _ = listener.accept()
                with contextlib.suppress(OSError), server_ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(1)

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        client = ssl.create_default_context(cafile=str(out / "pki/ca.crt"))
        for name in ("worker1", "10.123.0.11"):
            with (
                socket.create_connection(("127.0.0.1", port)) as raw,
                client.wrap_socket(raw, server_hostname=name) as tls,
            ):
                assert tls.version()
        with pytest.raises(ssl.SSLCertVerificationError), socket.create_connection(("127.0.0.1", port)) as raw:
            client.wrap_socket(raw, server_hostname="cp1")
        thread.join(5)


# ------------------------------------------------------------------ etcd + apiserver


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def etcd(tree, lab_binaries, tmp_path_factory):
    out, _ = tree
    data = tmp_path_factory.mktemp("etcd-data")
    client, peer = free_port(), free_port()
    n = out / "nodes/cp1/pki/etcd"
    argv = [
        str(lab_binaries / "etcd"),
        "--name=cp1",
        f"--data-dir={data}",
        f"--listen-client-urls=https://127.0.0.1:{client}",
        f"--advertise-client-urls=https://127.0.0.1:{client}",
        f"--listen-peer-urls=https://127.0.0.1:{peer}",
        f"--initial-advertise-peer-urls=https://127.0.0.1:{peer}",
        f"--initial-cluster=cp1=https://127.0.0.1:{peer}",
        f"--cert-file={n}/server.crt",
        f"--key-file={n}/server.key",
        f"--peer-cert-file={n}/peer.crt",
        f"--peer-key-file={n}/peer.key",
        f"--trusted-ca-file={out}/pki/etcd/ca.crt",
        f"--peer-trusted-ca-file={out}/pki/etcd/ca.crt",
        "--client-cert-auth=true",
        "--peer-client-cert-auth=true",
        "--listen-metrics-urls=",
    ]
    log = open(data / "etcd.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    endpoint = f"https://127.0.0.1:{client}"
    try:
        wait_for(
            lambda: etcdctl(lab_binaries, endpoint, out, "pki/etcd/healthcheck-client").returncode == 0 or proc.poll(),
            30,
            "etcd",
        )
        assert proc.poll() is None, (data / "etcd.log").read_text()[-2000:]
        yield endpoint
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


def etcdctl(bins, endpoint, out, client=None, ca_tree=None):
    argv = [
        str(bins / "etcdctl"),
        f"--endpoints={endpoint}",
        f"--cacert={(ca_tree or out)}/pki/etcd/ca.crt",
        "--command-timeout=3s",
    ]
    if client:
        argv += [f"--cert={out}/{client}.crt", f"--key={out}/{client}.key"]
    return subprocess.run([*argv, "endpoint", "health"], capture_output=True, text=True, check=False)


def test_etcd_accepts_the_healthcheck_client(etcd, tree, lab_binaries):
    out, _ = tree
    run = etcdctl(lab_binaries, etcd, out, "pki/etcd/healthcheck-client")
    assert run.returncode == 0, run.stderr
    assert "is healthy" in run.stdout + run.stderr


def test_etcd_refuses_clients_without_a_cert(etcd, tree, lab_binaries):
    out, _ = tree
    run = etcdctl(lab_binaries, etcd, out)
    assert run.returncode != 0
    assert "is healthy" not in run.stdout + run.stderr.replace("is unhealthy", "")


def test_etcd_refuses_a_cert_from_the_wrong_ca(etcd, tree, other_tree, lab_binaries):
    out, _ = tree
    # trust the right server CA, but present a client cert signed by another etcd CA
    run = etcdctl(lab_binaries, etcd, other_tree, "pki/etcd/healthcheck-client", ca_tree=out)
    assert run.returncode != 0
    # etcdctl's own message depends on timing (often just a deadline), so prove
    # the reason with one raw TLS exchange: the server rejects the client cert.
    with pytest.raises(ssl.SSLError, match=r"unknown ca|bad certificate"):
        tls_verdict(etcd, out / "pki/etcd/ca.crt", other_tree / "pki/etcd/healthcheck-client")
    assert etcd_health_over_tls(etcd, out / "pki/etcd/ca.crt", out / "pki/etcd/healthcheck-client").startswith(
        b"HTTP/1.1 200"
    )


def tls_verdict(endpoint, cafile, client, attempts=5):
    """etcd_health_over_tls, tried again while etcd closes the connection before its
    TLS alert arrives (seen under load): such an EOF says nothing either way."""
    for _ in range(attempts - 1):
        try:
            return etcd_health_over_tls(endpoint, cafile, client)
        except ssl.SSLEOFError:
            time.sleep(0.2)
    return etcd_health_over_tls(endpoint, cafile, client)


def etcd_health_over_tls(endpoint, cafile, client):
    """GET /health over a raw TLS connection presenting ``client``.crt/.key."""
    host, port = endpoint.removeprefix("https://").split(":")
    context = ssl.create_default_context(cafile=str(cafile))
    context.load_cert_chain(f"{client}.crt", f"{client}.key")
    with (
        socket.create_connection((host, int(port)), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        tls.sendall(b"GET /health HTTP/1.1\r\nHost: etcd\r\nConnection: close\r\n\r\n")
        return tls.recv(1024)


@pytest.fixture(scope="module")
def apiserver(etcd, tree, lab_binaries, tmp_path_factory):
    out, _ = tree
    work = tmp_path_factory.mktemp("apiserver")
    port = free_port()
    p, n = out / "pki", out / "nodes/cp1/pki"
    argv = [
        str(lab_binaries / "kube-apiserver"),
        "--bind-address=127.0.0.1",
        f"--advertise-address={NODE_IP}",
        f"--secure-port={port}",
        f"--cert-dir={work}",
        f"--etcd-servers={etcd}",
        f"--etcd-cafile={p}/etcd/ca.crt",
        f"--etcd-certfile={p}/apiserver-etcd-client.crt",
        f"--etcd-keyfile={p}/apiserver-etcd-client.key",
        f"--tls-cert-file={n}/apiserver.crt",
        f"--tls-private-key-file={n}/apiserver.key",
        f"--client-ca-file={p}/ca.crt",
        f"--kubelet-certificate-authority={p}/ca.crt",
        f"--kubelet-client-certificate={p}/apiserver-kubelet-client.crt",
        f"--kubelet-client-key={p}/apiserver-kubelet-client.key",
        f"--requestheader-client-ca-file={p}/front-proxy-ca.crt",
        f"--proxy-client-cert-file={p}/front-proxy-client.crt",
        f"--proxy-client-key-file={p}/front-proxy-client.key",
        "--requestheader-allowed-names=front-proxy-client",
        "--requestheader-username-headers=X-Remote-User",
        "--requestheader-group-headers=X-Remote-Group",
        f"--service-account-key-file={p}/sa.pub",
        f"--service-account-signing-key-file={p}/sa.key",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        "--service-cluster-ip-range=10.96.0.0/12",
        "--authorization-mode=Node,RBAC",
        "--anonymous-auth=false",
        "--enable-admission-plugins=NodeRestriction",
        "--profiling=false",
    ]
    log = open(work / "apiserver.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    server = f"https://127.0.0.1:{port}"
    try:
        wait_for(
            lambda: (
                kubectl(lab_binaries, out / "super-admin.conf", server, "get", "--raw", "/readyz").stdout == "ok"
                or proc.poll()
            ),
            90,
            "kube-apiserver",
        )
        assert proc.poll() is None, (work / "apiserver.log").read_text()[-3000:]
        yield server
    finally:
        proc.terminate()
        proc.wait(20)
        log.close()


def kubectl(bins, kubeconfig, server, *args, tls_server_name=None):
    argv = [str(bins / "kubectl"), f"--kubeconfig={kubeconfig}", f"--server={server}", "--request-timeout=10s"]
    if tls_server_name:
        argv.append(f"--tls-server-name={tls_server_name}")
    return subprocess.run([*argv, *args], capture_output=True, text=True, check=False)


def test_admin_conf_needs_the_kubeadm_binding_then_works(apiserver, tree, lab_binaries):
    out, _ = tree
    before = kubectl(lab_binaries, out / "admin.conf", apiserver, "get", "ns")
    assert before.returncode != 0 and "forbidden" in before.stderr.lower(), before.stderr
    bind = kubectl(
        lab_binaries,
        out / "super-admin.conf",
        apiserver,
        "create",
        "clusterrolebinding",
        "kubeadm:cluster-admins",
        "--clusterrole=cluster-admin",
        "--group=kubeadm:cluster-admins",
    )
    assert bind.returncode == 0, bind.stderr
    wait_for(
        lambda: kubectl(lab_binaries, out / "admin.conf", apiserver, "get", "ns").returncode == 0, 20, "RBAC binding"
    )
    namespaces = kubectl(lab_binaries, out / "admin.conf", apiserver, "get", "ns", "-o", "name")
    assert "namespace/kube-system" in namespaces.stdout.split()
    healthz = kubectl(lab_binaries, out / "admin.conf", apiserver, "get", "--raw", "/healthz")
    assert healthz.stdout == "ok", healthz.stderr


@pytest.mark.parametrize(
    "name", ["localhost", "kubernetes", "kubernetes.default.svc.cluster.local", "cp1", NODE_IP, "10.96.0.1"]
)
def test_apiserver_cert_is_valid_for_its_names_and_ips(apiserver, tree, lab_binaries, name):
    out, _ = tree
    run = kubectl(lab_binaries, out / "super-admin.conf", apiserver, "get", "--raw", "/healthz", tls_server_name=name)
    assert run.stdout == "ok", run.stderr


def test_apiserver_via_localhost_dns_name(apiserver, tree, lab_binaries):
    out, _ = tree
    run = kubectl(
        lab_binaries, out / "super-admin.conf", apiserver.replace("127.0.0.1", "localhost"), "get", "--raw", "/healthz"
    )
    assert run.stdout == "ok", run.stderr


def test_apiserver_cert_is_refused_for_other_names(apiserver, tree, lab_binaries):
    out, _ = tree
    run = kubectl(
        lab_binaries,
        out / "super-admin.conf",
        apiserver,
        "get",
        "--raw",
        "/healthz",
        tls_server_name="evil.example.com",
    )
    assert run.returncode != 0
    assert "x509" in run.stderr or "certificate" in run.stderr


def test_apiserver_refuses_a_client_from_the_wrong_ca(apiserver, other_tree, tree, lab_binaries, tmp_path):
    out, _ = tree
    # other tree's admin credentials, but trusting our CA for the server
    other = _kubeconfig.parse((other_tree / "super-admin.conf").read_bytes())
    ours = _kubeconfig.parse((out / "super-admin.conf").read_bytes())
    forged = tmp_path / "forged.conf"
    forged.write_bytes(
        _kubeconfig.render("x", ours["server"], "kubernetes-super-admin", ours["ca"], other["cert"], other["key"])
    )
    run = kubectl(lab_binaries, forged, apiserver, "get", "ns")
    assert run.returncode != 0
    assert "unauthorized" in run.stderr.lower() or "must be logged in" in run.stderr.lower()
