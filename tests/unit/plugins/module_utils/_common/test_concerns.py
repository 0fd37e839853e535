"""The helpers of the one-call ``<role>_plan`` modules: each concern's options validated with its own
module's spec, the check-mode guard, and the plan's summary of its concerns' results."""

import pytest
from ansible_collections.kubeguard.hardening.plugins.module_utils._common.concerns import (
    only_in_check_mode,
    summary,
    validated,
)
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError

SPECS = {
    "files": {
        "client_ca_file": {"type": "path", "required": True},
        "client_ca_mode": {"type": "str", "default": "0644"},
    },
    "config": {"restart_timeout": {"type": "int", "default": 120}},
}


def test_only_the_given_concerns_are_validated_and_get_their_defaults():
    assert validated({"files": {"client_ca_file": "/ca.crt"}, "config": None}, SPECS) == {
        "files": {"client_ca_file": "/ca.crt", "client_ca_mode": "0644"}
    }


@pytest.mark.parametrize(
    "given,named",
    [({"files": {}}, "client_ca_file"), ({"config": {"restart_timeout": "soon"}}, "restart_timeout")],
)
def test_a_bad_option_is_refused_naming_its_concern_and_option(given, named):
    with pytest.raises(KubeguardError) as refused:
        validated(given, SPECS)
    assert refused.value.option == next(iter(given)) and named in refused.value.describe()


def test_a_plan_refuses_to_run_outside_check_mode():
    only_in_check_mode("kubelet_plan", True)
    with pytest.raises(KubeguardError, match="kubelet_plan only checks"):
        only_in_check_mode("kubelet_plan", False)


def test_the_summary_names_what_is_pending_in_order_with_the_diffs_of_what_changes_and_each_warning_once():
    checked = [
        ("files", {"changed": False, "warnings": ["below CIS"], "diff": {"before": "a"}}, False),
        ("etcd", {"changed": False, "deferred": True, "warnings": ["below CIS"]}, True),
        ("kube-apiserver", {"changed": True, "diff": {"before": "x", "after": "y"}}, True),
    ]
    plan = summary(checked)
    assert plan == {
        "changed": True,
        "pending": ["etcd", "kube-apiserver"],
        "diff": [{"before": "x", "after": "y"}],
        "warnings": ["below CIS"],
    }
    assert all("diff" not in result and "warnings" not in result for _, result, _ in checked)


def test_nothing_pending_is_no_change():
    assert summary([("config", {"changed": False}, False)]) == {"changed": False, "pending": []}
