#!/usr/bin/python
# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: api_fingerprint
short_description: One digest per kind of the API objects the kubeguard roles read and write
version_added: 0.2.0
description:
  - The API half of site.yml's fast rerun (docs/fast-rerun.md). Lists namespaces, service accounts,
    NetworkPolicies, Roles, ClusterRoles, RoleBindings and ClusterRoleBindings (metadata only, one request per
    kind) and returns per kind a SHA-256 digest of every object's namespace, name, uid and resourceVersion, so
    any edit, deletion or new object moves it. Read-only.
author: Kubeguard maintainers (@kubeguard)
extends_documentation_fragment:
  - kubeguard.hardening.k8s_api
  - kubeguard.hardening.role_vars
attributes:
  check_mode:
    description: Can run in check mode and report what would change without changing the cluster.
    support: full
  diff_mode:
    description: Returns details on what changed (or would change) in diff mode.
    support: none
  idempotent:
    description: A second run with the same options changes nothing.
    support: full
"""

EXAMPLES = r"""
- name: Fingerprint the API objects the roles manage
  kubeguard.hardening.api_fingerprint:
    kubeconfig: "{{ kubeguard_kubeconfig }}"
  run_once: true
  delegate_to: localhost
"""

RETURN = r"""
fingerprint:
  description: One SHA-256 digest per kind, keyed C(api:<plural>).
  returned: always
  type: dict
  sample: {"api:namespaces": "3f9c...", "api:networkpolicies": "a01b..."}
requests:
  description: API requests made (one per kind).
  returned: always
  type: int
  sample: 7
"""

from ansible_collections.kubeguard.hardening.plugins.module_utils._k8s import ansible as k8s_ansible
from ansible_collections.kubeguard.hardening.plugins.module_utils._k8s import fingerprint


def main():
    k8s_ansible.main({}, fingerprint.run)


if __name__ == "__main__":
    main()
