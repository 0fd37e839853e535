"""The network_policy role, network_policy_audit and network_policy_truth_table against a real
kube-apiserver on loopback. The API decides validity and stores what the enforcer would read;
real traffic needs the lab's data plane and is not exercised here."""

import json

import pytest
from apiserver_fixture import REPO, ansible, call_module, controller_inventory, shared_cluster

APP_NAMESPACES = ("np-x", "np-y", "np-z")
POD_PORTS = [{"name": "serve-80-tcp", "containerPort": 80}, {"name": "serve-81-tcp", "containerPort": 81}]


@pytest.fixture(scope="module")
def cluster(lab_binaries):
    cluster = shared_cluster(lab_binaries)
    for ns in APP_NAMESPACES:
        cluster.kubectl("create", "namespace", ns)
        cluster.kubectl("create", "serviceaccount", "default", "-n", ns)  # no controller-manager makes it here
    return cluster


def run_role(cluster, tmp_path, *extra, **overrides):
    variables = {
        "kubeguard_kubeconfig": str(cluster.super_admin),
        "network_policy_custom_rules": [
            {
                "name": "allow-from-team-blue",
                "namespaces": ["np-x"],
                "spec": {
                    "podSelector": {},
                    "policyTypes": ["Ingress"],
                    "ingress": [
                        {"from": [{"namespaceSelector": {"matchLabels": {"team": "blue"}}}], "ports": [{"port": 80}]}
                    ],
                },
            }
        ],
    }
    variables.update(overrides)
    varsfile = tmp_path / f"vars-{len(list(tmp_path.iterdir()))}.json"
    varsfile.write_text(json.dumps(variables))
    return ansible(
        REPO / "playbooks/network_policy.yml",
        controller_inventory(tmp_path / "inventory.yml"),
        "-e",
        f"@{varsfile}",
        *extra,
    )


def policies_in(cluster, ns):
    run = cluster.kubectl("get", "networkpolicy", "-n", ns, "-o", "json")
    return sorted(item["metadata"]["name"] for item in json.loads(run.stdout)["items"])


PLAN = "Find the namespaces whose policies this run changes, and the pods running there"
APPLY = "then the baseline policies to every namespace that is not exempt, and prune the stale ones, in one call"


def audit_result(tasks):
    """The coverage audit: its own call when the run changed policies (or the live-flows plan did not run), else
    the plan's, from the same read (a rerun)."""
    audit = next(t for t in tasks if t["task"].endswith("Find the namespaces without default-deny in both directions"))
    if not audit.get("skipped"):
        return audit
    plan = next(t for t in tasks if t["task"].endswith(PLAN))
    assert plan["audit"]["after_run"], plan["audit"]
    return plan["audit"]


def api_calls(tasks):
    """The API module calls the run made (every one returns api_requests)."""
    return [t["task"] for t in tasks if "api_requests" in t and not t.get("skipped")]


