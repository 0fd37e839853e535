# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to kubeguard.hardening: moved to ``_node/files.py`` (the one home of
node file handling). Only the old import path is kept here, for
``_api_access/tokens.py`` until that package imports ``_node.files``."""

from __future__ import annotations

from ansible_collections.kubeguard.hardening.plugins.module_utils._node.files import (  # noqa: F401
    atomic_write,
    file_mode,
    file_state,
)
