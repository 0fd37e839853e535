#!/usr/bin/python
# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: cluster_pki_endpoint
short_description: Prove from a node that a kubeconfig's new API server answers before it is repointed
version_added: 0.1.0
description:
  - For each kubeconfig entry of O(files) that already exists on the node with a different C(server), checks from
    this node that the new server's host resolves and completes a TLS handshake whose certificate chain verifies
    against the cluster CA. Fails, naming the option the URL comes from, when one does not.
  - The C(kubeguard.hardening.cluster_pki) role runs it on every node before anything is written anywhere, so a
    typo in the control-plane endpoint cannot repoint the nodes.
  - A kubeconfig that does not exist yet is not checked (nothing uses it). The host name is not matched against the
    served certificate, because the role adds a new endpoint to the apiserver certificate in the same run.
  - Standard library only; runs on nodes without C(cryptography).
author: Kubeguard maintainers (@kubeguard)
extends_documentation_fragment:
  - kubeguard.hardening.role_vars
  - kubeguard.hardening.attributes.read_only
  - kubeguard.hardening.pki.node_dirs
options:
  files:
    description:
      - The node's entries of the C(distribution) result of M(kubeguard.hardening.cluster_pki). Entries with a
        C(server) (kubeconfigs) are checked; C(server_option) names the option the URL comes from. Other entries are
        ignored.
    type: list
    elements: dict
    required: true
  ca_certificate:
    description:
      - PEM of the cluster CA to verify the handshake against (the C(ca_certificate) result of
        M(kubeguard.hardening.cluster_pki)). Empty means the CA embedded in the kubeconfig being repointed.
    type: str
    default: ""
  timeout:
    description: Seconds to wait for each TCP connection and TLS handshake.
    type: int
    default: 5
seealso:
  - module: kubeguard.hardening.cluster_pki
  - module: kubeguard.hardening.cluster_pki_install
"""

EXAMPLES = r"""
- name: Check the new endpoint from every node before anything is written
  kubeguard.hardening.cluster_pki_endpoint:
    files: "{{ pki_plan.distribution[inventory_hostname] }}"
    ca_certificate: "{{ pki_plan.ca_certificate }}"
  any_errors_fatal: true
"""

RETURN = r"""
checked:
  description: The kubeconfigs that would be repointed, and the server they move from and to (all verified).
  returned: always
  type: list
  elements: dict
  sample: [{path: /etc/kubernetes/kubelet.conf, from: "https://10.0.0.10:6443", to: "https://api.example.test:6443"}]
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import run_module
from ansible_collections.kubeguard.hardening.plugins.module_utils._pki import _endpoint, _specs


def main():
    module = AnsibleModule(
        argument_spec=_specs.ENDPOINT,
        supports_check_mode=True,
    )
    run_module(module, _endpoint.run, module.params, check_mode=module.check_mode)


if __name__ == "__main__":
    main()
