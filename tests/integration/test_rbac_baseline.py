"""The rbac_baseline role and the rbac_audit module against a real kube-apiserver (RBAC,Node
authorization, anonymous auth off) on loopback. Every claim is checked with the real
authorizer: `kubectl auth can-i` with impersonation, and requests with admin.conf's identity."""

import json

import pytest
from apiserver_fixture import REPO, ansible, call_module, controller_inventory, shared_cluster
from kubeguard_test.waiting import wait_for

PERSONAS = [
    {"persona": "viewer", "groups": ["ops-viewers"]},
    {"persona": "auditor", "groups": ["auditors"]},
    {"persona": "developer", "groups": ["team-a-devs"], "namespaces": ["rbac-team-a"]},
    {"persona": "namespace-admin", "groups": ["team-a-admins"], "namespaces": ["rbac-team-a"]},
]


@pytest.fixture(scope="module")
def cluster(lab_binaries):
    cluster = shared_cluster(lab_binaries)
    for ns in ("rbac-team-a", "rbac-team-b"):
        cluster.kubectl("create", "namespace", ns)
    return cluster


def run_role(cluster, tmp_path, kubeconfig=None, *extra, **overrides):
    variables = {
        "kubeguard_kubeconfig": str(kubeconfig or cluster.super_admin),
        "rbac_baseline_persona_bindings": PERSONAS,
    }
    variables.update(overrides)
    varsfile = tmp_path / f"vars-{len(list(tmp_path.iterdir()))}.json"
    varsfile.write_text(json.dumps(variables))
    inventory = controller_inventory(tmp_path / "inventory.yml")
    return ansible(REPO / "playbooks/rbac_baseline.yml", inventory, "-e", f"@{varsfile}", *extra)


@pytest.fixture(scope="module")
def baseline(cluster, tmp_path_factory):
    """A risky anonymous grant planted, then the role: check mode, apply, rerun."""
    tmp = tmp_path_factory.mktemp("rbac-role")
    planted = cluster.kubectl(
        "create", "clusterrolebinding", "anon-pod-reader", "--clusterrole=view", "--group=system:unauthenticated"
    )
    assert planted.returncode == 0, planted.stderr
    admin_before = cluster.kubectl("get", "namespaces", kubeconfig=cluster.admin)
    check = run_role(cluster, tmp, None, "--check")
    after_check = cluster.kubectl("get", "clusterrole", "kubeguard:viewer")
    first = run_role(cluster, tmp)
    second = run_role(cluster, tmp)
    return {
        "admin_before": admin_before,
        "check": check,
        "after_check": after_check,
        "first": first,
        "second": second,
        "tmp": tmp,
    }


def test_check_mode_changes_nothing(baseline):
    run, stats, _ = baseline["check"]
    assert run.returncode == 0, run.stdout[-3000:]
    assert stats["cp1"]["changed"] > 0
    assert baseline["after_check"].returncode != 0, "check mode created a ClusterRole"


def test_first_run_changes_and_rerun_changes_nothing(baseline):
    run, stats, _ = baseline["first"]
    assert run.returncode == 0, run.stdout[-3000:]
    assert stats["cp1"]["changed"] > 0 and stats["cp1"]["failures"] == 0
    run, stats, tasks = baseline["second"]
    assert run.returncode == 0, run.stdout[-3000:]
    assert stats["cp1"]["changed"] == 0, [t["task"] for t in tasks if t.get("changed")]
    # two calls: one k8s_bulk_apply (personas, admin binding, service accounts), one rbac_audit (anonymous + audit)
    calls = [t for t in tasks if "api_requests" in t and not t.get("skipped")]
    assert len(calls) == 2, [t["task"] for t in calls]
    assert set(calls[0]["sets"]) == {"personas", "admin_binding", "service_accounts"}
    assert calls[1]["removed_before"] == [] and "summary" in calls[1]


