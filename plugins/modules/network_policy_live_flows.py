#!/usr/bin/python
# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: network_policy_live_flows
short_description: List the live flows that the NetworkPolicies about to be applied would cut
version_added: 0.2.0
description:
  - Reads namespaces, pods and NetworkPolicies once and builds the policy set a run of the network_policy role would
    leave (today's policies, minus those matching O(replace_labels), plus O(namespace_objects) in every namespace not
    matching O(exclude_namespaces) and O(objects)).
  - Without O(gathered), returns the namespaces whose policies would change and the running pods in them
    (RV(needs_flows)).
  - With O(gathered), the M(kubeguard.hardening.network_policy_flows) results of the nodes, maps each flow's addresses
    to running pods and returns those today's policies allow and the new ones block, judged by the truth table's
    engine; a flow whose source or destination namespace matches O(allow_cut) is accepted, the others are refused,
    with allow rules in the role's C(network_policy_custom_rules) format that keep them (RV(suggested_rules)).
  - Reports only; the role fails the play on a refused flow. Read-only.
author: Kubeguard maintainers (@kubeguard)
extends_documentation_fragment:
  - kubeguard.hardening.role_vars
  - kubeguard.hardening.k8s_api
  - kubeguard.hardening.attributes.read_only
options:
  namespace_objects:
    description: NetworkPolicy templates (no namespace) the run applies in every namespace not excluded.
    type: list
    elements: dict
    default: []
  objects:
    description: NetworkPolicies with their namespace the run applies.
    type: list
    elements: dict
    default: []
  exclude_namespaces:
    description: Names or shell patterns of namespaces that get no O(namespace_objects) or O(objects).
    type: list
    elements: str
    default: []
  replace_labels:
    description: Label sets; today's policies carrying all labels of one set are replaced by the run (its pruned sets).
    type: list
    elements: dict
    default: []
  gathered:
    description: The registered results (C(results) of a loop) of M(kubeguard.hardening.network_policy_flows), one per
      node.
    type: list
    elements: raw
  allow_cut:
    description: Names or shell patterns of namespaces whose live flows may be cut (as source or destination).
    type: list
    elements: str
    default: []
  audit:
    description:
      - Also report CIS 5.3.2 coverage from the same read, as M(kubeguard.hardening.network_policy_audit) would with
        O(exclude_namespaces) as its exempt namespaces, in RV(audit).
    type: bool
    default: false
    version_added: 0.3.0
"""

EXAMPLES = r"""
- name: Which live flows would default-deny cut?
  kubeguard.hardening.network_policy_live_flows:
    kubeconfig: /etc/kubernetes/admin.conf
    namespace_objects:
      - apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: deny}
        spec: {podSelector: {}, policyTypes: [Ingress, Egress]}
    exclude_namespaces: [kube-system]
    gathered: "{{ netpol_flows.results }}"
    allow_cut: [batch]
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
namespaces:
  description: Namespaces whose policies the run would change.
  returned: always
  type: list
  elements: str
  sample: [batch, shop]
running_pods:
  description: Running pods (not hostNetwork) in those namespaces.
  returned: always
  type: list
  elements: str
  sample: [shop/web-5d9c-abcde]
needs_flows:
  description: Whether running pods live in a namespace whose policies would change.
  returned: always
  type: bool
transition:
  description: Allow-all policies that keep the directions open today open while the run applies its policies.
  returned: always
  type: list
  elements: dict
audit:
  description:
    - With O(audit), today's coverage in M(kubeguard.hardening.network_policy_audit)'s result keys (C(namespaces),
      C(uncovered), C(findings)), and C(after_run), true when the policies the run would leave give the same
      report, so the run leaves that coverage as it is.
  returned: when O(audit) is true
  type: dict
  version_added: 0.3.0
  sample: {changed: false, namespaces: [], uncovered: [], findings: [], after_run: true}
transition_present:
  description: Transition policies are in the cluster now (a run stopped before removing them).
  returned: always
  type: bool
cut:
  description: Live flows allowed today and blocked after the run, one per source pod, destination pod and port.
  returned: always
  type: list
  elements: dict
  sample:
    - source: batch/client-7f-x2
      destination: shop/web-5d-ab
      port: tcp/8080
      via: ["10.96.12.40:80"]
      nodes: [worker1]
      blocked_by: [egress, ingress]
      accepted: true
      text: "batch/client-7f-x2 -> shop/web-5d-ab tcp/8080 via 10.96.12.40:80 (blocked by egress and ingress, seen on
        worker1)"
refused:
  description: The RV(cut) flows not accepted by O(allow_cut).
  returned: always
  type: list
  elements: dict
accepted:
  description: The RV(cut) flows accepted by O(allow_cut).
  returned: always
  type: list
  elements: dict
refused_namespaces:
  description: Namespaces whose policies would change and that an end of a refused flow lives in.
  returned: always
  type: list
  elements: str
suggested_rules:
  description: Allow rules ({name, namespaces, spec}, the role's C(network_policy_custom_rules)) that keep the refused
    flows.
  returned: always
  type: list
  elements: dict
unjudged:
  description: Flows touching a changing namespace whose other end is no pod (a node, an outside address).
  returned: always
  type: int
api_requests:
  description: Requests sent to the API server, and how many were discovery.
  returned: always
  type: dict
"""

from ansible_collections.kubeguard.hardening.plugins.module_utils._k8s import ansible as k8s_ansible
from ansible_collections.kubeguard.hardening.plugins.module_utils._netpol import live


def main():
    k8s_ansible.main(
        dict(
            namespace_objects={"type": "list", "elements": "dict", "default": []},
            objects={"type": "list", "elements": "dict", "default": []},
            exclude_namespaces={"type": "list", "elements": "str", "default": []},
            replace_labels={"type": "list", "elements": "dict", "default": []},
            gathered={"type": "list", "elements": "raw"},
            allow_cut={"type": "list", "elements": "str", "default": []},
            audit={"type": "bool", "default": False},
        ),
        live.run,
    )


if __name__ == "__main__":
    main()
