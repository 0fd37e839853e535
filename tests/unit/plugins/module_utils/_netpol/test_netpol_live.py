"""Live flows: what would the role's new policies cut? Pure logic over pods, policies and flows as data."""

import pytest
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError
from ansible_collections.kubeguard.hardening.plugins.module_utils._netpol import live, policy
from kubeguard_test.kube import DNS_EGRESS_RULE

BASELINE = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "NetworkPolicy",
    "metadata": {"name": "kubeguard-default-deny", "labels": {"kubeguard.io/set": "network-policy-baseline"}},
    "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
}
PARAMS = {
    "exclude_namespaces": ["kube-system"],
    "namespace_objects": [BASELINE],
    "objects": [],
    "replace_labels": [{"kubeguard.io/set": "network-policy-baseline"}],
}
NAMESPACES = {ns: {"kubernetes.io/metadata.name": ns} for ns in ("shop", "batch", "kube-system", "idle")}


def api_pod(namespace, name, labels, ip, node="worker1", phase="Running", host_network=False, ports=()):
    return {
        "metadata": {"namespace": namespace, "name": name, "labels": labels},
        "spec": {"nodeName": node, "hostNetwork": host_network, "containers": [{"ports": list(ports)}]},
        "status": {"phase": phase, "podIP": ip, "podIPs": [{"ip": ip}]},
    }


PODS = [
    api_pod(
        "shop",
        "web-5d-aaaaa",
        {"app": "web", "pod-template-hash": "5d"},
        "10.244.1.10",
        ports=[{"name": "http", "containerPort": 8080}],
    ),
    api_pod("shop", "web-5d-bbbbb", {"app": "web", "pod-template-hash": "5d"}, "10.244.2.11", node="worker2"),
    api_pod("shop", "client-7c-ccccc", {"app": "client", "pod-template-hash": "7c"}, "10.244.1.12"),
    api_pod("batch", "client-6b-ddddd", {"app": "client", "pod-template-hash": "6b"}, "10.244.2.13", node="worker2"),
    api_pod("kube-system", "coredns-1", {"k8s-app": "kube-dns"}, "10.244.0.2", node="cp1"),
    api_pod("kube-system", "kube-proxy-1", {"k8s-app": "kube-proxy"}, "172.30.23.11", host_network=True),
    api_pod("shop", "done-1", {"app": "job"}, "10.244.1.99", phase="Succeeded"),
]


class FakeService:
    class client:
        requests = 3
        discovery_requests = 1

    def __init__(self, policies=(), pods=PODS):
        self.state = {"Namespace": [{"metadata": {"name": n, "labels": labels}} for n, labels in NAMESPACES.items()]}
        self.state["NetworkPolicy"] = list(policies)
        self.state["Pod"] = list(pods)

    def discover(self, api_versions):
        pass

    def resource(self, api_version, kind, option="objects"):
        return kind

    def list(self, kind):
        return self.state[kind]


def flow(src, dst, port, protocol="TCP", via=()):
    return {"protocol": protocol, "source": src, "destination": dst, "port": port, "via": list(via), "entries": 3}


SHOP_TO_SHOP = flow("10.244.1.12", "10.244.2.11", 8080, via=["10.96.5.5:80"])
BATCH_TO_SHOP = flow("10.244.2.13", "10.244.1.10", 8080, via=["10.96.5.5:80"])
DNS = flow("10.244.1.12", "10.244.0.2", 53, "UDP", via=["10.96.0.10:53"])
NODE_TO_SHOP = flow("172.30.23.11", "10.244.1.10", 8080)


def gathered(*flows, node="worker1"):
    return [{"item": node, "changed": False, "flows": list(flows)}, {"item": "cp1", "skipped": True}]


APPLIED_BY_US = {"manager": "kubeguard", "operation": "Apply"}


def run(gather=None, policies=(), **extra):
    return live.run(dict(PARAMS, gathered=gather, **extra), False, FakeService(policies))


