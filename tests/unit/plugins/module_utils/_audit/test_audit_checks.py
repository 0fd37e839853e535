"""Tables for the audit's evaluators: facts in, the CIS ID and outcome out (no node, no API)."""

import pytest
from ansible_collections.kubeguard.hardening.plugins.module_utils._audit import (
    catalog,
    cluster,
    effective,
    node,
    node_checks,
    node_kubelet,
)


def component(flags, running=True, layout="systemd"):
    argv_flags = dict(flags)
    return {
        "layout": layout,
        "source": "/etc/systemd/system/x.service.d/50-kubeguard.conf",
        "unit_file": "/etc/systemd/system/x.service",
        "dropins": [],
        "flags": dict(argv_flags),
        "running": running,
        "pid": 42 if running else None,
        "running_flags": dict(argv_flags) if running else {},
    }


def facts(api=None, files=None, kubelet_flags=None, kubelet_config=None):
    components = {"kube-apiserver": component(api or {})} if api is not None else {}
    klet = None
    if kubelet_flags is not None:
        klet = {
            "running": True,
            "pid": 7,
            "flags": kubelet_flags,
            "running_flags": kubelet_flags,
            "unit": None,
            "config_path": "/var/lib/kubelet/config.yaml" if kubelet_config is not None else "",
        }
    return {
        "kubernetes_dir": "/nonexistent",
        "control_plane": {"components": components, "files": [], "layout": "systemd"},
        "kubelet": {"kubelet": klet, "kube_proxy": None},
        "apiserver_files": files or {},
        "kubelet_config": {"path": "/var/lib/kubelet/config.yaml", "data": kubelet_config} if kubelet_config else None,
        "cni_files": [],
    }


def outcome(found, check_id):
    return found[check_id][0]


@pytest.mark.parametrize(
    ("flags", "files", "want"),
    [
        ({"authorization-mode": "AlwaysAllow"}, {}, {"1.2.6": "fail", "1.2.7": "fail", "1.2.8": "fail"}),
        ({}, {}, {"1.2.6": "fail"}),  # the default is AlwaysAllow
        ({"authorization-mode": "Node,RBAC"}, {}, {"1.2.6": "pass", "1.2.7": "pass", "1.2.8": "pass"}),
        # kube-bench reads only --authorization-mode; the structured file decides here.
        (
            {"authorization-config": "/etc/authz.yaml"},
            {"authorization-config": {"path": "/etc/authz.yaml", "authorizers": ["Node", "RBAC"]}},
            {"1.2.6": "pass", "1.2.7": "pass", "1.2.8": "pass"},
        ),
        (
            {"authorization-config": "/etc/authz.yaml"},
            {"authorization-config": {"path": "/etc/authz.yaml", "authorizers": ["Node", "RBAC", "AlwaysAllow"]}},
            {"1.2.6": "fail", "1.2.7": "pass"},
        ),
        ({"anonymous-auth": "true"}, {}, {"1.2.1": "fail"}),
        ({}, {}, {"1.2.1": "fail"}),
        (
            {"authentication-config": "/etc/authn.yaml"},
            {"authentication-config": {"path": "/etc/authn.yaml", "anonymous": {"enabled": False}}},
            {"1.2.1": "pass"},
        ),
        (
            {"authentication-config": "/etc/authn.yaml"},
            {
                "authentication-config": {
                    "path": "/etc/authn.yaml",
                    "anonymous": {"enabled": True, "conditions": [{"path": "/healthz"}]},
                }
            },
            {"1.2.1": "warn"},
        ),
        ({"profiling": "false"}, {}, {"1.2.15": "pass"}),
        ({}, {}, {"1.2.15": "fail", "1.2.30": "fail", "1.2.21": "pass", "1.2.27": "fail"}),
        ({"audit-log-maxage": "7"}, {}, {"1.2.17": "fail"}),
        (
            {"encryption-provider-config": "/e.yaml"},
            {
                "encryption-provider-config": {
                    "path": "/e.yaml",
                    "resources": [{"resources": ["secrets"], "providers": ["identity", "aescbc"]}],
                }
            },
            {"1.2.27": "pass", "1.2.28": "fail"},
        ),
        ({"enable-admission-plugins": "NodeRestriction,AlwaysAdmit"}, {}, {"1.2.14": "pass", "1.2.10": "fail"}),
        ({"tls-cipher-suites": "TLS_RSA_WITH_AES_128_CBC_SHA"}, {}, {"1.2.29": "fail"}),
    ],
)
def test_apiserver_checks(flags, files, want):
    found = node_checks.control_plane(facts(api=flags, files=files), lambda _: None)
    assert {k: outcome(found, k) for k in want} == want


