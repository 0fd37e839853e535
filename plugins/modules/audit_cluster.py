#!/usr/bin/python
# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: audit_cluster
short_description: Evaluate every CIS Kubernetes Benchmark v1.12 policy check (section 5) through the API in bulk
version_added: 0.2.0
description:
  - One discovery and one LIST per kind (RBAC objects, service accounts, pods, namespaces, NetworkPolicies, services,
    admission policy objects), then every recommendation of section 5, each with its evidence.
  - RBAC (5.1) is judged by M(kubeguard.hardening.rbac_audit)'s checks, NetworkPolicy coverage (5.3.2) by
    M(kubeguard.hardening.network_policy_audit)'s. Pod checks look at pods outside O(exempt_namespaces).
  - Evidence names objects, never a value (a pod's environment may hold a literal secret). Read-only.
author:
  - Kubeguard maintainers (@kubeguard)
extends_documentation_fragment:
  - kubeguard.hardening.role_vars
  - kubeguard.hardening.k8s_api
  - kubeguard.hardening.attributes.read_only
options:
  exempt_namespaces:
    description: Namespaces (names or shell patterns) whose pods and coverage section 5 does not judge.
    type: list
    elements: str
    default: [kube-system, kube-public, kube-node-lease]
  allowed_bindings:
    description: Bindings whose RBAC findings are accepted (as in M(kubeguard.hardening.rbac_audit)).
    type: list
    elements: str
    default: ["system:*", "*/system:*", "cluster-admin", "kubeadm:*", "*/kubeadm:*", "kubeguard:*", "*/kubeguard:*"]
  allowed_subjects:
    description: Subjects whose bindings are accepted when every subject matches.
    type: list
    elements: str
    default: []
seealso:
  - module: kubeguard.hardening.audit_node
  - module: kubeguard.hardening.audit_report
"""

EXAMPLES = r"""
- name: Audit the cluster's policies (CIS section 5)
  kubeguard.hardening.audit_cluster:
    kubeconfig: /etc/kubernetes/admin.conf
  delegate_to: localhost
  run_once: true
  register: audit_cluster_result
"""

RETURN = r"""
results:
  description: One result per check of section 5, with C(node=cluster).
  returned: success
  type: list
  elements: dict
  sample:
    - {id: "5.3.2", node: cluster, result: fail,
       evidence: ["namespace team-a: no NetworkPolicy, ingress open, egress open"],
       remediation: network_policy_baseline_enabled (role network_policy)}
api_requests:
  description: Requests sent to the API server, and how many were discovery.
  returned: success
  type: dict
  sample: {total: 14, discovery: 4}
"""

from ansible_collections.kubeguard.hardening.plugins.module_utils._audit import cluster
from ansible_collections.kubeguard.hardening.plugins.module_utils._k8s import ansible as k8s_ansible


def main():
    k8s_ansible.main(
        dict(
            exempt_namespaces={
                "type": "list",
                "elements": "str",
                "default": ["kube-system", "kube-public", "kube-node-lease"],
            },
            allowed_bindings={
                "type": "list",
                "elements": "str",
                "default": [
                    "system:*",
                    "*/system:*",
                    "cluster-admin",
                    "kubeadm:*",
                    "*/kubeadm:*",
                    "kubeguard:*",
                    "*/kubeguard:*",
                ],
            },
            allowed_subjects={"type": "list", "elements": "str", "default": []},
        ),
        cluster.run,
    )


if __name__ == "__main__":
    main()
