"""LAYOUT=kubeadm-ha has the production shape it claims, proven on the running
lab: `kubeadm init --upload-certs` and `kubeadm join` made three control
planes with stacked etcd behind a load balancer health-checked on /readyz,
and two workers; kube-proxy and CoreDNS are kubeadm's; the workloads run.
Marked `ha`: selected only when the layout is kubeadm-ha (conftest.py), e.g.
`LAB_ID=23 LAYOUT=kubeadm-ha make lab && LAB_ID=23 LAYOUT=kubeadm-ha pytest -q -m ha tests/integration`."""

import csv
import json
import ssl
import time
import urllib.error
import urllib.request
import uuid

import pytest
from conftest import LAB_ID
from kubeguard_test.kube import Kubectl

pytestmark = [pytest.mark.lab, pytest.mark.ha]

API_PORT = 16443 + 100 * LAB_ID
ETCD_TLS = [
    "--cacert=/etc/kubernetes/pki/etcd/ca.crt",
    "--cert=/etc/kubernetes/pki/etcd/healthcheck-client.crt",
    "--key=/etc/kubernetes/pki/etcd/healthcheck-client.key",
]


@pytest.fixture(scope="module")
def kube(lab, lab_binaries):
    return Kubectl(lab_binaries, lab.kubeconfig)


def wait_for(condition, timeout=120, interval=1):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


