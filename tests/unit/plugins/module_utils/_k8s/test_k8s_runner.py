"""The bulk-apply decision loop against a fake service: order, check mode, change decision, failures."""

import copy

import pytest
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError
from ansible_collections.kubeguard.hardening.plugins.module_utils._k8s import objects, runner
from ansible_collections.kubeguard.hardening.plugins.module_utils._k8s.client import ApiError, Resource

KINDS = {
    ("v1", "Namespace"): Resource("v1", "namespaces", "Namespace", False),
    ("v1", "ServiceAccount"): Resource("v1", "serviceaccounts", "ServiceAccount", True),
    ("rbac.authorization.k8s.io/v1", "Role"): Resource("rbac.authorization.k8s.io/v1", "roles", "Role", True),
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): Resource(
        "rbac.authorization.k8s.io/v1", "clusterroles", "ClusterRole", False
    ),
}


class FakeClient:
    requests = 0
    discovery_requests = 0


class FakeService:
    """An in-memory API server: SSA merges top-level fields and bumps resourceVersion on real change."""

    def __init__(self, store=(), reject=()):
        self.client = FakeClient()
        self.store = {objects.identity(o): copy.deepcopy(o) for o in store}
        self.reject = set(reject)
        self.calls = []
        self.discovered = []

    def discover(self, api_versions):
        self.discovered.append(set(api_versions))

    def resource(self, api_version, kind, option="objects"):
        if (api_version, kind) not in KINDS:
            raise KubeguardError(option, f"the API server does not serve kind {kind} in apiVersion {api_version}")
        return KINDS[(api_version, kind)]

    def list(self, resource, namespace=None, label_selector=None):
        wanted = dict(pair.split("=", 1) for pair in label_selector.split(",")) if label_selector else {}
        return [
            copy.deepcopy(o)
            for k, o in self.store.items()
            if k[1] == resource.kind
            and all(((o.get("metadata") or {}).get("labels") or {}).get(key) == v for key, v in wanted.items())
        ]

    def existing(self, wanted):
        self.calls.append(("existing", len(wanted)))
        return {key: copy.deepcopy(self.store[key]) for key in wanted if key in self.store}

    def apply(self, resource, obj, dry_run):
        key = objects.identity(obj)
        self.calls.append(("apply", key, dry_run))
        if key in self.reject:
            raise ApiError(422, "Unprocessable Entity", "spec: Invalid value")
        if not resource.namespaced and key[2]:
            raise AssertionError("cluster-scoped object sent with a namespace")
        if resource.namespaced and (("v1", "Namespace", "", key[2]) not in self.store):
            raise ApiError(404, "Not Found", f'namespaces "{key[2]}" not found')
        before = self.store.get(key)
        merged = copy.deepcopy(before) if before else {"metadata": {"resourceVersion": "0", "uid": "u"}}
        merged["metadata"]["managedFields"] = [{"manager": "kubeguard", "operation": "Apply"}]
        for field, value in obj.items():
            if field == "metadata":
                merged["metadata"].update(copy.deepcopy(value))
            else:
                merged[field] = copy.deepcopy(value)
        if objects.changed(before, merged):
            merged["metadata"]["resourceVersion"] = str(int(merged["metadata"]["resourceVersion"]) + 1)
        if not dry_run:
            self.store[key] = merged
        return copy.deepcopy(merged)

    def delete(self, resource, before, dry_run):
        key = objects.identity(before)
        self.calls.append(("delete", key, dry_run))
        if not dry_run:
            self.store.pop(key, None)


def ns(name, phase="Active"):
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}, "status": {"phase": phase}}


ROLE_TEMPLATE = {
    "apiVersion": "rbac.authorization.k8s.io/v1",
    "kind": "Role",
    "metadata": {"name": "reader"},
    "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}],
}
SA_TEMPLATE = {
    "apiVersion": "v1",
    "kind": "ServiceAccount",
    "metadata": {"name": "default"},
    "automountServiceAccountToken": False,
}


def params(**extra):
    base = {"objects": [], "namespace_objects": [], "namespaces": [], "exclude_namespaces": [], "state": "present"}
    base.update(extra)
    return base


def test_first_apply_creates_then_rerun_is_unchanged():
    service = FakeService([ns("a"), ns("b"), ns("kube-system")])
    args = params(namespace_objects=[ROLE_TEMPLATE, SA_TEMPLATE], exclude_namespaces=["kube-*"])
    first = runner.run(args, False, service)
    assert first["changed"] and first["summary"]["created"] == 4
    assert first["namespaces"] == ["a", "b"]
    assert len(first["diff"]) == 4
    second = runner.run(args, False, service)
    assert not second["changed"]
    assert second["summary"]["unchanged"] == 4 and second["diff"] == []


