#!/usr/bin/python
# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: encryption_at_rest_facts
short_description: Read which encryption providers and keys a control-plane node's kube-apiserver is configured with
version_added: 0.2.0
description:
  - Finds kube-apiserver's configured flags (systemd unit or kubeadm static-pod manifest; the running process when
    neither exists) and reads the EncryptionConfiguration that C(--encryption-provider-config) names.
  - Returns the encrypted resources and, in order, each provider with its key names and a SHA-256 fingerprint of each
    key, never the key bytes, unless O(include_secrets) is set; then the task must be C(no_log).
  - Returns the apiserver's etcd client flags, which the etcd proof of encryption_at_rest_etcd uses.
author: Kubeguard maintainers (@kubeguard)
extends_documentation_fragment:
  - kubeguard.hardening.role_vars
  - kubeguard.hardening.attributes.read_only
options:
  kubernetes_dir:
    description: Kubernetes configuration directory (C(manifests/) for the kubeadm layout).
    type: path
    default: /etc/kubernetes
  include_secrets:
    description: Also return the key bytes (C(encryption.secrets)), to adopt them into the key store. Use C(no_log).
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Read the apiserver's encryption config (names and fingerprints only)
  kubeguard.hardening.encryption_at_rest_facts:
  become: true
  register: encryption_at_rest_facts
"""

RETURN = r"""
encryption:
  description: The node's encryption configuration without key bytes, and the apiserver's etcd client flags.
  returned: success
  type: dict
  sample:
    present: true
    path: /etc/kubernetes/kubeguard/encryption-config.yaml
    resources: [secrets]
    slots: [{provider: aescbc, name: gen1-aescbc, fingerprint: "sha256:0c1f4e8a9b2d3c4e"}]
    other_keys: []
    unsupported: []
    automatic_reload: false
    etcd: {etcd-servers: "https://10.123.0.10:2379", etcd-cafile: /etc/kubernetes/pki/etcd/ca.crt}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.kubeguard.hardening.plugins.module_utils._encryption import facts
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import ROLE_VARS_SPEC, run_module


def main():
    module = AnsibleModule(
        argument_spec={
            **ROLE_VARS_SPEC,
            "kubernetes_dir": {"type": "path", "default": "/etc/kubernetes"},
            "include_secrets": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )
    run_module(module, facts.gather, module.params, module.check_mode)


if __name__ == "__main__":
    main()