def test_one_concern_tag_touches_that_concern_alone(cluster, baseline):
    """--tags rbac_baseline_service_accounts: the one call applies the default service accounts' set alone."""
    cluster.kubectl("create", "namespace", "rbac-late")
    cluster.kubectl("create", "serviceaccount", "default", "-n", "rbac-late")  # no controller-manager here
    cluster.kubectl("delete", "clusterrole", "kubeguard:viewer")
    run, stats, tasks = run_role(cluster, baseline["tmp"], None, "--tags", "rbac_baseline_service_accounts")
    assert run.returncode == 0 and stats["cp1"]["changed"] == 1, run.stdout[-3000:]
    calls = [t for t in tasks if "api_requests" in t and not t.get("skipped")]
    assert len(calls) == 1 and list(calls[0]["sets"]) == ["service_accounts"], [t["task"] for t in calls]
    account = json.loads(cluster.kubectl("get", "serviceaccount", "default", "-n", "rbac-late", "-o", "json").stdout)
    assert account["automountServiceAccountToken"] is False
    assert cluster.kubectl("get", "clusterrole", "kubeguard:viewer").returncode != 0  # the personas were not touched
    run, stats, _ = run_role(cluster, baseline["tmp"], None, "--check", "--diff", "--tags", "rbac_baseline_personas")
    assert run.returncode == 0 and stats["cp1"]["changed"] == 1
    assert cluster.kubectl("get", "clusterrole", "kubeguard:viewer").returncode != 0  # check mode created nothing
    run, stats, _ = run_role(cluster, baseline["tmp"], None, "--tags", "rbac_baseline_personas")
    assert run.returncode == 0 and stats["cp1"]["changed"] == 1
    assert cluster.kubectl("get", "clusterrole", "kubeguard:viewer").returncode == 0


def test_a_binding_to_an_undefined_persona_is_refused_naming_the_variable(cluster, baseline, tmp_path):
    bindings = [*PERSONAS, {"persona": "nope", "groups": ["someone"]}]
    run, _, tasks = run_role(cluster, tmp_path, None, rbac_baseline_persona_bindings=bindings)
    assert run.returncode != 0
    failed = [t for t in tasks if t.get("failed")]
    assert failed and failed[0]["msg"].startswith("rbac_baseline_persona_bindings: nope is not a persona"), failed
    assert cluster.kubectl("get", "clusterrolebinding", "kubeguard:nope").returncode != 0


def test_groups_given_as_a_string_bind_that_one_group(cluster, baseline, tmp_path):
    """The argument spec reads a string as a comma-separated list; the role binds what it read
    ("ops-viewers" is one group, not eleven one-letter groups), so the objects are the list's."""
    bindings = [{**PERSONAS[0], "groups": "ops-viewers"}, *PERSONAS[1:]]
    run, stats, _ = run_role(cluster, tmp_path, None, rbac_baseline_persona_bindings=bindings)
    assert run.returncode == 0, run.stdout[-3000:]
    assert stats["cp1"]["changed"] == 0
    binding = json.loads(cluster.kubectl("get", "clusterrolebinding", "kubeguard:viewer", "-o", "json").stdout)
    assert [subject["name"] for subject in binding["subjects"]] == ["ops-viewers"]


def test_admin_conf_works_through_the_revocable_binding(cluster, baseline):
    assert baseline["admin_before"].returncode != 0 and "forbidden" in baseline["admin_before"].stderr.lower()
    assert cluster.kubectl("get", "namespaces", kubeconfig=cluster.admin).returncode == 0
    binding = json.loads(cluster.kubectl("get", "clusterrolebinding", "kubeadm:cluster-admins", "-o", "json").stdout)
    assert binding["roleRef"]["name"] == "cluster-admin"
    assert binding["subjects"] == [
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "kubeadm:cluster-admins"}
    ]


