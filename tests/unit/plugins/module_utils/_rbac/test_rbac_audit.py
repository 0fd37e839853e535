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
    assert audit.audit({"service_accounts": accounts}, automount_exempt=["a"]) == []


def sa(name, automount=None, namespace="n"):
    account = {"kind": "ServiceAccount", "metadata": {"name": name, "namespace": namespace}}
    if automount is not None:
        account["automountServiceAccountToken"] = automount
    return account


def pod(name, account=None, automount=None, namespace="n", phase="Running"):
    spec = {"containers": [{"name": "c"}]}
    if account:
        spec["serviceAccountName"] = account
    if automount is not None:
        spec["automountServiceAccountToken"] = automount
    return {"kind": "Pod", "metadata": {"name": name, "namespace": namespace}, "spec": spec, "status": {"phase": phase}}


@pytest.mark.parametrize(
    ("the_pod", "accounts", "expected"),
    [
        (pod("p"), [], (True, "default")),  # nothing says otherwise: the kubelet mounts it
        (pod("p"), [sa("default", False)], (False, "serviceaccount")),
        (pod("p", automount=True), [sa("default", False)], (True, "pod")),  # the pod's field wins
        (pod("p", automount=False), [sa("default", True)], (False, "pod")),
        (pod("p", "app"), [sa("default", False), sa("app")], (True, "default")),  # its own account, not default
        (pod("p", "app"), [sa("app", False)], (False, "serviceaccount")),
    ],
)
def test_token_mounting_is_decided_per_pod(the_pod, accounts, expected):
    by_key = {(a["metadata"]["namespace"], a["metadata"]["name"]): a for a in accounts}
    assert audit.automount(the_pod, by_key) == expected


def test_pods_that_mount_tokens_are_5_1_6_findings():
    state = {
        "service_accounts": [sa("default", False), sa("app"), sa("default", namespace="kube-system")],
        "pods": [
            pod("quiet"),  # default SA says no
            pod("loud", automount=True),
            pod("api-client", "app"),
            pod("done", automount=True, phase="Succeeded"),
            pod("coredns", "coredns", namespace="kube-system"),
        ],
    }
    findings = audit.audit(state, checks=["pod_service_account_token"], automount_exempt=["kube-*"])
    assert [(f["cis"], f["pod"]["name"], f["decided_by"], f["subjects"][0]["name"]) for f in findings] == [
        ("5.1.6", "loud", "pod", "default"),
        ("5.1.6", "api-client", "default", "app"),
    ]
    allowed = audit.audit(state, checks=["pod_service_account_token"], allowed_subjects=["system:serviceaccount:n:app"])
    assert {f["pod"]["name"]: f["allowlisted"] for f in allowed} == {
        "loud": False,
        "api-client": True,
        "coredns": False,
    }


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
        self.replaced = []
        self.listed = []

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
            "Pod": "pods",
        }[kind]
        self.listed.append(kind)
        return self.state.get(key, [])

    def whoami(self):
        return self.caller

    def delete(self, kind, obj, dry_run):
        self.deleted.append((kind, obj["metadata"]["name"], dry_run))

    def replace(self, kind, obj, dry_run):
        self.replaced.append((kind, obj["metadata"]["name"], [s["name"] for s in obj["subjects"]], dry_run))


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
    assert result["removed"][0]["action"] == "deleted" and service.replaced == []


