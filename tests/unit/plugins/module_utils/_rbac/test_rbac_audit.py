"""Tables for the CIS 5.1 checks: which rule triggers which CIS ID, with whose subjects."""

import pytest
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError
from ansible_collections.kubeguard.hardening.plugins.module_utils._rbac import audit, runner

GROUP = {"kind": "Group", "name": "team", "apiGroup": "rbac.authorization.k8s.io"}


def cluster_role(name, *rules):
    return {"kind": "ClusterRole", "metadata": {"name": name}, "rules": list(rules)}


def rule(verbs, resources, groups=("",)):
    return {"apiGroups": list(groups), "resources": list(resources), "verbs": list(verbs)}


def crb(name, role, *subjects):
    return {
        "kind": "ClusterRoleBinding",
        "metadata": {"name": name},
        "roleRef": {"kind": "ClusterRole", "name": role},
        "subjects": list(subjects) or [GROUP],
    }


def checks_of(rules):
    state = {"cluster_roles": [cluster_role("r", *rules)], "cluster_role_bindings": [crb("b", "r")]}
    return sorted({f["cis"] for f in audit.audit(state)})


@pytest.mark.parametrize(
    ("rules", "cis"),
    [
        ([rule(["get"], ["pods"])], []),
        ([rule(["get"], ["secrets"])], ["5.1.2"]),
        ([rule(["list"], ["secrets"], ["apps"])], []),  # secrets live in the core group only
        ([rule(["*"], ["pods"])], ["5.1.3", "5.1.4"]),
        ([rule(["get"], ["*"])], ["5.1.10", "5.1.2", "5.1.3"]),  # * covers subresources such as nodes/proxy
        ([rule(["create"], ["pods"])], ["5.1.4"]),
        ([rule(["bind"], ["clusterroles"], ["rbac.authorization.k8s.io"])], ["5.1.8"]),
        ([rule(["escalate"], ["roles"], ["rbac.authorization.k8s.io"])], ["5.1.8"]),
        ([rule(["impersonate"], ["groups"])], ["5.1.8"]),
        ([rule(["create"], ["persistentvolumes"])], ["5.1.9"]),
        ([rule(["get"], ["nodes/proxy"])], ["5.1.10"]),
        ([rule(["get"], ["nodes"])], []),
        ([rule(["update"], ["certificatesigningrequests/approval"], ["certificates.k8s.io"])], ["5.1.11"]),
        ([rule(["approve"], ["signers"], ["certificates.k8s.io"])], ["5.1.11"]),
        ([rule(["patch"], ["mutatingwebhookconfigurations"], ["admissionregistration.k8s.io"])], ["5.1.12"]),
        ([rule(["list"], ["validatingwebhookconfigurations"], ["admissionregistration.k8s.io"])], []),
        ([rule(["create"], ["serviceaccounts/token"])], ["5.1.13"]),
        ([rule(["create"], ["*/token"])], ["5.1.13"]),
        ([{"nonResourceURLs": ["*"], "verbs": ["get"]}], ["5.1.3"]),
    ],
)
def test_rule_to_cis(rules, cis):
    assert checks_of(rules) == cis


def test_cluster_admin_binding_reports_its_subjects():
    state = {
        "cluster_roles": [cluster_role("cluster-admin", rule(["*"], ["*"], ["*"]))],
        "cluster_role_bindings": [crb("oops", "cluster-admin")],
    }
    findings = {f["cis"]: f for f in audit.audit(state)}
    assert findings["5.1.1"]["subjects"] == [{**GROUP, "user": "team"}]
    assert findings["5.1.1"]["binding"] == {"kind": "ClusterRoleBinding", "namespace": "", "name": "oops"}
    assert {"5.1.1", "5.1.2", "5.1.3", "5.1.4", "5.1.8", "5.1.10", "5.1.13"} <= set(findings)


def test_role_binding_to_a_namespaced_role_and_service_account_subjects():
    role = {"kind": "Role", "metadata": {"name": "w", "namespace": "app"}, "rules": [rule(["*"], ["*"])]}
    sa = {"kind": "ServiceAccount", "name": "default", "namespace": "app"}
    binding = {
        "kind": "RoleBinding",
        "metadata": {"name": "wb", "namespace": "app"},
        "roleRef": {"kind": "Role", "name": "w"},
        "subjects": [sa],
    }
    findings = audit.audit({"roles": [role], "role_bindings": [binding]})
    by = {f["check"]: f for f in findings}
    assert by["wildcards"]["role"] == {"kind": "Role", "namespace": "app", "name": "w"}
    assert by["default_service_account_bound"]["subjects"][0]["user"] == "system:serviceaccount:app:default"


def test_allowlist_by_binding_path_or_by_every_subject():
    state = {
        "cluster_roles": [cluster_role("r", rule(["get"], ["secrets"]))],
        "cluster_role_bindings": [crb("system:x", "r"), crb("mine", "r")],
    }
    findings = audit.audit(state, allowed_bindings=["system:*"])
    assert [(f["binding"]["name"], f["allowlisted"]) for f in findings] == [("system:x", True), ("mine", False)]
    findings = audit.audit(state, allowed_subjects=["team"])
    assert all(f["allowlisted"] for f in findings)


