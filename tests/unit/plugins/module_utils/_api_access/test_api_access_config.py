"""Rendering and refusals of api_access_config (pure, plus the controller-side token store)."""

import json
import os
import stat

import pytest
import yaml
from ansible_collections.kubeguard.hardening.plugins.module_utils._api_access import config, tokens
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError

CA = "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n"
D = "/etc/kubernetes/kubeguard"


def issuer(**extra):
    base = {
        "url": "https://keycloak.example:8443/realms/kubeguard",
        "audiences": ["kubernetes"],
        "ca_pem": CA,
        "username_claim": "preferred_username",
        "username_prefix": "oidc:",
        "groups_claim": "groups",
        "groups_prefix": "oidc:",
        "claim_validation_rules": [],
        "user_validation_rules": [],
    }
    base.update(extra)
    return base


def webhook(**extra):
    base = {"type": "Webhook", "name": "sar", "server": "https://127.0.0.1:23300/authorize", "ca_pem": CA}
    base.update(extra)
    return base


@pytest.fixture
def params(tmp_path):
    ca = tmp_path / "ca.crt"
    ca.write_text(CA)

    def make(**extra):
        base = {
            "config_dir": D,
            "anonymous": "off",
            "jwt_issuers": [],
            "cluster_ca_file": str(ca),
            "service_account_issuer": ["https://kubernetes.default.svc.cluster.local"],
            "authorizers": ["Node", "RBAC"],
            "allow_always_allow": False,
            "abac_policy": [],
            "static_tokens_enabled": False,
            "static_tokens": [],
            "static_token_store": str(tmp_path / "store/api_access/static-tokens.json"),
            "webhook_token_authn": None,
            "api_audiences": [],
            "service_account_max_token_expiration": "",
        }
        base.update(extra)
        return base

    return make


def test_defaults_anonymous_off_node_then_rbac_and_flag_ownership(params):
    result = config.run(params())
    authn = yaml.safe_load(result["files"][f"{D}/authentication.yaml"])
    authz = yaml.safe_load(result["files"][f"{D}/authorization.yaml"])
    assert authn == {
        "apiVersion": "apiserver.config.k8s.io/v1",
        "kind": "AuthenticationConfiguration",
        "anonymous": {"enabled": False},
    }
    assert authz["authorizers"] == [{"type": "Node", "name": "node"}, {"type": "RBAC", "name": "rbac"}]
    flags = result["flags"]
    assert flags["authentication-config"] == f"{D}/authentication.yaml"
    assert flags["anonymous-auth"] is None and flags["authorization-mode"] is None
    assert flags["token-auth-file"] is None and flags["authorization-policy-file"] is None
    assert result["changed"] is False and result["warnings"] == []


def test_anonymous_limited_to_the_health_endpoints(params):
    authn = yaml.safe_load(config.run(params(anonymous="health"))["files"][f"{D}/authentication.yaml"])
    assert authn["anonymous"] == {
        "enabled": True,
        "conditions": [{"path": "/healthz"}, {"path": "/livez"}, {"path": "/readyz"}],
    }


def test_jwt_issuer_shape(params, tmp_path):
    rules = [{"expression": "claims.email_verified == true", "message": "verified only"}]
    user_rules = [{"expression": "!user.username.startsWith('system:')"}]
    first = issuer(claim_validation_rules=rules, user_validation_rules=user_rules)
    # no CA of its own: the cluster CA; two audiences: MatchAny
    second = issuer(url="https://dex.example/", audiences=["a", "b"], ca_pem=None, groups_claim=None)
    jwt = yaml.safe_load(config.run(params(jwt_issuers=[first, second]))["files"][f"{D}/authentication.yaml"])["jwt"]
    assert jwt[0]["issuer"] == {"url": first["url"], "audiences": ["kubernetes"], "certificateAuthority": CA}
    assert jwt[0]["claimMappings"] == {
        "username": {"claim": "preferred_username", "prefix": "oidc:"},
        "groups": {"claim": "groups", "prefix": "oidc:"},
    }
    assert jwt[0]["claimValidationRules"] == rules and jwt[0]["userValidationRules"] == user_rules
    assert jwt[1]["issuer"]["audienceMatchPolicy"] == "MatchAny"
    assert jwt[1]["issuer"]["certificateAuthority"] == CA
    assert "groups" not in jwt[1]["claimMappings"]