@pytest.fixture(scope="module")
def applied(cluster, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("np-role")
    check = run_role(cluster, tmp, "--check")
    after_check = policies_in(cluster, "np-x")
    first = run_role(cluster, tmp)
    second = run_role(cluster, tmp)
    return {"check": check, "after_check": after_check, "first": first, "second": second, "tmp": tmp}


def test_check_mode_writes_nothing(applied):
    run, stats, _ = applied["check"]
    assert run.returncode == 0, run.stdout[-3000:]
    assert stats["cp1"]["changed"] > 0 and applied["after_check"] == []


def test_every_namespace_covered_and_rerun_changes_nothing(cluster, applied):
    run, stats, tasks = applied["first"]
    assert run.returncode == 0, run.stdout[-3000:]
    for ns in APP_NAMESPACES:
        assert {"kubeguard-default-deny", "kubeguard-allow-dns"} <= set(policies_in(cluster, ns)), ns
    assert policies_in(cluster, "kube-system") == []
    assert "allow-from-team-blue" in policies_in(cluster, "np-x") and "allow-from-team-blue" not in policies_in(
        cluster, "np-y"
    )
    assert audit_result(tasks)["uncovered"] == []
    run, stats, tasks = applied["second"]
    assert run.returncode == 0 and stats["cp1"]["changed"] == 0, [t["task"] for t in tasks if t.get("changed")]
    # two calls: the plan, which audits from its own read, and one apply for the custom rules and the baseline
    calls = api_calls(tasks)
    assert len(calls) == 2 and calls[0].endswith(PLAN) and calls[1].endswith(APPLY), calls
    assert audit_result(tasks)["uncovered"] == []
    applied_sets = next(t for t in tasks if t["task"].endswith(APPLY))["sets"]
    assert set(applied_sets) == {"custom", "baseline"}
    assert applied_sets["custom"]["summary"]["unchanged"] == 1 and applied_sets["baseline"]["summary"]["unchanged"] > 0


def test_one_concern_tag_applies_that_concern_alone(cluster, applied):
    """--tags network_policy_custom: the live-flows check (as before) and the custom set alone; no audit."""
    run, stats, tasks = run_role(cluster, applied["tmp"], "--tags", "network_policy_custom")
    assert run.returncode == 0 and stats["cp1"]["changed"] == 0, run.stdout[-3000:]
    calls = api_calls(tasks)
    assert len(calls) == 2 and calls[0].endswith(PLAN) and calls[1].endswith(APPLY), calls
    assert list(next(t for t in tasks if t["task"].endswith(APPLY))["sets"]) == ["custom"]
    assert "audit" not in next(t for t in tasks if t["task"].endswith(PLAN))


def test_dns_policy_is_what_the_api_stored(cluster, applied):
    stored = json.loads(
        cluster.kubectl("get", "networkpolicy", "kubeguard-allow-dns", "-n", "np-y", "-o", "json").stdout
    )
    (rule,) = stored["spec"]["egress"]
    assert rule["to"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
        }
    ]
    assert sorted((p["protocol"], p["port"]) for p in rule["ports"]) == [("TCP", 53), ("UDP", 53)]


def test_a_new_namespace_is_flagged_then_covered_on_the_next_run(cluster, applied):
    tmp = applied["tmp"]
    assert cluster.kubectl("create", "namespace", "np-late").returncode == 0
    run, stats, tasks = run_role(cluster, tmp, "--tags", "network_policy_audit")
    assert run.returncode == 0 and stats["cp1"]["changed"] == 0
    flagged = audit_result(tasks)
    assert flagged["uncovered"] == ["np-late"], flagged["uncovered"]
    assert flagged["findings"][0]["cis"] == "5.3.2"
    strict, _, _ = run_role(cluster, tmp, "--tags", "network_policy_audit", network_policy_audit_fail_on_uncovered=True)
    assert strict.returncode != 0 and "network_policy_audit_fail_on_uncovered" in strict.stdout
    run, stats, tasks = run_role(cluster, tmp)
    assert run.returncode == 0 and stats["cp1"]["changed"] > 0
    assert audit_result(tasks)["uncovered"] == []
    assert "kubeguard-default-deny" in policies_in(cluster, "np-late")


def test_truth_table_from_the_cluster(cluster, applied, tmp_path, capsys):
    """Pods a, b, c in np-x/y/z (Pending: no kubelet) and the applied policies: everything is
    blocked but loopback, on both ports. The allow-from-team-blue rule opens np-x port 80 to
    np-y once np-y carries the label."""
    for ns in APP_NAMESPACES:
        for pod in "abc":
            manifest = {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": pod, "namespace": ns, "labels": {"pod": pod}},
                "spec": {
                    "automountServiceAccountToken": False,
                    "containers": [{"name": "serve", "image": "registry.invalid/agnhost", "ports": POD_PORTS}],
                },
            }
            path = tmp_path / f"{ns}-{pod}.json"
            path.write_text(json.dumps(manifest))
            assert cluster.kubectl("apply", "-f", str(path)).returncode == 0
    args = {"kubeconfig": str(cluster.super_admin), "namespaces": list(APP_NAMESPACES), "ports": ["tcp/80", "tcp/81"]}
    result, _ = call_module(tmp_path, "network_policy_truth_table", args)
    rows = result["table"]["tcp/80"]
    assert len(rows) == 9 and all(rows[s][d] is (s == d) for s in rows for d in rows), result["matrices"]["tcp/80"]
    cluster.kubectl("label", "namespace", "np-y", "team=blue", "--overwrite")
    result, _ = call_module(tmp_path, "network_policy_truth_table", args)
    with capsys.disabled():
        print("\n" + result["matrices"]["tcp/80"] + "\n\n" + result["matrices"]["tcp/81"])
    # ingress into np-x from np-y is allowed now, but np-y's own default-deny egress still blocks it
    assert result["details"]["tcp/80"]["np-y/a"]["np-x/b"] == {"egress": False, "ingress": True, "allowed": False}
    assert result["details"]["tcp/81"]["np-y/a"]["np-x/b"]["ingress"] is False


