#!/usr/bin/python
# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: node_fingerprint
short_description: One digest per watched path, unit, firewall table and live kernel setting of a node
version_added: 0.2.0
description:
  - The node half of site.yml's fast rerun (docs/fast-rerun.md). Reads, in one call, the metadata of the watched
    paths (lstat of every entry - type, mode, owner, size, mtime, ctime, inode and link target - never the content,
    so no key is read), the state of each unit, each live nftables table (stateless), the live value of every
    sysctl the matching sysctl.d files set, the loaded audit rules and which of O(addresses) the node still has.
  - Returns one SHA-256 digest per item, nothing else. Read-only.
author: Kubeguard maintainers (@kubeguard)
extends_documentation_fragment:
  - kubeguard.hardening.role_vars
options:
  trees:
    description: Paths whose every entry, recursively, is watched.
    type: list
    elements: path
    default: []
  paths:
    description: Paths watched by themselves (a file, or a directory whose entries change on their own).
    type: list
    elements: path
    default: []
  units:
    description: systemd units whose load, active and enablement state, unit file and drop-ins are watched.
    type: list
    elements: str
    default: []
  nft_tables:
    description: nftables tables (C(family name)) whose live rules are watched.
    type: list
    elements: str
    default: []
  sysctl_files:
    description: sysctl.d files (globs) whose keys' live values are watched.
    type: list
    elements: str
    default: []
  audit_rules:
    description: Watch the loaded audit rules (C(auditctl -l)).
    type: bool
    default: false
  addresses:
    description: Addresses the node must still have.
    type: list
    elements: str
    default: []
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
- name: Fingerprint the node
  kubeguard.hardening.node_fingerprint:
    trees: [/etc]
    units: [kubelet]
    nft_tables: [inet kubeguard_node_os]
    addresses: ["{{ kubeguard_node_ip }}"]
  become: true
"""

RETURN = r"""
fingerprint:
  description: One SHA-256 digest per item, keyed C(tree:<path>), C(path:<path>), C(unit:<name>), C(nft:<table>),
    C(sysctls), C(audit_rules) and C(addresses).
  returned: always
  type: dict
  sample: {"tree:/etc": "3f9c...", "unit:kubelet": "a01b..."}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import ROLE_VARS_SPEC, run_module
from ansible_collections.kubeguard.hardening.plugins.module_utils._node import fingerprint

ARGUMENT_SPEC = {
    **ROLE_VARS_SPEC,
    "trees": {"type": "list", "elements": "path", "default": []},
    "paths": {"type": "list", "elements": "path", "default": []},
    "units": {"type": "list", "elements": "str", "default": []},
    "nft_tables": {"type": "list", "elements": "str", "default": []},
    "sysctl_files": {"type": "list", "elements": "str", "default": []},
    "audit_rules": {"type": "bool", "default": False},
    "addresses": {"type": "list", "elements": "str", "default": []},
}


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    run_module(module, fingerprint.fingerprint, module.params)


if __name__ == "__main__":
    main()
