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
