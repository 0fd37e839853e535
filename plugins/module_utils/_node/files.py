# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to kubeguard.hardening: reads, the one atomic write path for every
file the collection's modules write, and the mode and owner checks.

mkstemp in the target directory -> fchmod -> write -> fsync -> rename. The
temporary file is removed on any failure, so a reader sees either the old or
the new file, never a partial one. Raises OSError; callers turn it into
their domain error.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import tempfile


def atomic_write(path, data, mode, replace=os.replace):
    """Atomically replace ``path`` with ``data`` (bytes) at ``mode``.

    ``replace(tmp, path)`` does the final rename; a module passes its
    ``atomic_move`` to keep the replaced file's ownership and SELinux context.
    """
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path) or ".", prefix=".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def file_state(path, follow_symlinks=False):
    """What the CIS file checks look at: existence, mode, owner and group names."""
    try:
        st = os.stat(path) if follow_symlinks else os.lstat(path)
    except OSError:
        return {"path": path, "exists": False}
    return {
        "path": path,
        "exists": True,
        "mode": f"{st.st_mode & 0o7777:04o}",
        "owner": _name(pwd.getpwuid, st.st_uid),
        "group": _name(grp.getgrgid, st.st_gid),
        "dir": os.path.isdir(path),
    }


def _name(lookup, ident):
    try:
        return lookup(ident)[0]
    except KeyError:
        return str(ident)


def file_mode(path):
    """The permission bits of ``path`` (following links), or None when it is missing."""
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        return None


def read(path, binary=False):
    """The content of ``path`` (text, or bytes with ``binary``), or None when it cannot be read."""
    try:
        with open(path, "rb" if binary else "r") as handle:
            return handle.read()
    except (OSError, UnicodeDecodeError):
        return None


def write_all(files, dir_mode=0o700):
    """Write ``{path: (text or None, mode)}`` atomically; None removes the file (it was absent)."""
    for path, (content, mode) in files.items():
        if content is None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            continue
        os.makedirs(os.path.dirname(path), mode=dir_mode, exist_ok=True)
        atomic_write(path, content.encode(), mode)


def mode_ok(have, want):
    """No permission bit beyond ``want`` (a stricter mode is compliant); octal strings."""
    return int(have, 8) & ~int(want, 8) == 0


def chown_tree(path, uid, gid, recursive):
    """Give ``path`` (and with ``recursive`` everything below it) to ``uid:gid``, never following links."""
    os.chown(path, uid, gid, follow_symlinks=False)
    if recursive and os.path.isdir(path):
        for root, dirs, names in os.walk(path):
            for name in dirs + names:
                os.chown(os.path.join(root, name), uid, gid, follow_symlinks=False)
