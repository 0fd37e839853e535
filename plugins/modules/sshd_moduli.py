#!/usr/bin/python
# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: sshd_moduli
short_description: Remove Diffie-Hellman group-exchange moduli below a minimum size
version_added: 0.1.0
description:
  - Filters the moduli file used by C(diffie-hellman-group-exchange-*) so only primes of at least
    I(min_bits) bits remain. Comments are kept. Refuses when nothing would remain.
author:
  - Kubeguard maintainers (@kubeguard)
extends_documentation_fragment:
  - kubeguard.hardening.role_vars
options:
  path:
    description: The moduli file.
    type: path
    default: /etc/ssh/moduli
  min_bits:
    description: Smallest prime size to keep, in bits.
    type: int
    default: 3072
  backup:
    description: Keep a timestamped copy of the previous file.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    description: Counts what would be removed and writes nothing.
  diff_mode:
    support: full
    description: The diff shows counts, not the primes.
  idempotent:
    support: full
    description: A filtered file stays as it is.
  safe_file_operations:
    support: full
    description: The file is written through a temporary file in its directory and renamed into place.
"""

EXAMPLES = r"""
- name: Keep only moduli of 3072 bits or more
  kubeguard.hardening.sshd_moduli:
    min_bits: 3072
  become: true
"""

RETURN = r"""
kept:
  description: Number of moduli kept.
  returned: success
  type: int
  sample: 200
removed:
  description: Number of moduli removed (or that would be removed in check mode).
  returned: success
  type: int
  sample: 136
backup_file:
  description: Backup of the previous file.
  returned: changed and backup enabled
  type: str
  sample: /etc/ssh/moduli.1234.2026-11-27@04:00:00~
"""


from ansible.module_utils.basic import AnsibleModule
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import ROLE_VARS_SPEC, run_module
from ansible_collections.kubeguard.hardening.plugins.module_utils._sshd import apply, moduli

ARGUMENT_SPEC = {
    "path": {"type": "path", "default": moduli.MODULI},
    "min_bits": {"type": "int", "default": 3072},
    "backup": {"type": "bool", "default": False},
}


def main():
    module = AnsibleModule(argument_spec={**ROLE_VARS_SPEC, **ARGUMENT_SPEC}, supports_check_mode=True)
    run_module(module, apply.sshd_moduli, module.params, module.check_mode, module)


if __name__ == "__main__":
    main()
