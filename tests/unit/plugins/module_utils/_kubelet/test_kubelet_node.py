"""The node-side decisions that need no running kubelet: where flags are
removed, when protectKernelDefaults may be on, and refusals before any write."""

import json

import pytest
from ansible.module_utils.testing import patch_module_args
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError
from ansible_collections.kubeguard.hardening.plugins.module_utils._kubelet import api, apply, gather, plan
from ansible_collections.kubeguard.hardening.plugins.module_utils._kubelet import config as cfg
from ansible_collections.kubeguard.hardening.plugins.modules import kubelet_config, kubelet_kube_proxy


def kubelet(words, sources, environment=None, env_origin=None, dropins=()):
    service = {
        "fragment": "/etc/systemd/system/kubelet.service",
        "dropins": list(dropins),
        "exec_start": words,
        "environment": environment or {},
        "env_origin": env_origin or {},
        "words": words,
        "sources": sources,
    }
    return {"unit": service, "flags": cfg.flag_dict(words[1:]), "flag_sources": gather._flag_sources(service)}


def test_literal_flags_are_removed_by_a_drop_in_that_keeps_the_rest():
    words = ["/usr/local/bin/kubelet", "--config=/c.yaml", "--read-only-port=10255", "--node-ip=10.0.0.1"]
    files, removed = plan.plan_flags(kubelet(words, [""] * 4), "/c.yaml")
    assert removed == ["read-only-port"]
    ((path, (text, mode)),) = files.items()
    assert path.endswith("kubelet.service.d/90-kubeguard.conf") and mode == 0o600
    assert cfg.unit_service([text])["exec_start"] == [
        "/usr/local/bin/kubelet",
        "--config=/c.yaml",
        "--node-ip=10.0.0.1",
    ]


def test_flags_from_kubeadm_flags_env_are_removed_from_that_file(tmp_path):
    env_file = tmp_path / "kubeadm-flags.env"
    env_file.write_text('KUBELET_KUBEADM_ARGS="--anonymous-auth=true --pod-infra-container-image=pause"\n')
    words = ["/usr/bin/kubelet", "--config=/c.yaml", "--anonymous-auth=true", "--pod-infra-container-image=pause"]
    state = kubelet(
        words,
        ["", "KUBELET_CONFIG_ARGS", "KUBELET_KUBEADM_ARGS", "KUBELET_KUBEADM_ARGS"],
        env_origin={"KUBELET_CONFIG_ARGS": "unit", "KUBELET_KUBEADM_ARGS": str(env_file)},
    )
    files, removed = plan.plan_flags(state, "/c.yaml")
    assert removed == ["anonymous-auth"]
    assert list(files) == [str(env_file)]
    assert cfg.parse_env_file(files[str(env_file)][0]) == {"KUBELET_KUBEADM_ARGS": "--pod-infra-container-image=pause"}


def test_a_missing_config_flag_is_added():
    files, _ = plan.plan_flags(kubelet(["/usr/bin/kubelet", "--node-ip=10.0.0.1"], ["", ""]), "/var/lib/kubelet/c.yaml")
    ((text, _),) = files.values()
    assert "--config=/var/lib/kubelet/c.yaml" in cfg.unit_service([text])["exec_start"]


def test_no_unit_no_edit():
    with pytest.raises(KubeguardError):
        plan.plan_flags({"unit": None, "flags": {}}, "/c.yaml")


GOOD = dict(cfg.KERNEL_DEFAULTS)


@pytest.mark.parametrize(
    ("in_container", "live", "enabled", "writes", "warns"),
    [
        (True, {**GOOD, "vm.overcommit_memory": "0"}, False, False, True),  # the host's kernel: left alone
        (True, GOOD, True, False, False),
        (False, {**GOOD, "kernel.panic": "0"}, True, True, False),  # a VM or metal: set first
    ],
)
def test_protect_kernel_defaults_only_where_the_sysctls_allow_it(in_container, live, enabled, writes, warns):
    facts = {"sysctls": {"values": live, "in_container": in_container}}
    on, files, warnings = plan.protect_kernel_defaults({"protect_kernel_defaults": True}, facts, False)
    assert on is enabled
    assert bool(files) is writes
    assert bool(warnings) is warns
    if warns:
        assert warnings[0].startswith("kubelet_protect_kernel_defaults:")


