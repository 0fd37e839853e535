"""The lab's data plane is real: kubelets on every node run pods from the
local images, pods reach each other across nodes and on one node, Services and
cluster DNS work, and NetworkPolicies really block and re-open traffic (real
TCP connections made by agnhost `connect`). Runs on the fresh, weak lab,
before any role hardens it; the node restart comes last."""

import json
import os
import subprocess
import time

import pytest
from conftest import CONTAINERS_CONF
from kubeguard_test.kube import DNS_EGRESS_RULE, Kubectl

pytestmark = pytest.mark.lab

NAMESPACE = "dataplane"
# Four agnhost pods: one per node, plus a second one on worker1 for same-node
# traffic. Each serves HTTP on 8080 (netexec) and is a client for the others.
PODS = {"a": "cp1", "b": "worker1", "c": "worker2", "d": "worker1"}


class Cluster(Kubectl):
    def __init__(self, lab, binaries):
        super().__init__(binaries, lab.kubeconfig)
        self.lab = lab

    def exec(self, pod, *argv, timeout=60):
        return self.kubectl("-n", NAMESPACE, "exec", pod, "--", *argv, check=False, timeout=timeout)

    def ip(self, pod):
        return self.get("-n", NAMESPACE, "pod", pod)["status"]["podIP"]

    def connects(self, client, server, port=8080):
        """A real TCP connection from pod `client` to pod `server` (or a name or IP)."""
        target = self.ip(server) if server in PODS else server
        return self.exec(client, "/agnhost", "connect", f"{target}:{port}", "--timeout=2s").returncode == 0

    def http_from(self, client, host, port=80):
        """An HTTP request made by pod `client`'s netexec (upstream e2e's /dial),
        reached through the apiserver's pod proxy; returns the hostnames that answered."""
        path = f"/api/v1/namespaces/{NAMESPACE}/pods/{client}:8080/proxy/dial"
        query = f"host={host}&port={port}&request=hostname&protocol=http&tries=1"
        return json.loads(self.kubectl("get", "--raw", f"{path}?{query}").stdout).get("responses")


def wait_for(condition, timeout=60, interval=1):
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)


def agnhost_pod(name, node, image):
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": {"app": "web", "name": name}},
        "spec": {
            "nodeName": node,
            "terminationGracePeriodSeconds": 1,
            "containers": [
                {
                    "name": "agnhost",
                    "image": image,
                    "imagePullPolicy": "Never",
                    "args": ["netexec", "--http-port=8080"],
                    "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1},
                }
            ],
        },
    }


def policy(name, spec):
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": spec,
    }


@pytest.fixture(scope="module")
def cluster(lab, lab_binaries):
    """The four pods and a ClusterIP Service in front of b, set up once."""
    cluster = Cluster(lab, lab_binaries)
    cluster.kubectl("delete", "namespace", NAMESPACE, "--ignore-not-found", "--wait=true")
    cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
    image = lab.vars["kubeguard_lab_images"]["agnhost"]
    cluster.apply(*(agnhost_pod(name, node, image) for name, node in PODS.items()))
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web-b", "namespace": NAMESPACE},
            "spec": {"selector": {"name": "b"}, "ports": [{"port": 80, "targetPort": 8080}]},
        }
    )
    cluster.kubectl("-n", NAMESPACE, "wait", "--for=condition=Ready", "pod", "--all", "--timeout=120s")
    yield cluster
    cluster.kubectl("delete", "namespace", NAMESPACE, "--wait=false", check=False)


def test_three_ready_nodes_on_both_debian_releases_with_kubelet_1_34(cluster):
    nodes = cluster.get("nodes")["items"]
    assert sorted(n["metadata"]["name"] for n in nodes) == sorted(cluster.lab.hosts)
    for node in nodes:
        ready = {c["type"]: c["status"] for c in node["status"]["conditions"]}["Ready"]
        assert ready == "True", node["metadata"]["name"]
        assert node["status"]["nodeInfo"]["kubeletVersion"].startswith("v1.34."), node["status"]["nodeInfo"]
    images = {n["status"]["nodeInfo"]["osImage"] for n in nodes}
    assert {"Debian GNU/Linux 12 (bookworm)", "Debian GNU/Linux 13 (trixie)"} <= images


def test_agnhost_runs_on_every_node_from_the_local_image(cluster):
    image = cluster.lab.vars["kubeguard_lab_images"]["agnhost"]
    pods = cluster.get("-n", NAMESPACE, "pods")["items"]
    assert {p["spec"]["nodeName"] for p in pods} == set(cluster.lab.hosts)
    for pod in pods:
        assert pod["status"]["phase"] == "Running", pod["metadata"]["name"]
        assert pod["spec"]["containers"][0]["imagePullPolicy"] == "Never"
        assert pod["status"]["containerStatuses"][0]["image"] == image


@pytest.mark.parametrize("pod", sorted(PODS))
def test_logs_and_exec_work_on_every_node(cluster, pod):
    logs = cluster.kubectl("-n", NAMESPACE, "logs", pod, check=False)
    assert logs.returncode == 0, logs.stderr
    assert "Started HTTP server on port 8080" in logs.stdout
    hostname = cluster.exec(pod, "cat", "/etc/hostname")
    assert (hostname.returncode, hostname.stdout.strip()) == (0, pod), hostname.stderr