@pytest.mark.parametrize(
    ("groups", "verb", "resource", "namespace", "expected"),
    [
        (["ops-viewers"], "list", "pods", "rbac-team-b", True),
        (["ops-viewers"], "get", "secrets", "rbac-team-b", False),
        (["ops-viewers"], "create", "deployments.apps", "rbac-team-b", False),
        (["auditors"], "list", "clusterrolebindings.rbac.authorization.k8s.io", None, True),
        (["auditors"], "get", "secrets", "rbac-team-a", False),
        (["auditors"], "delete", "pods", "rbac-team-a", False),
        (["team-a-devs"], "create", "deployments.apps", "rbac-team-a", True),
        (["team-a-devs"], "create", "deployments.apps", "rbac-team-b", False),
        (["team-a-devs"], "get", "secrets", "rbac-team-a", False),
        (["team-a-devs"], "create", "pods", "rbac-team-a", False),
        (["team-a-admins"], "get", "secrets", "rbac-team-a", True),
        (["team-a-admins"], "get", "secrets", "rbac-team-b", False),
        (["team-a-admins"], "create", "rolebindings.rbac.authorization.k8s.io", "rbac-team-a", True),
        (["team-a-admins"], "list", "nodes", None, False),
    ],
)
def test_persona_permissions_by_the_real_authorizer(cluster, baseline, groups, verb, resource, namespace, expected):
    extra = ["-n", namespace] if namespace else []
    assert cluster.can_i(verb, resource, *extra, user="someone", groups=groups) is expected


def test_can_i_list_matrix_per_persona(cluster, baseline, capsys):
    """`kubectl auth can-i --list` for each persona, printed as the proof matrix."""
    matrix = {}
    for entry in PERSONAS:
        namespace = (entry.get("namespaces") or ["rbac-team-b"])[0]
        run = cluster.kubectl(
            "auth", "can-i", "--list", "-n", namespace, "--as=someone", f"--as-group={entry['groups'][0]}"
        )
        assert run.returncode == 0, run.stderr
        matrix[entry["persona"]] = run.stdout
    with capsys.disabled():
        for persona, listing in matrix.items():
            print(f"\n--- can-i --list as persona {persona}\n{listing}")
    assert "secrets" not in matrix["viewer"] and "secrets" not in matrix["auditor"]
    assert "secrets" in matrix["namespace-admin"]
    assert "clusterrolebindings.rbac.authorization.k8s.io" in matrix["auditor"]


def test_anonymous_keeps_only_upstream_defaults(cluster, baseline):
    assert cluster.kubectl("get", "clusterrolebinding", "anon-pod-reader").returncode != 0
    assert cluster.kubectl("get", "clusterrolebinding", "system:public-info-viewer").returncode == 0
    anonymous = ("system:anonymous", ["system:unauthenticated"])
    assert not cluster.review(*anonymous, "list", "pods", "rbac-team-a")
    assert cluster.review(*anonymous, "get", path="/version")  # upstream's public-info-viewer still applies
    assert not cluster.review(*anonymous, "get", path="/apis")  # discovery is for authenticated users only


def test_default_service_accounts_do_not_mount_tokens(cluster, baseline):
    for ns in ("rbac-team-a", "rbac-team-b", "default"):
        account = json.loads(cluster.kubectl("get", "serviceaccount", "default", "-n", ns, "-o", "json").stdout)
        assert account["automountServiceAccountToken"] is False, ns
    # exempt namespace left alone (no controller-manager here, so nothing created it either)
    assert cluster.kubectl("get", "serviceaccount", "default", "-n", "kube-system").returncode != 0


def test_revoking_with_admin_conf_is_refused_then_works_as_super_admin(cluster, baseline):
    tmp = baseline["tmp"]
    refused, _, _ = run_role(
        cluster, tmp, cluster.admin, "--tags", "rbac_baseline_admin_binding", rbac_baseline_admin_binding_state="absent"
    )
    assert refused.returncode != 0
    assert "rbac_baseline_admin_binding_state: revoking" in refused.stdout, refused.stdout[-2000:]
    assert cluster.kubectl("get", "namespaces", kubeconfig=cluster.admin).returncode == 0
    revoked, stats, _ = run_role(
        cluster, tmp, None, "--tags", "rbac_baseline_admin_binding", rbac_baseline_admin_binding_state="absent"
    )
    assert revoked.returncode == 0 and stats["cp1"]["changed"] == 1, revoked.stdout[-2000:]
    denied = cluster.kubectl("get", "namespaces", kubeconfig=cluster.admin)
    assert denied.returncode != 0 and "forbidden" in denied.stderr.lower()
    restored, _, _ = run_role(cluster, tmp, None, "--tags", "rbac_baseline_admin_binding")
    assert restored.returncode == 0
    assert cluster.kubectl("get", "namespaces", kubeconfig=cluster.admin).returncode == 0


# ------------------------------------------------------------------ the audit module


