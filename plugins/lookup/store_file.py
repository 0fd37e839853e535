# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: store_file
author: Kubeguard maintainers (@kubeguard)
version_added: 0.2.0
short_description: Read files of the controller store, decrypting the ansible-vault encrypted ones
description:
  - Returns the text of each file, like C(ansible.builtin.file) with C(rstrip=false), but a file that is
    ansible-vault encrypted is decrypted with the controller store's vault secret
    (C(kubeguard_store_vault_password_file) or C(kubeguard_store_vault_id), docs/controller-store.md) through
    ansible-core's VaultLib, whether or not the play itself was given that secret.
  - A plaintext file is returned as it is.
options:
  _terms:
    description: Paths on the controller, or base64 contents when O(base64) is true (from C(ansible.builtin.slurp)).
    required: true
    type: list
    elements: str
  base64:
    description: The terms are base64 file contents, not paths.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: The CA key of the store, decrypted
  ansible.builtin.debug:
    msg: "{{ lookup('kubeguard.hardening.store_file', '/srv/pki/prod/pki/ca.key') | length }}"
"""

RETURN = r"""
_raw:
  description: The text of each file.
  type: list
  elements: str
"""

import base64

from ansible.errors import AnsibleError, AnsibleLookupError
from ansible.module_utils.common.text.converters import to_text
from ansible.parsing.vault import VaultLib, is_encrypted
from ansible.plugins.lookup import LookupBase
from ansible_collections.kubeguard.hardening.plugins.plugin_utils.store_vault import (
    PASSWORD_FILE,
    VAULT_ID,
    store_secret,
)


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        secret = store_secret(variables or {}, self._templar, self._loader)
        vault = VaultLib([("store", secret)]) if secret is not None else None
        out = []
        for term in terms:
            if self.get_option("base64"):
                data, where = base64.b64decode(term), "a slurped store file"
            else:
                try:
                    with open(term, "rb") as handle:
                        data = handle.read()
                except OSError as exc:
                    raise AnsibleLookupError(f"cannot read {term}: {exc.strerror}") from None
                where = term
            if is_encrypted(data):
                if vault is None:
                    raise AnsibleLookupError(
                        f"{where} is ansible-vault encrypted, but neither {PASSWORD_FILE} nor {VAULT_ID} is set"
                    )
                try:
                    data = vault.decrypt(data)
                except AnsibleError as exc:
                    raise AnsibleLookupError(f"{where} does not open with the store's vault secret: {exc}") from None
            out.append(to_text(data, errors="surrogate_or_strict"))
        return out
