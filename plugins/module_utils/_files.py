# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to kubeguard.hardening: the one atomic write path for every file
the collection's modules write.

mkstemp in the target directory -> fchmod -> write -> fsync -> rename. The
temporary file is removed on any failure, so a reader sees either the old or
the new file, never a partial one. Raises OSError; callers turn it into
their domain error.
"""

from __future__ import annotations

import contextlib
import os
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
