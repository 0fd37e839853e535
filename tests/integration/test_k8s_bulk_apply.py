"""k8s_bulk_apply against a real kube-apiserver on loopback: server-side apply, dry-run check
mode, changed=false on rerun, drift reverted with a noise-free diff, few requests, no secrets."""

import json

import pytest
import yaml
from apiserver_fixture import call_module, shared_cluster


@pytest.fixture(scope="module")
def cluster(lab_binaries):
    return shared_cluster(lab_binaries)


def objects_for(namespaces):
    out = []
    for ns in namespaces:
        out += [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": {"team": ns}}},
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": {"name": "deny", "namespace": ns},
                "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": {"name": "reader", "namespace": ns},
                "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}],
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": "reader", "namespace": ns},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"},
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": f"{ns}-readers"}],
            },
        ]
    return out


def test_check_apply_check_apply(cluster, tmp_path):
    args = {"kubeconfig": str(cluster.super_admin), "objects": objects_for(["bulk-a", "bulk-b", "bulk-c"])}
    first_check, _ = call_module(tmp_path, "k8s_bulk_apply", args, check=True)
    assert first_check["changed"] and first_check["summary"]["created"] == 12, first_check
    assert cluster.kubectl("get", "ns", "bulk-a").returncode != 0, "check mode created a namespace"

    applied, _ = call_module(tmp_path, "k8s_bulk_apply", args)
    assert applied["changed"] and applied["summary"]["created"] == 12, applied
    # one discovery per group-version used (v1, networking, rbac), one LIST per kind, one apply per object
    assert applied["api_requests"] == {"discovery": 3, "total": 3 + 4 + 12}
    managed = json.loads(
        cluster.kubectl("get", "networkpolicy", "deny", "-n", "bulk-b", "-o", "json", "--show-managed-fields").stdout
    )
    assert [(m["manager"], m["operation"]) for m in managed["metadata"]["managedFields"]] == [("kubeguard", "Apply")]
    # the RoleBinding is live: the real authorizer now lets that group read pods there, and only there
    assert cluster.can_i("list", "pods", "-n", "bulk-b", groups=["bulk-b-readers"])
    assert not cluster.can_i("list", "pods", "-n", "bulk-a", groups=["bulk-b-readers"])

    second_check, _ = call_module(tmp_path, "k8s_bulk_apply", args, check=True)
    assert not second_check["changed"] and second_check["summary"]["unchanged"] == 12, second_check
    again, _ = call_module(tmp_path, "k8s_bulk_apply", args)
    assert not again["changed"] and again["summary"]["unchanged"] == 12, again


def test_drift_is_reverted_with_a_noise_free_diff(cluster, tmp_path):
    args = {"kubeconfig": str(cluster.super_admin), "objects": objects_for(["drift"])}
    call_module(tmp_path, "k8s_bulk_apply", args)
    patched = cluster.kubectl(
        "patch", "networkpolicy", "deny", "-n", "drift", "--type=merge", "-p", '{"spec":{"policyTypes":["Ingress"]}}'
    )
    assert patched.returncode == 0, patched.stderr
    result, _ = call_module(tmp_path, "k8s_bulk_apply", args, "--diff")
    assert result["changed"] and result["summary"]["updated"] == 1, result
    (diff,) = result["diff"]
    assert diff["before"]["spec"]["policyTypes"] == ["Ingress"]
    assert diff["after"]["spec"]["policyTypes"] == ["Ingress", "Egress"]
    for noise in ("managedFields", "resourceVersion", "generation", "uid", "creationTimestamp"):
        assert noise not in diff["before"]["metadata"] and noise not in diff["after"]["metadata"]
    assert "status" not in diff["after"]
    live = json.loads(cluster.kubectl("get", "networkpolicy", "deny", "-n", "drift", "-o", "json").stdout)
    assert live["spec"]["policyTypes"] == ["Ingress", "Egress"]


def test_namespace_templates_and_exclusions(cluster, tmp_path):
    for ns in ("tmpl-1", "tmpl-2", "tmpl-skip"):
        cluster.kubectl("create", "namespace", ns)
    template = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "marker"}, "data": {"a": "b"}}
    args = {
        "kubeconfig": str(cluster.super_admin),
        "namespace_objects": [template],
        "exclude_namespaces": ["kube-*", "tmpl-skip"],
    }
    result, _ = call_module(tmp_path, "k8s_bulk_apply", args)
    assert {"tmpl-1", "tmpl-2"} <= set(result["namespaces"]) and "tmpl-skip" not in result["namespaces"], result
    assert cluster.kubectl("get", "configmap", "marker", "-n", "tmpl-2").returncode == 0
    assert cluster.kubectl("get", "configmap", "marker", "-n", "tmpl-skip").returncode != 0
    gone, _ = call_module(tmp_path, "k8s_bulk_apply", {**args, "state": "absent"})
    assert gone["changed"] and cluster.kubectl("get", "configmap", "marker", "-n", "tmpl-1").returncode != 0