def test_one_read_and_one_discovery_per_call():
    service = FakeService([ns("a"), ns("b")])
    runner.run(params(namespace_objects=[ROLE_TEMPLATE, SA_TEMPLATE]), False, service)
    assert [c for c in service.calls if c[0] == "existing"] == [("existing", 4)]
    assert service.discovered == [{"v1", "rbac.authorization.k8s.io/v1"}]


def test_check_mode_dry_runs_and_writes_nothing():
    service = FakeService([ns("a")])
    result = runner.run(params(namespace_objects=[ROLE_TEMPLATE]), True, service)
    assert result["changed"] and result["summary"]["created"] == 1
    assert [c[2] for c in service.calls if c[0] == "apply"] == [True]
    assert ("rbac.authorization.k8s.io/v1", "Role", "a", "reader") not in service.store


def test_check_mode_predicts_objects_in_a_namespace_it_would_create():
    service = FakeService()
    new_ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "new"}}
    result = runner.run(params(objects=[new_ns], namespace_objects=[ROLE_TEMPLATE]), True, service)
    assert result["namespaces"] == ["new"]
    assert result["summary"]["created"] == 2 and not result.get("failed")
    # the namespace is dry-run applied; the role in it is predicted, not sent
    assert [c[1][1] for c in service.calls if c[0] == "apply"] == ["Namespace"]


def test_namespaces_are_created_before_the_objects_in_them():
    service = FakeService()
    new_ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "new"}}
    role = {**ROLE_TEMPLATE, "metadata": {"name": "reader", "namespace": "new"}}
    result = runner.run(params(objects=[role, new_ns]), False, service)
    assert not result.get("failed"), result
    assert [r["kind"] for r in result["results"]] == ["Role", "Namespace"]  # reported in the order given
    assert [c[1][1] for c in service.calls if c[0] == "apply"] == ["Namespace", "Role"]


def test_a_real_change_is_updated_with_a_diff():
    service = FakeService([ns("a")])
    runner.run(params(namespace_objects=[SA_TEMPLATE]), False, service)
    result = runner.run(
        params(namespace_objects=[{**SA_TEMPLATE, "automountServiceAccountToken": True}]), False, service
    )
    assert result["summary"] == dict.fromkeys(runner.ACTIONS, 0) | {"updated": 1}
    (entry,) = result["diff"]
    assert entry["before"]["automountServiceAccountToken"] is False
    assert entry["after"]["automountServiceAccountToken"] is True
    assert "resourceVersion" not in entry["after"]["metadata"]


def test_terminating_and_excluded_namespaces_get_no_templates():
    service = FakeService([ns("a"), ns("gone", "Terminating"), ns("kube-system")])
    result = runner.run(params(namespace_objects=[SA_TEMPLATE], exclude_namespaces=["kube-system"]), False, service)
    assert result["namespaces"] == ["a"]


def test_explicit_namespaces_win_over_the_live_list():
    service = FakeService([ns("a"), ns("b")])
    result = runner.run(params(namespace_objects=[SA_TEMPLATE], namespaces=["b"]), False, service)
    assert result["namespaces"] == ["b"]


def test_absent_deletes_what_exists_namespaced_first():
    service = FakeService([ns("a")])
    role = {**ROLE_TEMPLATE, "metadata": {"name": "reader", "namespace": "a"}}
    runner.run(params(objects=[role]), False, service)
    result = runner.run(
        params(objects=[{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}}, role], state="absent"),
        False,
        service,
    )
    assert [c[1][1] for c in service.calls if c[0] == "delete"] == ["Role", "Namespace"]
    assert result["summary"]["deleted"] == 2
    again = runner.run(params(objects=[role], state="absent"), False, service)
    assert again["summary"]["absent"] == 1 and not again["changed"]


def test_check_mode_delete_is_a_dry_run():
    service = FakeService([ns("a")])
    result = runner.run(params(objects=[ns("a")], state="absent"), True, service)
    assert result["changed"] and service.calls[-1] == ("delete", ("v1", "Namespace", "", "a"), True)
    assert ("v1", "Namespace", "", "a") in service.store


def test_a_rejected_object_fails_the_call_and_names_it_while_others_apply():
    bad = {**ROLE_TEMPLATE, "metadata": {"name": "bad", "namespace": "a"}}
    good = {**ROLE_TEMPLATE, "metadata": {"name": "good", "namespace": "a"}}
    service = FakeService([ns("a")], reject=[objects.identity(bad)])
    result = runner.run(params(objects=[bad, good]), False, service)
    assert result["failed"]
    assert "Role a/bad: HTTP 422" in result["msg"]
    assert result["summary"]["failed"] == 1 and result["summary"]["created"] == 1


