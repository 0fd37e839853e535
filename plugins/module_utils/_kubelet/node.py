# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the node side of the kubelet role, split by concern:

- ``gather``: the one gather per node (kubelet_facts);
- ``api``: the API with the kubelet's own identity, the readiness it must prove;
- ``plan``: the serving certificate check, the flags to take off, kernel defaults;
- ``apply``: validate, write, restart, wait for the Node Ready, roll back
  (kubelet_config) and kube-proxy's metrics address (kubelet_kube_proxy), on
  the node engine (_node/restart.py);
- ``cis``: the CIS 4.1.x files (kubelet_files).

This module names the entry points the modules call.
"""

from __future__ import annotations

from ansible_collections.kubeguard.hardening.plugins.module_utils._kubelet.apply import apply_config, apply_kube_proxy
from ansible_collections.kubeguard.hardening.plugins.module_utils._kubelet.cis import fix_files
from ansible_collections.kubeguard.hardening.plugins.module_utils._kubelet.gather import gather

__all__ = ["apply_config", "apply_kube_proxy", "fix_files", "gather"]
