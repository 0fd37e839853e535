#!/usr/bin/python
# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: encryption_at_rest_objects
short_description: Validate the encrypted resources against the API server, and rewrite every object in bulk
version_added: 0.2.0
description:
  - O(action=validate) checks every resource of O(resources) against one discovery (the core list, the group list and
    only the groups named) and returns where each lives in etcd.
  - O(action=rewrite) reads every object of those resources with paged LISTs and replaces each unchanged (PUT), several
    at a time (O(workers)), so the apiserver stores it again with its current primary key. An object written or deleted
    meanwhile counts as done (the writer re-encrypted it).
  - Object contents are never returned.
author: Kubeguard maintainers (@kubeguard)
extends_documentation_fragment:
  - kubeguard.hardening.role_vars
  - kubeguard.hardening.k8s_api
attributes:
  check_mode:
    support: full
    description: Lists and counts the objects; replaces none.
  diff_mode:
    support: none
    description: A rewrite changes no content.
  idempotent:
    support: none
    description: Every rewrite writes every object again; the role calls it once per transition.
options:
  action:
    description: What to do.
    type: str
    choices: [validate, rewrite]
    default: validate
  resources:
    description: Resources to check or rewrite (plural, with the group for non-core resources).
    type: list
    elements: str
    default: [secrets]
  etcd_prefix:
    description: The apiserver's C(--etcd-prefix).
    type: str
    default: /registry
  workers:
    description: Replace requests in flight at the same time.
    type: int
    default: 8
"""

EXAMPLES = r"""
- name: Rewrite every Secret with the current primary key
  kubeguard.hardening.encryption_at_rest_objects:
    kubeconfig: /etc/kubernetes/admin.conf
    action: rewrite
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
resources:
  description: Each resource as served, with its etcd prefix.
  returned: success
  type: dict
  sample: {secrets: {apiVersion: v1, plural: secrets, kind: Secret, namespaced: true, etcd_prefix: /registry/secrets/}}
counts:
  description: Per resource, objects listed, replaced, changed meanwhile (conflict) and gone.
  returned: action=rewrite
  type: dict
  sample: {secrets: {listed: 212, replaced: 212, conflict: 0, gone: 0}}
seconds:
  description: Wall time of the rewrite.
  returned: action=rewrite
  type: float
objects_per_second:
  description: The bulk rewrite rate.
  returned: action=rewrite
  type: float
api_requests:
  description: Requests sent, and how many were discovery.
  returned: success
  type: dict
"""

from ansible_collections.kubeguard.hardening.plugins.module_utils._encryption import objects
from ansible_collections.kubeguard.hardening.plugins.module_utils._k8s import ansible as k8s_ansible


def main():
    k8s_ansible.main(
        dict(
            action={"type": "str", "choices": ["validate", "rewrite"], "default": "validate"},
            resources={"type": "list", "elements": "str", "default": ["secrets"]},
            etcd_prefix={"type": "str", "default": "/registry"},
            workers={"type": "int", "default": 8},
        ),
        objects.run,
    )


if __name__ == "__main__":
    main()