def test_plan_names_the_changing_namespaces_with_running_pods_and_reads_no_flows():
    result = run()
    assert result["namespaces"] == ["batch", "idle", "shop"]
    assert result["needs_flows"] is True
    assert result["running_pods"] == [
        "batch/client-6b-ddddd",
        "shop/client-7c-ccccc",
        "shop/web-5d-aaaaa",
        "shop/web-5d-bbbbb",
    ]
    assert result["cut"] == []


def test_cut_flows_listed_by_pod_and_pod_port_dns_kept_by_the_allow_dns_template():
    dns_template = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "kubeguard-allow-dns", "labels": {"kubeguard.io/set": "network-policy-baseline"}},
        "spec": {"podSelector": {}, "policyTypes": ["Egress"], "egress": [DNS_EGRESS_RULE]},
    }
    result = live.run(
        dict(
            PARAMS,
            namespace_objects=[BASELINE, dns_template],
            gathered=gathered(SHOP_TO_SHOP, BATCH_TO_SHOP, DNS, NODE_TO_SHOP),
        ),
        False,
        FakeService(),
    )
    texts = [f["text"] for f in result["refused"]]
    why = "via 10.96.5.5:80 (blocked by egress and ingress, seen on worker1)"
    assert texts == [
        f"batch/client-6b-ddddd -> shop/web-5d-aaaaa tcp/8080 {why}",
        f"shop/client-7c-ccccc -> shop/web-5d-bbbbb tcp/8080 {why}",
    ]
    assert result["refused_namespaces"] == ["batch", "shop"]
    assert result["unjudged"] == 1  # the node's own connection has no pod identity


def test_allow_cut_accepts_a_flow_by_either_namespace_and_suggestions_cover_only_the_refused():
    result = run(gathered(SHOP_TO_SHOP, BATCH_TO_SHOP), allow_cut=["bat*"])
    assert [f["source"] for f in result["accepted"]] == ["batch/client-6b-ddddd"]
    assert [f["source"] for f in result["refused"]] == ["shop/client-7c-ccccc"]
    assert result["refused_namespaces"] == ["shop"]
    names = [rule["name"] for rule in result["suggested_rules"]]
    assert all(name.startswith("allow-live-shop-to-shop-") for name in names) and len(names) == 2
    egress, ingress = result["suggested_rules"]
    assert egress["namespaces"] == ["shop"] and egress["spec"]["podSelector"] == {"matchLabels": {"app": "client"}}
    assert egress["spec"]["egress"] == [
        {"to": [{"podSelector": {"matchLabels": {"app": "web"}}}], "ports": [{"protocol": "TCP", "port": 8080}]}
    ]
    assert ingress["spec"]["ingress"][0]["from"] == [{"podSelector": {"matchLabels": {"app": "client"}}}]


def expanded(rules):
    return [
        {
            "metadata": {"name": r["name"], "namespace": ns, "labels": {"kubeguard.io/set": "network-policy-custom"}},
            "spec": r["spec"],
        }
        for r in rules
        for ns in r["namespaces"]
    ]


def test_the_suggested_rules_keep_every_refused_flow_and_nothing_else():
    first = run(gathered(SHOP_TO_SHOP, BATCH_TO_SHOP))
    rules = first["suggested_rules"]
    assert {r["namespaces"][0] for r in rules} == {"shop", "batch"}
    cross = next(
        r for r in rules if r["name"].startswith("allow-live-batch-to-shop") and r["name"].endswith("-ingress")
    )
    assert cross["spec"]["ingress"][0]["from"] == [
        {
            "podSelector": {"matchLabels": {"app": "client"}},
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "batch"}},
        }
    ]
    again = run(
        gathered(SHOP_TO_SHOP, BATCH_TO_SHOP),
        objects=expanded(rules),
        replace_labels=PARAMS["replace_labels"] + [{"kubeguard.io/set": "network-policy-custom"}],
    )
    assert again["cut"] == []
    # the rules name the workloads: another pod of batch stays cut off from shop
    stranger = api_pod("batch", "other", {"app": "other"}, "10.244.2.50")
    service = FakeService(pods=[*PODS, stranger])
    params = dict(PARAMS, objects=expanded(rules), gathered=gathered(flow("10.244.2.50", "10.244.1.10", 8080)))
    assert [f["source"] for f in live.run(params, False, service)["refused"]] == ["batch/other"]


