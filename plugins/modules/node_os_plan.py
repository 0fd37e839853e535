#!/usr/bin/python
# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: node_os_plan
short_description: Check a node's firewall, kernel, audit watches, login settings and packages in one call
version_added: 0.2.0
description:
  - Plans each concern it is given exactly as its own module does in check mode
    (M(kubeguard.hardening.node_os_firewall), M(kubeguard.hardening.node_os_kernel),
    M(kubeguard.hardening.node_os_audit), M(kubeguard.hardening.node_os_login)) and returns each result under
    the concern's name, without the diff. No configuration is written, whatever the check mode.
  - I(packages) plans the role's packages against the node's apt sources, installing and removing nothing.
    Only when a wanted package is missing, the apt index is refreshed first if it is older than
    C(cache_valid_time) seconds.
  - One module call instead of five, so a rerun with nothing to do costs one round trip per node.
  - Each concern's options are validated with its module's argument spec. A refusal names the role variable
    through O(role_vars), whose keys are C(<concern>.<option>) (C(kernel.sysctls)).
author: Kubeguard maintainers (@kubeguard)
extends_documentation_fragment:
  - kubeguard.hardening.role_vars
  - kubeguard.hardening.attributes.read_only
options:
  firewall:
    description: The options of M(kubeguard.hardening.node_os_firewall); omit to skip.
    type: dict
  kernel:
    description: The options of M(kubeguard.hardening.node_os_kernel); omit to skip.
    type: dict
  audit:
    description: The options of M(kubeguard.hardening.node_os_audit); omit to skip.
    type: dict
  login:
    description: The options of M(kubeguard.hardening.node_os_login); omit to skip.
    type: dict
  packages:
    description:
      - C(install) and C(remove) (package names), C(cache_valid_time) (seconds), C(files) (path to the content
        it should have, root:root 0644) and C(lines) (path to a line it should hold); omit to skip.
    type: dict
"""

EXAMPLES = r"""
- name: Check the kernel settings and login defaults of a node
  kubeguard.hardening.node_os_plan:
    kernel:
      sysctls: {kernel.kptr_restrict: 2}
    login:
      login_defs: {PASS_MAX_DAYS: 365}
  become: true
  register: node_os_plan_result
"""

RETURN = r"""
firewall:
  description: The check-mode result of M(kubeguard.hardening.node_os_firewall), C(pending) included.
  returned: when I(firewall) is given
  type: dict
kernel:
  description: The check-mode result of M(kubeguard.hardening.node_os_kernel), C(pending) included.
  returned: when I(kernel) is given
  type: dict
audit:
  description: The check-mode result of M(kubeguard.hardening.node_os_audit), C(pending) included.
  returned: when I(audit) is given
  type: dict
login:
  description: The check-mode result of M(kubeguard.hardening.node_os_login).
  returned: when I(login) is given
  type: dict
packages:
  description:
    - C(install) (missing and installable), C(unavailable), C(unresolvable) (apt's reason), C(remove) (installed
      and listed), C(remove_also) (what their removal would take too), C(files_pending), C(lines_pending),
      C(refreshed) (the index was refreshed) and C(aide_db) (AIDE's database exists).
  returned: when I(packages) is given
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.kubeguard.hardening.plugins.module_utils._common.concerns import validated
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import ROLE_VARS, ROLE_VARS_SPEC, run_module
from ansible_collections.kubeguard.hardening.plugins.module_utils._node_os import plan, specs

ARGUMENT_SPEC = {**ROLE_VARS_SPEC, **{concern: {"type": "dict"} for concern in specs.CONCERNS}}


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    role_vars = dict(module.params[ROLE_VARS])
    run_module(module, lambda: plan.run(validated(module.params, specs.CONCERNS), module, role_vars))


if __name__ == "__main__":
    main()
