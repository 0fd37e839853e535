"""The hardened KubeletConfiguration, flag sources and input checks, as tables (pure)."""

import pytest
import yaml
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError
from ansible_collections.kubeguard.hardening.plugins.module_utils._kubelet import config as cfg

CIPHERS = ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"]

# The lab's weak starting file (lab/node/node-setup.sh), parsed as the role parses it.
WEAK = yaml.safe_load("""
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  anonymous: {enabled: true}
  webhook: {enabled: false}
authorization: {mode: AlwaysAllow}
readOnlyPort: 10255
cgroupDriver: cgroupfs
evictionHard: {memory.available: "0%", nodefs.available: "0%"}
clusterDNS: [10.96.0.10]
""")


def params(**extra):
    base = {
        "client_ca_file": "/etc/kubernetes/pki/ca.crt",
        "tls_cert_file": "/var/lib/kubelet/pki/kubelet.crt",
        "tls_private_key_file": "/var/lib/kubelet/pki/kubelet.key",
        "read_only_port": 0,
        "streaming_connection_idle_timeout": "5m",
        "event_record_qps": 50,
        "pod_pids_limit": 4096,
        "tls_cipher_suites": CIPHERS,
        "tls_min_version": "VersionTLS12",
        "seccomp_default": True,
        "extra_config": {},
    }
    base.update(extra)
    return base


def test_every_cis_field_is_set_and_foreign_fields_are_kept():
    out = cfg.desired(WEAK, params(), protect_kernel_defaults=True)
    assert out["authentication"] == {
        "anonymous": {"enabled": False},
        "webhook": {"enabled": True},
        "x509": {"clientCAFile": "/etc/kubernetes/pki/ca.crt"},
    }
    assert out["authorization"] == {"mode": "Webhook"}
    assert out["readOnlyPort"] == 0
    assert out["streamingConnectionIdleTimeout"] == "5m"
    assert out["makeIPTablesUtilChains"] is True
    assert out["eventRecordQPS"] == 50
    assert out["tlsCertFile"] == "/var/lib/kubelet/pki/kubelet.crt"
    assert out["serverTLSBootstrap"] is False
    assert out["rotateCertificates"] is True
    assert out["tlsCipherSuites"] == CIPHERS
    assert out["podPidsLimit"] == 4096
    assert out["seccompDefault"] is True
    assert out["protectKernelDefaults"] is True
    # Not owned: kept as they were.
    assert out["cgroupDriver"] == "cgroupfs"
    assert out["evictionHard"] == {"memory.available": "0%", "nodefs.available": "0%"}
    assert out["clusterDNS"] == ["10.96.0.10"]
    assert WEAK["readOnlyPort"] == 10255  # the input is not modified


def test_webhook_cache_ttl_the_operator_set_is_kept():
    current = {"authentication": {"webhook": {"enabled": False, "cacheTTL": "30s"}}}
    assert cfg.desired(current, params(), False)["authentication"]["webhook"] == {"enabled": True, "cacheTTL": "30s"}


def test_an_empty_file_becomes_a_complete_configuration():
    out = cfg.desired(None, params(), False)
    assert out["apiVersion"] == cfg.API_VERSION and out["kind"] == cfg.KIND
    assert out["protectKernelDefaults"] is False


@pytest.mark.parametrize(
    "value",
    [
        WEAK,
        {"a": "0%", "b": "yes", "c": "", "d": "10.96.0.10", "e": [1, 2.5, None, True], "f": {}, "g": []},
        {"list": [{"name": "x", "nested": {"k": ["v"]}}, "plain"], "colon": "a: b", "hash": "#x", "star": "*"},
        {"Quote": 'he said "hi"', "unicode": "µs", "num_string": "0755", "dotted.key": "x"},
    ],
)
def test_rendered_yaml_reads_back_equal(value):
    assert yaml.safe_load(cfg.render(value)) == value


def test_rendering_is_stable():
    out = cfg.desired(WEAK, params(), False)
    text = cfg.render(out)
    assert cfg.render(cfg.desired(yaml.safe_load(text), params(), False)) == text


