# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the node side of control_plane, split by concern:

- ``gather``: the one gather per node (control_plane_facts);
- ``plan``: what one component's files would become, whom etcd runs as;
- ``checks``: certificates and flags, before anything is replaced;
- ``health``: real health probes, etcd's client API, the apiserver's drain bound;
- ``apply``: validate, write, restart, wait, roll back (control_plane_component),
  on the node engine (_node/restart.py);
- ``check_node``: the files and every component checked in one call (control_plane_plan);
- ``cis``: the CIS 1.1.x files (control_plane_files).

This module names the entry points the modules (and _encryption) call.
"""

from __future__ import annotations

from ansible_collections.kubeguard.hardening.plugins.module_utils._control_plane.apply import apply
from ansible_collections.kubeguard.hardening.plugins.module_utils._control_plane.check_node import check_node
from ansible_collections.kubeguard.hardening.plugins.module_utils._control_plane.cis import fix_files
from ansible_collections.kubeguard.hardening.plugins.module_utils._control_plane.gather import (
    configured,
    gather,
    processes,
)

__all__ = ["apply", "check_node", "configured", "fix_files", "gather", "processes"]
