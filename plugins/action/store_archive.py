# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Back up the controller store into one ansible-vault encrypted archive, or
restore it byte-identical. Runs on the controller only (no module is sent
anywhere); the vault secret is the store's (plugin_utils/store_vault.py)."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tarfile

from ansible.errors import AnsibleActionFail, AnsibleError
from ansible.module_utils.common.text.converters import to_bytes
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.parsing.vault import VaultLib, is_encrypted
from ansible.plugins.action import ActionBase
from ansible_collections.kubeguard.hardening.plugins.module_utils._node.files import atomic_write
from ansible_collections.kubeguard.hardening.plugins.plugin_utils.store_vault import (
    PASSWORD_FILE,
    VAULT_ID,
    store_secret,
)

ARGS = {"state", "path", "archive", "force"}


def pack(root):
    """The store as a tar (bytes): members sorted, no owner, the files' own times; one tree, one byte string."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for directory, dirs, files in os.walk(root):
            dirs.sort()
            for name in sorted(dirs) + sorted(files):
                path = os.path.join(directory, name)
                info = tar.gettarinfo(path, arcname=os.path.relpath(path, root))
                if not (info.isfile() or info.isdir()):
                    raise AnsibleActionFail(
                        f"path: {path} is neither a file nor a directory; the store holds only those"
                    )
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                info.pax_headers = {}
                if info.isfile():
                    with open(path, "rb") as handle:
                        tar.addfile(info, handle)
                else:
                    tar.addfile(info)
    return buffer.getvalue()


def members(data):
    """[(TarInfo, bytes or None)] of an archive, refusing anything but relative files and directories."""
    out = []
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        for info in tar.getmembers():
            parts = info.name.split("/")
            if os.path.isabs(info.name) or ".." in parts or not (info.isfile() or info.isdir()):
                raise AnsibleActionFail(f"archive: member {info.name!r} is not a relative file or directory; refused")
            out.append((info, tar.extractfile(info).read() if info.isfile() else None))
    return out


def _read(path):
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        args = self._task.args
        unknown = sorted(set(args) - ARGS)
        if unknown:
            raise AnsibleActionFail(f"unsupported option(s): {', '.join(unknown)}")
        state, path, archive = args.get("state"), args.get("path"), args.get("archive")
        if state not in ("backup", "restore"):
            raise AnsibleActionFail(f"state: must be backup or restore, not {state!r}")
        if not path or not archive:
            raise AnsibleActionFail("path and archive are required")
        path, archive = (
            os.path.abspath(os.path.expanduser(str(path))),
            os.path.abspath(os.path.expanduser(str(archive))),
        )
        secret = store_secret(task_vars, self._templar, self._loader)
        if secret is None:
            raise AnsibleActionFail(
                f"{PASSWORD_FILE}: the store holds CA and encryption keys, so its archive is always vault-encrypted; "
                f"set {PASSWORD_FILE} or {VAULT_ID}"
            )
        vault_id = self._templar.template(task_vars.get(VAULT_ID) or "") or "default"
        vault = VaultLib([(vault_id, secret)])
        check = self._task.check_mode
        if state == "backup":
            result.update(self._backup(vault, vault_id, secret, path, archive, check))
        else:
            result.update(self._restore(vault, path, archive, boolean(args.get("force", False), strict=True), check))
        return result

    @staticmethod
    def _backup(vault, vault_id, secret, path, archive, check):
        if not os.path.isdir(path) or not os.listdir(path):
            raise AnsibleActionFail(f"path: {path} does not exist or is empty; there is nothing to back up")
        data = pack(path)
        current = _read(archive)
        if current is not None and is_encrypted(current):
            try:
                if vault.decrypt(current) == data:
                    return {"changed": False, "archive": archive, "files": _count(data)}
            except AnsibleError:
                pass  # another password: replaced below
        if not check:
            os.makedirs(os.path.dirname(archive), mode=0o700, exist_ok=True)
            atomic_write(archive, to_bytes(vault.encrypt(data, secret, vault_id)), 0o600)
        return {
            "changed": True,
            "archive": archive,
            "files": _count(data),
            "sha256": hashlib.sha256(data).hexdigest(),
        }

    @staticmethod
    def _restore(vault, path, archive, force, check):
        raw = _read(archive)
        if raw is None:
            raise AnsibleActionFail(f"archive: {archive} does not exist")
        if not is_encrypted(raw):
            raise AnsibleActionFail(f"archive: {archive} is not ansible-vault encrypted; refused")
        try:
            entries = members(vault.decrypt(raw))
        except AnsibleError as exc:
            raise AnsibleActionFail(f"archive: {archive} does not open with the store's vault secret: {exc}") from None
        differ = []
        for info, data in entries:
            target = os.path.join(path, info.name)
            current = _read(target) if info.isfile() else None
            if current is not None and current != data:
                differ.append(info.name)
        if differ and not force:
            raise AnsibleActionFail(
                f"force: {path} already holds other content in {', '.join(differ[:10])}"
                f"{' and more' if len(differ) > 10 else ''}; nothing was restored. Move the store away, or set force "
                "to overwrite it with the archive"
            )
        written = []
        for info, data in entries:
            target = os.path.join(path, info.name)
            mode = stat.S_IMODE(info.mode)
            if info.isdir():
                if not os.path.isdir(target) or stat.S_IMODE(os.stat(target).st_mode) != mode:
                    written.append(info.name + "/")
                    if not check:
                        os.makedirs(target, mode=0o700, exist_ok=True)
                        os.chmod(target, mode)
                continue
            present = os.path.exists(target)
            if present and _read(target) == data and stat.S_IMODE(os.stat(target).st_mode) == mode:
                continue
            written.append(info.name)
            if not check:
                os.makedirs(os.path.dirname(target), mode=0o700, exist_ok=True)
                atomic_write(target, data, mode)
                os.utime(target, (info.mtime, info.mtime))
        if not check:
            os.makedirs(path, mode=0o700, exist_ok=True)
            for info, _data in entries:  # directory times last: writing files inside changed them
                if info.isdir():
                    os.utime(os.path.join(path, info.name), (info.mtime, info.mtime))
        return {"changed": bool(written), "path": path, "restored": written, "files": _count_entries(entries)}


def _count(data):
    return _count_entries(members(data))


def _count_entries(entries):
    return sum(1 for info, _data in entries if info.isfile())
