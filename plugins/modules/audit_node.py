#!/usr/bin/python
# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: audit_node
short_description: Evaluate every CIS Kubernetes Benchmark v1.12 check of sections 1-4 on a node in one call
version_added: 0.2.0
description:
  - Gathers the node once (the gathering of M(kubeguard.hardening.control_plane_facts) and
    M(kubeguard.hardening.kubelet_facts), plus the structured files the apiserver and the kubelet load) and
    evaluates every recommendation of sections 1 (control plane), 2 (etcd), 3 (control-plane configuration) and
    4 (worker nodes). Each check gets one result on this node, C(not_applicable) with the reason where the
    component does not run here.
  - "Reads configuration the way the components do: the running process's flags (and the configured ones where
    they differ, since the next restart applies them); C(--authorization-config) and C(--authentication-config)
    decide 1.2.1 and 1.2.6-1.2.8; kubelet flags win over config-file fields, which win over defaults; systemd
    units and their drop-ins stand in for static-pod manifests (1.1.1-1.1.8)."
  - Evidence names flags, fields, files, modes and owners, never a key, token or password.
  - Read-only; needs root (use become). Reading YAML files on the node needs python3-yaml (JSON works without).
author:
  - Kubeguard maintainers (@kubeguard)
extends_documentation_fragment:
  - kubeguard.hardening.attributes.read_only
options:
  node:
    description: The name this node has in the report (the inventory name).
    type: str
    required: true
  kubernetes_dir:
    description: Kubernetes configuration directory (kubeconfigs, C(pki/), C(manifests/)).
    type: path
    default: /etc/kubernetes
seealso:
  - module: kubeguard.hardening.audit_cluster
  - module: kubeguard.hardening.audit_report
"""

EXAMPLES = r"""
- name: Audit this node against CIS sections 1-4
  kubeguard.hardening.audit_node:
    node: "{{ inventory_hostname }}"
  become: true
  register: audit_node_result
"""

RETURN = r"""
results:
  description: One result per check of sections 1-4 (docs/audit.md describes every field).
  returned: success
  type: list
  elements: dict
  sample:
    - id: "1.2.6"
      node: cp1
      result: fail
      title: Authorization does not include AlwaysAllow
      section: "1"
      level: 1
      automated: true
      scope: apiserver
      evidence: ["--authorization-mode=AlwaysAllow (kube-apiserver process 812)"]
      reason: ""
      remediation: api_access_authorizers or control_plane_authorization_modes
node:
  description: The node's layout, the components found and their versions.
  returned: success
  type: dict
  sample: {name: cp1, layout: systemd, components: [etcd, kube-apiserver, kubelet], versions: {}}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.kubeguard.hardening.plugins.module_utils._audit import node
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import run_module


def main():
    module = AnsibleModule(
        argument_spec={
            "node": {"type": "str", "required": True},
            "kubernetes_dir": {"type": "path", "default": "/etc/kubernetes"},
        },
        supports_check_mode=True,
    )
    run_module(module, node.run, module.params, module.check_mode)


if __name__ == "__main__":
    main()
