"""The hardened flags (CIS v1.12) and the input checks, as tables (pure)."""

import json

import pytest
from ansible_collections.kubeguard.hardening.plugins.module_utils._control_plane import apply, desired, manifest, plan
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError

BINARY = {
    "version": "Kubernetes v1.34.4",
    "help_flags": ["profiling", "tls-cipher-suites", "anonymous-auth", "bind-address"],
    "admission_plugins": [
        "AlwaysAdmit",
        "AlwaysPullImages",
        "DenyServiceExternalIPs",
        "EventRateLimit",
        "NodeRestriction",
    ],
    "cipher_suites": {"preferred": ["TLS_AES_128_GCM_SHA256"], "insecure": ["TLS_RSA_WITH_RC4_128_SHA"]},
}


def params(**extra):
    base = {
        "node_name": "cp1",
        "node_ip": "10.123.0.10",
        "kubernetes_dir": "/etc/kubernetes",
        "pki_dir": "/etc/kubernetes/pki",
        "config_dir": "/etc/kubernetes/kubeguard",
        "etcd_servers": ["https://10.123.0.10:2379"],
        "etcd_data_dir": "/var/lib/etcd",
        "service_cidr": "10.96.0.0/12",
        "service_account_issuer": "https://kubernetes.default.svc.cluster.local",
        "tls_min_version": "VersionTLS12",
        "tls_cipher_suites": ["TLS_AES_128_GCM_SHA256"],
        "authorization_modes": ["Node", "RBAC"],
        "allow_always_allow": False,
        "admission_plugins": ["NodeRestriction", "EventRateLimit", "DenyServiceExternalIPs"],
        "always_pull_images": False,
        "event_rate_limits": [{"type": "Server", "qps": 50, "burst": 100}],
        "audit_policy": "kind: Policy\n",
        "audit_log_path": "/var/log/kubernetes/audit/audit.log",
        "audit_log_maxage": 30,
        "audit_log_maxbackup": 10,
        "audit_log_maxsize": 100,
        "request_timeout": "60s",
        "shutdown_watch_termination_grace_period": "5s",
        "shutdown_delay_duration": "0s",
        "terminated_pod_gc_threshold": 10,
        "extra_flags": {},
    }
    base.update(extra)
    return base


LAB_ETCD = {
    "name": "cp1",
    "data-dir": "/var/lib/etcd",
    "listen-client-urls": "http://127.0.0.1:2379,http://10.123.0.10:2379",
    "initial-cluster": "cp1=http://10.123.0.10:2380,cp2=http://10.123.0.11:2380",
    "auto-tls": "true",
}


def test_etcd_moves_to_mutual_tls_and_keeps_its_identity():
    flags = desired.desired_flags("etcd", LAB_ETCD, params(), {"help_flags": []})
    assert flags["client-cert-auth"] == flags["peer-client-cert-auth"] == "true"  # CIS 2.2, 2.5
    assert flags["listen-client-urls"] == "https://127.0.0.1:2379,https://10.123.0.10:2379"
    assert flags["listen-metrics-urls"] == "http://127.0.0.1:2381"
    assert flags["initial-cluster"] == "cp1=https://10.123.0.10:2380,cp2=https://10.123.0.11:2380"
    assert flags["name"] == "cp1"
    assert flags["data-dir"] == "/var/lib/etcd"
    assert "auto-tls" not in flags  # CIS 2.3
    assert flags["cipher-suites"] == "TLS_AES_128_GCM_SHA256"


def test_etcd_tls13_drops_cipher_suites_it_would_refuse():
    flags = desired.desired_flags(
        "etcd", LAB_ETCD, params(tls_min_version="VersionTLS13"), {"help_flags": ["tls-min-version"]}
    )
    assert flags["tls-min-version"] == "TLS1.3"
    assert "cipher-suites" not in flags


def test_apiserver_flags_cis():
    current = {
        "authorization-mode": "AlwaysAllow",
        "anonymous-auth": "true",
        "profiling": "true",
        "token-auth-file": "/tokens.csv",
        "allow-privileged": "true",
        "disable-admission-plugins": "ServiceAccount,PodSecurity",
        "etcd-servers": "http://127.0.0.1:2379",
    }
    flags = desired.desired_flags("kube-apiserver", current, params(always_pull_images=True), BINARY)
    assert flags["authorization-mode"] == "Node,RBAC"
    assert flags["anonymous-auth"] == "false"
    assert flags["profiling"] == "false"
    assert "token-auth-file" not in flags  # CIS 1.2.2
    assert flags["allow-privileged"] == "true"  # not ours: kept
    assert flags["disable-admission-plugins"] == "PodSecurity"  # CIS 1.2.12: ServiceAccount stays on
    assert flags["enable-admission-plugins"].endswith(",AlwaysPullImages")
    assert flags["etcd-servers"] == "https://10.123.0.10:2379"
    assert flags["tls-min-version"] == "VersionTLS12"
    assert flags["audit-log-maxage"] == "30"