def test_a_flow_blocked_today_is_stale_and_a_rerun_changes_no_namespace():
    applied = [dict(BASELINE, metadata=dict(BASELINE["metadata"], namespace=ns)) for ns in ("shop", "batch", "idle")]
    rerun = run(gathered(SHOP_TO_SHOP), policies=applied)
    assert rerun["namespaces"] == [] and rerun["needs_flows"] is False and rerun["cut"] == []
    # a hand-written allow the run does not own stays, and the flow it allows is not cut
    hand = {
        "metadata": {"name": "mine", "namespace": "shop"},
        "spec": {"podSelector": {}, "ingress": [{}], "egress": [{}], "policyTypes": ["Ingress", "Egress"]},
    }
    assert run(gathered(SHOP_TO_SHOP), policies=[hand])["cut"] == []


def test_excluded_namespaces_get_nothing_and_flows_there_are_not_judged():
    result = run(
        gathered(flow("10.244.0.2", "10.244.0.2", 53, "UDP")),
        exclude_namespaces=["kube-system", "shop", "batch", "idle"],
    )
    assert result["namespaces"] == [] and result["cut"] == []


@pytest.mark.parametrize(
    "bad, where",
    [
        ("nope", "gathered"),
        ([{"item": "cp1"}], "gathered"),
        ([{"item": "cp1", "flows": [{"protocol": "ICMP", "port": 1}]}], "gathered"),
    ],
)
def test_bad_gathered_is_refused(bad, where):
    with pytest.raises(KubeguardError) as caught:
        run(bad)
    assert caught.value.option == where


def test_bad_templates_are_refused_naming_the_option():
    with pytest.raises(KubeguardError) as caught:
        run(namespace_objects=[{"metadata": {"name": "x"}, "spec": {"policyTypes": ["Sideways"]}}])
    assert caught.value.option == "namespace_objects"


def test_selector_labels_drop_per_replica_labels():
    pods = [
        policy.Pod("s", "a", {"app": "web", "pod-template-hash": "1"}),
        policy.Pod("s", "b", {"app": "web", "pod-template-hash": "2"}),
    ]
    assert live.selector_labels(pods) == {"app": "web"}


def test_egress_to_an_address_outside_the_pods_is_judged_by_ip_block_and_from_one_left_unjudged():
    to_api = flow("10.244.2.13", "172.30.23.11", 6443, via=["10.96.0.1:443"])  # a hostNetwork address: no pod
    result = run(gathered(to_api, NODE_TO_SHOP))
    assert [f["text"] for f in result["refused"]] == [
        "batch/client-6b-ddddd -> 172.30.23.11 tcp/6443 via 10.96.0.1:443 (blocked by egress, seen on worker1)"
    ]
    (rule,) = result["suggested_rules"]
    assert rule["name"].startswith("allow-live-batch-to-outside-") and rule["namespaces"] == ["batch"]
    assert rule["spec"]["egress"] == [
        {"to": [{"ipBlock": {"cidr": "172.30.23.11/32"}}], "ports": [{"protocol": "TCP", "port": 6443}]}
    ]
    assert result["unjudged"] == 1
    # selectors never match an outside address, even an empty namespaceSelector
    everywhere = {
        "metadata": {"name": "all-pods", "namespace": "batch"},
        "spec": {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{"to": [{"namespaceSelector": {}}]}]},
    }
    assert len(run(gathered(to_api), objects=[everywhere])["refused"]) == 1