def test_unbound_wildcard_roles_are_reported_unless_allowlisted():
    state = {
        "cluster_roles": [
            cluster_role("loose", rule(["*"], ["pods"])),
            cluster_role("system:thing", rule(["*"], ["*"])),
        ]
    }
    findings = audit.audit(state, allowed_roles=["system:*"])
    assert [(f["role"]["name"], f["allowlisted"], f["binding"]) for f in findings] == [
        ("loose", False, None),
        ("system:thing", True, None),
    ]


def test_system_masters_and_anonymous():
    masters = {"kind": "Group", "name": "system:masters"}
    anon = {"kind": "Group", "name": "system:unauthenticated"}
    state = {
        "cluster_roles": [cluster_role("viewer", rule(["get"], ["pods"])), cluster_role("system:public-info-viewer")],
        "cluster_role_bindings": [
            crb("m", "viewer", masters),
            crb("a", "viewer", anon, GROUP),
            crb("system:public-info-viewer", "system:public-info-viewer", anon),
        ],
    }
    findings = audit.audit(state, allowed_bindings=["a", "system:*"])
    by = {(f["check"], f["binding"]["name"]) for f in findings if not f["allowlisted"]}
    # the anonymous grant is reported even though its binding is allowlisted; upstream's own is not
    assert by == {("system_masters", "m"), ("anonymous_access", "a")}
    anon_finding = next(f for f in findings if f["check"] == "anonymous_access")
    assert [s["name"] for s in anon_finding["subjects"]] == ["system:unauthenticated"]


def test_default_service_account_tokens():
    accounts = [
        {"kind": "ServiceAccount", "metadata": {"name": "default", "namespace": "a"}},
        {
            "kind": "ServiceAccount",
            "metadata": {"name": "default", "namespace": "b"},
            "automountServiceAccountToken": False,
        },
        {"kind": "ServiceAccount", "metadata": {"name": "app", "namespace": "a"}},
    ]
    findings = audit.audit({"service_accounts": accounts})
    assert [(f["cis"], f["subjects"][0]["namespace"]) for f in findings] == [("5.1.6", "a")]


def test_only_the_requested_checks_run():
    state = {"cluster_roles": [cluster_role("r", rule(["*"], ["*"], ["*"]))], "cluster_role_bindings": [crb("b", "r")]}
    assert {f["check"] for f in audit.audit(state, checks=["nodes_proxy"])} == {"nodes_proxy"}


# ------------------------------------------------------------------ runner with a fake service


class FakeService:
    class client:
        requests = 5
        discovery_requests = 2

    def __init__(self, state, caller):
        self.state = state
        self.caller = caller
        self.deleted = []

    def discover(self, api_versions):
        pass

    def resource(self, api_version, kind, option="objects"):
        return kind

    def list(self, kind):
        key = {
            "ClusterRole": "cluster_roles",
            "Role": "roles",
            "ClusterRoleBinding": "cluster_role_bindings",
            "RoleBinding": "role_bindings",
            "ServiceAccount": "service_accounts",
        }[kind]
        return self.state.get(key, [])

    def whoami(self):
        return self.caller

    def delete(self, kind, obj, dry_run):
        self.deleted.append((kind, obj["metadata"]["name"], dry_run))


ADMIN = {"username": "kubernetes-admin", "groups": ["kubeadm:cluster-admins", "system:authenticated"]}
RISKY = {
    "cluster_roles": [cluster_role("cluster-admin", rule(["*"], ["*"], ["*"]))],
    "cluster_role_bindings": [
        crb("oops", "cluster-admin"),
        crb("cluster-admin", "cluster-admin", {"kind": "Group", "name": "system:masters"}),
    ],
}


def test_runner_reports_without_touching_by_default():
    service = FakeService(RISKY, ADMIN)
    result = runner.run({"allowed_bindings": ["cluster-admin"]}, False, service)
    assert not result["changed"] and service.deleted == []
    assert result["summary"]["by_cis"]["5.1.1"] == 1


@pytest.mark.parametrize("check_mode", [True, False])
def test_runner_remediates_non_allowlisted_bindings_once(check_mode):
    service = FakeService(RISKY, ADMIN)
    result = runner.run({"allowed_bindings": ["cluster-admin"], "remediate": True}, check_mode, service)
    assert result["changed"]
    assert service.deleted == [("ClusterRoleBinding", "oops", check_mode)]
    assert result["removed"][0]["name"] == "oops" and "cluster_admin" in result["removed"][0]["checks"]


def test_runner_refuses_to_remove_the_callers_own_access():
    state = {
        **RISKY,
        "cluster_role_bindings": [
            crb("kubeadm:cluster-admins", "cluster-admin", {"kind": "Group", "name": "kubeadm:cluster-admins"})
        ],
    }
    service = FakeService(state, ADMIN)
    with pytest.raises(KubeguardError) as caught:
        runner.run({"allowed_bindings": [], "remediate": True}, False, service)
    assert caught.value.option == "allowed_bindings" and "grants the caller" in caught.value.message
    assert service.deleted == []
    # a system:masters caller keeps its access whatever the bindings say
    runner.run({"remediate": True}, False, FakeService(state, {"username": "x", "groups": ["system:masters"]}))


def test_runner_rejects_unknown_checks():
    with pytest.raises(KubeguardError, match="remediate_checks: unknown checks"):
        runner.run({"remediate_checks": ["nope"]}, False, FakeService({}, ADMIN))