def test_extra_flags_win():
    flags = desired.desired_flags("kube-scheduler", {}, params(extra_flags={"profiling": True}), BINARY)
    assert flags["profiling"] == "True"
    assert flags["bind-address"] == "127.0.0.1"


def test_controller_manager_feature_gate_only_while_it_exists():
    binary = dict(BINARY, feature_gates_help="RotateKubeletServerCertificate=true|false (BETA)")
    flags = desired.desired_flags("kube-controller-manager", {"feature-gates": "Foo=false"}, params(), binary)
    assert flags["feature-gates"] == "Foo=false,RotateKubeletServerCertificate=true"
    assert flags["bind-address"] == "127.0.0.1"
    assert "feature-gates" not in desired.desired_flags("kube-controller-manager", {}, params(), BINARY)


V = "control_plane_"


@pytest.mark.parametrize(
    ("component", "override", "option", "fragment"),
    [
        ("kube-apiserver", {"authorization_modes": ["AlwaysAllow"]}, f"{V}authorization_modes", "AlwaysAllow"),
        ("kube-apiserver", {"authorization_modes": ["Node", "Magic"]}, f"{V}authorization_modes", "subset"),
        ("kube-apiserver", {"authorization_modes": []}, f"{V}authorization_modes", "non-empty"),
        ("kube-apiserver", {"admission_plugins": ["NodeRestrction"]}, f"{V}admission_plugins", "NodeRestrction"),
        ("kube-apiserver", {"admission_plugins": ["AlwaysAdmit"]}, "control_plane_admission_plugins", "1.2.10"),
        ("kube-apiserver", {"audit_log_maxage": -1}, "control_plane_audit_log_maxage", "negative"),
        ("kube-apiserver", {"service_cidr": "10.96.0.0/33"}, "control_plane_service_cidr", ""),
        ("kube-apiserver", {"request_timeout": "soon"}, "control_plane_request_timeout", "duration"),
        (
            "kube-apiserver",
            {"shutdown_watch_termination_grace_period": "-1"},
            "control_plane_shutdown_watch_termination_grace_period",
            "duration",
        ),
        ("kube-apiserver", {"shutdown_delay_duration": "10"}, "control_plane_shutdown_delay_duration", "duration"),
        ("kube-apiserver", {"shutdown_delay_duration": "-5s"}, "control_plane_shutdown_delay_duration", "duration"),
        ("etcd", {"tls_cipher_suites": ["TLS_AES_128_GCM_SHA265"]}, "control_plane_tls_cipher_suites", "SHA265"),
        ("kube-apiserver", {"tls_cipher_suites": ["TLS_AES_256_GCM_SHA384"]}, f"{V}tls_cipher_suites", "SHA384"),
        ("kube-scheduler", {"tls_min_version": "VersionTLS11"}, "control_plane_tls_min_version", "VersionTLS11"),
        ("kube-scheduler", {"extra_flags": {"profilin": "false"}}, "control_plane_scheduler_extra_flags", "profilin"),
    ],
)
def test_bad_input_names_the_variable(component, override, option, fragment):
    with pytest.raises(KubeguardError) as err:
        desired.validate(component, params(**override), BINARY)
    assert err.value.option == option
    assert fragment in str(err.value)


def test_always_allow_only_with_the_loud_variable():
    desired.validate("kube-apiserver", params(authorization_modes=["AlwaysAllow"], allow_always_allow=True), BINARY)
    with pytest.raises(KubeguardError) as err:
        desired.validate("kube-apiserver", params(authorization_modes=["AlwaysAllow"]), BINARY)
    assert desired.ALWAYS_ALLOW_FORCE in str(err.value)


def test_etcd_ciphers_are_checked_against_go_names_when_its_help_lists_none():
    desired.validate("etcd", params(tls_cipher_suites=["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"]), {"help_flags": []})
    with pytest.raises(KubeguardError, match="SHA265"):
        desired.validate("etcd", params(tls_cipher_suites=["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA265"]), {})


def test_valid_input_passes_and_weak_values_warn():
    desired.validate("kube-apiserver", params(), BINARY)
    assert desired.below_cis(params()) == []
    assert desired.below_cis(params(audit_log_maxage=7)) == [
        "control_plane_audit_log_maxage=7 is below the CIS minimum 30 (CIS 1.2.17-1.2.19)"
    ]


def test_admission_config_carries_the_limits():
    doc = json.loads(desired.admission_config(params()))
    assert doc["plugins"][0]["name"] == "EventRateLimit"
    assert doc["plugins"][0]["configuration"]["limits"] == [{"type": "Server", "qps": 50, "burst": 100}]