def test_webhook_authorizer_and_its_kubeconfig(params):
    entry = webhook(
        failure_policy="NoOpinion",
        timeout="2s",
        match_conditions=["request.resourceAttributes.namespace == 'x'"],
        cache_authorized=False,
    )
    result = config.run(params(authorizers=["Node", entry, "RBAC"]))
    authz = yaml.safe_load(result["files"][f"{D}/authorization.yaml"])
    hook = authz["authorizers"][1]
    assert hook["type"] == "Webhook" and hook["name"] == "sar"
    spec = hook["webhook"]
    assert spec["subjectAccessReviewVersion"] == "v1" and spec["failurePolicy"] == "NoOpinion"
    assert spec["timeout"] == "2s" and spec["cacheAuthorizedRequests"] is False
    assert spec["matchConditions"] == [{"expression": "request.resourceAttributes.namespace == 'x'"}]
    path = spec["connectionInfo"]["kubeConfigFile"]
    assert path == f"{D}/authz-webhook-sar.kubeconfig"
    kubeconfig = yaml.safe_load(result["files"][path])
    cluster = kubeconfig["clusters"][0]["cluster"]
    assert cluster["server"] == entry["server"]
    assert cluster["certificate-authority-data"]  # trusts exactly the webhook's CA


def test_abac_policy_lines_and_flag(params):
    line = {"user": "abby", "namespace": "ro", "resource": "*", "apiGroup": "*", "readonly": True}
    result = config.run(
        params(authorizers=["Node", "RBAC", "ABAC"], abac_policy=[line, {"group": "g", "nonResourcePath": "*"}])
    )
    text = result["files"][f"{D}/abac-policy.jsonl"]
    lines = [json.loads(x) for x in text.splitlines()]
    assert lines[0] == {"apiVersion": "abac.authorization.kubernetes.io/v1beta1", "kind": "Policy", "spec": line}
    assert len(lines) == 2 and text.endswith("\n")
    assert result["flags"]["authorization-policy-file"] == f"{D}/abac-policy.jsonl"


def test_static_tokens_generated_once_stored_0600_and_not_in_the_diff(params, tmp_path):
    p = params(static_tokens_enabled=True, static_tokens=[{"user": "tess", "groups": ["team-a", "team-b"]}])
    store = p["static_token_store"]
    check = config.run(p, check_mode=True)
    assert check["changed"] is True and not os.path.exists(store)
    first = config.run(p)
    assert first["changed"] is True
    assert stat.S_IMODE(os.stat(store).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(store)).st_mode) == 0o700
    with open(store) as handle:
        token = json.load(handle)["tess"]
    assert first["files"][f"{D}/static-tokens.csv"] == f'{token},tess,tess,"team-a,team-b"\n'
    assert token not in json.dumps(first["diff"]) and token not in json.dumps(first["summary"])
    assert token not in json.dumps(first["warnings"]) and "CIS 1.2.2" in first["warnings"][0]
    second = config.run(p)
    assert second["changed"] is False and second["files"] == first["files"]


def test_a_token_from_the_variables_is_used_and_not_stored(params):
    token = "x" * 40
    p = params(static_tokens_enabled=True, static_tokens=[{"user": "ci", "token": token}])
    result = config.run(p)
    assert result["files"][f"{D}/static-tokens.csv"] == f"{token},ci,ci\n"
    assert result["changed"] is False and not os.path.exists(p["static_token_store"])


def test_service_account_flags(params):
    flags = config.run(
        params(
            api_audiences=["https://kubernetes.default.svc.cluster.local", "vault"],
            service_account_max_token_expiration="24h",
        )
    )["flags"]
    assert flags["api-audiences"] == "https://kubernetes.default.svc.cluster.local,vault"
    assert flags["service-account-max-token-expiration"] == "24h"


