#!/usr/bin/python
# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: encryption_at_rest_etcd
short_description: Prove in etcd which key every stored object of the encrypted resources is encrypted with
version_added: 0.2.0
description:
  - Reads every value under the etcd prefixes of the encrypted resources through etcd's v3 API (the JSON gateway on the
    client URL), with the apiserver's etcd client certificate, page by page, and counts them by encryption prefix
    (C(k8s:enc:<provider>:v1:<key name>:), or C(plaintext)).
  - Returns counts and the etcd keys (names) of objects not carrying O(expected_prefix); never a value.
  - Run it on a control-plane node (the apiserver's certificate paths are local there).
author: Kubeguard maintainers (@kubeguard)
extends_documentation_fragment:
  - kubeguard.hardening.role_vars
  - kubeguard.hardening.attributes.read_only
options:
  etcd_servers:
    description: The apiserver's C(--etcd-servers) (the first URL is read).
    type: str
    required: true
  etcd_cafile:
    description: CA bundle etcd's serving certificate chains to.
    type: path
  etcd_certfile:
    description: Client certificate.
    type: path
  etcd_keyfile:
    description: Client key.
    type: path
  prefixes:
    description: Resource name to etcd prefix (the C(resources) result of encryption_at_rest_objects, flattened).
    type: dict
    required: true
  expected_prefix:
    description: The prefix every value must carry.
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Prove every Secret is encrypted with gen2
  kubeguard.hardening.encryption_at_rest_etcd:
    etcd_servers: https://127.0.0.1:2379
    etcd_cafile: /etc/kubernetes/pki/etcd/ca.crt
    etcd_certfile: /etc/kubernetes/pki/apiserver-etcd-client.crt
    etcd_keyfile: /etc/kubernetes/pki/apiserver-etcd-client.key
    prefixes: {secrets: /registry/secrets/}
    expected_prefix: "k8s:enc:aescbc:v1:gen2-aescbc:"
  become: true
"""

RETURN = r"""
checked:
  description: Values read.
  returned: success
  type: int
stale:
  description: Values not carrying O(expected_prefix).
  returned: success
  type: int
counts:
  description: Values per encryption prefix.
  returned: success
  type: dict
  sample: {"k8s:enc:aescbc:v1:gen2-aescbc:": 212}
stale_keys:
  description: Up to 20 etcd keys per stale prefix.
  returned: success
  type: dict
expected_prefix:
  description: O(expected_prefix), echoed as evidence for encryption_at_rest_state.
  returned: success
  type: str
resources:
  description: The resources checked.
  returned: success
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.kubeguard.hardening.plugins.module_utils._encryption import etcd
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import ROLE_VARS_SPEC, run_module


def main():
    module = AnsibleModule(
        argument_spec={
            **ROLE_VARS_SPEC,
            "etcd_servers": {"type": "str", "required": True},
            "etcd_cafile": {"type": "path"},
            "etcd_certfile": {"type": "path"},
            "etcd_keyfile": {"type": "path", "no_log": False},
            "prefixes": {"type": "dict", "required": True},
            "expected_prefix": {"type": "str", "required": True},
        },
        supports_check_mode=True,
    )
    run_module(module, etcd.run, module.params, module.check_mode)


if __name__ == "__main__":
    main()
