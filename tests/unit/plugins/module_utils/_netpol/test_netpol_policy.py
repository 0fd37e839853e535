"""Table-driven NetworkPolicy semantics, on the Cyclonus layout: namespaces x, y, z; pods a, b, c; TCP 80 and 81."""

import pytest
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError
from ansible_collections.kubeguard.hardening.plugins.module_utils._netpol import policy, truth_table

NAMESPACES = {ns: {"ns": ns, "kubernetes.io/metadata.name": ns} for ns in "xyz"}
NAMESPACES["y"]["team"] = "blue"
IPS = {f"{ns}/{pod}": f"10.0.{i}.{j + 1}" for i, ns in enumerate("xyz") for j, pod in enumerate("abc")}
PODS = [
    policy.Pod(
        ns,
        pod,
        {"pod": pod},
        IPS[f"{ns}/{pod}"],
        [{"name": "serve-80-tcp", "port": 80}, {"name": "serve-81-tcp", "port": 81}],
    )
    for ns in "xyz"
    for pod in "abc"
]
BY_KEY = {p.key: p for p in PODS}


def netpol(namespace, spec, name="p"):
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def allowed(policies, src, dst, port=80, protocol="TCP"):
    return policy.verdict(policies, BY_KEY[src], BY_KEY[dst], port, protocol, NAMESPACES)["allowed"]


DENY_ALL_X = netpol("x", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]})
DENY_INGRESS_XA = netpol("x", {"podSelector": {"matchLabels": {"pod": "a"}}})


def rule(peers_field, peers, ports):
    out = {}
    if peers:
        out[peers_field] = list(peers)
    if ports:
        out["ports"] = ports
    return out


def allow_in(*peers, ports=None, ns="x"):
    """A policy selecting every pod of ``ns`` with one ingress rule."""
    return netpol(ns, {"podSelector": {}, "ingress": [rule("from", peers, ports)]})


def allow_out(*peers, ports=None, ns="x"):
    """A policy selecting every pod of ``ns``, egress only, with one egress rule."""
    return netpol(ns, {"podSelector": {}, "policyTypes": ["Egress"], "egress": [rule("to", peers, ports)]})


def ns_labels(**labels):
    return {"namespaceSelector": {"matchLabels": labels}}


def pod_labels(**labels):
    return {"podSelector": {"matchLabels": labels}}


def ns_expression(key, operator, *values):
    expression = {"key": key, "operator": operator, **({"values": list(values)} if values else {})}
    return {"namespaceSelector": {"matchExpressions": [expression]}}


NS_Y_AND_POD_B = {**ns_labels(ns="y"), **pod_labels(pod="b")}
BLOCK = {"ipBlock": {"cidr": "10.0.0.0/16", "except": ["10.0.1.2/32"]}}

