#!/usr/bin/python
# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: kubelet_files
short_description: Give the kubelet's and kube-proxy's files the modes and owners of CIS 4.1.x
version_added: 0.2.0
description:
  - From the result of M(kubeguard.hardening.kubelet_facts), removes every permission bit beyond the wanted mode
    and makes root the owner of the kubelet unit and its drop-ins (0600, CIS 4.1.1/4.1.2), kube-proxy's
    kubeconfig (0600, CIS 4.1.3/4.1.4), the kubelet's kubeconfig (0600, CIS 4.1.5/4.1.6), the client CA file
    (O(client_ca_mode), CIS 4.1.7/4.1.8) and the kubelet config file (0600, CIS 4.1.9/4.1.10).
  - Never widens a mode that is already stricter.
author:
  - Kubeguard maintainers (@kubeguard)
extends_documentation_fragment:
  - kubeguard.hardening.role_vars
options:
  facts:
    description: The registered result of M(kubeguard.hardening.kubelet_facts) on this node.
    type: dict
    required: true
  client_ca_file:
    description: The CA file the kubelet verifies clients with.
    type: path
    required: true
  client_ca_mode:
    description: Its mode (a certificate is public; M(kubeguard.hardening.cluster_pki_install) installs it 0644).
    type: str
    default: "0644"
attributes:
  check_mode:
    support: full
    description: Reports the modes and owners it would fix and changes nothing.
  diff_mode:
    support: none
    description: The result lists each file whose mode or owner changes.
  idempotent:
    support: full
    description: A second call finds nothing to fix.
  safe_file_operations:
    support: full
    description: Changes modes and owners in place; writes no file content.
"""

EXAMPLES = r"""
- name: Give the kubelet's files their CIS 4.1.x modes and owners
  kubeguard.hardening.kubelet_files:
    facts: "{{ kubelet_facts }}"
    client_ca_file: /etc/kubernetes/pki/ca.crt
  become: true
"""

RETURN = r"""
fixed:
  description: The files whose mode or owner was (or in check mode would be) fixed, with what they had.
  returned: success
  type: list
  elements: dict
  sample: [{"path": /var/lib/kubelet/config.yaml, "mode": "0644", "owner": "root:root", "cis": CIS 4.1.9/4.1.10}]
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import run_module
from ansible_collections.kubeguard.hardening.plugins.module_utils._kubelet import node, specs


def main():
    module = AnsibleModule(argument_spec=specs.FILES, supports_check_mode=True)
    run_module(module, node.fix_files, module.params, module.check_mode)


if __name__ == "__main__":
    main()
