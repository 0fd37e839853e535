#!/usr/bin/python
# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: k8s_bulk_apply
short_description: Apply or delete many Kubernetes objects in one call, with server-side apply
version_added: 0.1.0
description:
  - Applies every object of O(objects), and every template of O(namespace_objects) in every selected namespace, with
    server-side apply and the field manager O(field_manager).
  - One discovery per call (only the API group-versions the objects use), one LIST per resource type to read the current
    objects, then the applies, several at a time (O(workers)); cluster-scoped objects such as Namespaces go first.
  - C(changed) compares each object before and after without the fields the server owns (C(managedFields),
    C(resourceVersion), C(generation), C(uid), C(creationTimestamp), C(status)), so a rerun that changes nothing reports
    changed=false.
  - In check mode every apply and delete is a server-side dry-run, so the API server validates and admission runs, and
    nothing is persisted. Objects in a namespace that this call would create are predicted instead.
  - Secret values are never shown in the diff.
author: Kubeguard maintainers (@kubeguard)
extends_documentation_fragment:
  - kubeguard.hardening.role_vars
  - kubeguard.hardening.k8s_api
attributes:
  check_mode:
    support: full
    description: Server-side dry-run of every apply and delete.
  diff_mode:
    support: full
    description: One before/after entry per created, updated or deleted object, without noise fields or Secret values.
  idempotent:
    support: full
    description: Server-side apply; unchanged objects report changed=false.
options:
  objects:
    description:
      - Complete manifests (C(apiVersion), C(kind), C(metadata.name), and C(metadata.namespace) when namespaced).
    type: list
    elements: dict
    default: []
  namespace_objects:
    description:
      - Manifests without C(metadata.namespace), applied in every selected namespace (see O(namespaces) and
        O(exclude_namespaces)).
    type: list
    elements: dict
    default: []
  namespaces:
    description:
      - Namespaces for O(namespace_objects). When empty, every Active namespace of the cluster plus the Namespaces this
        call creates.
    type: list
    elements: str
    default: []
  exclude_namespaces:
    description: Names or shell patterns (C(kube-*)) of namespaces that get no O(namespace_objects).
    type: list
    elements: str
    default: []
  state:
    description: C(present) applies the objects; C(absent) deletes those that exist (namespaced ones first).
    type: str
    choices: [present, absent]
    default: present
  field_manager:
    description: Field manager of the server-side apply.
    type: str
    default: kubeguard
  force_conflicts:
    description: Take ownership of fields another manager set (server-side apply C(force)).
    type: bool
    default: true
  workers:
    description: Requests in flight at the same time.
    type: int
    default: 4
  prune:
    description:
      - Delete the objects this call owns but no longer lists, after applying the listed ones. An object is owned when
        it carries every label of O(prune_labels) and the field manager O(field_manager) applied it (server-side
        apply); nothing else is ever pruned. One LIST per kind (the kinds of the objects plus O(prune_kinds)),
        cluster-wide.
      - In check mode the deletions are server-side dry-runs; the diff shows each pruned object.
    type: bool
    default: false
  prune_labels:
    description:
      - Labels that mark the objects of this call, required with O(prune); every object and template must carry them.
        Give each owner its own value (for example C(kubeguard.io/set=network-policy-baseline)).
    type: dict
    default: {}
  prune_kinds:
    description:
      - More kinds (C(apiVersion), C(kind)) to prune, for when the call lists no object of that kind any more.
    type: list
    elements: dict
    default: []
  sets:
    description:
      - Several object sets in one call, each what one call would be on its own (its O(objects),
        O(namespace_objects), O(namespaces), O(exclude_namespaces), O(state) and prune options), run in the order
        given, one after the other; a role makes one call for several concerns and keeps their order.
      - Every set is validated and resolved before the first write, with one discovery for the call. A set with a
        failed object stops the call; the later sets are not run. Errors name the set (C(sets.<name>.objects)).
      - With O(sets), the per-set options are not given at the top level.
    type: list
    elements: dict
    version_added: 0.3.0
    suboptions:
      name:
        description: The set's name, unique in the call; RV(sets) reports under it.
        type: str
        required: true
      objects:
        description: As O(objects), for this set.
        type: list
        elements: dict
        default: []
      namespace_objects:
        description: As O(namespace_objects), for this set.
        type: list
        elements: dict
        default: []
      namespaces:
        description: As O(namespaces), for this set.
        type: list
        elements: str
        default: []
      exclude_namespaces:
        description: As O(exclude_namespaces), for this set.
        type: list
        elements: str
        default: []
      state:
        description: As O(state), for this set.
        type: str
        choices: [present, absent]
        default: present
      prune:
        description: As O(prune), for this set.
        type: bool
        default: false
      prune_labels:
        description: As O(prune_labels), for this set.
        type: dict
        default: {}
      prune_kinds:
        description: As O(prune_kinds), for this set.
        type: list
        elements: dict
        default: []
seealso:
  - module: kubernetes.core.k8s