def run_main(module, args, capsys):
    with patch_module_args(args), pytest.raises(SystemExit):
        module.main()
    return json.loads(capsys.readouterr().out)


FACTS = {"kubelet": {"binary": {"cipher_suites": []}, "flags": {}, "running_flags": {}}, "sysctls": {}}
ARGS = {
    "facts": FACTS,
    "node_name": "w1",
    "node_ip": "10.0.0.1",
    "client_ca_file": "/nonexistent/ca.crt",
    "tls_cert_file": "/nonexistent/kubelet.crt",
    "tls_private_key_file": "/nonexistent/kubelet.key",
    "tls_cipher_suites": ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"],
}


@pytest.mark.parametrize(
    ("extra", "option"),
    [
        ({"read_only_port": 70000}, "kubelet_read_only_port"),
        ({"tls_cipher_suites": ["TLS_NOPE"]}, "kubelet_tls_cipher_suites"),
        ({"facts": {**FACTS, "kubelet": {**FACTS["kubelet"], "flags": {"hostname-override": "x"}}}}, None),
        ({}, "kubelet_client_ca_file"),  # valid input, but the files are missing: refused before any write
    ],
)
def test_the_module_refuses_naming_the_variable(extra, option, capsys):
    result = run_main(kubelet_config, {**ARGS, **extra}, capsys)
    assert result["failed"] is True
    assert result["option"] == (option or "kubelet_hostname_override_allowed")
    assert result["msg"].startswith(result["option"] + ":")


def test_kube_proxy_metrics_must_be_loopback(capsys):
    result = run_main(kubelet_kube_proxy, {"facts": {}, "metrics_bind_address": "0.0.0.0:10249"}, capsys)
    assert result["option"] == "kubelet_kube_proxy_metrics_bind_address"


def test_kube_proxy_absent_is_skipped(capsys):
    result = run_main(kubelet_kube_proxy, {"facts": {"kube_proxy": None}}, capsys)
    assert result["changed"] is False and "skipped_reason" in result


def test_kubeconfig_fields_are_read_without_yaml():
    text = "clusters:\n- cluster:\n    server: https://10.0.0.10:6443\n    certificate-authority-data: QUJD\n"
    assert api._kubeconfig_field(text, "server") == "https://10.0.0.10:6443"
    assert api._kubeconfig_field(text, "certificate-authority-data") == "QUJD"
    assert api._kubeconfig_field(text, "client-key") == ""


def _proxy(unit, argv):
    return {"running": True, "unit": unit, "flags": cfg.flag_dict(argv[1:]), "running_flags": cfg.flag_dict(argv[1:])}


def test_kube_proxy_in_a_pod_is_skipped_with_the_reason(capsys):
    argv = ["/usr/local/bin/kube-proxy", "--config=/var/lib/kube-proxy/config.conf", "--hostname-override=w1"]
    facts = {"kube_proxy": _proxy(None, argv)}
    params = {"facts": facts, "metrics_bind_address": "127.0.0.1:10249"}
    result = run_main(kubelet_kube_proxy, params, capsys)
    assert result["changed"] is False and "failed" not in result
    assert "kube-system/kube-proxy ConfigMap" in result["skipped_reason"]
    assert "/var/lib/kube-proxy/config.conf" in result["skipped_reason"]
    # the entry point's own result: AnsibleModule keeps warnings in process-wide state between unit tests
    assert apply.apply_kube_proxy(params, check_mode=False)["warnings"] == [result["skipped_reason"]]


def test_kube_proxy_host_service_is_not_skipped():
    argv = ["/usr/local/bin/kube-proxy", "--config=/etc/kube-proxy.yaml"]
    unit = {"exec_start": argv, "words": argv}
    assert apply.not_host_service(_proxy(unit, argv), "127.0.0.1:10249") == ""


def test_kube_proxy_unreadable_config_names_the_role_variable(tmp_path):
    argv = ["/usr/local/bin/kube-proxy", f"--config={tmp_path}/missing.yaml"]
    unit = {"exec_start": argv, "words": argv}
    params = {"facts": {"kube_proxy": _proxy(unit, argv)}, "metrics_bind_address": "127.0.0.1:10249"}
    with pytest.raises(KubeguardError) as err:
        apply.apply_kube_proxy(params, check_mode=True)
    assert err.value.option == "kubelet_kube_proxy_metrics_bind_address"