@pytest.mark.parametrize(
    ("args", "option", "message"),
    [
        (
            params(objects=[{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "a"}}]),
            "objects",
            "does not serve kind Pod",
        ),
        (params(objects=[{**ROLE_TEMPLATE}]), "objects", "Role reader is namespaced but has no metadata.namespace"),
        (
            params(namespace_objects=[{**ROLE_TEMPLATE, "kind": "Nope"}]),
            "namespace_objects",
            "does not serve kind Nope",
        ),
        (params(namespace_objects=[{"kind": "Role"}]), "namespace_objects", "item 0 has no apiVersion"),
    ],
)
def test_bad_input_fails_before_any_write(args, option, message):
    service = FakeService([ns("a")])
    with pytest.raises(KubeguardError) as caught:
        runner.run(args, False, service)
    assert caught.value.option == option and message in caught.value.message
    assert not [c for c in service.calls if c[0] in ("apply", "delete")]


def test_cluster_scoped_objects_lose_a_stray_namespace():
    service = FakeService()
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": "x", "namespace": "junk"},
        "rules": [],
    }
    result = runner.run(params(objects=[role]), False, service)
    assert result["results"][0]["namespace"] == "" and not result.get("failed")


# ------------------------------------------------------------------ prune

OWNED = {"kubeguard.io/set": "allows"}


def labelled(name, namespace="a", labels=OWNED):
    return {**ROLE_TEMPLATE, "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)}}


def pruning(*items, **extra):
    return params(objects=list(items), prune=True, prune_labels=dict(OWNED), **extra)


def test_prune_removes_what_is_no_longer_listed_and_leaves_the_rest():
    foreign = labelled("by-hand")
    foreign["metadata"]["managedFields"] = [{"manager": "kubectl", "operation": "Update"}]
    unlabelled = {**ROLE_TEMPLATE, "metadata": {"name": "other", "namespace": "a"}}
    service = FakeService([ns("a"), ns("b"), foreign, unlabelled])
    runner.run(pruning(labelled("keep"), labelled("drop"), labelled("drop", "b")), False, service)
    result = runner.run(pruning(labelled("keep")), False, service)
    assert result["changed"] and result["summary"]["pruned"] == 2 and result["summary"]["unchanged"] == 1
    assert [(r["namespace"], r["name"], r["action"]) for r in result["results"]] == [
        ("a", "keep", "unchanged"),
        ("a", "drop", "pruned"),
        ("b", "drop", "pruned"),
    ]
    assert [d["after_header"] for d in result["diff"]] == ["(absent)", "(absent)"]
    left = sorted(k[3] for k in service.store if k[1] == "Role")
    assert left == ["by-hand", "keep", "other"]  # another manager's and unlabelled objects are never pruned
    again = runner.run(pruning(labelled("keep")), False, service)
    assert not again["changed"]


def test_prune_in_check_mode_dry_runs_and_an_empty_list_prunes_all_with_prune_kinds():
    service = FakeService([ns("a")])
    runner.run(pruning(labelled("one")), False, service)
    kinds = [{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role"}]
    check = runner.run(pruning(prune_kinds=kinds), True, service)
    assert check["changed"] and check["summary"]["pruned"] == 1
    assert ("delete", ("rbac.authorization.k8s.io/v1", "Role", "a", "one"), True) in service.calls
    assert ("rbac.authorization.k8s.io/v1", "Role", "a", "one") in service.store
    runner.run(pruning(prune_kinds=kinds), False, service)
    assert ("rbac.authorization.k8s.io/v1", "Role", "a", "one") not in service.store


@pytest.mark.parametrize(
    ("args", "option", "message"),
    [
        (params(objects=[labelled("x")], prune=True), "prune_labels", "prune needs labels"),
        (pruning(labelled("x", labels={})), "objects", "item 0 lacks the prune_labels"),
        (pruning(labelled("x"), state="absent"), "prune", "state=present only"),
        (pruning(prune_kinds=[{"kind": "Role"}]), "prune_kinds", "item 0 needs apiVersion and kind"),
    ],
)
def test_prune_input_is_checked_before_any_request(args, option, message):
    service = FakeService([ns("a"), labelled("x")])
    with pytest.raises(KubeguardError) as caught:
        runner.run(args, False, service)
    assert caught.value.option == option and message in caught.value.message
    assert not [c for c in service.calls if c[0] in ("apply", "delete")]
