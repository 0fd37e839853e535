"""The pure parts of the throw-away apiserver check (the real compile is proven on the
installed binary in tests/integration/test_control_plane_refusals.py)."""

import pytest
from ansible_collections.kubeguard.hardening.plugins.module_utils._control_plane import preflight

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
