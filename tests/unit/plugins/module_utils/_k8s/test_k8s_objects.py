"""Tables for the pure object logic of the bulk apply: noise, change decision, diff, validation."""

import pytest
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError
from ansible_collections.kubeguard.hardening.plugins.module_utils._k8s import objects

POLICY = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "NetworkPolicy",
    "metadata": {"name": "default-deny", "namespace": "team-a", "labels": {"app": "x"}},
    "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
}


def with_noise(obj, **meta):
    noisy = {**obj, "status": {"whatever": 1}, "metadata": dict(obj["metadata"])}
    noisy["metadata"].update(
        {
            "managedFields": [{"manager": "kubeguard"}],
            "resourceVersion": "42",
            "generation": 3,
            "uid": "u-1",
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "selfLink": "/x",
        }
    )
    noisy["metadata"].update(meta)
    return noisy


def test_strip_removes_every_noise_field_and_keeps_the_rest():
    stripped = objects.strip(with_noise(POLICY))
    assert stripped == POLICY
    assert objects.strip(None) is None


def test_strip_does_not_touch_its_input():
    noisy = with_noise(POLICY)
    objects.strip(noisy)
    assert noisy["metadata"]["resourceVersion"] == "42" and "status" in noisy


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        (POLICY, with_noise(POLICY), False),
        (with_noise(POLICY, resourceVersion="1"), with_noise(POLICY, resourceVersion="2"), False),
        (None, POLICY, True),
        (POLICY, None, True),
        (None, None, False),
        (POLICY, {**POLICY, "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}}, True),
        (POLICY, with_noise(POLICY, labels={"app": "y"}), True),
        (POLICY, with_noise(POLICY, annotations={"a": "b"}), True),
    ],
    ids=["noise-only", "resource-version", "created", "deleted", "both-absent", "spec", "label", "annotation"],
)
def test_changed(before, after, expected):
    assert objects.changed(before, after) is expected


def test_diff_strips_noise_and_names_the_object():
    entry = objects.diff(objects.identity(POLICY), None, with_noise(POLICY))
    assert entry["before_header"] == "(absent)"
    assert entry["after_header"] == "NetworkPolicy team-a/default-deny"
    assert entry["before"] == {}
    assert entry["after"] == POLICY


def test_diff_never_shows_secret_values():
    before = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s", "namespace": "n"},
        "data": {"a": "b2xk", "k": "c2FtZQ=="},
    }
    after = {**before, "data": {"a": "bmV3", "k": "c2FtZQ=="}, "stringData": {"p": "hunter2"}}
    entry = objects.diff(objects.identity(before), before, after)
    text = repr(entry)
    for secret in ("b2xk", "bmV3", "c2FtZQ==", "hunter2"):
        assert secret not in text
    assert entry["before"]["data"] == {"a": "<hidden> (differs)", "k": "<hidden>"}
    assert entry["after"]["data"] == {"a": "<hidden> (differs)", "k": "<hidden>"}
    assert entry["after"]["stringData"] == {"p": "<hidden> (differs)"}


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (["x"], "item 0 is a str"),
        ([{"kind": "Role", "metadata": {"name": "r"}}], "item 0 has no apiVersion"),
        ([{"apiVersion": "v1", "metadata": {"name": "r"}}], "item 0 has no kind"),
        ([{"apiVersion": "v1", "kind": "Namespace", "metadata": {}}], "item 0 (Namespace) has no metadata.name"),
        ([{"apiVersion": "v1", "kind": "Namespace"}], "has no metadata.name"),
        ([POLICY, POLICY], "NetworkPolicy team-a/default-deny is listed twice"),
    ],
)
def test_validate_refuses_with_the_option_named(items, message):
    with pytest.raises(KubeguardError) as caught:
        objects.validate(items, "objects")
    assert caught.value.option == "objects"
    assert message in caught.value.message


def test_templates_must_leave_the_namespace_to_the_expansion():
    with pytest.raises(KubeguardError, match=r"item 0 sets metadata\.namespace"):
        objects.validate_templates([POLICY], "namespace_objects")


def test_expand_copies_every_template_into_every_namespace():
    template = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}}
    out = objects.expand([template], ["a", "b"])
    assert [o["metadata"] for o in out] == [
        {"name": "default", "namespace": "a"},
        {"name": "default", "namespace": "b"},
    ]
    assert "namespace" not in template["metadata"]


@pytest.mark.parametrize(
    ("name", "excluded", "selected"),
    [
        ("kube-system", ["kube-system"], False),
        ("kube-public", ["kube-*"], False),
        ("team-kube", ["kube-*"], True),
        ("default", [], True),
        ("calico-system", ["kube-*", "calico-*"], False),
    ],
)
def test_namespace_selected(name, excluded, selected):
    assert objects.namespace_selected(name, excluded) is selected


@pytest.mark.parametrize("values", [["kube-system", "team-a"], [], None])
def test_namespace_names_are_accepted(values):
    objects.validate_namespaces(values, "namespaces")


@pytest.mark.parametrize("values", [["kube-*", "team-?", "default"], ["*"]])
def test_namespace_patterns_are_accepted_where_patterns_are(values):
    objects.validate_namespaces(values, "exclude_namespaces", patterns=True)


@pytest.mark.parametrize(
    ("values", "patterns", "shown"),
    [
        # what Ansible's argument spec makes of [["x"]] and [{"a": 1}] for a list of str
        (["kube-system", "['x']"], True, "item 1: \"['x']\""),
        (["{'a': 1}"], True, "item 0: \"{'a': 1}\""),
        (["Kube-System"], False, "item 0: 'Kube-System'"),
        (["kube-*"], False, "item 0: 'kube-*'"),
        (["-x"], False, "item 0: '-x'"),
        ([""], True, "item 0: ''"),
        ([["x"]], True, "item 0: ['x']"),
        (["a" * 64], False, "item 0:"),
    ],
)
def test_anything_else_is_refused_naming_the_option_and_item(values, patterns, shown):
    with pytest.raises(KubeguardError) as caught:
        objects.validate_namespaces(values, "exclude_namespaces", patterns=patterns)
    assert caught.value.option == "exclude_namespaces"
    assert caught.value.message.startswith(shown), caught.value.message
