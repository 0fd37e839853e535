# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the structured AuthorizationConfiguration (apiserver.config.k8s.io/v1), its webhook
kubeconfigs and the ABAC policy file (one JSON object per line). Pure functions."""

from __future__ import annotations

import json

from ansible_collections.kubeguard.hardening.plugins.module_utils._api_access.common import (
    dns_label,
    fail,
    https_url,
    only_keys,
    pem_bundle,
    seconds,
    webhook_kubeconfig,
)

TYPES = ("Node", "RBAC", "ABAC", "Webhook", "AlwaysAllow", "AlwaysDeny")
ALWAYS_ALLOW_FORCE = "api_access_allow_always_allow_i_know_this_disables_authorization"
FAILURE_POLICIES = ("NoOpinion", "Deny")
AUTHORIZER_KEYS = {"type", "name"}
WEBHOOK_KEYS = AUTHORIZER_KEYS | {
    "server",
    "ca_file",
    "ca_pem",
    "timeout",
    "failure_policy",
    "match_conditions",
    "authorized_ttl",
    "unauthorized_ttl",
    "cache_authorized",
    "cache_unauthorized",
}
# abac.authorization.kubernetes.io/v1beta1 PolicySpec, the whole of it.
ABAC_KEYS = {"user", "group", "readonly", "apiGroup", "resource", "namespace", "nonResourcePath"}


def chain(authorizers, allow_always_allow, webhook_path):
    """(the ``authorizers`` list, {path: kubeconfig dict}) for the chain in the given order."""
    option = "api_access_authorizers"
    if not isinstance(authorizers, list) or not authorizers:
        fail(option, "must list at least one authorizer (default: Node, RBAC)")
    out, kubeconfigs, names = [], {}, set()
    for index, entry in enumerate(authorizers):
        where = f"{option}[{index}]"
        if isinstance(entry, str):
            entry = {"type": entry}
        if not isinstance(entry, dict):
            fail(where, "must be a type name or a mapping with a type")
        kind = entry.get("type")
        if kind not in TYPES:
            fail(f"{where}.type", f"unknown authorizer type {kind!r}; one of {', '.join(TYPES)}")
        if kind == "AlwaysAllow" and not allow_always_allow:
            fail(
                where,
                f"AlwaysAllow lets every authenticated request through (CIS 1.2.6); set {ALWAYS_ALLOW_FORCE}: true "
                "to force it",
            )
        if kind != "Webhook":
            only_keys(where, entry, AUTHORIZER_KEYS)
            if any(a["type"] == kind for a in out):
                fail(f"{where}.type", f"{kind} appears twice; only Webhook may repeat")
        name = dns_label(f"{where}.name", entry.get("name") or kind.lower())
        if name in names:
            fail(f"{where}.name", f"{name} is used twice; every authorizer needs its own name")
        names.add(name)
        item = {"type": kind, "name": name}
        if kind == "Webhook":
            item["webhook"], kubeconfig = _webhook(where, entry, webhook_path(name))
            kubeconfigs[webhook_path(name)] = kubeconfig
        out.append(item)
    return out, kubeconfigs


def _webhook(where, entry, path):
    only_keys(where, entry, WEBHOOK_KEYS, required=("name", "server"))
    server = https_url(f"{where}.server", entry["server"])
    if not (entry.get("ca_file") or entry.get("ca_pem")):
        fail(where, "a Webhook needs ca_file or ca_pem: the CA that issued the webhook's serving certificate")
    ca = pem_bundle(where, entry.get("ca_pem"), entry.get("ca_file"))
    timeout = str(entry.get("timeout") or "3s")
    if not 1 <= seconds(f"{where}.timeout", timeout) <= 30:
        fail(f"{where}.timeout", "must be between 1s and 30s (the apiserver's limits)")
    policy = entry.get("failure_policy") or "Deny"
    if policy not in FAILURE_POLICIES:
        fail(f"{where}.failure_policy", f"{policy!r} must be NoOpinion or Deny")
    spec = {
        "timeout": timeout,
        "subjectAccessReviewVersion": "v1",
        "matchConditionSubjectAccessReviewVersion": "v1",
        "failurePolicy": policy,
        "authorizedTTL": str(entry.get("authorized_ttl") or "5m"),
        "unauthorizedTTL": str(entry.get("unauthorized_ttl") or "30s"),
        "cacheAuthorizedRequests": bool(entry.get("cache_authorized", True)),
        "cacheUnauthorizedRequests": bool(entry.get("cache_unauthorized", True)),
        "connectionInfo": {"type": "KubeConfigFile", "kubeConfigFile": path},
    }
    seconds(f"{where}.authorized_ttl", spec["authorizedTTL"])
    seconds(f"{where}.unauthorized_ttl", spec["unauthorizedTTL"])
    conditions = entry.get("match_conditions") or []
    if not isinstance(conditions, list):
        fail(f"{where}.match_conditions", "must be a list of CEL expressions")
    if conditions:
        spec["matchConditions"] = []
        for number, condition in enumerate(conditions):
            if isinstance(condition, dict):
                only_keys(f"{where}.match_conditions[{number}]", condition, {"expression"}, ("expression",))
                condition = condition["expression"]
            if not isinstance(condition, str) or not condition.strip():
                fail(f"{where}.match_conditions[{number}]", "must be a CEL expression")
            spec["matchConditions"].append({"expression": condition})
    return spec, webhook_kubeconfig(entry["name"], server, ca)


def configuration(authorizers):
    return {
        "apiVersion": "apiserver.config.k8s.io/v1",
        "kind": "AuthorizationConfiguration",
        "authorizers": authorizers,
    }


def abac_policy(entries):
    """The ABAC policy file text: one Policy object per line, every key checked first."""
    option = "api_access_abac_policy"
    if not isinstance(entries, list):
        fail(option, "must be a list of ABAC policy specs")
    lines = []
    for index, entry in enumerate(entries):
        where = f"{option}[{index}]"
        only_keys(where, entry, ABAC_KEYS)
        if not (entry.get("user") or entry.get("group")):
            fail(where, "needs a user or a group (use '*' for everyone, deliberately)")
        if "resource" in entry and "nonResourcePath" in entry:
            fail(where, "a line matches either resources or a nonResourcePath, not both")
        for key, value in entry.items():
            wanted = bool if key == "readonly" else str
            if not isinstance(value, wanted):
                fail(f"{where}.{key}", f"must be a {'boolean' if wanted is bool else 'string'}")
        spec = {key: entry[key] for key in sorted(entry)}
        policy = {"apiVersion": "abac.authorization.kubernetes.io/v1beta1", "kind": "Policy", "spec": spec}
        lines.append(json.dumps(policy, sort_keys=True, separators=(",", ":")))
    return "".join(line + "\n" for line in lines)
