"""The endpoint check before a kubeconfig is repointed: real name
resolution and real TLS handshakes against a loopback server whose
certificate the engine issued."""

import socket
import ssl
import threading

import pytest
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError
from ansible_collections.kubeguard.hardening.plugins.module_utils._pki import _endpoint, _engine, _kubeconfig


def tree(path):
    params = {
        "output_dir": str(path),
        "cluster_name": "unit",
        "control_plane_nodes": [{"name": "cp1", "ips": ["127.0.0.1"]}],
        "service_cidr": "10.96.0.0/12",
        "dns_domain": "cluster.local",
        "key_algorithm": "ECDSA-P256",
        "ca_validity_days": 3650,
        "leaf_validity_days": 365,
        "renew_before_days": 30,
    }
    _engine.run(params)
    return path


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    return tree(tmp_path_factory.mktemp("cluster"))


@pytest.fixture(scope="module")
def apiserver(cluster):
    """A TLS server on loopback serving the cluster's apiserver certificate."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cluster / "nodes/cp1/pki/apiserver.crt", cluster / "nodes/cp1/pki/apiserver.key")
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            try:
                with context.wrap_socket(conn, server_side=True):
                    pass
            except (OSError, ssl.SSLError):
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    listener.close()


def closed_port():
    with socket.create_server(("127.0.0.1", 0)) as sock:
        return sock.getsockname()[1]


def test_the_cluster_apiserver_verifies(cluster, apiserver):
    assert _endpoint.probe(f"https://127.0.0.1:{apiserver}", (cluster / "pki/ca.crt").read_bytes(), 5) is None


def test_another_ca_is_refused(cluster, apiserver, tmp_path):
    other = tree(tmp_path / "other")
    reason = _endpoint.probe(f"https://127.0.0.1:{apiserver}", (other / "pki/ca.crt").read_bytes(), 5)
    assert "the cluster CA does not verify" in reason


@pytest.mark.parametrize(
    "url, words",
    [("https://noport.invalid:6443", "does not resolve"), (None, "does not complete a TLS handshake")],
)
def test_unresolvable_or_closed_endpoints_are_refused(cluster, url, words):
    url = url or f"https://127.0.0.1:{closed_port()}"
    assert words in _endpoint.probe(url, (cluster / "pki/ca.crt").read_bytes(), 5)


def node(tmp_path, server):
    """A node whose admin.conf points at ``server``."""
    kdir = tmp_path / "k8s"
    kdir.mkdir()
    ca = b"-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"
    (kdir / "admin.conf").write_bytes(_kubeconfig.render("unit", server, "admin", ca, ca, b"key"))
    return {"kubernetes_dir": str(kdir), "kubelet_pki_dir": str(tmp_path / "kubelet"), "timeout": 5}


def admin(server):
    return {"root": "kubernetes", "dest": "admin.conf", "server": server, "server_option": "control_plane_endpoint"}


def test_an_unchanged_or_new_kubeconfig_is_not_probed(tmp_path):
    params = node(tmp_path, "https://noport.invalid:6443")
    files = [admin("https://noport.invalid:6443"), dict(admin("https://noport.invalid:1"), dest="kubelet.conf")]
    assert _endpoint.run(dict(params, files=files, ca_certificate="")) == {"changed": False, "checked": []}


def test_a_repointed_kubeconfig_must_reach_its_new_server(tmp_path, cluster, apiserver):
    params = node(tmp_path, "https://10.0.0.1:6443")
    ca = (cluster / "pki/ca.crt").read_text()
    good = f"https://127.0.0.1:{apiserver}"
    result = _endpoint.run(dict(params, files=[admin(good)], ca_certificate=ca))
    assert result["checked"] == [
        {"path": str(tmp_path / "k8s/admin.conf"), "from": "https://10.0.0.1:6443", "to": good}
    ]
    with pytest.raises(KubeguardError, match=r"noport\.invalid:6443 does not resolve") as error:
        _endpoint.run(dict(params, files=[admin("https://noport.invalid:6443")], ca_certificate=ca))
    assert error.value.option == "control_plane_endpoint"
    assert "cluster_pki_control_plane_endpoint" in str(error.value)
    assert "nothing was written" in str(error.value)
