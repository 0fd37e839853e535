# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cluster_ca_rotation module with the controller store's vault password (plugin_utils/store_vault.py)."""

from __future__ import annotations

from ansible_collections.kubeguard.hardening.plugins.plugin_utils.store_vault import StoreVaultAction


class ActionModule(StoreVaultAction):
    MODULE = "kubeguard.hardening.cluster_ca_rotation"
