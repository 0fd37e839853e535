# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to kubeguard.hardening: file helpers of the PKI, writing through
the collection's one atomic write path (module_utils/_node/files.py)."""

from __future__ import annotations

import os

from ansible_collections.kubeguard.hardening.plugins.module_utils._common import vault
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError
from ansible_collections.kubeguard.hardening.plugins.module_utils._node import files as _files

KEY_MODE = 0o600  # private keys and kubeconfigs
CERT_MODE = 0o644
PRIVATE_DIR_MODE = 0o700  # directories that hold private keys
PUBLIC_DIR_MODE = 0o755


def ensure_dir(path, mode):
    """Create ``path`` (and parents) with ``mode``; fix the mode when it differs."""
    try:
        os.makedirs(path, mode=mode, exist_ok=True)
        if (os.stat(path).st_mode & 0o7777) != mode:
            os.chmod(path, mode)
    except OSError as exc:
        raise KubeguardError("output_dir", f"cannot create directory {path}: {exc.strerror}") from None


def atomic_write(path, data, mode):
    """Atomically replace ``path`` with ``data`` (bytes) and ``mode``; a secret
    (``KEY_MODE``) is vault-encrypted when the store's vault password is set."""
    if mode == KEY_MODE:
        data = vault.seal(data)
    directory = os.path.dirname(path) or "."
    if not os.access(directory, os.W_OK | os.X_OK):
        raise KubeguardError("output_dir", f"cannot write in {directory}: permission denied")
    try:
        _files.atomic_write(path, data, mode)
    except OSError as exc:
        raise KubeguardError("output_dir", f"cannot write {path}: {exc.strerror}") from None


def read(path):
    """Return the bytes of ``path`` (decrypted when vault-encrypted), or None when it does not exist."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        return None
    return vault.open_secret(data, path)


def check_writable(path):
    """Fail early, before anything is written, if ``path`` cannot be used."""
    probe = path
    while not os.path.exists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    if not os.path.isdir(probe):
        raise KubeguardError("output_dir", f"{probe} is not a directory")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise KubeguardError("output_dir", f"{probe} is not writable")
