#!/usr/bin/python
# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: control_plane_files
short_description: Give the control-plane files the modes and owners of CIS 1.1.x
version_added: 0.2.0
description:
  - Takes the C(files) list of M(kubeguard.hardening.control_plane_facts) and removes every
    permission bit beyond the wanted mode and fixes every owner (unit files and manifests 0600,
    kubeconfigs 0600, certificates at most 0644, keys 0600, all root; the etcd data directory
    0700 and owned by the C(etcd) system user, which is created when missing).
  - Never widens a mode that is already stricter.
author:
  - Kubeguard maintainers (@kubeguard)
extends_documentation_fragment:
  - kubeguard.hardening.role_vars
options:
  facts:
    description: The registered result of M(kubeguard.hardening.control_plane_facts) on this node.
    type: dict
    required: true
attributes:
  check_mode:
    support: full
    description: Reports the modes and owners it would fix and changes nothing (not even the etcd user).
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
- name: Fix the CIS 1.1.x file modes and owners
  kubeguard.hardening.control_plane_files:
    facts: "{{ control_plane_facts_result }}"
  become: true
"""

RETURN = r"""
fixed:
  description: Files whose mode or owner was fixed (in check mode, would be), with the old values.
  returned: success
  type: list
  elements: dict
  sample: [{"path": /var/lib/etcd, "mode": "0700", "owner": root, "cis": "CIS 1.1.11/1.1.12"}]
created_etcd_user:
  description: Whether the etcd system user was (would be) created.
  returned: success
  type: bool
  sample: false
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.kubeguard.hardening.plugins.module_utils._control_plane import node
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import ROLE_VARS_SPEC, run_module


def main():
    module = AnsibleModule(
        argument_spec={**ROLE_VARS_SPEC, "facts": {"type": "dict", "required": True}}, supports_check_mode=True
    )
    run_module(module, node.fix_files, module.params, module.check_mode)


if __name__ == "__main__":
    main()