# fmt: off
CASES = [
    # (id, policies, src, dst, port, expected)
    ("no-policy", [], "y/b", "x/a", 80, True),
    ("deny-ingress-by-default-types", [DENY_INGRESS_XA], "y/b", "x/a", 80, False),
    ("deny-ingress-other-pod-unaffected", [DENY_INGRESS_XA], "y/b", "x/b", 80, True),
    ("ingress-only-policy-leaves-egress", [DENY_INGRESS_XA], "x/a", "y/b", 80, True),
    ("deny-all-blocks-ingress", [DENY_ALL_X], "y/a", "x/b", 80, False),
    ("deny-all-blocks-egress", [DENY_ALL_X], "x/b", "y/a", 80, False),
    ("deny-all-blocks-within-namespace", [DENY_ALL_X], "x/b", "x/c", 80, False),
    ("egress-section-defaults-egress-type",
     [netpol("x", {"podSelector": {}, "egress": [{"to": [pod_labels(pod="b")]}]})], "x/a", "y/c", 80, False),
    ("egress-section-ingress-still-isolated",
     [netpol("x", {"podSelector": {}, "egress": [{}]})], "y/a", "x/a", 80, False),
    ("egress-only-type-leaves-ingress",
     [netpol("x", {"podSelector": {}, "policyTypes": ["Egress"]})], "y/a", "x/a", 80, True),
    ("allow-all-ingress-empty-rule", [allow_in()], "z/c", "x/a", 81, True),
    ("allow-same-namespace", [allow_in({"podSelector": {}})], "x/b", "x/a", 80, True),
    ("allow-same-namespace-blocks-others", [allow_in({"podSelector": {}})], "y/b", "x/a", 80, False),
    ("empty-namespace-selector-all-namespaces", [allow_in({"namespaceSelector": {}})], "z/b", "x/a", 80, True),
    ("namespace-label", [allow_in(ns_labels(team="blue"))], "y/c", "x/a", 80, True),
    ("namespace-label-other", [allow_in(ns_labels(team="blue"))], "z/c", "x/a", 80, False),
    ("ns-and-pod-in-one-peer-both", [allow_in(NS_Y_AND_POD_B)], "y/b", "x/a", 80, True),
    ("ns-and-pod-in-one-peer-wrong-pod", [allow_in(NS_Y_AND_POD_B)], "y/c", "x/a", 80, False),
    ("ns-and-pod-in-one-peer-wrong-ns", [allow_in(NS_Y_AND_POD_B)], "z/b", "x/a", 80, False),
    ("ns-or-pod-two-peers", [allow_in(ns_labels(ns="y"), pod_labels(pod="b"))], "y/c", "x/a", 80, True),
    ("pod-selector-alone-is-own-namespace", [allow_in(pod_labels(pod="b"))], "y/b", "x/a", 80, False),
    ("match-expressions-in", [allow_in(ns_expression("ns", "In", "y", "z"))], "z/a", "x/a", 80, True),
    ("match-expressions-notin", [allow_in(ns_expression("ns", "NotIn", "y"))], "y/a", "x/a", 80, False),
    ("match-expressions-exists", [allow_in(ns_expression("team", "Exists"))], "y/a", "x/a", 80, True),
    ("match-expressions-doesnotexist", [allow_in(ns_expression("team", "DoesNotExist"))], "y/a", "x/a", 80, False),
    ("ipblock-inside", [allow_in({"ipBlock": {"cidr": "10.0.1.0/24"}})], "y/b", "x/a", 80, True),
    ("ipblock-except", [allow_in(BLOCK)], "y/b", "x/a", 80, False),
    ("ipblock-except-neighbour", [allow_in(BLOCK)], "y/c", "x/a", 80, True),
    ("ipblock-egress", [allow_out({"ipBlock": {"cidr": "10.0.2.0/24"}})], "x/a", "z/c", 80, True),
    ("ipblock-egress-outside", [allow_out({"ipBlock": {"cidr": "10.0.2.0/24"}})], "x/a", "y/c", 80, False),
    ("port-number", [allow_in(ports=[{"port": 80}])], "y/a", "x/a", 80, True),
    ("port-number-other", [allow_in(ports=[{"port": 80}])], "y/a", "x/a", 81, False),
    ("port-protocol-mismatch", [allow_in(ports=[{"port": 80, "protocol": "UDP"}])], "y/a", "x/a", 80, False),
    ("port-without-number-whole-protocol", [allow_in(ports=[{"protocol": "TCP"}])], "y/a", "x/a", 81, True),
    ("named-port", [allow_in(ports=[{"port": "serve-81-tcp"}])], "y/a", "x/a", 81, True),
    ("named-port-other-number", [allow_in(ports=[{"port": "serve-81-tcp"}])], "y/a", "x/a", 80, False),
    ("named-port-egress-resolved-on-destination",
     [allow_out(ports=[{"port": "serve-80-tcp"}])], "x/a", "y/a", 80, True),
    ("end-port-range", [allow_in(ports=[{"port": 79, "endPort": 81}])], "y/a", "x/a", 81, True),
    ("end-port-range-outside", [allow_in(ports=[{"port": 81, "endPort": 90}])], "y/a", "x/a", 80, False),
    ("rules-add-up-across-policies", [DENY_ALL_X, allow_in({"namespaceSelector": {}})], "y/a", "x/a", 80, True),
    ("egress-and-ingress-both-needed",
     [netpol("y", {"podSelector": {}, "policyTypes": ["Egress"]}), allow_in()], "y/a", "x/a", 80, False),
    ("peer-and-port-in-one-rule-both", [allow_in(ns_labels(ns="y"), ports=[{"port": 81}])], "y/a", "x/a", 80, False),
    ("policy-in-other-namespace-does-not-select", [netpol("y", {"podSelector": {}})], "z/a", "x/a", 80, True),
]
# fmt: on