@pytest.mark.parametrize("check_mode", [True, False])
def test_remediation_removes_only_the_anonymous_subjects_and_keeps_the_binding(check_mode):
    anon = {"kind": "User", "name": "system:anonymous", "apiGroup": "rbac.authorization.k8s.io"}
    unauth = {"kind": "Group", "name": "system:unauthenticated", "apiGroup": "rbac.authorization.k8s.io"}
    state = {
        "cluster_roles": [cluster_role("view", rule(["get"], ["pods"]))],
        "cluster_role_bindings": [crb("readers", "view", GROUP, anon), crb("only-anon", "view", unauth)],
    }
    service = FakeService(state, ADMIN)
    result = runner.run({"checks": ["anonymous_access"], "remediate": True}, check_mode, service)
    assert service.replaced == [("ClusterRoleBinding", "readers", ["team"], check_mode)]
    assert service.deleted == [("ClusterRoleBinding", "only-anon", check_mode)]
    by_name = {r["name"]: r for r in result["removed"]}
    assert by_name["readers"]["action"] == "subjects_removed"
    assert by_name["readers"]["subjects_removed"] == ["system:anonymous"] and by_name["readers"]["subjects_kept"] == [
        "team"
    ]
    assert by_name["only-anon"]["action"] == "deleted"
    diff = {d["before_header"]: d for d in result["diff"]}
    assert diff["ClusterRoleBinding readers"]["after"] == {"subjects": ["team"]}
    assert diff["ClusterRoleBinding only-anon"]["after_header"] == "(absent)"
    assert "Pod" not in service.listed  # pods are read only for the 5.1.6 pod check


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


ANON_USER = {"kind": "User", "name": "system:anonymous", "apiGroup": "rbac.authorization.k8s.io"}
CLUSTER_INFO_RULE = {
    "apiGroups": [""],
    "resources": ["configmaps"],
    "resourceNames": ["cluster-info"],
    "verbs": ["get"],
}


def kubeadm_discovery_state(*rules, binding_namespace="kube-public", name="kubeadm:bootstrap-signer-clusterinfo"):
    """kubeadm's bootstrap-token phase: RoleBinding + Role in kube-public, anonymous may get cluster-info."""
    return {
        "roles": [
            {"kind": "Role", "metadata": {"name": name, "namespace": binding_namespace}, "rules": list(rules)},
        ],
        "role_bindings": [
            {
                "kind": "RoleBinding",
                "metadata": {"name": name, "namespace": binding_namespace},
                "roleRef": {"kind": "Role", "name": name, "apiGroup": "rbac.authorization.k8s.io"},
                "subjects": [ANON_USER],
            }
        ],
    }


@pytest.mark.parametrize(
    ("state", "kubeadm_discovery", "kept"),
    [
        (kubeadm_discovery_state(CLUSTER_INFO_RULE), True, True),
        # the toggle off: kubeadm's grant is a finding like any other
        (kubeadm_discovery_state(CLUSTER_INFO_RULE), False, False),
        # a Role of that name that allows more: list, any ConfigMap, secrets, another rule
        (kubeadm_discovery_state({**CLUSTER_INFO_RULE, "verbs": ["get", "list"]}), True, False),
        (kubeadm_discovery_state({**CLUSTER_INFO_RULE, "resourceNames": []}), True, False),
        (kubeadm_discovery_state({**CLUSTER_INFO_RULE, "resources": ["configmaps", "secrets"]}), True, False),
        (kubeadm_discovery_state(CLUSTER_INFO_RULE, rule(["get"], ["pods"])), True, False),
        (kubeadm_discovery_state(), True, False),
        # the same grant under another name or namespace is not kubeadm's
        (kubeadm_discovery_state(CLUSTER_INFO_RULE, binding_namespace="default"), True, False),
        (kubeadm_discovery_state(CLUSTER_INFO_RULE, name="cluster-info-readers"), True, False),
    ],
)
def test_kubeadm_discovery_grant_is_kept_only_exactly(state, kubeadm_discovery, kept):
    findings = [f for f in audit.audit(state, kubeadm_discovery=kubeadm_discovery) if f["check"] == "anonymous_access"]
    assert len(findings) == 1
    assert findings[0]["allowlisted"] is kept


@pytest.mark.parametrize("kubeadm_discovery", [True, False])
def test_remediation_keeps_kubeadm_discovery_only_when_asked(kubeadm_discovery):
    state = kubeadm_discovery_state(CLUSTER_INFO_RULE)
    state["cluster_roles"] = [cluster_role("view", rule(["get"], ["pods"]))]
    state["cluster_role_bindings"] = [crb("anon-view", "view", ANON_USER)]
    service = FakeService(state, ADMIN)
    params = {"checks": ["anonymous_access"], "remediate": True, "kubeadm_discovery": kubeadm_discovery}
    result = runner.run(params, False, service)
    deleted = {name for _kind, name, _dry in service.deleted}
    # another anonymous grant goes either way; kubeadm's stays with the exception on
    assert "anon-view" in deleted
    assert ("kubeadm:bootstrap-signer-clusterinfo" in deleted) is not kubeadm_discovery
    assert result["summary"]["allowlisted"] == (1 if kubeadm_discovery else 0)