def test_webhook_token_authentication(params):
    result = config.run(
        params(webhook_token_authn={"server": "https://ldap-hook:23300/", "ca_pem": CA, "cache_ttl": "30s"})
    )
    assert result["flags"]["authentication-token-webhook-config-file"] == f"{D}/authn-webhook.kubeconfig"
    assert result["flags"]["authentication-token-webhook-cache-ttl"] == "30s"
    assert yaml.safe_load(result["files"][f"{D}/authn-webhook.kubeconfig"])["clusters"][0]["cluster"]["server"] == (
        "https://ldap-hook:23300/"
    )


BAD = [
    (
        "http issuer",
        {"jwt_issuers": [issuer(url="http://keycloak.example/realms/k")]},
        "api_access_jwt_issuers[0].url",
        "https://",
    ),
    (
        "no prefix",
        {"jwt_issuers": [issuer(username_prefix=None)]},
        "api_access_jwt_issuers[0].username_prefix",
        "required",
    ),
    ("duplicate issuer", {"jwt_issuers": [issuer(), issuer()]}, "api_access_jwt_issuers[1].url", "twice"),
    (
        "service-account issuer",
        {"jwt_issuers": [issuer(url="https://kubernetes.default.svc.cluster.local")]},
        "api_access_jwt_issuers[0].url",
        "service-account issuer",
    ),
    ("unknown issuer key", {"jwt_issuers": [issuer(clientID="x")]}, "api_access_jwt_issuers[0]", "clientID"),
    ("unknown authorizer", {"authorizers": ["Node", "Magic"]}, "api_access_authorizers[1].type", "Magic"),
    ("always allow", {"authorizers": ["AlwaysAllow"]}, "api_access_authorizers[0]", "allow_always_allow"),
    ("rbac twice", {"authorizers": ["RBAC", "RBAC"]}, "api_access_authorizers[1].type", "twice"),
    ("empty chain", {"authorizers": []}, "api_access_authorizers", "at least one"),
    ("webhook without ca", {"authorizers": [webhook(ca_pem=None)]}, "api_access_authorizers[0]", "ca_file"),
    ("webhook http", {"authorizers": [webhook(server="http://x/")]}, "api_access_authorizers[0].server", "https"),
    (
        "webhook policy",
        {"authorizers": [webhook(failure_policy="Allow")]},
        "api_access_authorizers[0].failure_policy",
        "Deny",
    ),
    ("webhook timeout", {"authorizers": [webhook(timeout="60s")]}, "api_access_authorizers[0].timeout", "30s"),
    ("webhook names", {"authorizers": [webhook(), webhook()]}, "api_access_authorizers[1].name", "twice"),
    (
        "abac unknown key",
        {"authorizers": ["ABAC"], "abac_policy": [{"user": "a", "verb": "get"}]},
        "api_access_abac_policy[0]",
        "verb",
    ),
    (
        "abac no subject",
        {"authorizers": ["ABAC"], "abac_policy": [{"namespace": "x"}]},
        "api_access_abac_policy[0]",
        "user or a group",
    ),
    ("abac not in chain", {"abac_policy": [{"user": "a"}]}, "api_access_abac_policy", "not in"),
    ("abac empty", {"authorizers": ["ABAC"]}, "api_access_abac_policy", "no line"),
    (
        "abac readonly type",
        {"authorizers": ["ABAC"], "abac_policy": [{"user": "a", "readonly": "yes"}]},
        "api_access_abac_policy[0].readonly",
        "boolean",
    ),
    (
        "token authn without ca",
        {"webhook_token_authn": {"server": "https://x/"}},
        "api_access_webhook_token_authn",
        "CA",
    ),
    ("anonymous", {"anonymous": "on"}, "api_access_anonymous", "off"),
    (
        "max expiration",
        {"service_account_max_token_expiration": "10m"},
        "api_access_service_account_max_token_expiration",
        "1h",
    ),
    (
        "bad duration",
        {"service_account_max_token_expiration": "a day"},
        "api_access_service_account_max_token_expiration",
        "duration",
    ),
    (
        "static user twice",
        {"static_tokens_enabled": True, "static_tokens": [{"user": "a"}, {"user": "a"}]},
        "api_access_static_tokens[1].user",
        "twice",
    ),
    ("static no user", {"static_tokens_enabled": True, "static_tokens": []}, "api_access_static_tokens", "no user"),
    (
        "static comma",
        {"static_tokens_enabled": True, "static_tokens": [{"user": "a,b"}]},
        "api_access_static_tokens[0].user",
        "comma",
    ),
    (
        "short token",
        {"static_tokens_enabled": True, "static_tokens": [{"user": "a", "token": "short"}]},
        "api_access_static_tokens[0].token",
        "32",
    ),
]


