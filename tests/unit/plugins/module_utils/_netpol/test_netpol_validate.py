"""Malformed NetworkPolicies and pods are refused with the field's path, cidr and except alike; the truth
table and the bulk apply refuse them before evaluating or sending anything."""

import pytest
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError
from ansible_collections.kubeguard.hardening.plugins.module_utils._k8s import objects, runner
from ansible_collections.kubeguard.hardening.plugins.module_utils._netpol import policy, validate
from ansible_collections.kubeguard.hardening.plugins.module_utils._netpol.runner import run_truth_table


def egress(block):
    return {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{"to": [{"ipBlock": block}]}]}


@pytest.mark.parametrize(
    "spec,where",
    [
        (egress({"cidr": "10.0.0.0/33"}), "spec.egress[0].to[0].ipBlock.cidr: '10.0.0.0/33' is not a CIDR"),
        (egress({"cidr": "10.0.0.0"}), "spec.egress[0].to[0].ipBlock.cidr: '10.0.0.0' is not a CIDR"),
        (egress({}), "spec.egress[0].to[0].ipBlock.cidr: None is not a CIDR"),
        (egress({"cidr": "10.0.0.0/8", "except": ["10.1.0.0/33"]}), "ipBlock.except[0]: '10.1.0.0/33' is not a CIDR"),
        (egress({"cidr": "10.0.0.0/8", "except": ["192.168.0.0/16"]}), "is not inside cidr '10.0.0.0/8'"),
        (egress({"cidr": "10.0.0.0/8", "except": "10.1.0.0/16"}), "ipBlock.except: must be a list"),
        (
            {"podSelector": {"matchExpressions": [{"key": "a", "operator": "Has"}]}},
            "spec.podSelector.matchExpressions[0].operator: 'Has' is not one of In, NotIn, Exists, DoesNotExist",
        ),
        ({"podSelector": {}, "policyTypes": ["Both"]}, "spec.policyTypes[0]: 'Both' is not Ingress or Egress"),
        ({"podSelector": {}, "ingress": [{"ports": [{"port": [80]}]}]}, "ports[0].port: [80] is neither a number nor"),
        (
            {"podSelector": {}, "ingress": [{"ports": [{"protocol": 6}]}]},
            "ports[0].protocol: 6 is not TCP, UDP or SCTP",
        ),
    ],
)
def test_a_malformed_spec_is_refused_with_its_path(spec, where):
    with pytest.raises(KubeguardError) as refused:
        validate.spec(spec, "policies")
    assert refused.value.option == "policies"
    assert where in refused.value.message


def test_ranges_are_left_to_the_api_server():
    # k8s_bulk_apply's server-side dry run reports these per object (tests/integration/test_k8s_bulk_apply.py)
    validate.spec({"podSelector": {}, "ingress": [{"ports": [{"port": 70000, "protocol": "ICMP"}]}]}, "objects")


def test_a_wellformed_spec_passes():
    validate.spec(egress({"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}), "policies")
    validate.spec({"podSelector": {}, "ingress": [{"ports": [{"port": "http"}, {"port": 80, "endPort": 90}]}]}, "p")


def test_cidr_and_except_are_refused_alike_by_the_evaluation_too():
    pod = policy.Pod("x", "a", ip="10.1.2.3")
    for block in ({"cidr": "10.0.0.0/33"}, {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/33"]}):
        with pytest.raises(KubeguardError, match="is not a CIDR"):
            policy.ip_block_matches(block, pod.ip)
    with pytest.raises(KubeguardError, match="is not an IP address"):
        policy.ip_block_matches({"cidr": "10.0.0.0/8"}, "10.1.2")
    with pytest.raises(KubeguardError, match="unknown label selector operator"):
        policy.selector_matches({"matchExpressions": [{"key": "a", "operator": "Has"}]}, {})


def truth_table(**params):
    return run_truth_table({"pods": [{"namespace": "x", "name": "a", "ip": "10.1.2.3"}], **params}, True)


def test_the_truth_table_refuses_bad_data_naming_the_option():
    bad = {"metadata": {"namespace": "x", "name": "p"}, "spec": egress({"cidr": "10.0.0.0/8", "except": ["x"]})}
    with pytest.raises(KubeguardError) as refused:
        truth_table(policies=[bad])
    assert str(refused.value).startswith("policies: NetworkPolicy x/p: spec.egress[0].to[0].ipBlock.except[0]")
    with pytest.raises(KubeguardError, match=r"^pods: item 0.ip: '10.1.2' is not an IP address"):
        run_truth_table({"pods": [{"namespace": "x", "name": "a", "ip": "10.1.2"}]}, True)
    with pytest.raises(KubeguardError, match=r"^namespace_labels: x: must be a mapping"):
        truth_table(namespace_labels={"x": "app=web"})


def test_the_bulk_apply_refuses_a_bad_networkpolicy_before_connecting():
    manifest = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "bad-cidr", "namespace": "default"},
        "spec": egress({"cidr": "10.0.0.0/33"}),
    }
    with pytest.raises(KubeguardError) as refused:
        objects.validate([manifest], "objects")
    assert str(refused.value) == (
        "objects: NetworkPolicy default/bad-cidr: spec.egress[0].to[0].ipBlock.cidr: '10.0.0.0/33' is not a CIDR"
        " like 10.0.0.0/8"
    )
    # run() refuses it before it reads the (missing) kubeconfig
    with pytest.raises(KubeguardError, match=r"^objects: NetworkPolicy default/bad-cidr"):
        runner.run({"objects": [manifest], "kubeconfig": "/nonexistent/kubeconfig"}, True)