def test_server_side_validation_in_check_mode_writes_nothing(cluster, tmp_path):
    cluster.kubectl("create", "namespace", "sec-invalid")
    bad = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "bad", "namespace": "sec-invalid"},
        "spec": {"podSelector": {}, "ingress": [{"ports": [{"port": 70000}]}]},
    }
    result, _ = call_module(
        tmp_path, "k8s_bulk_apply", {"kubeconfig": str(cluster.super_admin), "objects": [bad]}, check=True
    )
    assert result["failed"] and "NetworkPolicy sec-invalid/bad: HTTP 422" in result["msg"], result
    assert cluster.kubectl("get", "networkpolicy", "bad", "-n", "sec-invalid").returncode != 0


def test_secrets_never_reach_the_output(cluster, tmp_path):
    cluster.kubectl("create", "namespace", "sec-values")
    inline = yaml.safe_load(cluster.super_admin.read_text())
    key_data = inline["users"][0]["user"]["client-key-data"]
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s", "namespace": "sec-values"},
        "stringData": {"password": "correct-horse-battery-staple"},
    }
    args = {"kubeconfig": inline, "objects": [secret]}
    result, run = call_module(tmp_path, "k8s_bulk_apply", args, "--diff", "-vvv")
    assert result["changed"], result
    output = run.stdout + run.stderr
    assert key_data not in output and key_data[:40] not in output
    assert "correct-horse-battery-staple" not in json.dumps(result["diff"])
    assert cluster.kubectl("get", "secret", "s", "-n", "sec-values").returncode == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        # the path itself is masked: the option is no_log, like every kubeconfig
        ({"kubeconfig": "/nonexistent/kubeconfig", "objects": []}, "kubeconfig: cannot load"),
        (
            {"objects": [{"apiVersion": "v1", "kind": "Nope", "metadata": {"name": "x"}}]},
            "objects: the API server does not serve kind Nope",
        ),
        ({"objects": [{"kind": "Namespace", "metadata": {"name": "x"}}]}, "objects: item 0 has no apiVersion"),
    ],
)
def test_clear_errors(cluster, tmp_path, args, message):
    args.setdefault("kubeconfig", str(cluster.super_admin))
    result, _ = call_module(tmp_path, "k8s_bulk_apply", args)
    assert result["failed"] and message in result["msg"], result


def watch_from(cluster, path, resource_version):
    """Every watch event on ``path`` since ``resource_version`` (the apiserver replays them
    from its watch cache): [(type, object)]. Resource versions are etcd revisions, one
    order across all kinds."""
    sep = "&" if "?" in path else "?"
    run = cluster.kubectl(
        "get", "--raw", f"{path}{sep}watch=1&resourceVersion={resource_version}&timeoutSeconds=3", check=True
    )
    decoder, text, events = json.JSONDecoder(), run.stdout.strip(), []
    while text:
        event, end = decoder.raw_decode(text)
        events.append((event["type"], event["object"]))
        text = text[end:].lstrip()
    return events


def test_absent_deletes_the_objects_in_a_namespace_before_the_namespace(cluster, tmp_path):
    """Seen in etcd's own order (watch events' resource versions): every namespaced object
    is gone before the Namespace is marked for deletion."""
    listed = objects_for(["order-del"])
    listed.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm", "namespace": "order-del"}})
    args = {"kubeconfig": str(cluster.super_admin), "objects": listed}
    created, _ = call_module(tmp_path, "k8s_bulk_apply", args)
    assert created["summary"]["created"] == 5, created
    since = json.loads(cluster.kubectl("get", "--raw", "/api/v1/namespaces", check=True).stdout)["metadata"][
        "resourceVersion"
    ]
    gone, _ = call_module(tmp_path, "k8s_bulk_apply", {**args, "state": "absent"})
    assert gone["summary"]["deleted"] == 5 and not gone.get("failed"), gone
    deleted = {}
    for path in (
        "/api/v1/namespaces/order-del/configmaps",
        "/apis/networking.k8s.io/v1/namespaces/order-del/networkpolicies",
        "/apis/rbac.authorization.k8s.io/v1/namespaces/order-del/roles",
        "/apis/rbac.authorization.k8s.io/v1/namespaces/order-del/rolebindings",
    ):
        for kind, obj in watch_from(cluster, path, since):
            if kind == "DELETED" and obj["metadata"]["name"] in ("cm", "deny", "reader"):
                deleted[(obj["kind"], obj["metadata"]["name"])] = int(obj["metadata"]["resourceVersion"])
    assert set(deleted) == {
        ("ConfigMap", "cm"),
        ("NetworkPolicy", "deny"),
        ("Role", "reader"),
        ("RoleBinding", "reader"),
    }, deleted
    # No namespace controller here: the Namespace stays Terminating, its deletion is a MODIFIED event.
    marked = [
        int(obj["metadata"]["resourceVersion"])
        for kind, obj in watch_from(cluster, "/api/v1/namespaces?fieldSelector=metadata.name%3Dorder-del", since)
        if obj["metadata"].get("deletionTimestamp")
    ]
    assert marked, "the Namespace was never marked for deletion"
    assert max(deleted.values()) < min(marked), (deleted, marked)


