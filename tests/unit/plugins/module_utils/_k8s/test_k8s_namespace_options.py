"""Every API entry point refuses a namespace option that is not a name (or a pattern of one) before its first request.

``[["x"]]`` given for a list of str reaches a module as ``["['x']"]``; as an exemption it matched no namespace, so
kube-system lost its exemption. No service is given: a request would fail on the missing kubeconfig instead.
"""

import pytest
from ansible_collections.kubeguard.hardening.plugins.module_utils._audit import cluster
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError
from ansible_collections.kubeguard.hardening.plugins.module_utils._k8s import runner
from ansible_collections.kubeguard.hardening.plugins.module_utils._netpol import live
from ansible_collections.kubeguard.hardening.plugins.module_utils._netpol import runner as netpol
from ansible_collections.kubeguard.hardening.plugins.module_utils._rbac import runner as rbac

STRINGIFIED = "['x']"


@pytest.mark.parametrize(
    ("entry", "option"),
    [
        (runner.run, "exclude_namespaces"),
        (runner.run, "namespaces"),
        (live.run, "exclude_namespaces"),
        (netpol.run_audit, "exempt_namespaces"),
        (netpol.run_truth_table, "namespaces"),
        (rbac.run, "automount_exempt_namespaces"),
        (cluster.run, "exempt_namespaces"),
    ],
)
def test_a_stringified_list_is_refused_naming_the_option(entry, option):
    params = {"kubeconfig": "/nonexistent/kubeconfig", option: ["kube-system", STRINGIFIED]}
    if entry is runner.run:
        params["namespace_objects"] = [{"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}}]
    with pytest.raises(KubeguardError) as caught:
        entry(params, False)
    assert caught.value.option == option
    assert f"item 1: {STRINGIFIED!r} is not a namespace name" in caught.value.message