@pytest.mark.parametrize(
    ("change", "option", "words"),
    [
        ({"read_only_port": 70000}, "kubelet_read_only_port", "0 to 65535"),
        ({"read_only_port": -1}, "kubelet_read_only_port", "0 to 65535"),
        ({"read_only_port": "ten"}, "kubelet_read_only_port", "0 to 65535"),
        ({"read_only_port": True}, "kubelet_read_only_port", "0 to 65535"),
        ({"tls_cipher_suites": ["TLS_BOGUS_CIPHER"]}, "kubelet_tls_cipher_suites", "TLS_BOGUS_CIPHER"),
        ({"tls_cipher_suites": []}, "kubelet_tls_cipher_suites", "empty"),
        ({"tls_cipher_suites": ["TLS_RSA_WITH_RC4_128_SHA"]}, "kubelet_tls_cipher_suites", "RC4"),
        ({"tls_cipher_suites": ["TLS_RSA_WITH_AES_128_GCM_SHA256"]}, "kubelet_tls_cipher_suites", "insecure"),
        ({"streaming_connection_idle_timeout": "4d"}, "kubelet_streaming_connection_idle_timeout", "duration"),
        ({"streaming_connection_idle_timeout": "0"}, "kubelet_streaming_connection_idle_timeout", "duration"),
        ({"streaming_connection_idle_timeout": "0s"}, "kubelet_streaming_connection_idle_timeout", "forever"),
        ({"streaming_connection_idle_timeout": "5 minutes"}, "kubelet_streaming_connection_idle_timeout", "duration"),
        ({"pod_pids_limit": 0}, "kubelet_pod_pids_limit", "at least 1"),
        ({"event_record_qps": -5}, "kubelet_event_record_qps", "at least 0"),
        ({"tls_min_version": "VersionTLS10"}, "kubelet_tls_min_version", "VersionTLS12"),
        ({"client_ca_file": "ca.crt"}, "kubelet_client_ca_file", "absolute"),
    ],
)
def test_bad_input_is_refused_naming_the_variable(change, option, words):
    with pytest.raises(KubeguardError) as err:
        cfg.validate(params(**change), cipher_names=CIPHERS)
    assert err.value.option == option
    assert words in str(err.value)


def test_cipher_suites_are_checked_against_what_the_binary_lists():
    with pytest.raises(KubeguardError):
        cfg.validate(params(tls_cipher_suites=["TLS_AES_128_GCM_SHA256"]), cipher_names=CIPHERS)
    # Without a list from --help, Go's names are the reference.
    assert cfg.validate(params(tls_cipher_suites=["TLS_AES_128_GCM_SHA256"])) == []


def test_digit_strings_from_extra_vars_are_integers():
    p = params(read_only_port="0", event_record_qps="7")
    assert cfg.validate(p, cipher_names=CIPHERS) == []
    assert p["event_record_qps"] == 7 and p["read_only_port"] == 0


def test_a_nonzero_read_only_port_is_accepted_with_a_warning():
    warnings = cfg.validate(params(read_only_port=10255), cipher_names=CIPHERS)
    assert warnings and "kubelet_read_only_port" in warnings[0]


@pytest.mark.parametrize(
    ("sans", "problem"),
    [
        ("X509v3 Subject Alternative Name:\n    DNS:worker1, IP Address:10.123.0.11", ""),
        ("X509v3 Subject Alternative Name:\n    DNS:worker1", "no IP SAN 10.123.0.11 (IP SANs: none)"),
        ("    DNS:worker1, IP Address:10.123.0.12", "no IP SAN 10.123.0.11 (IP SANs: 10.123.0.12)"),
    ],
)
def test_the_serving_cert_must_name_the_node_ip(sans, problem):
    assert problem in cfg.sans_problem(sans, "10.123.0.11")
    assert bool(cfg.sans_problem(sans, "10.123.0.11")) == bool(problem)


LAB_UNIT = """[Unit]
Description=Kubernetes node agent
[Service]
ExecStart=/usr/local/bin/kubelet --config=/var/lib/kubelet/config.yaml --kubeconfig=/etc/kubernetes/kubelet.conf \\
  --node-ip=10.123.0.11 --read-only-port 10255 --anonymous-auth=true
Restart=always
"""
KUBEADM_DROPIN = """[Service]
Environment="KUBELET_KUBECONFIG_ARGS=--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf \\
 --kubeconfig=/etc/kubernetes/kubelet.conf"
Environment="KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml"
EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env
EnvironmentFile=-/etc/default/kubelet
ExecStart=
ExecStart=/usr/bin/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS
"""
KUBEADM_FLAGS = (
    'KUBELET_KUBEADM_ARGS="--container-runtime-endpoint=unix:///run/containerd/containerd.sock '
    '--tls-cipher-suites=TLS_RSA_WITH_AES_128_CBC_SHA --pod-infra-container-image=pause:3.10"\n'
)