@pytest.mark.parametrize(("case", "extra", "option", "words"), BAD, ids=[b[0] for b in BAD])
def test_bad_input_is_refused_naming_the_variable_and_nothing_is_written(params, case, extra, option, words):
    p = params(**extra)
    if "static_tokens" not in extra:
        # a static user without a token: a write would happen if validation let it through
        p.update(static_tokens_enabled=True, static_tokens=[{"user": "tess"}])
    with pytest.raises(KubeguardError) as error:
        config.run(p)
    assert error.value.option == option
    assert words in error.value.message
    assert not os.path.exists(p["static_token_store"])


def test_a_secret_token_is_never_echoed_in_an_error(params):
    secret = "s3cr3t,with,commas-and-more-than-32-characters"
    with pytest.raises(KubeguardError) as error:
        config.run(params(static_tokens_enabled=True, static_tokens=[{"user": "a", "token": secret}]))
    assert secret not in str(error.value)


def test_a_corrupt_store_is_refused(params, tmp_path):
    p = params(static_tokens_enabled=True, static_tokens=[{"user": "a"}])
    os.makedirs(os.path.dirname(p["static_token_store"]))
    with open(p["static_token_store"], "w") as handle:
        handle.write("[1]")
    with pytest.raises(KubeguardError) as error:
        config.run(p)
    assert error.value.option == "api_access_static_token_store"


def test_csv_quotes_groups():
    assert tokens.csv([{"token": "t", "user": "u", "uid": "1", "groups": ["a", "b"]}]) == 't,u,1,"a,b"\n'


CLUSTER_INFO = "/api/v1/namespaces/kube-public/configmaps/cluster-info"
KUBEADM_PATHS = [CLUSTER_INFO, "/healthz", "/livez", "/readyz"]


@pytest.mark.parametrize(
    ("anonymous", "discovery", "layout", "paths"),
    [
        # kubeadm (the apiserver a static pod): discovery and health, and nothing else, whatever the mode
        ("off", True, "static-pod", KUBEADM_PATHS),
        ("health", True, "static-pod", KUBEADM_PATHS),
        # the toggle off, or not kubeadm: the mode alone decides
        ("off", False, "static-pod", []),
        ("health", False, "static-pod", ["/healthz", "/livez", "/readyz"]),
        ("off", True, "systemd", []),
        ("off", True, "", []),
        ("health", True, "systemd", ["/healthz", "/livez", "/readyz"]),
    ],
)
def test_anonymous_kubeadm_discovery_exception(params, anonymous, discovery, layout, paths):
    result = config.run(params(anonymous=anonymous, anonymous_kubeadm_discovery=discovery, control_plane_layout=layout))
    authn = yaml.safe_load(result["files"][f"{D}/authentication.yaml"])
    want = {"enabled": True, "conditions": [{"path": p} for p in paths]} if paths else {"enabled": False}
    assert authn["anonymous"] == want
    assert result["summary"]["anonymous_paths"] == paths
    # the file owns anonymous either way: --anonymous-auth is removed
    assert result["flags"]["anonymous-auth"] is None


def test_kubeadm_discovery_paths_match_what_the_audit_accepts():
    """The renderer and the CIS audit's 1.2.1 exception name the same paths."""
    from ansible_collections.kubeguard.hardening.plugins.module_utils._api_access import authn
    from ansible_collections.kubeguard.hardening.plugins.module_utils._audit import node_checks

    assert set(authn.anonymous_paths("off", True, "static-pod")) == node_checks.KUBEADM_ANONYMOUS_PATHS