def test_transition_opens_only_the_directions_no_policy_isolates_in_namespaces_with_running_pods():
    ingress_only = {"metadata": {"name": "web-in", "namespace": "shop"}, "spec": {"podSelector": {}, "ingress": [{}]}}
    result = run(policies=[ingress_only])
    by_namespace = {p["metadata"]["namespace"]: p["spec"] for p in result["transition"]}
    # idle has no running pod: nothing to keep open there; shop is isolated for ingress already
    assert by_namespace == {
        "batch": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"], "ingress": [{}], "egress": [{}]},
        "shop": {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{}]},
    }
    assert {p["metadata"]["labels"]["kubeguard.io/set"] for p in result["transition"]} == {"network-policy-transition"}
    # a transition policy a failed run left is replaced, not counted as isolation
    leftover = dict(result["transition"][0])
    left = run(policies=[leftover], replace_labels=[{"kubeguard.io/set": "network-policy-transition"}])
    assert left["transition"][0] == leftover
    # only a leftover of ours (applied by our field manager) gives live_flows_close.yml something to prune
    assert not left["transition_present"] and not result["transition_present"]
    ours = {**leftover, "metadata": {**leftover["metadata"], "managedFields": [APPLIED_BY_US]}}
    assert run(policies=[ours])["transition_present"]


def test_audit_from_the_same_read_and_whether_the_run_leaves_it_so():
    applied = [dict(BASELINE, metadata=dict(BASELINE["metadata"], namespace=ns)) for ns in ("shop", "batch", "idle")]
    service = FakeService(applied)
    listed = []
    service.list = lambda kind: listed.append(kind) or service.state[kind]
    rerun = live.run(dict(PARAMS, audit=True), False, service)
    assert rerun["audit"]["after_run"] is True and rerun["audit"]["uncovered"] == []
    assert [e["namespace"] for e in rerun["audit"]["namespaces"]] == ["batch", "idle", "shop"]  # kube-system exempt
    assert "Pod" not in listed  # nothing changes: no pod is read
    first = live.run(dict(PARAMS, audit=True), False, FakeService())
    # today's coverage (nothing yet), and the run changes it: the role audits again after applying
    assert first["audit"]["after_run"] is False and first["audit"]["uncovered"] == ["batch", "idle", "shop"]
    assert first["audit"]["findings"][0]["cis"] == "5.3.2"
    # nothing given to apply: an audit alone, as network_policy_audit reports it
    alone = live.run({"exclude_namespaces": ["kube-system"], "audit": True}, False, FakeService(applied[:1]))
    assert alone["audit"]["after_run"] is True and alone["audit"]["uncovered"] == ["batch", "idle"]
    assert "audit" not in run()


def test_audit_after_run_compares_coverage_not_the_spec_text():
    """A custom rule without a port protocol: the API server stores TCP, so the spec reads as a change, yet the
    coverage the run leaves is today's (a rerun makes no audit call of its own)."""
    rule = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "allow-web", "namespace": "shop", "labels": {"kubeguard.io/set": "network-policy-custom"}},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{"ports": [{"port": 80}]}]},
    }
    stored = dict(rule, spec=dict(rule["spec"], ingress=[{"ports": [{"port": 80, "protocol": "TCP"}]}]))
    applied = [dict(BASELINE, metadata=dict(BASELINE["metadata"], namespace=ns)) for ns in ("shop", "batch", "idle")]
    replace = [*PARAMS["replace_labels"], {"kubeguard.io/set": "network-policy-custom"}]
    args = dict(PARAMS, objects=[rule], replace_labels=replace, audit=True)
    result = live.run(args, False, FakeService([*applied, stored]))
    assert result["namespaces"] == ["shop"] and result["audit"]["after_run"] is True
    # a rule the run would remove is a change of coverage (its name goes from the report)
    result = live.run(dict(args, objects=[]), False, FakeService([*applied, stored]))
    assert result["audit"]["after_run"] is False