@pytest.fixture(scope="module")
def planted(cluster, tmp_path_factory):
    """The risky bindings of the issue: a group bound to cluster-admin, a wildcard Role, a nodes/proxy reader."""
    cluster.kubectl("create", "namespace", "rbac-risky")
    wild = tmp_path_factory.mktemp("planted") / "wild.json"
    wild.write_text(
        json.dumps(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": {"name": "wild", "namespace": "rbac-risky"},
                "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}],
            }
        )
    )
    steps = [
        ("create", "clusterrolebinding", "contractors-admin", "--clusterrole=cluster-admin", "--group=contractors"),
        ("apply", "-f", str(wild)),
        ("create", "rolebinding", "wild-binding", "-n", "rbac-risky", "--role=wild", "--group=wildcarders"),
        ("create", "clusterrole", "node-proxy-reader", "--verb=get", "--resource=nodes/proxy"),
        ("create", "clusterrolebinding", "node-proxy-reader", "--clusterrole=node-proxy-reader", "--group=scrapers"),
    ]
    for step in steps:
        run = cluster.kubectl(*step)
        assert run.returncode == 0, (step, run.stderr)
    return cluster


GRANTS = [
    (["contractors"], ("delete", "namespaces")),
    (["wildcarders"], ("create", "deployments.apps", "-n", "rbac-risky")),
    (["scrapers"], ("get", "nodes", "--subresource=proxy")),
]


def audit_args(cluster, **extra):
    return {
        "kubeconfig": str(cluster.super_admin),
        "allowed_bindings": ["system:*", "*/system:*", "cluster-admin", "kubeadm:*", "kubeguard:*", "*/kubeguard:*"],
        **extra,
    }


def test_audit_reports_each_planted_binding_with_its_cis_id_and_subjects(planted, tmp_path):
    for groups, can in GRANTS:
        assert planted.can_i(*can, groups=groups), (groups, can)
    result, _ = call_module(tmp_path, "rbac_audit", audit_args(planted))
    assert not result["changed"]
    found = {
        (f["cis"], (f["binding"] or {}).get("name"), tuple(s["name"] for s in f["subjects"]))
        for f in result["findings"]
    }
    assert ("5.1.1", "contractors-admin", ("contractors",)) in found
    assert ("5.1.3", "wild-binding", ("wildcarders",)) in found
    assert ("5.1.10", "node-proxy-reader", ("scrapers",)) in found
    assert result["caller"]["groups"][0] == "system:masters"
    assert result["api_requests"]["discovery"] == 2


def test_remediation_check_mode_then_apply_then_can_i_denies(planted, tmp_path):
    args = audit_args(planted, remediate=True)
    check, _ = call_module(tmp_path, "rbac_audit", args, "--diff", check=True)
    names = {r["name"] for r in check["removed"]}
    assert {"contractors-admin", "wild-binding", "node-proxy-reader"} <= names, check["removed"]
    assert check["changed"] and planted.kubectl("get", "clusterrolebinding", "contractors-admin").returncode == 0
    done, _ = call_module(tmp_path, "rbac_audit", args)
    assert done["changed"] and {r["name"] for r in done["removed"]} == names
    for groups, can in GRANTS:
        assert not planted.can_i(*can, groups=groups), (groups, can)
    again, _ = call_module(tmp_path, "rbac_audit", args)
    assert not again["changed"] and again["removed"] == []


def test_remediation_never_removes_the_callers_own_access(planted, tmp_path):
    planted.kubectl(
        "create",
        "clusterrolebinding",
        "kubeadm:cluster-admins",
        "--clusterrole=cluster-admin",
        "--group=kubeadm:cluster-admins",
    )
    result, _ = call_module(
        tmp_path,
        "rbac_audit",
        {
            "kubeconfig": str(planted.admin),
            "allowed_bindings": ["system:*", "*/system:*", "cluster-admin"],
            "remediate": True,
        },
    )
    assert (
        result["failed"]
        and "allowed_bindings: remediation would remove ClusterRoleBinding kubeadm:cluster-admins" in result["msg"]
    ), result
    assert planted.kubectl("get", "namespaces", kubeconfig=planted.admin).returncode == 0


