# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the entry point of ``api_access_config``. Validates every input, then renders the
files and flags the control plane's safe restart path applies. Runs on the controller: the only
thing it writes is the static token store, and only after everything validated."""

from __future__ import annotations

import posixpath

import yaml
from ansible_collections.kubeguard.hardening.plugins.module_utils._api_access import authn, authz, tokens
from ansible_collections.kubeguard.hardening.plugins.module_utils._api_access.common import fail, seconds

AUTHENTICATION = "authentication.yaml"
AUTHORIZATION = "authorization.yaml"
ABAC = "abac-policy.jsonl"
STATIC_TOKENS = "static-tokens.csv"
TOKEN_WEBHOOK = "authn-webhook.kubeconfig"  # noqa: S105 (a file name)


def _yaml(doc):
    return "# Written by kubeguard.hardening.api_access; edits are overwritten.\n" + yaml.safe_dump(
        doc, sort_keys=False, default_flow_style=False
    )


def _read_ca(path):
    if not path:
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except OSError:
        return None  # only an error if an issuer needs it; authn.jwt_issuers says so


def run(params, check_mode=False):
    directory = params["config_dir"]
    if not posixpath.isabs(directory):
        fail("config_dir", f"{directory!r} must be an absolute path")

    def path(name):
        return posixpath.join(directory, name)

    warnings = []
    sa_issuers = params.get("service_account_issuer") or []
    if isinstance(sa_issuers, str):
        sa_issuers = [sa_issuers]

    # 1. Validate and render everything in memory; nothing is written before this ends.
    kubeadm_discovery = bool(params.get("anonymous_kubeadm_discovery"))
    layout = params.get("control_plane_layout") or ""
    authentication = authn.configuration(
        params["anonymous"],
        params.get("jwt_issuers") or [],
        _read_ca(params.get("cluster_ca_file")),
        sa_issuers,
        kubeadm_discovery,
        layout,
    )
    authorizers, webhook_kubeconfigs = authz.chain(
        params["authorizers"],
        params.get("allow_always_allow", False),
        lambda name: path(f"authz-webhook-{name}.kubeconfig"),
    )
    if any(a["type"] == "AlwaysAllow" for a in authorizers):
        warnings.append(f"api_access_authorizers: AlwaysAllow is forced by {authz.ALWAYS_ALLOW_FORCE}")
    uses_abac = any(a["type"] == "ABAC" for a in authorizers)
    abac_text = authz.abac_policy(params.get("abac_policy") or [])
    if uses_abac and not abac_text:
        fail("abac_policy", "ABAC is in api_access_authorizers but the policy lists no line")
    if abac_text and not uses_abac:
        fail("abac_policy", "has lines but ABAC is not in api_access_authorizers")
    token_webhook = authn.webhook_token_authn(params.get("webhook_token_authn"))
    audiences = params.get("api_audiences") or []
    if not all(isinstance(a, str) and a and "," not in a for a in audiences):
        fail("api_audiences", "must be a list of non-empty strings without commas")
    max_expiration = params.get("service_account_max_token_expiration") or ""
    if max_expiration and seconds("service_account_max_token_expiration", max_expiration) < 3600:
        fail("service_account_max_token_expiration", "kube-apiserver refuses less than 1h")
    static_users = None
    if params.get("static_tokens_enabled"):
        static_users = tokens.users(params.get("static_tokens"))
        if not params.get("static_token_store"):
            fail("static_token_store", "is required when static tokens are enabled")
        warnings.append(tokens.CIS_WARNING)

    # 2. The one write: tokens generated for users without one, kept on the controller.
    changed, diff = False, None
    if static_users is not None:
        static_users, changed, before, after = tokens.resolve(
            params["static_tokens"], params["static_token_store"], check_mode
        )
        diff = {
            "before_header": f"{params['static_token_store']} (users with a generated token)",
            "after_header": f"{params['static_token_store']} (users with a generated token)",
            "before": "".join(f"{u}\n" for u in before),
            "after": "".join(f"{u}\n" for u in after),
        }

    files = {path(AUTHENTICATION): _yaml(authentication), path(AUTHORIZATION): _yaml(authz.configuration(authorizers))}
    flags = {
        "authentication-config": path(AUTHENTICATION),
        "anonymous-auth": None,  # the file owns anonymous; the two cannot be combined
        "authorization-config": path(AUTHORIZATION),
        "authorization-mode": None,  # likewise for the authorizer chain
        "authorization-policy-file": path(ABAC) if uses_abac else None,
        "token-auth-file": path(STATIC_TOKENS) if static_users else None,
        "authentication-token-webhook-config-file": path(TOKEN_WEBHOOK) if token_webhook else None,
        "authentication-token-webhook-cache-ttl": token_webhook[1] if token_webhook else None,
        "authentication-token-webhook-version": "v1" if token_webhook else None,
        "api-audiences": ",".join(audiences) if audiences else None,
        "service-account-max-token-expiration": max_expiration or None,
    }
    for kubeconfig_path, kubeconfig in webhook_kubeconfigs.items():
        files[kubeconfig_path] = _yaml(kubeconfig)
    if uses_abac:
        files[path(ABAC)] = abac_text
    if token_webhook:
        files[path(TOKEN_WEBHOOK)] = _yaml(token_webhook[0])
    if static_users:
        files[path(STATIC_TOKENS)] = tokens.csv(static_users)

    summary = {
        "anonymous": params["anonymous"],
        "anonymous_paths": list(authn.anonymous_paths(params["anonymous"], kubeadm_discovery, layout)),
        "authorizers": [f"{a['type']}/{a['name']}" for a in authorizers],
        "jwt_issuers": [entry["issuer"]["url"] for entry in authentication.get("jwt", [])],
        "static_token_users": [u["user"] for u in static_users or []],
        "webhook_token_authn": bool(token_webhook),
        "files": sorted(files),
    }
    result = {"changed": changed, "flags": flags, "files": files, "summary": summary, "warnings": warnings}
    if diff:
        result["diff"] = diff
    return result