def test_a_literal_unit_command_line_and_its_duplicating_flags():
    service = cfg.unit_service([LAB_UNIT])
    words = [w for w, _ in cfg.expand(service["exec_start"], {})]
    flags = cfg.flag_dict(words[1:])
    assert flags["read-only-port"] == "10255"
    assert cfg.duplicating(flags) == ["anonymous-auth", "read-only-port"]
    kept = cfg.without(words, {"anonymous-auth", "read-only-port"})
    assert kept == [
        "/usr/local/bin/kubelet",
        "--config=/var/lib/kubelet/config.yaml",
        "--kubeconfig=/etc/kubernetes/kubelet.conf",
        "--node-ip=10.123.0.11",
    ]
    # The drop-in reads back as the same command line.
    again = cfg.unit_service([LAB_UNIT, cfg.render_dropin(kept)])
    assert again["exec_start"] == kept


def test_kubeadm_layout_flags_come_from_the_environment_and_its_flags_file():
    service = cfg.unit_service(["[Service]\nExecStart=/usr/bin/kubelet\n", KUBEADM_DROPIN])
    assert service["environment_files"] == ["-/var/lib/kubelet/kubeadm-flags.env", "-/etc/default/kubelet"]
    env = {**service["environment"], **cfg.parse_env_file(KUBEADM_FLAGS)}
    expanded = cfg.expand(service["exec_start"], env)
    words = [w for w, _ in expanded]
    flags = cfg.flag_dict(words[1:])
    assert flags["config"] == "/var/lib/kubelet/config.yaml"
    assert flags["tls-cipher-suites"] == "TLS_RSA_WITH_AES_128_CBC_SHA"
    assert dict(expanded)["--tls-cipher-suites=TLS_RSA_WITH_AES_128_CBC_SHA"] == "KUBELET_KUBEADM_ARGS"
    rewritten = cfg.rewrite_env_file(KUBEADM_FLAGS, "KUBELET_KUBEADM_ARGS", {"tls-cipher-suites"})
    assert "tls-cipher-suites" not in rewritten
    assert cfg.parse_env_file(rewritten)["KUBELET_KUBEADM_ARGS"] == (
        "--container-runtime-endpoint=unix:///run/containerd/containerd.sock --pod-infra-container-image=pause:3.10"
    )
    # $VAR references survive a drop-in that resets ExecStart.
    dropin = cfg.render_dropin(service["exec_start"])
    assert "$KUBELET_KUBEADM_ARGS" in dropin
    assert cfg.unit_service([dropin])["exec_start"] == service["exec_start"]


def test_percent_and_dollar_in_literal_words_are_escaped_for_systemd():
    dropin = cfg.render_dropin(["/bin/kubelet", "--x=50%", "--y=$HOME"])
    assert "50%%" in dropin and "$$HOME" in dropin


def test_changes_lists_each_field():
    out = cfg.desired(WEAK, params(), False)
    lines = cfg.changes(WEAK, out)
    assert "readOnlyPort: 10255 -> 0" in lines
    assert 'authorization.mode: "AlwaysAllow" -> "Webhook"' in lines
    assert cfg.changes(out, out) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("kind: KubeProxyConfiguration\nmetricsBindAddress: 0.0.0.0:10249\nmode: nftables\n", "0.0.0.0:10249"),
        ('kind: KubeProxyConfiguration\nmetricsBindAddress: ""\n', ""),
        ("kind: KubeProxyConfiguration\n", ""),
        ("", ""),
    ],
)
def test_a_top_level_field_is_set_in_place_or_appended(text, expected):
    assert cfg.top_level(text, "metricsBindAddress") == expected
    out = cfg.set_top_level(text, "metricsBindAddress", "127.0.0.1:10249")
    parsed = yaml.safe_load(out)
    assert parsed["metricsBindAddress"] == "127.0.0.1:10249"
    assert {k: v for k, v in parsed.items() if k != "metricsBindAddress"} == {
        k: v for k, v in (yaml.safe_load(text) or {}).items() if k != "metricsBindAddress"
    }
    assert cfg.set_top_level(out, "metricsBindAddress", "127.0.0.1:10249") == out


@pytest.mark.parametrize(
    "current",
    [
        {"apiVersion": "kubelet.config.k8s.io/v1", "kind": "KubeletConfiguration"},
        {"apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "CredentialProviderConfig"},
    ],
)
def test_a_config_file_of_another_version_or_kind_is_refused(current):
    with pytest.raises(KubeguardError) as err:
        cfg.desired(current, params(), protect_kernel_defaults=True)
    assert err.value.option == "kubelet_config_enabled"
    assert current["apiVersion"] in str(err.value)
