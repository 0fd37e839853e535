"""The network_policy role on namespaces that serve traffic: before default-deny takes effect, it
reads the live flows from the nodes' conntrack tables, maps them to pods and refuses to cut them.

shop runs web (agnhost netexec, 2 replicas, a ClusterIP Service) and a client calling the Service
every second; batch runs a client calling shop's Service every 2 s across namespaces. Both clients
log one line per request ("HH:MM:SS HTTP/1.1 200 OK web-..." or, on a failure, no status), so
their logs count real requests. The role, with its defaults, refuses and lists shop -> shop and
batch -> shop (from conntrack, the pod behind the Service address), writing nothing; check mode
lists them and passes. With the suggested allow rules for shop and batch allowed to be cut, it
enforces: the shop client sees no failure while batch is cut, and a rerun changes nothing."""

import json
import time

import pytest
from apiserver_fixture import REPO, ansible
from kubeguard_test.kube import Kubectl

pytestmark = pytest.mark.lab

NAMESPACES = ("shop", "batch")
REFUSE = "Refuse to cut live flows unless allowed"
JUDGE = "Map the flows to pods and find those the new policies would block"
CUT_TIMEOUT = 60


def client(namespace, target, period, image):
    request = (
        "r=$(printf 'GET /hostname HTTP/1.1\\r\\nHost: web\\r\\nConnection: close\\r\\n\\r\\n' |"
        f" busybox nc -w 2 {target} 80 | busybox tr -d '\\r');"
        ' echo "$(busybox date -u +%T) $(echo "$r" | busybox head -n 1) $(echo "$r" | busybox tail -n 1)"'
    )
    return deployment(
        namespace,
        "client",
        {
            "name": "client",
            "image": image,
            "imagePullPolicy": "Never",
            "command": ["/bin/sh", "-c"],
            "args": [f"while true; do {request}; busybox sleep {period}; done"],
        },
    )


def deployment(namespace, app, container, replicas=1):
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": app, "namespace": namespace},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": app}},
            "template": {
                "metadata": {"labels": {"app": app}},
                "spec": {
                    "terminationGracePeriodSeconds": 0,
                    "automountServiceAccountToken": False,
                    "containers": [container],
                },
            },
        },
    }


def workloads(image):
    web = {
        "name": "netexec",
        "image": image,
        "imagePullPolicy": "Never",
        "args": ["netexec", "--http-port=8080"],
        "ports": [{"name": "http", "containerPort": 8080}],
        "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 2},
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
    }
    return [
        *({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}} for ns in NAMESPACES),
        deployment("shop", "web", web, replicas=2),
        service,
        client("shop", "web", 1, image),
        client("batch", "web.shop.svc.cluster.local", 2, image),
    ]


class Lab(Kubectl):
    def __init__(self, lab, binaries, tmp):
        super().__init__(binaries, lab.kubeconfig)
        self.lab = lab
        self.tmp = tmp

    def role(self, *extra, **variables):
        """One run of playbooks/network_policy.yml (audit skipped): (process, stats, tasks)."""
        varsfile = self.tmp / f"vars-{time.monotonic_ns()}.json"
        varsfile.write_text(json.dumps(variables))
        playbook = REPO / "playbooks/network_policy.yml"
        return ansible(
            playbook, self.lab.inventory, "-e", f"@{varsfile}", "--skip-tags", "network_policy_audit", *extra
        )

    def log(self, namespace):
        """The client's request lines: (ok, line)."""
        lines = self.kubectl("-n", namespace, "logs", "deploy/client").stdout.splitlines()
        return [("200 OK" in line, line) for line in lines if line.strip()]

    def policies(self):
        found = self.get("networkpolicy", "-A")["items"]
        return sorted(
            f"{p['metadata']['namespace']}/{p['metadata']['name']}"
            for p in found
            if p["metadata"]["namespace"] in NAMESPACES
        )

    def wait_log(self, namespace, done, what):
        deadline = time.monotonic() + CUT_TIMEOUT
        while not done(self.log(namespace)):
            assert time.monotonic() < deadline, (
                f"{namespace} client: {what} within {CUT_TIMEOUT}s: {self.log(namespace)[-5:]}"
            )
            time.sleep(1)