@pytest.mark.parametrize(
    ("policies", "src", "dst", "port", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_semantics(policies, src, dst, port, expected):
    assert allowed(policies, src, dst, port) is expected


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        ({}, {}, True),
        (None, {"a": "b"}, False),
        ({"matchLabels": {"a": "b"}}, {"a": "b", "c": "d"}, True),
        (
            {"matchLabels": {"a": "b"}, "matchExpressions": [{"key": "c", "operator": "DoesNotExist"}]},
            {"a": "b", "c": "d"},
            False,
        ),
        ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["x"]}]}, {}, True),
        ({"matchExpressions": [{"key": "a", "operator": "In", "values": ["x"]}]}, {}, False),
    ],
)
def test_selector(selector, labels, expected):
    assert policy.selector_matches(selector, labels) is expected


def test_default_deny_matrix_allows_only_loopback():
    deny = [netpol(ns, {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}, "deny") for ns in "xyz"]
    result = truth_table.build(PODS, deny, NAMESPACES, ["tcp/80", 81])
    assert result["ports"] == ["tcp/80", "tcp/81"]
    for port in result["ports"]:
        rows = result["table"][port]
        assert all(rows[s][d] is (s == d) for s in rows for d in rows)
    lines = result["matrices"]["tcp/80"].splitlines()
    assert lines[0] == "tcp/80\tx/a\tx/b\tx/c\ty/a\ty/b\ty/c\tz/a\tz/b\tz/c"
    assert lines[1] == "x/a\t.\tX\tX\tX\tX\tX\tX\tX\tX"
    strict = truth_table.build(PODS, deny, NAMESPACES, [80], loopback_allowed=False)
    assert not any(v for rows in strict["table"]["tcp/80"].values() for v in rows.values())


def test_matrix_of_allow_same_namespace_and_details():
    rules = [netpol(ns, {"podSelector": {}, "ingress": [{"from": [{"podSelector": {}}]}]}) for ns in "xyz"]
    result = truth_table.build(PODS, rules, NAMESPACES, [80])
    rows = result["table"]["tcp/80"]
    assert all(rows[s][d] is (s[0] == d[0]) for s in rows for d in rows)
    assert result["details"]["tcp/80"]["y/a"]["x/a"] == {"egress": True, "ingress": False, "allowed": False}


def test_differences_lists_every_disagreeing_cell():
    expected = {"tcp/80": {"x/a": {"x/a": True, "x/b": False}}}
    observed = {"tcp/80": {"x/a": {"x/a": True, "x/b": True}}}
    assert truth_table.differences(expected, observed) == [("tcp/80", "x/a", "x/b", False, True)]
    assert truth_table.differences(expected, expected) == []


@pytest.mark.parametrize("spec", ["http", "tcp/0", "icmp/1", "tcp/70000", ""])
def test_bad_ports_name_the_option(spec):
    with pytest.raises(KubeguardError, match=r"^ports: "):
        truth_table.parse_port(spec)


@pytest.mark.parametrize(
    ("spec", "parsed"), [(80, ("TCP", 80)), ("81", ("TCP", 81)), ("udp/53", ("UDP", 53)), ("SCTP/9", ("SCTP", 9))]
)
def test_port_specs(spec, parsed):
    assert truth_table.parse_port(spec) == parsed
