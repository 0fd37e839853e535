#!/usr/bin/python
# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: node_os_probe
short_description: Prove from a node that its kubelet reaches the apiserver and that cluster DNS answers
version_added: 0.2.0
description:
  - With the kubelet's own kubeconfig, waits until the node's Lease in C(kube-node-lease) has been renewed
    after the probe started (the kubelet got through to the apiserver) and the Node is Ready.
  - Sends a DNS A query for I(dns_name) to I(dns_server) (the cluster DNS Service) and waits for an answer with
    records. Read-only; never changes anything.
author: Kubeguard maintainers (@kubeguard)
extends_documentation_fragment:
  - kubeguard.hardening.role_vars
options:
  kubeconfig:
    description: The kubelet's kubeconfig on the node; empty skips the kubelet proof.
    type: path
    default: /etc/kubernetes/kubelet.conf
  node_name:
    description: The Node's name.
    type: str
    required: true
  dns_server:
    description: The cluster DNS Service address; empty skips the DNS proof.
    type: str
    default: ""
  dns_name:
    description: The name to resolve.
    type: str
    default: kubernetes.default.svc.cluster.local
  timeout:
    description: Seconds to wait for both proofs.
    type: int
    default: 60
attributes:
  check_mode:
    description: Can run in check mode and report what would change without changing the node.
    support: full
  diff_mode:
    description: Returns details on what changed (or would change) in diff mode.
    support: none
  idempotent:
    description: A second run with the same options changes nothing.
    support: full
"""

EXAMPLES = r"""
- name: Prove the kubelet and DNS still work
  kubeguard.hardening.node_os_probe:
    node_name: worker1
    dns_server: 10.96.0.10
  become: true
"""

RETURN = r"""
kubelet:
  description: The Lease renewal seen after the probe started, and Ready.
  returned: when kubeconfig is set
  type: dict
  sample: {lease_renewed_after_s: 3.2, ready: true}
dns:
  description: The DNS answer.
  returned: when dns_server is set
  type: dict
  sample: {server: 10.96.0.10, name: kubernetes.default.svc.cluster.local, answers: 1}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import ROLE_VARS_SPEC, run_module
from ansible_collections.kubeguard.hardening.plugins.module_utils._node_os import probe

ARGUMENT_SPEC = {
    **ROLE_VARS_SPEC,
    "kubeconfig": {"type": "path", "default": "/etc/kubernetes/kubelet.conf"},
    "node_name": {"type": "str", "required": True},
    "dns_server": {"type": "str", "default": ""},
    "dns_name": {"type": "str", "default": "kubernetes.default.svc.cluster.local"},
    "timeout": {"type": "int", "default": 60},
}


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    run_module(module, probe.run, module.params)


if __name__ == "__main__":
    main()
