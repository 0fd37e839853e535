"""The pure parts of the throw-away apiserver check (the real compile is proven on the
installed binary in tests/integration/test_control_plane_refusals.py)."""

import pytest
from ansible_collections.kubeguard.hardening.plugins.module_utils._control_plane import preflight
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError

CONFIG = "/etc/kubernetes/kubeguard"


def test_throwaway_flags_point_at_private_copies_and_a_harmless_etcd():
    flags = {
        "authentication-config": f"{CONFIG}/authentication.yaml",
        "etcd-servers": "https://10.123.0.10:2379",
        "secure-port": "6443",
        "audit-log-path": "/var/log/kubernetes/audit/audit.log",
        "audit-webhook-config-file": f"{CONFIG}/audit-webhook.yaml",
        "tls-cert-file": "/etc/kubernetes/pki/apiserver.crt",
    }
    files = {
        f"{CONFIG}/authentication.yaml": "jwt: []\n",
        f"{CONFIG}/authorization.yaml": f"kubeConfigFile: {CONFIG}/policy.kubeconfig\n",
    }
    fixed, texts = preflight.throwaway_flags(flags, files, CONFIG, "/tmp/pf", 40000)
    assert fixed["authentication-config"] == "/tmp/pf/config/authentication.yaml"
    assert fixed["etcd-servers"] == preflight.UNREACHABLE_ETCD
    assert (fixed["secure-port"], fixed["bind-address"]) == ("40000", "127.0.0.1")
    assert fixed["audit-log-path"].startswith("/tmp/pf/")
    assert "audit-webhook-config-file" not in fixed
    assert fixed["tls-cert-file"] == "/etc/kubernetes/pki/apiserver.crt"  # read only, kept
    assert texts["/tmp/pf/config/authorization.yaml"] == "kubeConfigFile: /tmp/pf/config/policy.kubeconfig\n"


@pytest.mark.parametrize(
    ("output", "option"),
    [
        (
            'E1205 03:10:00.1  123 run.go:72] "command failed" err="jwt[0].claimValidationRules[1].expression: '
            'Invalid value: ...: compilation failed: ERROR: <input>:1:14: Syntax error"',
            "api_access_jwt_issuers[0].claim_validation_rules[1]",
        ),
        (
            'E1205 03:10:00.1  1 run.go:72] "failed" err="authorizers[2].webhook.matchConditions[0].expression: '
            "Invalid value: ...: undefined field 'noSuchField'\"",
            "api_access_authorizers[2].match_conditions[0]",
        ),
        (
            'Error: error while parsing file: no kind "EncryptionConfiguration" is registered for version '
            '"apiserver.config.k8s.io/v9" in encryption-provider-config',
            "encryption_at_rest_providers",
        ),
        ("Error: unknown flag: --no-such-flag", "control_plane_apiserver_extra_flags"),
    ],
)
def test_the_refusal_names_the_role_variable_behind_the_field(output, option):
    assert preflight.owner(preflight.reason(output), {}) == option


def test_reason_keeps_the_apiserver_words():
    out = 'I1205 starting\nE1205 03:10:00.100000  77 run.go:72] "command failed" err="bad"\n'
    assert preflight.reason(out) == "bad"
    assert preflight.reason("") == "exited without a message"


def test_the_candidate_sees_the_config_dir_overlaid_with_what_this_run_writes(tmp_path):
    """A file another role wrote earlier (named by a kept flag) is still there for the
    throw-away instance; what this run writes replaces its old text; files outside the
    config dir (the unit drop-in, the manifest) are not the candidate's to read."""
    config = tmp_path / "kubeguard"
    (config / "sub").mkdir(parents=True)
    (config / "encryption.yaml").write_text("kept\n")
    (config / "authentication.yaml").write_text("old\n")
    (config / "sub" / "policy.kubeconfig").write_text("nested\n")
    writing = {
        str(config / "authentication.yaml"): ("new\n", 0o600),
        str(tmp_path / "50-kubeguard.conf"): ("[Service]\n", 0o600),
    }
    assert preflight.config_files(str(config), writing) == {
        str(config / "encryption.yaml"): "kept\n",
        str(config / "authentication.yaml"): "new\n",
        str(config / "sub" / "policy.kubeconfig"): "nested\n",
    }


def test_no_binary_to_ask_is_no_refusal(tmp_path):
    assert preflight.judge({"binary": {"version": "", "help_flags": []}}, {}, {}, str(tmp_path)) is None
    assert preflight.judge({"binary": {"path": str(tmp_path / "absent")}}, {}, {}, str(tmp_path)) is None


def fake_apiserver(tmp_path, script):
    """Plumbing only (argv in, log out): the real judgement is the installed binary's, on the lab."""
    binary = tmp_path / "kube-apiserver"
    binary.write_text("#!/bin/sh\n" + script)
    binary.chmod(0o755)
    return {"binary": {"path": str(binary)}}


def test_judge_reports_its_seconds_when_the_candidate_passes(tmp_path):
    conf = fake_apiserver(tmp_path, 'echo "I1205 1 x] Loaded 3 validating admission controller(s)"; sleep 30\n')
    assert preflight.judge(conf, {}, {}, str(tmp_path / "kubeguard")) >= 0


def test_judge_refuses_naming_the_role_variable(tmp_path):
    config = tmp_path / "kubeguard"
    config.mkdir()
    # The candidate's own file reaches the throw-away instance (its private copy).
    script = (
        'for a in "$@"; do case "$a" in --authentication-config=*) f="${a#*=}";; esac; done\n'
        'grep -q "claims.email ==" "$f" || exit 0\n'
        'echo \'E1205 03:10:00.1  1 run.go:72] "command failed" '
        'err="jwt[0].claimValidationRules[0].expression: Invalid value: Syntax error"\'\nexit 1\n'
    )
    conf = fake_apiserver(tmp_path, script)
    flags = {"authentication-config": f"{config}/authentication.yaml"}
    writing = {f"{config}/authentication.yaml": ("claimValidationRules: [{expression: 'claims.email =='}]\n", 0o600)}
    with pytest.raises(KubeguardError) as err:
        preflight.judge(conf, flags, writing, str(config))
    assert err.value.option == "api_access_jwt_issuers[0].claim_validation_rules[0]"
    assert "Syntax error" in str(err.value)
    assert not (config / "authentication.yaml").exists()  # nothing written where the real one reads


def test_a_static_pod_s_binary_is_the_pod_running_now():
    """The gather's /proc/<pid>/exe may name a pod recreated since (or a reused pid)."""
    conf = {"binary": {"path": "/proc/577/exe"}}
    assert preflight.binary_of(conf, lambda: {"kube-apiserver": {"pid": 2878, "argv": []}}) == "/proc/2878/exe"
    assert preflight.binary_of(conf, dict) == ""  # no apiserver running: nothing to ask
    assert preflight.binary_of({"binary": {"path": "/usr/local/bin/kube-apiserver"}}) == "/usr/local/bin/kube-apiserver"