def test_anonymous_remediation_removes_only_the_anonymous_subjects(cluster, baseline, tmp_path):
    """A binding that grants a real group and, by mistake, anonymous requests: remediation takes
    out the anonymous subjects only; the group keeps its access."""
    # not `view`: its rules are aggregated by the controller-manager, which this apiserver runs without
    cluster.kubectl("create", "clusterrole", "pod-lister", "--verb=list", "--resource=pods")
    planted = cluster.kubectl(
        "create",
        "rolebinding",
        "mixed-readers",
        "-n",
        "rbac-team-b",
        "--clusterrole=pod-lister",
        "--group=ops-readers",
        "--group=system:unauthenticated",
        "--user=system:anonymous",
    )
    assert planted.returncode == 0, planted.stderr
    anonymous = ("system:anonymous", ["system:unauthenticated"])
    # the authorizer sees a new binding once its informer has it
    wait_for(lambda: cluster.review(*anonymous, "list", "pods", "rbac-team-b"), 30, "the planted anonymous grant")
    args = {"kubeconfig": str(cluster.super_admin), "checks": ["anonymous_access"], "remediate": True}
    check, _ = call_module(tmp_path, "rbac_audit", args, "--diff", check=True)
    (entry,) = [r for r in check["removed"] if r["name"] == "mixed-readers"]
    assert check["changed"] and entry["action"] == "subjects_removed"
    assert sorted(entry["subjects_removed"]) == ["system:anonymous", "system:unauthenticated"]
    assert entry["subjects_kept"] == ["ops-readers"]
    assert cluster.review(*anonymous, "list", "pods", "rbac-team-b")  # check mode changed nothing
    done, _ = call_module(tmp_path, "rbac_audit", args)
    assert done["changed"]
    binding = json.loads(
        cluster.kubectl("get", "rolebinding", "mixed-readers", "-n", "rbac-team-b", "-o", "json").stdout
    )
    assert [(s["kind"], s["name"]) for s in binding["subjects"]] == [("Group", "ops-readers")]
    wait_for(lambda: not cluster.review(*anonymous, "list", "pods", "rbac-team-b"), 30, "the anonymous grant gone")
    assert cluster.can_i("list", "pods", "-n", "rbac-team-b", groups=["ops-readers"])
    again, _ = call_module(tmp_path, "rbac_audit", args)
    assert not again["changed"] and again["removed"] == []


def test_token_mounting_is_audited_per_pod(cluster, baseline, tmp_path):
    """CIS 5.1.6 on pods: after the baseline the default service account mounts nothing, so a pod
    on it is clean unless the pod itself asks for the token; a pod on another account that leaves
    the field unset mounts it."""
    cluster.kubectl("create", "serviceaccount", "api-client", "-n", "rbac-team-a")
    for name, account, automount in (("quiet", None, None), ("loud", None, True), ("client", "api-client", None)):
        spec = {"containers": [{"name": "c", "image": "registry.invalid/none"}]}
        if account:
            spec["serviceAccountName"] = account
        if automount is not None:
            spec["automountServiceAccountToken"] = automount
        manifest = tmp_path / f"{name}.json"
        manifest.write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {"name": name, "namespace": "rbac-team-a"},
                    "spec": spec,
                }
            )
        )
        created = cluster.kubectl("apply", "-f", str(manifest))
        assert created.returncode == 0, created.stderr
    args = {"kubeconfig": str(cluster.super_admin), "checks": ["pod_service_account_token"]}
    result, _ = call_module(tmp_path, "rbac_audit", args)
    found = {
        f["pod"]["name"]: (f["cis"], f["decided_by"])
        for f in result["findings"]
        if f["pod"]["namespace"] == "rbac-team-a"
    }
    assert found == {"loud": ("5.1.6", "pod"), "client": ("5.1.6", "default")}
    # what the API server stored agrees: the admission plugin mounts the token volume exactly there
    for name in ("quiet", "loud", "client"):
        stored = json.loads(cluster.kubectl("get", "pod", name, "-n", "rbac-team-a", "-o", "json").stdout)
        mounted = any(v["name"].startswith("kube-api-access-") for v in stored["spec"].get("volumes") or [])
        assert mounted is (name in found), name
