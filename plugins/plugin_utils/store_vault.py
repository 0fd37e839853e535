# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of the store vault: finds the controller store's vault
secret with ansible-core's own machinery and hands its password to the
module that writes the store (option ``store_vault_password``, no_log).

The secret is ``kubeguard_store_vault_password_file`` (a file, or an
executable that prints the password, read by ansible's
``get_file_vault_secret`` like ``--vault-password-file``), else the secret
with ``kubeguard_store_vault_id`` that the run was given with ``--vault-id``
(what an AWX/AAP vault credential with that vault id passes).
"""

from __future__ import annotations

from ansible.errors import AnsibleActionFail, AnsibleError
from ansible.module_utils.common.text.converters import to_text
from ansible.parsing.vault import get_file_vault_secret
from ansible.plugins.action import ActionBase

OPTION = "store_vault_password"
PASSWORD_FILE = "kubeguard_store_vault_password_file"  # noqa: S105 (a variable name)
VAULT_ID = "kubeguard_store_vault_id"


def _var(task_vars, templar, name):
    value = task_vars.get(name)
    return templar.template(value) if isinstance(value, str) and value else value


def store_secret(task_vars, templar, loader):
    """The VaultSecret of the controller store, or None when the store is not kept encrypted."""
    password_file, vault_id = _var(task_vars, templar, PASSWORD_FILE), _var(task_vars, templar, VAULT_ID)
    if password_file:
        try:
            secret = get_file_vault_secret(filename=str(password_file), vault_id=vault_id or None, loader=loader)
            secret.load()
        except AnsibleError as exc:
            raise AnsibleActionFail(f"{PASSWORD_FILE}: {exc.message}") from None
        if not secret.bytes:
            raise AnsibleActionFail(f"{PASSWORD_FILE}: {password_file} holds an empty password")
        return secret
    if vault_id:
        vault = getattr(loader, "_vault", None)  # the secrets of --vault-id/--vault-password-file
        for known_id, secret in getattr(vault, "secrets", None) or []:
            if known_id == vault_id:
                return secret
        raise AnsibleActionFail(
            f"{VAULT_ID}: this run was given no vault secret with id {vault_id!r}; run with "
            f"--vault-id {vault_id}@<password file or script>, or attach an AWX/AAP vault credential with "
            f"vault id {vault_id}"
        )
    return None


class StoreVaultAction(ActionBase):
    """Runs MODULE with ``store_vault_password`` filled from the kubeguard_store_vault_* variables."""

    MODULE = ""
    TRANSFERS_FILES = False
    _requires_connection = True

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        args = dict(self._task.args)
        if not args.get(OPTION):
            secret = store_secret(task_vars, self._templar, self._loader)
            if secret is not None:
                args[OPTION] = to_text(secret.bytes, errors="surrogate_or_strict")
        try:
            result.update(self._execute_module(module_name=self.MODULE, module_args=args, task_vars=task_vars))
        finally:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        return result
