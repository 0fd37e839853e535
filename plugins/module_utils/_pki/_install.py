# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to kubeguard.hardening: the node side of the cluster_pki role.

Installs one node's share of the PKI (the ``distribution`` the cluster_pki
module computed) in one module call: read current state, compare, act.
"""

from __future__ import annotations

import os
import stat

from ansible_collections.kubeguard.hardening.plugins.module_utils import _files
from ansible_collections.kubeguard.hardening.plugins.module_utils._pki._files import PRIVATE_DIR_MODE, PUBLIC_DIR_MODE
from ansible_collections.kubeguard.hardening.plugins.module_utils._pki._model import PkiError


def target_path(roots, entry):
    """Absolute path of a distribution entry (``root`` key + relative ``dest``)."""
    dest, root = entry.get("dest"), entry.get("root")
    if root not in roots:
        raise PkiError("files", f"root must be one of {', '.join(sorted(roots))}, not {root!r}")
    if not isinstance(dest, str) or not dest or os.path.isabs(dest) or ".." in dest.split("/"):
        raise PkiError("files", f"dest {dest!r} must be a relative path without '..'")
    return os.path.join(roots[root], dest)


def file_mode(entry):
    try:
        return int(str(entry.get("mode")), 8)
    except ValueError:
        raise PkiError(
            "files", f"mode of {entry.get('dest')!r} must be octal such as '0600', not {entry.get('mode')!r}"
        ) from None


def directories_for(roots, paths):
    """Every directory from each root down to the files, with its mode:
    etcd's key directory 0700, the rest 0755 (as the role always set them)."""
    wanted = {}
    for path in paths:
        root = next(r for r in roots.values() if path.startswith(r.rstrip("/") + "/"))
        directory = os.path.dirname(path)
        while len(directory) >= len(root.rstrip("/")):
            wanted[directory] = PRIVATE_DIR_MODE if os.path.basename(directory) == "etcd" else PUBLIC_DIR_MODE
            directory = os.path.dirname(directory)
    return dict(sorted(wanted.items()))


def _current(path):
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return None
    return info


def plan(roots, files, contents, uid, gid):
    """What must change: (directories, files). Each file change says why:
    ``absent``, ``content``, ``mode`` or ``owner`` (in that order of weight)."""
    if len(files) != len(contents):
        raise PkiError("contents", f"{len(contents)} contents for {len(files)} files; they pair up by position")
    paths = [target_path(roots, entry) for entry in files]
    directory_changes = []
    for directory, mode in directories_for(roots, paths).items():
        info = _current(directory)
        if info is None or stat.S_IMODE(info.st_mode) != mode or (info.st_uid, info.st_gid) != (uid, gid):
            directory_changes.append((directory, mode))
    file_changes = []
    for path, entry, content in zip(paths, files, contents):
        mode, data = file_mode(entry), content.encode()
        info = _current(path)
        if info is None:
            reason = "absent"
        elif _read(path) != data:
            reason = "content"
        elif stat.S_IMODE(info.st_mode) != mode:
            reason = "mode"
        elif (info.st_uid, info.st_gid) != (uid, gid):
            reason = "owner"
        else:
            continue
        file_changes.append(
            {
                "path": path,
                "mode": mode,
                "data": data,
                "reason": reason,
                "components": list(entry.get("components") or []),
            }
        )
    return directory_changes, file_changes


def _read(path):
    with open(path, "rb") as handle:
        return handle.read()


def apply(directory_changes, file_changes, uid, gid):
    for directory, mode in directory_changes:
        os.makedirs(directory, mode=mode, exist_ok=True)
        os.chmod(directory, mode)
        os.chown(directory, uid, gid)
    for change in file_changes:
        if change["reason"] in ("absent", "content"):
            _files.atomic_write(change["path"], change["data"], change["mode"])
        else:
            os.chmod(change["path"], change["mode"])
        os.chown(change["path"], uid, gid)