def test_a_rejected_object_fails_the_call_while_the_others_apply(cluster, tmp_path):
    """The real API refuses one object (HTTP 422); the call fails naming it, and the
    objects around it are created all the same."""
    bad = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "bad", "namespace": "partial"},
        "spec": {"podSelector": {}, "ingress": [{"ports": [{"port": 70000}]}]},
    }
    listed = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "partial"}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "before", "namespace": "partial"}},
        bad,
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "after", "namespace": "partial"}},
    ]
    result, _ = call_module(tmp_path, "k8s_bulk_apply", {"kubeconfig": str(cluster.super_admin), "objects": listed})
    assert result["failed"] and "NetworkPolicy partial/bad: HTTP 422" in result["msg"], result
    assert result["summary"]["failed"] == 1 and result["summary"]["created"] == 3, result
    for name in ("before", "after"):
        assert cluster.kubectl("get", "configmap", name, "-n", "partial").returncode == 0, name
    assert cluster.kubectl("get", "networkpolicy", "bad", "-n", "partial").returncode != 0


def test_a_cluster_scoped_object_with_a_stray_namespace_is_applied_cluster_wide(cluster, tmp_path):
    """A ClusterRole that names a namespace (which does not even exist) is created as the
    cluster-scoped object it is, reported without the namespace, and a rerun changes nothing."""
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": "stray-namespace", "namespace": "junk"},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}],
    }
    args = {"kubeconfig": str(cluster.super_admin), "objects": [role]}
    result, _ = call_module(tmp_path, "k8s_bulk_apply", args)
    assert not result.get("failed") and result["summary"]["created"] == 1, result
    assert result["results"][0]["namespace"] == "", result
    live = json.loads(cluster.kubectl("get", "clusterrole", "stray-namespace", "-o", "json", check=True).stdout)
    assert "namespace" not in live["metadata"] and live["rules"] == role["rules"]
    assert cluster.kubectl("get", "namespace", "junk").returncode != 0
    again, _ = call_module(tmp_path, "k8s_bulk_apply", args)
    assert not again["changed"] and again["summary"]["unchanged"] == 1, again


def test_sets_in_one_call_each_as_alone_in_order_with_one_discovery(cluster, tmp_path):
    """Two owners' policies and a namespace in one call: a namespace created by the first set gets the second set's
    templates (check mode predicts them), each set prunes only its own, one discovery for the call."""
    cluster.kubectl("create", "namespace", "sets-a")

    def policy(name, owner, namespace=None):
        meta = {"name": name, "labels": {"kubeguard.io/set": owner}}
        if namespace:
            meta["namespace"] = namespace
        return {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": meta,
            "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
        }

    def call_sets(allows, *extra, check=False):
        args = {
            "kubeconfig": str(cluster.super_admin),
            "sets": [
                {
                    "name": "namespaces",
                    "objects": [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "sets-b"}}],
                },
                {
                    "name": "allows",
                    "objects": allows,
                    "prune": True,
                    "prune_labels": {"kubeguard.io/set": "sets-allows"},
                    "prune_kinds": [{"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy"}],
                },
                {
                    "name": "deny",
                    "namespaces": ["sets-a", "sets-b"],
                    "namespace_objects": [policy("deny", "sets-deny")],
                    "prune": True,
                    "prune_labels": {"kubeguard.io/set": "sets-deny"},
                },
            ],
        }
        return call_module(tmp_path, "k8s_bulk_apply", args, *extra, check=check)[0]

    allow = policy("allow", "sets-allows", "sets-a")
    check = call_sets([allow], check=True)
    assert check["changed"] and check["sets"]["deny"]["summary"]["created"] == 2, {
        k: check.get(k) for k in ("msg", "sets", "failed")
    }
    assert cluster.kubectl("get", "ns", "sets-b").returncode != 0, "check mode created a namespace"
    first = call_sets([allow])
    assert first["sets"]["allows"]["summary"]["created"] == 1 and first["sets"]["deny"]["summary"]["created"] == 2
    assert first["api_requests"]["discovery"] == 2  # v1 and networking.k8s.io/v1, once for both sets
    again = call_sets([allow])
    assert not again["changed"] and again["summary"]["unchanged"] == 4, again["summary"]
    pruned = call_sets([], "--diff")
    assert pruned["sets"]["allows"]["summary"]["pruned"] == 1 and pruned["sets"]["deny"]["summary"]["unchanged"] == 2
    assert [d["before_header"] for d in pruned["diff"]] == ["NetworkPolicy sets-a/allow"]
    assert cluster.kubectl("get", "networkpolicy", "deny", "-n", "sets-b").returncode == 0