CLUSTER_INFO = "/api/v1/namespaces/kube-public/configmaps/cluster-info"


@pytest.mark.parametrize(
    ("layout", "paths", "want"),
    [
        # kubeadm: token discovery and the kubelet's probes are the named exception
        ("static-pod", [CLUSTER_INFO, "/healthz", "/livez", "/readyz"], "pass"),
        ("static-pod", ["/livez", "/readyz"], "pass"),
        # any other path, even a neighbour of cluster-info, fails
        ("static-pod", [CLUSTER_INFO, "/api"], "fail"),
        ("static-pod", ["/api/v1/namespaces/kube-public/configmaps"], "fail"),
        # not kubeadm: cluster-info is no exception, health only stays a review
        ("systemd", [CLUSTER_INFO, "/healthz"], "fail"),
        ("systemd", ["/healthz", "/livez", "/readyz"], "warn"),
    ],
)
def test_anonymous_kubeadm_exception(layout, paths, want):
    conf = {"path": "/etc/authn.yaml", "anonymous": {"enabled": True, "conditions": [{"path": p} for p in paths]}}
    gathered = facts(api={"authentication-config": "/etc/authn.yaml"}, files={"authentication-config": conf})
    gathered["control_plane"]["components"]["kube-apiserver"]["layout"] = layout
    found = node_checks.control_plane(gathered, lambda _: None)
    assert outcome(found, "1.2.1") == want
    named = any("kubeadm exception" in line for line in found["1.2.1"][1])
    assert named is (want == "pass")


def test_a_configured_flag_that_differs_from_the_process_counts_too():
    comp = component({"profiling": "false"})
    comp["flags"] = {"profiling": "true"}  # the next restart would turn profiling on
    f = facts(api={})
    f["control_plane"]["components"]["kube-apiserver"] = comp
    state, evidence = node_checks.control_plane(f, lambda _: None)["1.2.15"]
    assert state == "fail"
    assert any("next restart" in e for e in evidence)


@pytest.mark.parametrize(
    ("flags", "config", "want"),
    [
        # No config file: the flags' defaults (anonymous on, AlwaysAllow, port 10255).
        ({}, None, {"4.2.1": "fail", "4.2.2": "fail", "4.2.4": "fail"}),
        # A config file: its fields, else the v1beta1 defaults.
        (
            {"config": "/var/lib/kubelet/config.yaml"},
            {"kind": "KubeletConfiguration"},
            {"4.2.1": "pass", "4.2.4": "pass"},
        ),
        ({"config": "/c"}, {"readOnlyPort": 10255}, {"4.2.4": "fail"}),
        # A flag wins over the file.
        ({"config": "/c", "read-only-port": "0"}, {"readOnlyPort": 10255}, {"4.2.4": "pass"}),
        ({"config": "/c"}, {"authentication": {"anonymous": {"enabled": True}}}, {"4.2.1": "fail"}),
        ({"config": "/c"}, {"streamingConnectionIdleTimeout": "0s"}, {"4.2.5": "fail"}),
        ({"config": "/c"}, {"rotateCertificates": False}, {"4.2.10": "fail"}),
        ({"config": "/c"}, {}, {"4.2.10": "pass", "4.2.13": "fail", "4.2.14": "fail"}),
        ({"config": "/c"}, {"podPidsLimit": 4096, "seccompDefault": True}, {"4.2.13": "pass", "4.2.14": "pass"}),
        ({"config": "/c", "hostname-override": "x"}, {}, {"4.2.7": "fail"}),
    ],
)
def test_kubelet_checks(flags, config, want):
    f = facts(kubelet_flags=flags, kubelet_config=config if config is not None else None)
    if config is not None:
        f["kubelet"]["kubelet"]["config_path"] = flags.get("config", "/c")
        f["kubelet_config"] = {"path": "/c", "data": config}
    found = node_kubelet.checks(f, node_kubelet.settings(f))
    assert {k: outcome(found, k) for k in want} == want


