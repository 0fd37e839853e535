"""The cluster after site.yml, proven with real requests: etcd speaks TLS only,
the apiserver refuses anonymous and unauthorized clients, a Secret is
encrypted in etcd, and a default-deny NetworkPolicy blocks real pod traffic.

Runs on the control-plane node(s) of the cluster's inventory: kubectl,
etcdctl and curl run there with kubeadm's files (/etc/kubernetes), which
site.yml's cluster_pki role lays out. Each check also shows that its request
really got through (etcd healthy over mutual TLS, the pods connected once a
policy allows it), so a broken network cannot pass for a hardened cluster."""

import base64
import json
import shlex
import types

import pytest
from kubeguard_test.api import https
from kubeguard_test.waiting import wait_for

testinfra_hosts = ["control_plane"]

PKI = "/etc/kubernetes/pki"
KUBECTL = "kubectl --kubeconfig /etc/kubernetes/admin.conf --request-timeout=30s"
NAMESPACE = "default"  # site.yml's network_policy baseline denies all traffic in it
SECRET_VALUE = "molecule-cluster-plain-text"
# agnhost serves HTTP and makes single TCP connections (the upstream network policy tests' image).
AGNHOST = "registry.k8s.io/e2e-test-images/agnhost:2.53"


def kubectl(host, args, stdin=None):
    """``kubectl <args>`` on the node; ``stdin``: an object, sent as JSON (for ``apply -f -``)."""
    command = f"{KUBECTL} {args}"
    if stdin is not None:
        command = f"echo {shlex.quote(json.dumps(stdin))} | {command}"
    return host.run(command)


def etcd_curl(host, url, *options):
    return host.run(" ".join(["curl", "-sS", "--max-time", "5", *options, url]))


def api_status(host, path, cert=None):
    """HTTP status of GET https://<node>:6443<path>, as the given client certificate or anonymous."""
    identity = types.SimpleNamespace(cert=cert[0], key=cert[1]) if cert else None
    return https(6443, path, identity, host=host.ansible.get_variables()["kubeguard_node_ip"])[0]


def test_etcd_refuses_plain_http_and_clients_without_a_certificate(host):
    plain = etcd_curl(host, "http://127.0.0.1:2379/health")
    assert '"health":"true"' not in plain.stdout.replace(" ", ""), plain.stdout
    no_cert = etcd_curl(host, "https://127.0.0.1:2379/health", "--cacert", f"{PKI}/etcd/ca.crt")
    assert no_cert.rc != 0, no_cert.stdout
    # The same request with a client certificate of etcd's CA: the server is up, TLS is the only way in.
    good = etcd_curl(
        host,
        "https://127.0.0.1:2379/health",
        *("--cacert", f"{PKI}/etcd/ca.crt", "--cert", f"{PKI}/etcd/healthcheck-client.crt"),
        *("--key", f"{PKI}/etcd/healthcheck-client.key"),
    )
    assert '"health":"true"' in good.stdout.replace(" ", ""), good.stdout + good.stderr


def test_apiserver_answers_anonymous_401_and_an_unauthorized_client_403(host, tmp_path):
    assert api_status(host, "/api") == 401
    # A client certificate of the cluster CA that no RBAC rule names: known, and refused (AlwaysAllow would say 200).
    make = host.run(
        "cd $(mktemp -d) && openssl req -new -newkey rsa:2048 -nodes -keyout k -subj /CN=molecule-nobody -out r"
        f" 2>/dev/null && openssl x509 -req -in r -CA {PKI}/ca.crt -CAkey {PKI}/ca.key -days 1 -out c"
        " 2>/dev/null && cat c k && rm -r $PWD"
    )
    assert make.rc == 0, make.stderr
    pem = make.stdout
    cert, key = tmp_path / "nobody.crt", tmp_path / "nobody.key"
    cert.write_text(pem[: pem.index("-----END CERTIFICATE-----") + 26])
    key.write_text(pem[pem.index("-----BEGIN PRIVATE KEY-----") :])
    key.chmod(0o600)
    assert api_status(host, f"/api/v1/namespaces/{NAMESPACE}/secrets", (cert, key)) == 403


