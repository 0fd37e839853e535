#!/usr/bin/python
# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: network_policy_truth_table
short_description: Predict which pods can reach which, per port, from the NetworkPolicies
version_added: 0.1.0
description:
  - Computes pods x pods x ports -> allowed or blocked from the NetworkPolicies, the pod labels and the namespace
    labels,
    with upstream semantics (policy types, empty selectors, namespaceSelector AND podSelector in one peer, ipBlock with
    except, named ports, endPort); a connection needs both the source's egress and the destination's ingress.
  - Reads pods, namespaces and policies from the cluster (one LIST each), or takes them as data with O(pods).
  - Returns the table as JSON and as Cyclonus-style matrices (rows are sources, columns destinations, C(.) allowed,
    C(X) blocked).
  - Read-only.
author: Kubeguard maintainers (@kubeguard)
extends_documentation_fragment:
  - kubeguard.hardening.role_vars
  - kubeguard.hardening.k8s_api
  - kubeguard.hardening.attributes.read_only
options:
  ports:
    description: Destination ports to predict, as C(80), C(tcp/80) or C(udp/53).
    type: list
    elements: raw
    default: [80]
  namespaces:
    description: Only pods of these namespaces (all when empty).
    type: list
    elements: str
    default: []
  loopback_allowed:
    description: Treat a pod connecting to itself as always allowed, as the upstream e2e tests expect.
    type: bool
    default: true
  pods:
    description:
      - Pods as data instead of reading the cluster, each with C(namespace), C(name), C(labels), C(ip) and C(ports)
        (C(name), C(port), C(protocol)).
    type: list
    elements: dict
    default: []
  namespace_labels:
    description: With O(pods), the labels of each namespace (C(name) -> labels).
    type: dict
    default: {}
  policies:
    description: With O(pods), the NetworkPolicies as manifests.
    type: list
    elements: dict
    default: []
"""

EXAMPLES = r"""
- name: Predict the reachability of namespaces x, y and z on TCP 80 and 81
  kubeguard.hardening.network_policy_truth_table:
    kubeconfig: /etc/kubernetes/admin.conf
    namespaces: [x, y, z]
    ports: [tcp/80, tcp/81]
  register: netpol_prediction
  delegate_to: localhost
  run_once: true

- name: Show it
  ansible.builtin.debug:
    msg: "{{ netpol_prediction.matrices['tcp/80'].splitlines() }}"
"""

RETURN = r"""
pods:
  description: The pods of the table, as C(namespace/name), sorted.
  returned: always
  type: list
  elements: str
  sample: [x/a, x/b]
ports:
  description: The ports of the table, as C(tcp/80).
  returned: always
  type: list
  elements: str
  sample: [tcp/80]
table:
  description: C(port -> source -> destination -> allowed).
  returned: always
  type: dict
  sample: {tcp/80: {x/a: {x/a: true, x/b: false}, x/b: {x/a: false, x/b: true}}}
details:
  description: Like RV(table), with the egress and ingress verdicts of each cell.
  returned: always
  type: dict
matrices:
  description: One Cyclonus-style matrix per port (tab-separated text).
  returned: always
  type: dict
  sample: {tcp/80: "tcp/80\tx/a\tx/b\nx/a\t.\tX\nx/b\tX\t."}
api_requests:
  description: Requests sent to the API server, and how many were discovery.
  returned: always
  type: dict
  sample: {total: 5, discovery: 2}
"""

from ansible_collections.kubeguard.hardening.plugins.module_utils._k8s import ansible as k8s_ansible
from ansible_collections.kubeguard.hardening.plugins.module_utils._netpol import runner


def main():
    k8s_ansible.main(
        dict(
            ports={"type": "list", "elements": "raw", "default": [80]},
            namespaces={"type": "list", "elements": "str", "default": []},
            loopback_allowed={"type": "bool", "default": True},
            pods={"type": "list", "elements": "dict", "default": []},
            namespace_labels={"type": "dict", "default": {}},
            policies={"type": "list", "elements": "dict", "default": []},
        ),
        runner.run_truth_table,
    )


if __name__ == "__main__":
    main()
