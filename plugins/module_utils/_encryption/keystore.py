# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the controller-side key store and the rotation state file.

The key store holds every key the cluster may still need (``{"keys": {name:
{"provider", "generation", "secret", "created"}}}``), mode 0600 in a 0700
directory. The state file next to it holds no secret: the key every object is
encrypted with, the transition in progress and the steps done. Both are JSON
and written atomically, key store first, so a kill between the two writes
leaves a key that the next run reuses, never a missing one.
"""

from __future__ import annotations

import base64
import datetime
import json
import os
import secrets

from .._common import vault
from .._errors import KubeguardError
from .._node.files import atomic_write
from . import config

STORE_OPTION = "encryption_at_rest_key_store"
STATE_OPTION = "encryption_at_rest_state_file"


def now():
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()


def new_secret():
    """32 random bytes from the OS CSPRNG, base64 as the EncryptionConfiguration wants them."""
    return base64.b64encode(secrets.token_bytes(config.KEY_BYTES)).decode()


def _read_json(path, option, secret=False):
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise KubeguardError(option, f"cannot read {path}: {exc.strerror}") from None
    if secret:
        raw = vault.open_secret(raw, path)
    elif vault.is_vault(raw):
        raise KubeguardError(option, f"{path} is vault-encrypted; decrypt it to a 0600 path the controller reads")
    try:
        data = json.loads(raw)
    except ValueError as exc:
        # never echo the contents: they may be keys
        raise KubeguardError(option, f"{path} is not valid JSON (line {exc.lineno})") from None
    if not isinstance(data, dict):
        raise KubeguardError(option, f"{path} is not a JSON object")
    return data


def load_store(path):
    """{name: key} or None when the store does not exist."""
    data = _read_json(path, STORE_OPTION, secret=True)
    if data is None:
        return None
    keys = data.get("keys")
    if not isinstance(keys, dict):
        raise KubeguardError(STORE_OPTION, f"{path} has no 'keys' object")
    for name, key in keys.items():
        if not isinstance(key, dict) or key.get("provider") not in config.PROVIDERS or not key.get("secret"):
            raise KubeguardError(STORE_OPTION, f"{path}: key {name!r} has no valid provider and secret")
        try:
            raw = base64.b64decode(key["secret"], validate=True)
        except ValueError:
            raise KubeguardError(STORE_OPTION, f"{path}: key {name!r} is not base64") from None
        if len(raw) not in (16, 24, 32):
            raise KubeguardError(STORE_OPTION, f"{path}: key {name!r} is {len(raw)} bytes, not 16, 24 or 32")
    return keys


def _write(path, data, option, secret=False):
    directory = os.path.dirname(path) or "."
    raw = (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        atomic_write(path, vault.seal(raw) if secret else raw, 0o600)
    except OSError as exc:
        raise KubeguardError(option, f"cannot write {path}: {exc.strerror}") from None


def save_store(path, keys):
    _write(path, {"version": 1, "keys": keys}, STORE_OPTION, secret=True)


def seal_store(path, check_mode):
    """A plaintext key store while the store vault is on: encrypted in place (a change). Returns [path] or []."""
    return vault.seal_in_place([path], check_mode, lambda p, data: atomic_write(p, vault.seal(data), 0o600))


def load_state(path):
    data = _read_json(path, STATE_OPTION)
    if data is None:
        return None
    data.setdefault("current", None)
    data.setdefault("transition", None)
    data.setdefault("history", [])
    return data


def save_state(path, state):
    state = dict(state, version=1, history=state.get("history", [])[-50:])
    _write(path, state, STATE_OPTION)