"""

EXAMPLES = r"""
- name: Deny all traffic in every namespace except the system ones, in one call
  kubeguard.hardening.k8s_bulk_apply:
    kubeconfig: /etc/kubernetes/admin.conf
    exclude_namespaces: [kube-system, kube-public, kube-node-lease]
    namespace_objects:
      - apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata:
          name: default-deny
        spec:
          podSelector: {}
          policyTypes: [Ingress, Egress]
  delegate_to: localhost
  run_once: true

- name: Keep exactly these allow rules; drop the ones an earlier run applied and this one no longer lists
  kubeguard.hardening.k8s_bulk_apply:
    kubeconfig: /etc/kubernetes/admin.conf
    prune: true
    prune_labels:
      kubeguard.io/set: custom-allows
    prune_kinds:
      - {apiVersion: networking.k8s.io/v1, kind: NetworkPolicy}
    objects: "{{ my_allow_policies }}"
  delegate_to: localhost
  run_once: true

- name: Apply two owners' policies in one call, the allow rules before the default-deny, each pruning its own
  kubeguard.hardening.k8s_bulk_apply:
    kubeconfig: /etc/kubernetes/admin.conf
    sets:
      - name: allows
        objects: "{{ my_allow_policies }}"
        prune: true
        prune_labels: {kubeguard.io/set: custom-allows}
        prune_kinds: [{apiVersion: networking.k8s.io/v1, kind: NetworkPolicy}]
      - name: deny
        exclude_namespaces: [kube-system]
        namespace_objects: "{{ my_default_deny_templates }}"
        prune: true
        prune_labels: {kubeguard.io/set: default-deny}
  register: applied  # applied.sets.allows.results, applied.sets.deny.summary
  delegate_to: localhost
  run_once: true

- name: Create a namespace and a role in it
  kubeguard.hardening.k8s_bulk_apply:
    objects:
      - apiVersion: v1
        kind: Namespace
        metadata:
          name: team-a
      - apiVersion: rbac.authorization.k8s.io/v1
        kind: Role
        metadata:
          name: reader
          namespace: team-a
        rules:
          - apiGroups: [""]
            resources: [pods]
            verbs: [get, list, watch]
"""

RETURN = r"""
results:
  description: One entry per object, in the order given (templates after O(objects)), then the pruned ones.
  returned: always
  type: list
  elements: dict
  sample:
    - apiVersion: networking.k8s.io/v1
      kind: NetworkPolicy
      namespace: team-a
      name: default-deny
      action: created
summary:
  description: How many objects were created, updated, unchanged, deleted, pruned, already absent or failed.
  returned: always
  type: dict
  sample: {created: 1, updated: 0, unchanged: 199, deleted: 0, pruned: 0, absent: 0, failed: 0}
namespaces:
  description: The namespaces O(namespace_objects) went to.
  returned: always
  type: list
  elements: str
  sample: [default, team-a]
sets:
  description:
    - With O(sets), each set's own outcome by its name, as a call of that set alone would return it (RV(results),
      RV(summary), RV(namespaces), C(changed)); C(skipped) is true for a set not run after an earlier set failed.
    - The top-level RV(results), RV(summary) and RV(namespaces) then cover every set.
  returned: when O(sets) is given
  type: dict
  version_added: 0.3.0
  sample:
    custom: {changed: false, results: [], summary: {created: 0, unchanged: 2}, namespaces: [team-a]}
    baseline: {changed: true, results: [], summary: {created: 1, unchanged: 3}, namespaces: [team-a]}
api_requests:
  description: Requests sent to the API server by this call, and how many of them were discovery.
  returned: always
  type: dict
  sample: {total: 205, discovery: 3}
"""

from ansible_collections.kubeguard.hardening.plugins.module_utils._k8s import ansible as k8s_ansible
from ansible_collections.kubeguard.hardening.plugins.module_utils._k8s import sets

SET_SPEC = dict(
    name={"type": "str", "required": True},
    objects={"type": "list", "elements": "dict", "default": []},
    namespace_objects={"type": "list", "elements": "dict", "default": []},
    namespaces={"type": "list", "elements": "str", "default": []},
    exclude_namespaces={"type": "list", "elements": "str", "default": []},
    state={"type": "str", "choices": ["present", "absent"], "default": "present"},
    prune={"type": "bool", "default": False},
    prune_labels={"type": "dict", "default": {}},
    prune_kinds={"type": "list", "elements": "dict", "default": []},
)


def main():
    k8s_ansible.main(
        dict(
            objects={"type": "list", "elements": "dict", "default": []},
            namespace_objects={"type": "list", "elements": "dict", "default": []},
            namespaces={"type": "list", "elements": "str", "default": []},
            exclude_namespaces={"type": "list", "elements": "str", "default": []},
            state={"type": "str", "choices": ["present", "absent"], "default": "present"},
            field_manager={"type": "str", "default": "kubeguard"},
            force_conflicts={"type": "bool", "default": True},
            workers={"type": "int", "default": 4},
            prune={"type": "bool", "default": False},
            prune_labels={"type": "dict", "default": {}},
            prune_kinds={"type": "list", "elements": "dict", "default": []},
            sets={"type": "list", "elements": "dict", "options": SET_SPEC},
        ),
        sets.run,
    )


if __name__ == "__main__":
    main()
