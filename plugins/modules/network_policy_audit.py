#!/usr/bin/python
# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: network_policy_audit
short_description: Report namespaces that are not default-deny in both directions (CIS 5.3.2)
version_added: 0.1.0
description:
  - Reads every namespace and NetworkPolicy once and reports, for each Active namespace not matching
    O(exempt_namespaces), its policies and whether every pod is isolated for ingress and for egress (a policy with an
    empty C(podSelector) listing that direction).
  - A namespace created after the baseline ran shows up in RV(uncovered) until the baseline runs again.
  - Read-only.
author: Kubeguard maintainers (@kubeguard)
extends_documentation_fragment:
  - kubeguard.hardening.role_vars
  - kubeguard.hardening.k8s_api
  - kubeguard.hardening.attributes.read_only
options:
  exempt_namespaces:
    description: Names or shell patterns of namespaces left out of the audit.
    type: list
    elements: str
    default: [kube-system, kube-public, kube-node-lease]
"""

EXAMPLES = r"""
- name: Find namespaces without a default-deny policy
  kubeguard.hardening.network_policy_audit:
    kubeconfig: /etc/kubernetes/admin.conf
  register: netpol_coverage
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
namespaces:
  description: Every audited namespace with its coverage.
  returned: always
  type: list
  elements: dict
  sample:
    - namespace: team-a
      cis: "5.3.2"
      policies: [kubeguard-default-deny, kubeguard-allow-dns]
      isolated_ingress: true
      isolated_egress: true
      covered: true
uncovered:
  description: Names of the audited namespaces that are not covered.
  returned: always
  type: list
  elements: str
  sample: [created-later]
findings:
  description: The entries of RV(namespaces) that are not covered.
  returned: always
  type: list
  elements: dict
api_requests:
  description: Requests sent to the API server, and how many were discovery.
  returned: always
  type: dict
  sample: {total: 4, discovery: 2}
"""

from ansible_collections.kubeguard.hardening.plugins.module_utils._k8s import ansible as k8s_ansible
from ansible_collections.kubeguard.hardening.plugins.module_utils._netpol import runner


def main():
    k8s_ansible.main(
        dict(
            exempt_namespaces={
                "type": "list",
                "elements": "str",
                "default": ["kube-system", "kube-public", "kube-node-lease"],
            },
        ),
        runner.run_audit,
    )


if __name__ == "__main__":
    main()
