#!/usr/bin/python
# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: node_os_audit
short_description: auditd watch rules on the files that hold the cluster's keys and access
version_added: 0.2.0
description:
  - Checks every watch against auditctl's grammar (absolute path, perms from C(rwxa), a key), writes them to
    I(rules_file) for C(augenrules), and where the kernel's audit interface answers (C(auditctl -s)) loads them
    with C(augenrules --load) when C(auditctl -l) lacks one.
  - Watches whose path and parent directory are both missing on the node are left out and reported in C(absent).
  - On a container node the kernel refuses audit configuration (only the initial PID and user namespaces may
    configure it); C(kernel.detail) carries auditctl's own message and the file is still written.
author: Kubeguard maintainers (@kubeguard)
extends_documentation_fragment:
  - kubeguard.hardening.role_vars
options:
  watches:
    description: Watches, each a dict with C(path), C(perms) (default C(wa)) and C(key).
    type: list
    elements: dict
    required: true
  rules_file:
    description: The rules file augenrules merges.
    type: path
    default: /etc/audit/rules.d/60-kubeguard-node-os.rules
  header:
    description: Comment lines at the top of the file.
    type: str
    default: Managed by kubeguard.hardening node_os.
attributes:
  check_mode:
    description: Can run in check mode and report what would change without changing the node.
    support: full
  diff_mode:
    description: Returns details on what changed (or would change) in diff mode.
    support: full
  idempotent:
    description: A second run with the same options changes nothing.
    support: full
  safe_file_operations:
    description: Writes files atomically with their final mode.
    support: full
"""

EXAMPLES = r"""
- name: Record every change to the PKI
  kubeguard.hardening.node_os_audit:
    watches:
      - {path: /etc/kubernetes/pki, perms: wa, key: kubeguard-pki}
  become: true
"""

RETURN = r"""
watches:
  description: The checked watches written to the file.
  returned: success
  type: list
  elements: dict
absent:
  description: Watched paths missing on this node (with their parent directory).
  returned: success
  type: list
  elements: str
kernel:
  description: C(available) (auditctl -s answered) and C(detail) (its output or error).
  returned: success
  type: dict
  sample: {available: false, detail: "Error sending status request (Operation not permitted)"}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import run_module
from ansible_collections.kubeguard.hardening.plugins.module_utils._node_os import audit, specs

ARGUMENT_SPEC = specs.AUDIT


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    run_module(module, audit.run, module.params, module.check_mode, module)


if __name__ == "__main__":
    main()