# ------------------------------------------------------------------ remediate_before: two calls' work in one

ANON = {"kind": "User", "name": "system:anonymous", "apiGroup": "rbac.authorization.k8s.io"}
MIXED = {
    "cluster_roles": [
        cluster_role("view", rule(["get"], ["pods"])),
        cluster_role("cluster-admin", rule(["*"], ["*"], ["*"])),
    ],
    "cluster_role_bindings": [crb("readers", "view", GROUP, ANON), crb("oops", "cluster-admin")],
}


@pytest.mark.parametrize("check_mode", [True, False])
def test_remediate_before_does_what_an_earlier_call_would_then_audits_what_it_leaves(check_mode):
    service = FakeService(MIXED, ADMIN)
    result = runner.run(
        {"allowed_bindings": ["cluster-admin"], "remediate_before": ["anonymous_access"]}, check_mode, service
    )
    assert service.replaced == [("ClusterRoleBinding", "readers", ["team"], check_mode)] and service.deleted == []
    assert [r["name"] for r in result["removed_before"]] == ["readers"] and result["removed"] == []
    assert result["changed"] and [d["before_header"] for d in result["diff"]] == ["ClusterRoleBinding readers"]
    anonymous = [f for f in result["findings"] if f["check"] == "anonymous_access"]
    # after a real removal the audit sees the binding without its anonymous subject; a dry-run leaves it as it was
    assert bool(anonymous) is check_mode
    assert result["summary"]["by_cis"]["5.1.1"] == 1
    assert service.listed.count("ClusterRoleBinding") == 1  # one read for both


def test_remediate_before_and_remediate_together_and_a_refusal_comes_before_any_write():
    service = FakeService(MIXED, ADMIN)
    result = runner.run(
        {
            "allowed_bindings": [],
            "remediate_before": ["anonymous_access"],
            "remediate": True,
            "remediate_checks": ["cluster_admin"],
        },
        False,
        service,
    )
    assert [r["name"] for r in result["removed_before"]] == ["readers"] and [r["name"] for r in result["removed"]] == [
        "oops"
    ]
    own = {
        **MIXED,
        "cluster_role_bindings": [
            *MIXED["cluster_role_bindings"],
            crb("mine", "cluster-admin", {"kind": "Group", "name": "kubeadm:cluster-admins"}),
        ],
    }
    refusing = FakeService(own, ADMIN)
    with pytest.raises(KubeguardError) as caught:
        runner.run(
            {"allowed_bindings": [], "remediate_before": ["anonymous_access"], "remediate": True}, False, refusing
        )
    assert caught.value.option == "allowed_bindings" and refusing.replaced == [] and refusing.deleted == []


def test_remediate_before_replaces_what_it_wrote_not_the_stale_read():
    """A binding offending in both steps: the second step starts from the first step's result."""
    stored = []

    class Echo(FakeService):
        def replace(self, kind, obj, dry_run):
            super().replace(kind, obj, dry_run)
            stored.append(obj)
            return {**obj, "metadata": {**obj["metadata"], "resourceVersion": "2"}}

    state = {
        "cluster_roles": [cluster_role("cluster-admin", rule(["*"], ["*"], ["*"]))],
        "cluster_role_bindings": [crb("both", "cluster-admin", GROUP, ANON)],
    }
    service = Echo(state, ADMIN)
    runner.run({"allowed_bindings": [], "remediate_before": ["anonymous_access"], "remediate": True}, False, service)
    assert service.replaced[0] == ("ClusterRoleBinding", "both", ["team"], False)
    assert service.deleted == [("ClusterRoleBinding", "both", False)]


def test_remediate_before_rejects_unknown_checks():
    with pytest.raises(KubeguardError, match="remediate_before: unknown checks"):
        runner.run({"remediate_before": ["nope"]}, False, FakeService({}, ADMIN))