def test_a_toggled_off_policy_is_pruned_check_mode_first_and_foreign_ones_stay(cluster, applied, tmp_path):
    tmp = applied["tmp"]
    run, _, _ = run_role(cluster, tmp, network_policy_allow_same_namespace=True)
    assert run.returncode == 0 and "kubeguard-allow-same-namespace" in policies_in(cluster, "np-y")
    # the same label, but written by kubectl (another field manager): never ours to prune
    foreign = tmp_path / "foreign.json"
    foreign.write_text(
        json.dumps(
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": {
                    "name": "hand-made",
                    "namespace": "np-y",
                    "labels": {"kubeguard.io/set": "network-policy-baseline"},
                },
                "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
            }
        )
    )
    assert cluster.kubectl("create", "-f", str(foreign)).returncode == 0
    check, stats, tasks = run_role(cluster, tmp, "--check", "--diff")
    assert check.returncode == 0 and stats["cp1"]["changed"] == 1
    baseline = next(t for t in tasks if "prune the stale ones" in t["task"])
    pruned = [r for r in baseline["results"] if r["action"] == "pruned"]
    assert {(r["namespace"], r["name"]) for r in pruned} == {
        (ns, "kubeguard-allow-same-namespace") for ns in policies_namespaces(cluster)
    }
    assert {d["before_header"] for d in baseline["diff"]} == {
        f"NetworkPolicy {ns}/kubeguard-allow-same-namespace" for ns in policies_namespaces(cluster)
    }
    assert "kubeguard-allow-same-namespace" in policies_in(cluster, "np-y")  # check mode deleted nothing
    run, stats, _ = run_role(cluster, tmp)
    assert run.returncode == 0 and stats["cp1"]["changed"] == 1
    assert policies_in(cluster, "np-y") == ["hand-made", "kubeguard-allow-dns", "kubeguard-default-deny"]
    run, stats, _ = run_role(cluster, tmp)
    assert run.returncode == 0 and stats["cp1"]["changed"] == 0


def policies_namespaces(cluster):
    """Namespaces holding kubeguard-allow-same-namespace now."""
    run = cluster.kubectl("get", "networkpolicy", "-A", "-o", "json")
    return {
        item["metadata"]["namespace"]
        for item in json.loads(run.stdout)["items"]
        if item["metadata"]["name"] == "kubeguard-allow-same-namespace"
    }


CLOSE = "Remove the transition policies now that every policy is in place (also those a failed run left)"


def test_a_transition_policy_a_stopped_run_left_is_pruned_and_a_rerun_makes_no_call_for_none(cluster, applied):
    """A run stopped between applying the transition allow-all and removing it leaves it behind: the next run's
    plan sees it and prunes it; with none left, the prune task is skipped (no API call on a rerun)."""
    tasks = applied["second"][2]
    assert next(t for t in tasks if t["task"].endswith(CLOSE)).get("skipped"), "a rerun with none left pruned"
    leftover = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": "kubeguard-transition-allow-all",
            "namespace": "np-y",
            "labels": {"app.kubernetes.io/managed-by": "kubeguard", "kubeguard.io/set": "network-policy-transition"},
        },
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{}]},
    }
    path = applied["tmp"] / "leftover-transition.json"
    path.write_text(json.dumps(leftover))
    # as the role applies it: server-side, by our field manager (the prune removes only such objects)
    made = cluster.kubectl("apply", "--server-side", "--field-manager=kubeguard", "-f", str(path))
    assert made.returncode == 0, made.stderr
    assert "kubeguard-transition-allow-all" in policies_in(cluster, "np-y")
    run, _, tasks = run_role(cluster, applied["tmp"])
    assert run.returncode == 0, run.stdout[-3000:]
    assert next(t for t in tasks if t["task"].endswith(CLOSE)).get("changed"), "the leftover was not pruned"
    assert "kubeguard-transition-allow-all" not in policies_in(cluster, "np-y")