def test_every_node_check_gets_a_row_and_absent_components_are_not_applicable():
    rows = node.evaluate(facts(kubelet_flags={}), "worker1")
    assert [r["id"] for r in rows] == catalog.node_checks()
    by_id = {r["id"]: r for r in rows}
    assert by_id["1.2.6"]["result"] == "not_applicable"
    assert by_id["1.2.6"]["reason"] == "no kube-apiserver on this node"
    assert by_id["4.2.1"]["result"] == "fail"
    assert all(r["result"] in ("pass", "fail", "warn", "not_applicable") for r in rows)


def test_the_catalog_covers_sections_1_to_5_once():
    ids = [row[0] for row in catalog.CHECKS]
    assert len(ids) == len(set(ids))
    assert {catalog.section(i) for i in ids} == {"1", "2", "3", "4", "5"}
    assert "1.2.30" in ids and "4.3.1" in ids and "5.6.4" in ids


def test_kubelet_defaults_depend_on_the_config_file():
    with_file = effective.Kubelet({"flags": {}}, {}, "/c")
    without = effective.Kubelet({"flags": {}}, {}, "")
    assert with_file.get("anonymous-auth")[0] == "false"
    assert without.get("anonymous-auth")[0] == "true"


def pod(namespace, name, **spec):
    containers = spec.pop("containers", [{"name": "c"}])
    return {"metadata": {"namespace": namespace, "name": name}, "spec": {"containers": containers, **spec}}


def test_policy_checks_name_the_planted_objects():
    state = {
        "cluster_roles": [
            {"metadata": {"name": "cluster-admin"}, "rules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}]}
        ],
        "roles": [],
        "cluster_role_bindings": [
            {
                "metadata": {"name": "oops"},
                "roleRef": {"kind": "ClusterRole", "name": "cluster-admin"},
                "subjects": [{"kind": "User", "name": "system:anonymous"}],
            }
        ],
        "role_bindings": [],
        "service_accounts": [],
        "pods": [pod("team-a", "web", hostNetwork=True), pod("kube-system", "proxy", hostNetwork=True)],
        "namespaces": [{"metadata": {"name": n}} for n in ("team-a", "kube-system", "default")],
        "network_policies": [],
        "services": [],
        "admission": [],
    }
    rows = {r["id"]: r for r in cluster.evaluate(state, ("kube-system",))}
    assert [r["id"] for r in rows.values()] == catalog.cluster_checks()
    assert rows["5.1.1"]["result"] == "fail"
    assert any("oops" in e and "system:anonymous" in e for e in rows["5.1.1"]["evidence"])
    assert rows["5.2.5"]["result"] == "fail"
    assert rows["5.2.5"]["evidence"] == ["Pod team-a/web: hostNetwork"]  # kube-system is exempt
    assert rows["5.3.2"]["result"] == "fail"
    assert any("team-a" in e for e in rows["5.3.2"]["evidence"])
    assert rows["5.2.3"]["result"] == "pass"


def test_unit_files_stand_in_for_manifests_and_a_key_at_0644_fails(tmp_path):
    from ansible_collections.kubeguard.hardening.plugins.module_utils._audit import node_files

    unit = tmp_path / "kube-apiserver.service"
    dropin = tmp_path / "50-kubeguard.conf"
    pki = tmp_path / "pki"
    pki.mkdir()
    for path, mode in ((unit, 0o600), (dropin, 0o644), (pki / "ca.crt", 0o644), (pki / "sa.key", 0o644)):
        path.write_text("x")
        path.chmod(mode)
    comp = component({"tls-cert-file": str(pki / "ca.crt")})
    comp.update(unit_file=str(unit), dropins=[str(dropin)])
    f = facts(api={})
    f["kubernetes_dir"] = str(tmp_path)
    f["control_plane"]["components"]["kube-apiserver"] = comp
    found = node_files.control_plane(f)
    assert found["1.1.1"][0] == "fail"
    assert f"{dropin} 0644 (wants 0600 or stricter)" in found["1.1.1"][1]
    assert f"{unit} 0600" in found["1.1.1"][1]
    assert found["1.1.20"][0] == "pass"
    assert found["1.1.21"] == ("fail", [f"{pki / 'sa.key'} 0644 (wants 0600 or stricter)"])
    assert found["1.1.13"][0] == "not_applicable"
