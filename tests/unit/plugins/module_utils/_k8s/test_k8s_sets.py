"""k8s_bulk_apply with ``sets``: several calls' worth of objects in one, in order, each as it would be alone."""

import pytest
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError
from ansible_collections.kubeguard.hardening.plugins.module_utils._k8s import runner, sets
from test_k8s_runner import OWNED, ROLE_TEMPLATE, SA_TEMPLATE, FakeService, labelled, ns, params

CLUSTER_ROLE = {
    "apiVersion": "rbac.authorization.k8s.io/v1",
    "kind": "ClusterRole",
    "metadata": {"name": "kubeguard:viewer"},
    "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}],
}


def with_sets(*entries, **extra):
    return params(sets=list(entries), **extra)


def writes(service):
    return [c for c in service.calls if c[0] in ("apply", "delete")]


def test_without_sets_it_is_the_plain_call():
    service = FakeService([ns("a")])
    result = sets.run(params(namespace_objects=[SA_TEMPLATE]), False, service)
    assert result["summary"]["created"] == 1 and "sets" not in result


def test_sets_run_in_order_each_as_alone_and_report_by_name():
    service = FakeService([ns("a"), ns("kube-system")])
    args = with_sets(
        {"name": "roles", "objects": [CLUSTER_ROLE]},
        {"name": "accounts", "namespace_objects": [SA_TEMPLATE], "exclude_namespaces": ["kube-*"]},
    )
    first = sets.run(args, False, service)
    assert first["changed"] and first["summary"]["created"] == 2 and first["namespaces"] == ["a"]
    assert first["sets"]["roles"]["results"][0]["name"] == "kubeguard:viewer"
    assert first["sets"]["accounts"]["namespaces"] == ["a"]
    assert first["sets"]["accounts"]["summary"]["created"] == 1
    assert [c[1][1] for c in writes(service)] == ["ClusterRole", "ServiceAccount"]
    assert service.discovered[0] == {"v1", "rbac.authorization.k8s.io/v1"}
    again = sets.run(args, False, service)
    assert not again["changed"] and not again["sets"]["roles"]["changed"] and again["diff"] == []
    assert again["summary"]["unchanged"] == 2


def test_a_set_is_applied_and_pruned_before_the_next_set_is_applied():
    """The order two calls had: the first owner's applies and prune, then the second's."""
    second = {"kubeguard.io/set": "deny"}
    service = FakeService([ns("a")])
    sets.run(
        with_sets({"name": "allows", "objects": [labelled("old")], "prune": True, "prune_labels": OWNED}),
        False,
        service,
    )
    service.calls.clear()
    args = with_sets(
        {"name": "allows", "objects": [labelled("new")], "prune": True, "prune_labels": OWNED},
        {"name": "deny", "objects": [labelled("deny", labels=second)], "prune": True, "prune_labels": second},
    )
    result = sets.run(args, False, service)
    assert [(c[0], c[1][3]) for c in writes(service)] == [("apply", "new"), ("delete", "old"), ("apply", "deny")]
    assert result["sets"]["allows"]["summary"]["pruned"] == 1 and result["sets"]["deny"]["summary"]["pruned"] == 0


def test_each_set_has_its_own_state():
    binding = {**CLUSTER_ROLE, "metadata": {"name": "admins"}}
    service = FakeService([ns("a"), binding])
    args = with_sets(
        {"name": "roles", "objects": [CLUSTER_ROLE]}, {"name": "admin", "objects": [binding], "state": "absent"}
    )
    check = sets.run(args, True, service)
    assert check["sets"]["admin"]["results"][0]["action"] == "deleted" and check["sets"]["roles"]["changed"]
    assert ("rbac.authorization.k8s.io/v1", "ClusterRole", "", "admins") in service.store
    result = sets.run(args, False, service)
    assert result["summary"]["deleted"] == 1 and result["summary"]["created"] == 1
    assert ("rbac.authorization.k8s.io/v1", "ClusterRole", "", "admins") not in service.store


def test_check_mode_predicts_objects_in_a_namespace_an_earlier_set_creates():
    service = FakeService([ns("a")])
    args = with_sets(
        {"name": "namespaces", "objects": [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "new"}}]},
        {"name": "accounts", "namespace_objects": [SA_TEMPLATE]},
    )
    check = sets.run(args, True, service)
    assert check["sets"]["accounts"]["namespaces"] == ["a", "new"]
    assert [r["action"] for r in check["sets"]["accounts"]["results"]] == ["created", "created"]
    assert ("v1", "Namespace", "", "new") not in service.store


def test_a_failed_set_stops_the_call_and_the_later_sets_are_not_run():
    service = FakeService([ns("a")], reject={("rbac.authorization.k8s.io/v1", "Role", "a", "reader")})
    args = with_sets(
        {"name": "roles", "namespace_objects": [ROLE_TEMPLATE]},
        {"name": "accounts", "namespace_objects": [SA_TEMPLATE]},
    )
    result = sets.run(args, False, service)
    assert result["failed"] and result["msg"].startswith("1 of 1 objects failed: Role a/reader")
    assert result["sets"]["accounts"]["skipped"] and not [c for c in writes(service) if c[1][1] == "ServiceAccount"]


@pytest.mark.parametrize(
    ("args", "option", "message"),
    [
        (with_sets({"name": "x"}, objects=[CLUSTER_ROLE]), "sets", "objects go in each set"),
        (with_sets({"objects": []}), "sets[0]", "needs a name"),
        (with_sets({"name": "x"}, {"name": "x"}), "sets[1].name", "x is the name of an earlier set"),
        (with_sets({"name": "x", "prune_label": {}}), "sets.x", "unknown options ['prune_label']"),
        (with_sets({"name": "x", "state": "gone"}), "sets.x.state", "must be present or absent"),
        (
            with_sets({"name": "ok"}, {"name": "bad", "objects": [{"kind": "Role"}]}),
            "sets.bad.objects",
            "item 0 has no apiVersion",
        ),
        (
            with_sets(
                {"name": "ok", "objects": [CLUSTER_ROLE]}, {"name": "p", "prune": True, "objects": [CLUSTER_ROLE]}
            ),
            "sets.p.prune_labels",
            "prune needs labels",
        ),
        (
            with_sets(
                {"name": "ok", "objects": [CLUSTER_ROLE]}, {"name": "k", "objects": [{**CLUSTER_ROLE, "kind": "Nope"}]}
            ),
            "sets.k.objects",
            "does not serve kind Nope",
        ),
        (
            with_sets({"name": "ok", "objects": [CLUSTER_ROLE]}, {"name": "sa", "exclude_namespaces": ["['x']"]}),
            "sets.sa.exclude_namespaces",
            "item 0: \"['x']\" is not a namespace name or a pattern",
        ),
        (with_sets({"name": "n", "namespaces": ["kube-*"]}), "sets.n.namespaces", "item 0: 'kube-*' is not a"),
    ],
)
def test_every_set_is_checked_before_any_write_and_errors_name_the_set(args, option, message):
    service = FakeService([ns("a")])
    with pytest.raises(KubeguardError) as caught:
        sets.run(args, False, service)
    assert caught.value.option.startswith(option) and message in caught.value.message, str(caught.value)
    assert not writes(service)


def test_plain_run_is_unchanged_by_the_split():
    """runner.run keeps its result shape: no ``sets`` key."""
    service = FakeService([ns("a")])
    assert "sets" not in runner.run(params(objects=[CLUSTER_ROLE]), False, service)
