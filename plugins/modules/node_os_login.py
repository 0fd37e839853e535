#!/usr/bin/python
# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: node_os_login
short_description: Login defaults - login.defs keys, login shell umask and idle timeout, pre-login banners
version_added: 0.2.0
description:
  - Sets each key of I(login_defs) in C(/etc/login.defs) (the uncommented line is replaced, a missing key appended;
    other lines are kept).
  - Writes I(profile_file) with C(umask) and a read-only C(TMOUT) for login shells.
  - Writes I(banner) to C(/etc/issue) and C(/etc/issue.net) when it is not empty.
author: Kubeguard maintainers (@kubeguard)
extends_documentation_fragment:
  - kubeguard.hardening.role_vars
options:
  login_defs:
    description: login.defs keys and values.
    type: dict
    default: {}
  umask:
    description: The login shell's umask (octal).
    type: str
    default: "027"
  tmout:
    description: Seconds of idle time before an interactive shell exits; 0 leaves it unset.
    type: int
    default: 900
  banner:
    description: Pre-login banner text; empty leaves C(/etc/issue) and C(/etc/issue.net) alone.
    type: str
    default: ""
  profile_file:
    description: The profile.d file for umask and TMOUT.
    type: path
    default: /etc/profile.d/60-kubeguard-node-os-login.sh
  header:
    description: Comment lines at the top of the profile file.
    type: str
    default: Managed by kubeguard.hardening node_os.
attributes:
  check_mode:
    description: Can run in check mode and report what would change without changing the node.
    support: full
  diff_mode:
    description: Returns details on what changed (or would change) in diff mode.
    support: partial
    details: The diff names the files that change.
  idempotent:
    description: A second run with the same options changes nothing.
    support: full
  safe_file_operations:
    description: Writes files atomically with their final mode.
    support: full
"""

EXAMPLES = r"""
- name: Age passwords and restrict the login umask
  kubeguard.hardening.node_os_login:
    login_defs: {PASS_MAX_DAYS: 365, UMASK: "027"}
  become: true
"""

RETURN = r"""
files:
  description: Files written (or that would be, in check mode).
  returned: success
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import run_module
from ansible_collections.kubeguard.hardening.plugins.module_utils._node_os import login, specs

ARGUMENT_SPEC = specs.LOGIN


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    run_module(module, login.run, module.params, module.check_mode)


if __name__ == "__main__":
    main()
