# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the structured AuthenticationConfiguration (apiserver.config.k8s.io/v1) and the
webhook token authenticator's kubeconfig. Pure functions; CA files are read on the controller."""

from __future__ import annotations

from ansible_collections.kubeguard.hardening.plugins.module_utils._api_access.common import (
    fail,
    https_url,
    only_keys,
    pem_bundle,
    seconds,
    webhook_kubeconfig,
)

ANONYMOUS = ("off", "health")
# The only paths anonymous requests reach when anonymous is limited (load balancer probes).
HEALTH_PATHS = ("/healthz", "/livez", "/readyz")
# kubeadm join's token discovery is an anonymous GET of this ConfigMap (the CA and endpoint,
# JWS-signed per bootstrap token); kubeadm binds system:anonymous to read it, nothing else.
CLUSTER_INFO_PATH = "/api/v1/namespaces/kube-public/configmaps/cluster-info"
# control_plane_facts' layout of a kube-apiserver that kubeadm runs (a static pod).
KUBEADM_LAYOUT = "static-pod"
ISSUER_KEYS = {
    "url",
    "discovery_url",
    "audiences",
    "ca_file",
    "ca_pem",
    "username_claim",
    "username_prefix",
    "groups_claim",
    "groups_prefix",
    "uid_claim",
    "claim_validation_rules",
    "user_validation_rules",
}
RULE_KEYS = {"expression", "message"}
WEBHOOK_AUTHN_KEYS = {"server", "ca_file", "ca_pem", "cache_ttl"}


def anonymous_paths(mode, kubeadm_discovery=False, layout=""):
    """The paths an anonymous caller may reach, sorted; () when none. ``off``: none (CIS 1.2.1).
    ``health``: the three health endpoints. On a kubeadm cluster (``layout`` is the
    apiserver's, from control_plane_facts) with ``kubeadm_discovery``, cluster-info and the
    health endpoints whatever ``mode`` says: without them kubeadm join cannot discover the
    cluster and the kubelet's probes of the apiserver pod fail."""
    if mode not in ANONYMOUS:
        fail("anonymous", f"{mode!r} must be one of {', '.join(ANONYMOUS)}")
    paths = set(HEALTH_PATHS) if mode == "health" else set()
    if kubeadm_discovery and layout == KUBEADM_LAYOUT:
        paths |= {*HEALTH_PATHS, CLUSTER_INFO_PATH}
    return tuple(sorted(paths))


def anonymous(mode, kubeadm_discovery=False, layout=""):
    """The ``anonymous`` section: off, or on only for :func:`anonymous_paths` (/api and the rest give 401)."""
    paths = anonymous_paths(mode, kubeadm_discovery, layout)
    if not paths:
        return {"enabled": False}
    return {"enabled": True, "conditions": [{"path": path} for path in paths]}


def _rules(option, rules):
    out = []
    for index, rule in enumerate(rules or []):
        only_keys(f"{option}[{index}]", rule, RULE_KEYS, required=("expression",))
        if not isinstance(rule["expression"], str):
            fail(f"{option}[{index}].expression", "must be a CEL expression string")
        entry = {"expression": rule["expression"]}
        if rule.get("message"):
            entry["message"] = str(rule["message"])
        out.append(entry)
    return out


def jwt_issuers(issuers, cluster_ca_pem, service_account_issuers):
    """The ``jwt`` list. Refuses an http URL, a duplicate issuer, a service-account issuer, a
    username claim without a prefix; the CA falls back to the cluster CA."""
    option = "api_access_jwt_issuers"
    if not isinstance(issuers, list):
        fail(option, "must be a list of issuers")
    seen = set()
    out = []
    sa = {str(u).rstrip("/") for u in service_account_issuers or () if u}
    for index, issuer in enumerate(issuers):
        where = f"{option}[{index}]"
        only_keys(where, issuer, ISSUER_KEYS, required=("url", "audiences", "username_claim"))
        url = https_url(f"{where}.url", issuer["url"])
        if url.rstrip("/") in seen:
            fail(f"{where}.url", f"{url} is listed twice; each issuer appears once")
        seen.add(url.rstrip("/"))
        if url.rstrip("/") in sa:
            fail(
                f"{where}.url",
                f"{url} is the service-account issuer (--service-account-issuer); "
                "service-account tokens are verified by the apiserver itself, the apiserver refuses it as a JWT issuer",
            )
        audiences = issuer["audiences"]
        if isinstance(audiences, str):
            audiences = [audiences]
        if not all(isinstance(a, str) and a for a in audiences):
            fail(f"{where}.audiences", "must be a list of non-empty strings")
        if len(set(audiences)) != len(audiences):
            fail(f"{where}.audiences", "lists an audience twice")
        prefix = issuer.get("username_prefix")
        if prefix is None:
            fail(
                f"{where}.username_prefix",
                'is required (e.g. "oidc:"): an unprefixed claim could name a system: user; "" opts out explicitly',
            )
        spec = {"url": url, "audiences": list(audiences)}
        if len(audiences) > 1:
            spec["audienceMatchPolicy"] = "MatchAny"
        if issuer.get("discovery_url"):
            spec["discoveryURL"] = https_url(f"{where}.discovery_url", issuer["discovery_url"])
        if issuer.get("ca_file") or issuer.get("ca_pem"):
            spec["certificateAuthority"] = pem_bundle(where, issuer.get("ca_pem"), issuer.get("ca_file"))
        else:
            spec["certificateAuthority"] = pem_bundle(f"{where}.ca_file", cluster_ca_pem)
        mappings = {"username": {"claim": str(issuer["username_claim"]), "prefix": str(prefix)}}
        if issuer.get("groups_claim"):
            groups_prefix = issuer.get("groups_prefix")
            if groups_prefix is None:
                fail(f"{where}.groups_prefix", 'is required with groups_claim (e.g. "oidc:")')
            mappings["groups"] = {"claim": str(issuer["groups_claim"]), "prefix": str(groups_prefix)}
        if issuer.get("uid_claim"):
            mappings["uid"] = {"claim": str(issuer["uid_claim"])}
        entry = {"issuer": spec, "claimMappings": mappings}
        claim_rules = _rules(f"{where}.claim_validation_rules", issuer.get("claim_validation_rules"))
        if claim_rules:
            entry["claimValidationRules"] = claim_rules
        user_rules = _rules(f"{where}.user_validation_rules", issuer.get("user_validation_rules"))
        if user_rules:
            entry["userValidationRules"] = user_rules
        out.append(entry)
    return out


def configuration(anonymous_mode, issuers, cluster_ca_pem, service_account_issuers, kubeadm_discovery=False, layout=""):
    doc = {
        "apiVersion": "apiserver.config.k8s.io/v1",
        "kind": "AuthenticationConfiguration",
        "anonymous": anonymous(anonymous_mode, kubeadm_discovery, layout),
    }
    jwt = jwt_issuers(issuers, cluster_ca_pem, service_account_issuers)
    if jwt:
        doc["jwt"] = jwt
    return doc


def webhook_token_authn(spec):
    """(kubeconfig dict, cache TTL) for --authentication-token-webhook-config-file, or None."""
    option = "api_access_webhook_token_authn"
    if not spec:
        return None
    only_keys(option, spec, WEBHOOK_AUTHN_KEYS, required=("server",))
    server = https_url(f"{option}.server", spec["server"])
    ca = pem_bundle(option, spec.get("ca_pem"), spec.get("ca_file"))
    ttl = str(spec.get("cache_ttl") or "2m")
    seconds(f"{option}.cache_ttl", ttl)
    return webhook_kubeconfig("token-webhook", server, ca), ttl
