# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The password that keeps the controller store's secret files ansible-vault encrypted."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  store_vault_password:
    description:
      - The ansible-vault password of the controller store (docs/controller-store.md). When set, every secret file
        this module writes in the store (private keys, kubeconfigs, the encryption key store, the static token
        store) is written ansible-vault encrypted (C($ANSIBLE_VAULT;1.1;AES256), readable by C(ansible-vault view)),
        mode 0600, and read back transparently. A plaintext secret file found in the store is encrypted in place,
        reported as a change.
      - Without it, a vault-encrypted store file is refused, naming the role variables that give the password.
      - The collection's action plugin fills it from C(kubeguard_store_vault_password_file) or
        C(kubeguard_store_vault_id) when the task does not set it; never logged.
    type: str
"""