def readyz(host, port=6443):
    """HTTP status of an anonymous GET /readyz on a new TLS connection (0: no answer)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(f"https://{host}:{port}/readyz", context=context, timeout=5) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0


def lb_servers(lab):
    """{apiserver: HAProxy's CSV status row} from the load balancer's stats page."""
    lb_ip = lab.vars["kubeguard_control_plane_endpoint"].split(":")[0]
    with urllib.request.urlopen(f"http://{lb_ip}:8404/stats;csv", timeout=5) as answer:
        text = answer.read().decode().lstrip("# ")
    rows = csv.DictReader(text.splitlines())
    return {r["svname"]: r for r in rows if r["pxname"] == "apiservers" and r["svname"] not in ("FRONTEND", "BACKEND")}


def test_the_inventory_has_the_ha_shape(lab):
    assert lab.groups["control_plane"] == ["cp1", "cp2", "cp3"]
    assert lab.groups["etcd"] == ["cp1", "cp2", "cp3"]
    assert lab.groups["workers"] == ["worker1", "worker2"]
    assert lab.vars["kubeguard_lab_layout"] == "kubeadm-ha"
    # controlPlaneEndpoint is the load balancer, not a control plane.
    endpoint = lab.vars["kubeguard_control_plane_endpoint"]
    assert endpoint.endswith(".20:6443")
    assert endpoint.split(":")[0] not in {h["kubeguard_node_ip"] for h in lab.hostvars.values()}
    # Both Debian releases among the control planes.
    assert {lab.hostvars[h]["kubeguard_lab_release"] for h in lab.groups["control_plane"]} == {"bookworm", "trixie"}


def test_kubeadm_made_the_cluster_behind_the_load_balancer(lab):
    config = lab.podman_exec(
        "cp1",
        "kubectl",
        "--kubeconfig=/etc/kubernetes/admin.conf",
        "-n",
        "kube-system",
        "get",
        "configmap",
        "kubeadm-config",
        "-o",
        "jsonpath={.data.ClusterConfiguration}",
    )
    assert config.returncode == 0, config.stderr
    assert f"controlPlaneEndpoint: {lab.vars['kubeguard_control_plane_endpoint']}" in config.stdout
    # kubeadm's kubelet.conf: the workers reach the API through the load
    # balancer, each control plane's kubelet its own apiserver (kubeadm's local mode).
    for host in lab.hosts:
        conf = lab.podman_exec(host, "grep", "server:", "/etc/kubernetes/kubelet.conf")
        assert conf.returncode == 0, (host, conf.stderr)
        expected = lab.vars["kubeguard_control_plane_endpoint"]
        if host in lab.groups["control_plane"]:
            expected = f"{lab.hostvars[host]['kubeguard_node_ip']}:6443"
        assert conf.stdout.split() == ["server:", f"https://{expected}"], host


def test_three_etcd_members_are_healthy_over_tls(lab):
    members = lab.podman_exec(
        "cp1", "etcdctl", "--endpoints=https://127.0.0.1:2379", *ETCD_TLS, "member", "list", "-w", "json"
    )
    assert members.returncode == 0, members.stderr
    listed = json.loads(members.stdout)["members"]
    assert sorted(m["name"] for m in listed) == ["cp1", "cp2", "cp3"]
    assert not any(m.get("isLearner") for m in listed)
    ips = {lab.hostvars[h]["kubeguard_node_ip"] for h in lab.groups["etcd"]}
    assert {url for m in listed for url in m["clientURLs"]} == {f"https://{ip}:2379" for ip in ips}
    health = lab.podman_exec(
        "cp1",
        "etcdctl",
        "--endpoints=https://127.0.0.1:2379",
        *ETCD_TLS,
        "endpoint",
        "health",
        "--cluster",
        "-w",
        "json",
    )
    assert health.returncode == 0, health.stdout + health.stderr
    assert sorted(e["endpoint"] for e in json.loads(health.stdout) if e["health"]) == sorted(
        f"https://{ip}:2379" for ip in ips
    )
    # Plain HTTP gets no answer: etcd speaks only TLS.
    plain = lab.podman_exec(
        "cp1", "etcdctl", "--endpoints=http://127.0.0.1:2379", "--dial-timeout=3s", "endpoint", "health"
    )
    assert plain.returncode != 0


def test_three_apiservers_ready_behind_the_load_balancer(lab, kube):
    for host in lab.groups["control_plane"]:
        assert readyz(lab.hostvars[host]["kubeguard_node_ip"]) == 200, host
    assert readyz("127.0.0.1", API_PORT) == 200
    # The load balancer's own view: every apiserver up, its last check an HTTP 200 (GET /readyz).
    servers = lb_servers(lab)
    assert sorted(servers) == lab.groups["control_plane"]
    assert {(s["status"], s["check_status"], s["check_code"]) for s in servers.values()} == {("UP", "L7OK", "200")}
    # Each apiserver registers itself in the default/kubernetes Service.
    addresses = {
        address
        for piece in kube.get("-n", "default", "endpointslices", "-l", "kubernetes.io/service-name=kubernetes")["items"]
        for endpoint in piece["endpoints"]
        for address in endpoint["addresses"]
    }
    assert addresses == {lab.hostvars[h]["kubeguard_node_ip"] for h in lab.groups["control_plane"]}


def test_the_load_balancer_keeps_answering_without_one_apiserver(lab, kube):
    """kube-apiserver's static pod manifest taken away on cp2: the kubelet
    stops it, the load balancer's /readyz check drops it, and every request
    through the load balancer still succeeds; put back, it rejoins."""
    host, ip = "cp2", lab.hostvars["cp2"]["kubeguard_node_ip"]
    manifest, aside = "/etc/kubernetes/manifests/kube-apiserver.yaml", "/etc/kubernetes/kube-apiserver.yaml.aside"
    assert lab.podman_exec(host, "mv", manifest, aside).returncode == 0
    try:
        assert wait_for(lambda: readyz(ip) == 0), "cp2's apiserver did not stop"
        assert wait_for(lambda: lb_servers(lab)[host]["status"] == "DOWN", timeout=30)
        answers = [readyz("127.0.0.1", API_PORT) for _ in range(30)]
        assert answers == [200] * 30
        nodes = kube("get", "nodes", "-o", "name")
        assert len(nodes.stdout.split()) == 5
    finally:
        assert lab.podman_exec(host, "mv", aside, manifest).returncode == 0
    assert wait_for(lambda: readyz(ip) == 200, timeout=180), "cp2's apiserver did not come back"
    assert wait_for(lambda: lb_servers(lab)[host]["status"] == "UP", timeout=30)
    assert readyz("127.0.0.1", API_PORT) == 200


def test_five_nodes_are_ready(lab, kube):
    nodes = kube.get("nodes")["items"]
    ready = {
        n["metadata"]["name"]
        for n in nodes
        if any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"]["conditions"])
    }
    assert ready == set(lab.hosts)
    control_planes = {
        n["metadata"]["name"] for n in nodes if "node-role.kubernetes.io/control-plane" in n["metadata"]["labels"]
    }
    assert control_planes == set(lab.groups["control_plane"])


def test_kube_proxy_and_coredns_run_as_kubeadm_installs_them(lab, kube):
    proxy = kube.get("-n", "kube-system", "daemonset", "kube-proxy")
    assert proxy["status"]["numberReady"] == 5
    assert proxy["spec"]["template"]["spec"]["containers"][0]["image"] == lab.vars["kubeguard_lab_images"]["kube-proxy"]
    config = kube.get("-n", "kube-system", "configmap", "kube-proxy")["data"]["config.conf"]
    assert "mode: nftables" in config
    coredns = kube.get("-n", "kube-system", "deployment", "coredns")
    assert coredns["status"].get("readyReplicas") == coredns["spec"]["replicas"] == 2
    # Spread over two nodes, as kubeadm's anti-affinity asks once there are several.
    pods = kube.get("-n", "kube-system", "pods", "-l", "k8s-app=kube-dns")["items"]
    assert len({p["spec"]["nodeName"] for p in pods if p["status"]["phase"] == "Running"}) == 2
    assert kube.get("-n", "kube-system", "service", "kube-dns")["spec"]["clusterIP"] == "10.96.0.10"


def service_ips(lab, host):
    """The keys of this node's kube-proxy service-ips map, as kube-proxy reads them back (nft --json)."""
    out = lab.podman_exec(host, "nft", "--json", "list", "map", "ip", "kube-proxy", "service-ips").stdout
    found = [item["map"] for item in json.loads(out or '{"nftables": []}')["nftables"] if "map" in item]
    return sorted(json.dumps(key["concat"]) for key, _verdict in (found[0].get("elem") or [])) if found else []


def test_a_kube_proxy_roll_keeps_every_service_ip(lab, kube):
    """kube-proxy's full sync at start deletes the elements it reads back in another form than it writes:
    its image needs /etc/protocols, or nft prints the protocol as a number and the map empties."""
    before = {host: service_ips(lab, host) for host in lab.hosts}
    assert all(before.values()) and all('"tcp"' in " ".join(keys) for keys in before.values()), before
    kube("-n", "kube-system", "rollout", "restart", "daemonset/kube-proxy")
    kube("-n", "kube-system", "rollout", "status", "daemonset/kube-proxy", "--timeout=240s", timeout=300)
    for host in lab.hosts:
        # a later sync could only add what a Service created meanwhile: none is
        assert wait_for(lambda host=host: service_ips(lab, host) == before[host], timeout=60), (
            host,
            service_ips(lab, host),
            before[host],
        )
    pod = kube.get("-n", "kube-system", "pods", "-l", "k8s-app=kube-proxy")["items"][0]["metadata"]["name"]
    listed = kube(
        "-n", "kube-system", "exec", pod, "--", "nft", "--json", "list", "map", "ip", "kube-proxy", "service-ips"
    )
    assert '"tcp"' in listed.stdout, listed.stdout[:500]


@pytest.mark.parametrize("namespace", ["shop", "batch"])
def test_the_clients_get_200s_from_the_shop_service(kube, namespace):
    web = kube.get("-n", "shop", "deployment", "web")
    assert web["status"].get("readyReplicas") == 3
    assert kube.get("-n", "shop", "poddisruptionbudget", "web")["status"]["currentHealthy"] == 3

    # Each client line: "HH:MM:SS HTTP/1.1 200 OK <answering pod>" (lab/node/workloads-ha.yaml).
    def answers():
        logs = kube("-n", namespace, "logs", "deployment/client", "--since=40s", check=False).stdout.splitlines()
        return [line.split(" ", 1)[1] for line in logs if " " in line]

    def answered():
        last = answers()[-3:]
        return len(last) == 3 and all(a.startswith("HTTP/1.1 200 OK web-") for a in last)

    assert wait_for(answered, timeout=60), kube("-n", namespace, "logs", "deployment/client", "--tail=5").stdout
    if namespace == "shop":  # one request a second: the Service spreads them over the replicas
        assert len({a.split()[-1] for a in answers() if a.startswith("HTTP/1.1 200 OK web-")}) >= 2


def test_the_job_reads_its_configmap_with_its_token(kube):
    job = f"read-config-{uuid.uuid4().hex[:6]}"
    kube("-n", "batch", "create", "job", job, "--from=cronjob/read-config")
    try:
        kube("-n", "batch", "wait", "--for=condition=Complete", f"job/{job}", "--timeout=120s")
        assert kube("-n", "batch", "logs", f"job/{job}").stdout == "hello from app-config"
    finally:
        kube("-n", "batch", "delete", "job", job, "--wait=false")
    # Its Role names that one ConfigMap and nothing else.
    who = "--as=system:serviceaccount:batch:config-reader"
    assert kube("auth", "can-i", "get", "configmap/app-config", "-n", "batch", who).stdout.strip() == "yes"
    assert (
        kube("auth", "can-i", "get", "configmap/kube-root-ca.crt", "-n", "batch", who, check=False).stdout.strip()
        == "no"
    )


def test_kubeadm_prints_a_working_join_command(lab, kube):
    made = lab.podman_exec("cp1", "kubeadm", "token", "create", "--print-join-command", "--ttl=10m")
    assert made.returncode == 0, made.stderr
    words = made.stdout.split()
    assert words[:3] == ["kubeadm", "join", lab.vars["kubeguard_control_plane_endpoint"]]
    token = words[words.index("--token") + 1]
    assert words[words.index("--discovery-token-ca-cert-hash") + 1].startswith("sha256:")
    try:
        # The bootstrap signer signs cluster-info for the new token: what `kubeadm join` verifies.
        token_id = token.split(".")[0]
        assert wait_for(
            lambda: f"jws-kubeconfig-{token_id}" in kube.get("-n", "kube-public", "configmap", "cluster-info")["data"],
            timeout=60,
        )
    finally:
        lab.podman_exec("cp1", "kubeadm", "token", "delete", token_id)
