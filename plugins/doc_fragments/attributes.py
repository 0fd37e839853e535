# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared module attributes of the collection."""

from __future__ import annotations


class ModuleDocFragment:
    # kubeguard.hardening.attributes.read_only: modules that only read (a node or the API).
    READ_ONLY = r"""
attributes:
  check_mode:
    support: full
    description: Read-only; runs unchanged in check mode.
  diff_mode:
    support: none
    description: Nothing to diff.
  idempotent:
    support: full
    description: Read-only.
  safe_file_operations:
    support: none
    description: Writes nothing.
"""

    # kubeguard.hardening.attributes.check_only: the <role>_plan modules a role's check play calls.
    CHECK_ONLY = r"""
attributes:
  check_mode:
    support: full
    description: The only mode it runs in; it writes and restarts nothing.
  diff_mode:
    support: full
    description: One diff per concern that would change, as that concern's own module shows it (never key material).
  idempotent:
    support: full
    description: Writes nothing.
"""
