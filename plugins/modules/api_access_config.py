#!/usr/bin/python
# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: api_access_config
short_description: Validate and render kube-apiserver authentication and authorization configuration
version_added: 0.2.0
description:
  - Runs on the controller. Validates every input and renders the structured
    AuthenticationConfiguration and AuthorizationConfiguration (C(apiserver.config.k8s.io/v1)),
    the webhook kubeconfigs, the ABAC policy (one JSON object per line) and the static token CSV,
    plus the kube-apiserver flags that point at them. Nothing is written to any node; the
    C(api_access) role hands O(config_dir) files and flags to the control plane's safe restart path.
  - The only write is the controller-side static token store, for users without a token variable,
    and only after every input validated. Tokens never appear in the diff, only user names.
  - The C(files) return value holds the static tokens; register it under C(no_log).
  - Every error names the role variable (C(api_access_<option>)) to fix.
author:
  - Kubeguard maintainers (@kubeguard)
extends_documentation_fragment:
  - kubeguard.hardening.role_vars
  - kubeguard.hardening.store_vault
options:
  config_dir:
    description: Node-side directory the files go to (the control plane's C(kubeguard_config_dir)).
    type: path
    default: /etc/kubernetes/kubeguard
  anonymous:
    description: C(off) refuses anonymous requests (CIS 1.2.1); C(health) admits them on /healthz, /livez and /readyz.
    type: str
    choices: ["off", health]
    default: "off"
  anonymous_kubeadm_discovery:
    description:
      - On a kubeadm cluster (O(control_plane_layout) is C(static-pod)), admit anonymous requests on
        C(/api/v1/namespaces/kube-public/configmaps/cluster-info) and on /healthz, /livez and /readyz, and on
        nothing else, whatever O(anonymous) says. C(kubeadm join) discovers the cluster with an anonymous GET of
        that ConfigMap (the cluster CA and endpoint, signed per bootstrap token), and the kubelet probes the
        apiserver pod anonymously.
      - The CIS 1.2.1 exception kubeadm needs; ignored on any other layout.
    type: bool
    default: false
  control_plane_layout:
    description:
      - How kube-apiserver runs on the node, as C(kubeguard.hardening.control_plane_facts) reports it
        (C(components.kube-apiserver.layout)); C(static-pod) means kubeadm. Empty when unknown.
    type: str
    default: ""
  jwt_issuers:
    description: JWT (OIDC) issuers, see the C(api_access) role's C(api_access_jwt_issuers).
    type: list
    elements: dict
    default: []
  cluster_ca_file:
    description: Controller-side cluster CA, trusted for issuers that name no CA of their own.
    type: path
  service_account_issuer:
    description: The apiserver's service-account issuer(s); refused as JWT issuers.
    type: list
    elements: str
    default: []
  authorizers:
    description: The ordered authorizer chain (Node, RBAC, ABAC, Webhook entries).
    type: list
    elements: raw
    default: [Node, RBAC]
  allow_always_allow:
    description: Let AlwaysAllow into the chain (it disables authorization, CIS 1.2.6).
    type: bool
    default: false
  abac_policy:
    description: ABAC policy specs (user, group, readonly, apiGroup, resource, namespace, nonResourcePath).
    type: list
    elements: dict
    default: []
  static_tokens_enabled:
    description: Render --token-auth-file (CIS 1.2.2 says to leave it off; a warning says so).
    type: bool
    default: false
  static_tokens:
    description: Static token users (user, uid, groups, token); missing tokens are generated and stored.
    type: list
    elements: dict
    default: []
  static_token_store:
    description: Controller-side JSON store of generated tokens (0600, directory 0700).
    type: path
  webhook_token_authn:
    description: Webhook token authenticator (server, ca_file or ca_pem, cache_ttl).
    type: dict
  api_audiences:
    description: --api-audiences; empty leaves the apiserver default (the service-account issuer).
    type: list
    elements: str
    default: []
  service_account_max_token_expiration:
    description: --service-account-max-token-expiration (at least 1h); empty leaves it unset.
    type: str
    default: ""
attributes:
  check_mode:
    support: full
    description: Validates and renders everything and writes nothing, not even the token store.
  diff_mode:
    support: full
    description: Lists the rendered files that change; the token store shows user names, never tokens.
  idempotent:
    support: full
    description: The same input renders the same files; a token once generated is kept.
  safe_file_operations:
    support: full
    description: The token store is written through a temporary file in its directory and renamed into place.
"""

EXAMPLES = r"""
- name: Render the apiserver access configuration
  kubeguard.hardening.api_access_config:
    anonymous: health
    authorizers: [Node, RBAC]
    static_tokens_enabled: true
    static_tokens: [{user: ci-bot, groups: [ci]}]
    static_token_store: ~/.kubeguard/pki/kubernetes/api_access/static-tokens.json
  delegate_to: localhost
  register: api_access_render
  no_log: true
"""

RETURN = r"""
files:
  description: Node-side path to file text (secret when static tokens are on).
  returned: success
  type: dict
  sample: {"/etc/kubernetes/kubeguard/authentication.yaml": "apiVersion: apiserver.config.k8s.io/v1\n..."}
flags:
  description: kube-apiserver flags to set; null removes the flag.
  returned: success
  type: dict
  sample: {"authentication-config": /etc/kubernetes/kubeguard/authentication.yaml, "anonymous-auth": null}
summary:
  description: What was rendered, without any secret.
  returned: success
  type: dict
  sample: {"anonymous": "off", "anonymous_paths": [], "authorizers": ["Node/node", "RBAC/rbac"]}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.kubeguard.hardening.plugins.module_utils._api_access import config
from ansible_collections.kubeguard.hardening.plugins.module_utils._common import vault
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import ROLE_VARS_SPEC, run_module


def main():
    module = AnsibleModule(
        argument_spec={
            **ROLE_VARS_SPEC,
            **vault.ARGUMENT_SPEC,
            "config_dir": {"type": "path", "default": "/etc/kubernetes/kubeguard"},
            "anonymous": {"type": "str", "choices": ["off", "health"], "default": "off"},
            "anonymous_kubeadm_discovery": {"type": "bool", "default": False},
            "control_plane_layout": {"type": "str", "default": ""},
            "jwt_issuers": {"type": "list", "elements": "dict", "default": []},
            "cluster_ca_file": {"type": "path"},
            "service_account_issuer": {"type": "list", "elements": "str", "default": []},
            "authorizers": {"type": "list", "elements": "raw", "default": ["Node", "RBAC"]},
            "allow_always_allow": {"type": "bool", "default": False},
            "abac_policy": {"type": "list", "elements": "dict", "default": []},
            "static_tokens_enabled": {"type": "bool", "default": False},
            # Not no_log: masking user and group names would corrupt the returned files; the role task is no_log.
            "static_tokens": {"type": "list", "elements": "dict", "default": [], "no_log": False},
            "static_token_store": {"type": "path", "no_log": False},
            # a server URL and a CA, no credential: the webhook authenticates itself by its CA
            "webhook_token_authn": {"type": "dict", "no_log": False},
            "api_audiences": {"type": "list", "elements": "str", "default": []},
            "service_account_max_token_expiration": {"type": "str", "default": "", "no_log": False},  # a duration
        },
        supports_check_mode=True,
    )
    with vault.using(module.params.pop(vault.OPTION, None)):
        run_module(module, config.run, module.params, check_mode=module.check_mode)


if __name__ == "__main__":
    main()