@pytest.fixture
def secret(host):
    made = kubectl(host, f"-n {NAMESPACE} create secret generic molecule-verify --from-literal=v={SECRET_VALUE}")
    assert made.rc == 0, made.stderr
    yield f"/registry/secrets/{NAMESPACE}/molecule-verify"
    kubectl(host, f"-n {NAMESPACE} delete secret molecule-verify --ignore-not-found")


def test_a_secret_is_stored_encrypted_in_etcd(host, secret):
    """Read straight from etcd with the apiserver's own etcd client certificate."""
    read = host.run(
        "etcdctl --endpoints=https://127.0.0.1:2379"
        f" --cacert={PKI}/etcd/ca.crt --cert={PKI}/apiserver-etcd-client.crt --key={PKI}/apiserver-etcd-client.key"
        f" get {secret} -w json"
    )
    assert read.rc == 0, read.stderr
    [kv] = json.loads(read.stdout)["kvs"]
    value = base64.b64decode(kv["value"])
    assert value.startswith(b"k8s:enc:"), value[:40]
    assert SECRET_VALUE.encode() not in value


def pod(name, node, image, args, labels):
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": labels},
        "spec": {
            "nodeName": node,
            "automountServiceAccountToken": False,
            "terminationGracePeriodSeconds": 0,
            "containers": [{"name": "agnhost", "image": image, "imagePullPolicy": "IfNotPresent", "args": args}],
        },
    }


def allow(name, selector, direction, peer):
    """A NetworkPolicy letting the pods labelled ``selector`` talk to or hear ``peer`` on TCP 8080."""
    rule = {
        "to" if direction == "Egress" else "from": [{"podSelector": {"matchLabels": peer}}],
        "ports": [{"port": 8080}],
    }
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"podSelector": {"matchLabels": selector}, "policyTypes": [direction], direction.lower(): [rule]},
    }


@pytest.fixture
def pods(host):
    """An HTTP server and a client pod on two different nodes; the server's pod IP."""
    variables = host.ansible.get_variables()
    image = variables.get("kubeguard_lab_images", {}).get("agnhost", AGNHOST)
    nodes = sorted(variables["groups"]["workers"] or variables["groups"]["k8s_cluster"])
    server = pod("molecule-server", nodes[0], image, ["netexec", "--http-port=8080"], {"molecule": "server"})
    client = pod("molecule-client", nodes[-1], image, ["pause"], {"molecule": "client"})
    applied = kubectl(host, "apply -f -", stdin={"apiVersion": "v1", "kind": "List", "items": [server, client]})
    assert applied.rc == 0, applied.stderr
    try:
        ready = kubectl(
            host, f"-n {NAMESPACE} wait --for=condition=Ready --timeout=120s pod/molecule-server pod/molecule-client"
        )
        assert ready.rc == 0, ready.stderr
        yield kubectl(host, f"-n {NAMESPACE} get pod molecule-server -o jsonpath={{.status.podIP}}").stdout
    finally:
        kubectl(
            host, f"-n {NAMESPACE} delete networkpolicy molecule-allow-egress molecule-allow-ingress --ignore-not-found"
        )
        kubectl(host, f"-n {NAMESPACE} delete pod molecule-server molecule-client --ignore-not-found --wait=false")


def test_default_deny_blocks_pod_traffic_until_a_policy_allows_it(host, pods):
    def connect():
        return kubectl(host, f"-n {NAMESPACE} exec molecule-client -- /agnhost connect {pods}:8080 --timeout=3s")

    blocked = connect()
    assert blocked.rc != 0, "the client pod reached the server pod through the default-deny baseline"
    # The same connection once an explicit allow exists: the deny was the policy's, not a broken network.
    policies = [
        allow("molecule-allow-egress", {"molecule": "client"}, "Egress", {"molecule": "server"}),
        allow("molecule-allow-ingress", {"molecule": "server"}, "Ingress", {"molecule": "client"}),
    ]
    applied = kubectl(host, "apply -f -", stdin={"apiVersion": "v1", "kind": "List", "items": policies})
    assert applied.rc == 0, applied.stderr

    def connected():
        attempt = connect()
        return attempt.rc == 0 or attempt.stdout + attempt.stderr

    wait_for(connected, 90, "the allowed pod-to-pod connection", interval=2)
