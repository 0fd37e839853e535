# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The option through which a role tells a module which role variables its options come from."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  role_vars:
    description:
      - Set by the collection's roles. Maps module options to the role variables that set them, so that a
        refusal names the variable the operator has to fix (C(cluster_pki_leaf_validity_days)) instead of the
        option (C(leaf_validity_days)).
      - A key is an option name or a path inside one (C(flags.tls_cipher_suites)); the longest key that
        starts the failing option's path is replaced by its variable, and the rest of the path is kept.
      - Without it, errors name the module option.
    type: dict
    default: {}
"""