def test_service_ip_and_referenced_files():
    assert desired.service_ip("10.96.0.0/12") == "10.96.0.1"
    flags = desired.desired_flags("kube-scheduler", {}, params(), BINARY)
    assert desired.referenced_files(flags) == ["/etc/kubernetes/scheduler.conf"]


POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "kube-apiserver", "namespace": "kube-system", "labels": {"tier": "control-plane"}},
    "spec": {
        "hostNetwork": True,
        "priorityClassName": "system-node-critical",
        "containers": [
            {
                "name": "kube-apiserver",
                "image": "registry.k8s.io/kube-apiserver:v1.34.4",
                "command": ["kube-apiserver", "--profiling=true"],
                "livenessProbe": {"httpGet": {"path": "/livez", "port": 6443}},
                "volumeMounts": [{"name": "k8s-certs", "mountPath": "/etc/kubernetes/pki", "readOnly": True}],
            }
        ],
        "volumes": [{"name": "k8s-certs", "hostPath": {"path": "/etc/kubernetes/pki"}}],
    },
}


def test_manifest_edit_keeps_every_field_it_does_not_own():
    new = manifest.edit(POD, "kube-apiserver", ["kube-apiserver", "--profiling=false"], {"extra": ("/x", True)}, "abc")
    assert POD["spec"]["containers"][0]["command"] == ["kube-apiserver", "--profiling=true"]  # input untouched
    item = new["spec"]["containers"][0]
    assert item["command"] == ["kube-apiserver", "--profiling=false"]
    assert item["livenessProbe"] == POD["spec"]["containers"][0]["livenessProbe"]
    assert new["spec"]["priorityClassName"] == "system-node-critical"
    assert new["metadata"]["labels"] == {"tier": "control-plane"}
    assert new["metadata"]["annotations"] == {manifest.CONFIG_HASH: "abc"}
    assert {"name": "extra", "mountPath": "/x", "readOnly": True} in item["volumeMounts"]
    manifest.validate_pod(new, "kube-apiserver.yaml")
    again = manifest.edit(new, "kube-apiserver", item["command"], {"extra": ("/x", True)}, "abc")
    assert again == new  # idempotent: volumes are not added twice


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda p: p.update(kind="Deployment"), "not a v1 Pod"),
        (lambda p: p["spec"]["containers"][0].pop("image"), "lacks name or image"),
        (lambda p: p["spec"]["volumes"].clear(), "has no volume"),
        (lambda p: p["spec"]["volumes"].append({"name": "k8s-certs"}), "duplicate volume"),
        (lambda p: p["spec"]["containers"].clear(), "containers empty"),
    ],
)
def test_invalid_pod_is_refused(mutate, fragment):
    pod = manifest.edit(POD, "kube-apiserver", ["kube-apiserver"], {})
    mutate(pod)
    with pytest.raises(KubeguardError, match=fragment):
        manifest.validate_pod(pod, "m.yaml")


def test_etcd_keeps_the_operators_ports_and_does_not_listen_twice_on_loopback():
    current = {
        "advertise-client-urls": "http://127.0.0.1:23110",
        "listen-peer-urls": "http://127.0.0.1:23111",
        "listen-metrics-urls": "http://127.0.0.1:23112",
    }
    flags = desired.etcd_flags(current, params(node_ip="127.0.0.1"))
    assert flags["listen-client-urls"] == "https://127.0.0.1:23110"
    assert flags["initial-advertise-peer-urls"] == "https://127.0.0.1:23111"
    assert flags["listen-metrics-urls"] == "http://127.0.0.1:23112"


AUTHN = "/etc/kubernetes/kubeguard/authentication.yaml"
APISERVER_BINARY = {
    **BINARY,
    "help_flags": [*BINARY["help_flags"], "authentication-config", "authorization-config", "token-auth-file"],
}


def test_contributed_flags_are_set_and_null_removes():
    current = {"anonymous-auth": "false", "token-auth-file": "/etc/old-tokens.csv"}
    contributed = {"authentication-config": AUTHN, "anonymous-auth": None}
    flags = desired.desired_flags("kube-apiserver", current, params(contributed_flags=contributed), APISERVER_BINARY)
    assert flags["authentication-config"] == AUTHN
    assert "anonymous-auth" not in flags
    assert "token-auth-file" not in flags  # CIS 1.2.2: a stray token file goes