@pytest.fixture(scope="module")
def shop(lab, lab_binaries, tmp_path_factory):
    cluster = Lab(lab, lab_binaries, tmp_path_factory.mktemp("np-live-flows"))
    for ns in NAMESPACES:
        cluster.kubectl("delete", "namespace", ns, "--ignore-not-found", "--wait=true", timeout=180)
    cluster.apply(*workloads(lab.vars["kubeguard_lab_images"]["agnhost"]))
    for ns in NAMESPACES:
        cluster.kubectl(
            "-n", ns, "wait", "--for=condition=Available", "deployment", "--all", "--timeout=120s", timeout=150
        )
    yield cluster
    # the rest of the lab stream never sees these namespaces (site.yml's baseline would be asked about them)
    for ns in NAMESPACES:
        cluster.kubectl("delete", "namespace", ns, "--ignore-not-found", "--wait=true", timeout=180, check=False)


def flows(tasks, kind):
    judged = next(t for t in tasks if t["task"].endswith(JUDGE))
    return {(f["source"].split("-")[0], f["destination"].split("-")[0], f["port"]) for f in judged[kind]}, judged


def test_refused_then_enforced_with_the_suggested_rules_shop_keeps_working_batch_is_cut(shop):
    # both clients have been served, so conntrack holds their flows
    for ns in NAMESPACES:
        shop.wait_log(ns, lambda log: sum(ok for ok, _ in log) >= 2, "two answered requests")
    start = {ns: len(shop.log(ns)) for ns in NAMESPACES}

    refused, stats, tasks = shop.role()
    assert refused.returncode != 0
    failed = [t for t in tasks if t.get("failed")]
    assert [t["task"].endswith(REFUSE) for t in failed] == [True], failed
    listed, judged = flows(tasks, "refused")
    assert listed == {("shop/client", "shop/web", "tcp/8080"), ("batch/client", "shop/web", "tcp/8080")}, judged
    # seen through the Service: conntrack's reply tuple named the pod behind the ClusterIP
    service_ip = shop.get("-n", "shop", "service", "web")["spec"]["clusterIP"]
    texts = [f["text"] for f in judged["refused"]]
    for source in ("shop/client", "batch/client"):
        assert any(f"{service_ip}:80" in f["via"] for f in judged["refused"] if f["source"].startswith(source)), texts
    assert "network_policy_live_flows_allow_cut" in failed[0]["msg"] and "shop" in failed[0]["msg"]
    assert shop.policies() == []  # nothing written
    print("refused:", *(f["text"] for f in judged["refused"]), sep="\n  ")

    checked, _, tasks = shop.role("--check")
    assert checked.returncode == 0, checked.stdout[-2000:]
    assert flows(tasks, "refused")[0] == listed
    assert shop.policies() == []

    keep = [rule for rule in judged["suggested_rules"] if rule["name"].startswith("allow-live-shop-to-shop-")]
    assert {rule["spec"]["policyTypes"][0] for rule in keep} == {"Egress", "Ingress"}, judged["suggested_rules"]
    variables = {"network_policy_custom_rules": keep, "network_policy_live_flows_allow_cut": ["batch"]}
    enforced, stats, tasks = shop.role(**variables)
    assert enforced.returncode == 0, [(t["task"], t.get("msg")) for t in tasks if t.get("failed")]
    accepted, judged = flows(tasks, "accepted")
    assert judged["refused"] == [] and ("batch/client", "shop/web", "tcp/8080") in accepted, judged
    assert sum(s["changed"] for s in stats.values()) > 0
    assert any(p.endswith("/kubeguard-default-deny") for p in shop.policies())
    # the transition allow-all held shop and batch open while the set went in, and is gone
    transition = next(t for t in tasks if t["task"].endswith("until every policy is in place"))
    assert transition.get("changed"), transition
    assert not any("transition" in p for p in shop.policies()), shop.policies()

    # real packets: batch is cut (three failed requests in a row), shop keeps being served meanwhile
    shop.wait_log("batch", lambda log: len(log) >= 3 and not any(ok for ok, _ in log[-3:]), "cut off")
    cut_at = len(shop.log("shop"))
    shop.wait_log("shop", lambda log: len(log) >= cut_at + 3, "three more requests")
    served = shop.log("shop")[start["shop"] :]
    failures = [line for ok, line in served if not ok]
    batch = shop.log("batch")[start["batch"] :]
    print(
        f"shop: {len(served)} requests during the test, {len(failures)} failed; batch: {len(batch)} requests, "
        f"{sum(not ok for ok, _ in batch)} failed"
    )
    assert failures == [], failures

    again, stats, tasks = shop.role(**variables)
    assert again.returncode == 0
    assert {host: s["changed"] for host, s in stats.items()} == dict.fromkeys(stats, 0)
    assert next(t for t in tasks if t["task"].endswith(JUDGE)).get("skipped")  # nothing changes: no node is read