def test_pod_to_pod_across_nodes_and_on_one_node(cluster):
    assert cluster.connects("a", "b")  # cp1 -> worker1
    assert cluster.connects("b", "c")  # worker1 -> worker2
    assert cluster.connects("c", "a")  # worker2 -> cp1
    assert cluster.connects("d", "b")  # worker1 -> worker1
    # Guards the probe: nothing listens on 9999.
    assert not cluster.connects("a", "b", port=9999)


def test_cluster_ip_service_answers_from_other_nodes(cluster):
    service_ip = cluster.get("-n", NAMESPACE, "service", "web-b")["spec"]["clusterIP"]
    for client in ("a", "c"):  # cp1 and worker2; b runs on worker1
        assert cluster.http_from(client, service_ip) == ["b"], client


def test_coredns_resolves_cluster_names(cluster):
    lookup = cluster.exec("c", "nslookup", "kubernetes.default.svc.cluster.local")
    assert lookup.returncode == 0, lookup.stdout + lookup.stderr
    assert "Server:\t\t10.96.0.10" in lookup.stdout
    assert "Address: 10.96.0.1\n" in lookup.stdout
    # The short name, through the pod's search path (the pod's only resolver is CoreDNS).
    assert cluster.connects("c", "kubernetes.default", port=443)
    assert not cluster.connects("c", "no-such-service.default", port=443)
    assert cluster.http_from("a", "web-b") == ["b"]


def test_network_policies_block_and_reopen_real_traffic(cluster):
    pairs = [("a", "b"), ("d", "b"), ("a", "c"), ("d", "c")]

    def reachable():
        return {pair: cluster.connects(*pair) for pair in pairs}

    assert reachable() == dict.fromkeys(pairs, True)

    # Default-deny ingress blocks everything, across nodes and on one node.
    cluster.apply(policy("deny-ingress", {"podSelector": {}, "policyTypes": ["Ingress"]}))
    assert wait_for(lambda: reachable() == dict.fromkeys(pairs, False)), reachable()

    # An allow rule re-opens exactly its pair: d -> b on 8080.
    allow = {
        "podSelector": {"matchLabels": {"name": "b"}},
        "policyTypes": ["Ingress"],
        "ingress": [{"from": [{"podSelector": {"matchLabels": {"name": "d"}}}], "ports": [{"port": 8080}]}],
    }
    cluster.apply(policy("allow-d-to-b", allow))
    assert wait_for(lambda: cluster.connects("d", "b")), "the allowed pair stayed blocked"
    assert reachable() == {("a", "b"): False, ("d", "b"): True, ("a", "c"): False, ("d", "c"): False}

    # Deleting the policies re-opens everything.
    cluster.kubectl("-n", NAMESPACE, "delete", "networkpolicy", "--all")
    assert wait_for(lambda: reachable() == dict.fromkeys(pairs, True)), reachable()


def test_default_deny_egress_still_allows_the_allowed_dns(cluster):
    egress = {
        "podSelector": {},
        "policyTypes": ["Egress"],
        "egress": [DNS_EGRESS_RULE],
    }
    cluster.apply(policy("deny-egress-but-dns", egress))
    try:
        assert wait_for(lambda: not cluster.connects("a", "c")), "egress was not blocked"
        assert not cluster.connects("d", "b")
        lookup = cluster.exec("a", "nslookup", "kubernetes.default.svc.cluster.local")
        assert lookup.returncode == 0 and "Address: 10.96.0.1\n" in lookup.stdout, lookup.stdout + lookup.stderr
    finally:
        cluster.kubectl("-n", NAMESPACE, "delete", "networkpolicy", "--all")
    assert wait_for(lambda: cluster.connects("a", "c") and cluster.connects("d", "b"))


def test_a_restarted_worker_comes_back_with_pods_and_routes(cluster):
    """Last: podman restart of worker2; it is Ready again, its pod runs, and
    cross-node traffic works again (the routes came back at boot)."""
    lab = cluster.lab
    container = lab.hostvars["worker2"]["kubeguard_lab_container"]
    before = cluster.get("-n", NAMESPACE, "pod", "c")["status"]["containerStatuses"][0]["containerID"]
    restart = subprocess.run(
        ["podman", "restart", "-t", "10", container],
        capture_output=True,
        text=True,
        env={**os.environ, "CONTAINERS_CONF": CONTAINERS_CONF},
        check=False,
    )
    assert restart.returncode == 0, restart.stderr

    def back():
        pod = cluster.get("-n", NAMESPACE, "pod", "c")
        status = pod["status"].get("containerStatuses", [{}])[0]
        return status.get("ready") and status.get("containerID") != before

    assert wait_for(back, timeout=180, interval=3), cluster.get("-n", NAMESPACE, "pod", "c")["status"]
    node = cluster.get("node", "worker2")
    assert {c["type"]: c["status"] for c in node["status"]["conditions"]}["Ready"] == "True"
    assert wait_for(lambda: cluster.connects("a", "c") and cluster.connects("c", "b"), timeout=60)