def test_structured_config_owns_anonymous_and_authorization_on_later_runs():
    """A control_plane-only run keeps what api_access contributed: no tug of war."""
    current = {
        "authentication-config": AUTHN,
        "authorization-config": "/etc/kubernetes/kubeguard/authorization.yaml",
        "token-auth-file": "/etc/kubernetes/kubeguard/tokens.csv",
    }
    flags = desired.desired_flags("kube-apiserver", current, params(), APISERVER_BINARY)
    assert "anonymous-auth" not in flags
    assert "authorization-mode" not in flags
    assert flags["token-auth-file"] == current["token-auth-file"]  # the opt-in file api_access wrote
    assert set(current.values()) <= set(desired.referenced_files(flags))  # checked before any restart


@pytest.mark.parametrize(
    ("component", "override", "option"),
    [
        ("kube-apiserver", {"contributed_flags": {"no-such-flag": "1"}}, "control_plane_apiserver_contributed_flags"),
        ("kube-scheduler", {"contributed_flags": {"profiling": "false"}}, "control_plane_apiserver_contributed_flags"),
        ("kube-apiserver", {"contributed_files": {"/etc/x.yaml": "a"}}, "control_plane_apiserver_contributed_files"),
        (
            "kube-apiserver",
            {"contributed_files": {"/etc/kubernetes/kubeguard/../x.yaml": "a"}},
            "control_plane_apiserver_contributed_files",
        ),
    ],
)
def test_bad_contributions_name_the_variable(component, override, option):
    with pytest.raises(KubeguardError) as err:
        desired.validate(component, params(**override), APISERVER_BINARY)
    assert err.value.option == option


def test_anonymous_probe_paths_are_the_https_http_gets():
    item = {
        "name": "kube-apiserver",
        "livenessProbe": {"httpGet": {"path": "/livez", "scheme": "HTTPS"}},
        "startupProbe": {"httpGet": {"path": "/livez", "scheme": "HTTPS"}},
        "readinessProbe": {"httpGet": {"path": "/readyz", "scheme": "HTTPS"}},
    }
    pod = {"spec": {"containers": [item]}}
    assert manifest.anonymous_probe_paths(pod, "kube-apiserver") == ["/livez", "/readyz"]
    # Plain HTTP (no TLS, so not the apiserver's port) and exec probes need nothing.
    assert manifest.anonymous_probe_paths(POD, "kube-apiserver") == []
    item.update(livenessProbe={"exec": {}}, startupProbe={}, readinessProbe={"tcpSocket": {"port": 6443}})
    assert manifest.anonymous_probe_paths(pod, "kube-apiserver") == []


def test_anonymous_is_allowed_on_the_probed_paths_only():
    doc = json.loads(desired.anonymous_health_authn(["/readyz", "/livez"]))
    assert doc["kind"] == "AuthenticationConfiguration"
    assert doc["anonymous"] == {"enabled": True, "conditions": [{"path": "/livez"}, {"path": "/readyz"}]}


@pytest.mark.parametrize(
    ("delay", "current", "expected"),
    [
        ("10s", {}, "10s"),
        ("1m", {"shutdown-delay-duration": "5s"}, "1m"),
        ("0s", {}, None),  # one apiserver: no flag, kube-apiserver's own default of 0
        ("0", {"shutdown-delay-duration": "10s"}, None),  # back to none: removed
    ],
)
def test_shutdown_delay_is_set_or_removed(delay, current, expected):
    flags = desired.desired_flags("kube-apiserver", current, params(shutdown_delay_duration=delay), BINARY)
    assert flags.get("shutdown-delay-duration") == expected
    assert "shutdown-send-retry-after" not in flags


def test_stop_seconds_cover_the_delay_the_watch_drain_and_a_margin():
    assert plan.stop_seconds({}) == plan.STOP_MARGIN_SECONDS
    flags = {"shutdown-delay-duration": "10s", "shutdown-watch-termination-grace-period": "5s"}
    assert plan.stop_seconds(flags) == 25
    assert plan.stop_seconds({"shutdown-delay-duration": "1m10.5s"}) == 81
    assert apply.delay_seconds(flags) == 10
    assert apply.delay_seconds(None) == 0
    assert apply.delay_seconds({"shutdown-delay-duration": "1m"}) == 60


@pytest.mark.parametrize(
    ("own", "needed", "expected"),
    [
        (None, 25, None),  # the kubelet's default of 30 s covers it: the manifest is left alone
        (None, 75, 75),
        (20, 25, 25),
        (120, 75, 120),  # never lowered
    ],
)
def test_static_pod_grace_is_raised_only_when_short(own, needed, expected):
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "kube-apiserver"}, "spec": {"containers": []}}
    if own is not None:
        pod["spec"]["terminationGracePeriodSeconds"] = own
    new = manifest.with_grace(pod, needed)
    assert new["spec"].get("terminationGracePeriodSeconds") == expected
    assert pod["spec"].get("terminationGracePeriodSeconds") == own  # the input is not edited
