# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to kubeguard.hardening: the store's part of a rotation of the
service-account signing key (``sa``), the same entry points as
``_rotation_store`` for a CA.

``pki/sa.pub`` (the API server's ``--service-account-key-file``) may hold
several public keys: every token signed by one of them is accepted. The
first one is the public half of ``pki/sa.key`` (the controller-manager's
``--service-account-private-key-file`` and the API server's
``--service-account-signing-key-file``), which is what the ``cluster_pki``
engine checks: so the store stays consistent at every step.

- ``trust``: ``sa.pub`` = old + new (the old key still signs);
- ``reissue``: ``sa.key`` = the new key, ``sa.pub`` = new + old (new tokens
  are signed by the new key, old ones still accepted);
- ``remove``: ``sa.pub`` = new (a token signed by the old key is refused).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import re

from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError
from ansible_collections.kubeguard.hardening.plugins.module_utils._pki import _crypto, _files

PATH = "pki/sa"
ROT = "rotation/sa"
_PUBLIC = re.compile(rb"-----BEGIN PUBLIC KEY-----.+?-----END PUBLIC KEY-----\n?", re.S)


def publics(data):
    """The public keys of a PEM file, in order."""
    return [_crypto.load_public(block) for block in _PUBLIC.findall(data or b"")]


def fingerprint(key):
    """SHA-256 of the public key (DER SubjectPublicKeyInfo), like a CA certificate's fingerprint."""
    return "SHA256:" + hashlib.sha256(_crypto.public_der(key)).hexdigest()


def _pem(*keys):
    """PEM of public keys (or of the public halves of private keys)."""
    from cryptography.hazmat.primitives import serialization

    return b"".join(
        (k.public_key() if hasattr(k, "private_bytes") else k).public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        for k in keys
    )


def _write_pub(out, *keys):
    _files.atomic_write(os.path.join(out, f"{PATH}.pub"), _pem(*keys), _files.CERT_MODE)


def current(out):
    """(public keys of sa.pub, the private key of sa.key)."""
    found = publics(_files.read(os.path.join(out, f"{PATH}.pub")))
    key = _files.read(os.path.join(out, f"{PATH}.key"))
    if not found or key is None:
        raise KubeguardError("output_dir", f"{PATH}.key or {PATH}.pub is missing: run cluster_pki first")
    return found, _crypto.load_key(key)


def _new(out):
    key = _files.read(os.path.join(out, f"{ROT}/new.key"))
    return _crypto.load_key(key) if key is not None else None


def next_signing_key(out):
    """The key that signs once ``reissue`` is done: the rotation's new key, or sa.key when none is kept."""
    return _new(out) or current(out)[1]


def step_files(out, name, step, controller_kubeconfig=""):
    """The store files ``step`` writes, for check mode and the report."""
    del out, name, controller_kubeconfig  # no kubeconfig embeds the service-account key
    state = "rotation/state.json"
    return {
        "generate": [f"{ROT}/old.pub", f"{ROT}/new.key", state],
        "trust": [f"{PATH}.pub", state],
        "reissue": [f"{PATH}.key", f"{PATH}.pub", state],
        "pods": [state],
        "verify": [state],
        "remove": [f"{PATH}.pub", f"{ROT}/new.key", state],
    }[step]


def generate(out, name, algorithm, ca_days, now):
    """The new key (kept when a killed run already made it), and the old public key kept."""
    del ca_days, now  # a key has no validity
    old = current(out)[1]
    _files.ensure_dir(os.path.join(out, ROT), _files.PRIVATE_DIR_MODE)
    if _new(out) is None:
        # The old public key first: a generate killed after it keeps this round's old key.
        _files.atomic_write(os.path.join(out, f"{ROT}/old.pub"), _pem(old), _files.CERT_MODE)
        _files.atomic_write(
            os.path.join(out, f"{ROT}/new.key"), _crypto.key_pem(_crypto.generate_keys([algorithm])[0]), _files.KEY_MODE
        )
    old, new = pair(out, name)
    return {"old": fingerprint(old), "new": fingerprint(new)}


def pair(out, name="sa"):
    """(old public key, new private key) of a generated rotation."""
    del name
    old = publics(_files.read(os.path.join(out, f"{ROT}/old.pub")))
    new = _new(out)
    if not old or new is None:
        raise KubeguardError("step", "the new sa key is missing from the store; run the generate step again")
    return old[0], new


def trust(out, name, controller_kubeconfig):
    """sa.pub lists old + new; the old key still signs."""
    del controller_kubeconfig
    old, new = pair(out, name)
    if fingerprint(current(out)[1]) != fingerprint(old):
        raise KubeguardError("output_dir", f"{PATH}.key is not the key this rotation began from; nothing was written")
    _write_pub(out, old, new)


def reissue(out, name, controller_kubeconfig, leaf_days, now):
    """The new key signs; sa.pub lists new + old."""
    del controller_kubeconfig, leaf_days, now
    old, new = pair(out, name)
    # The public file first: killed between the two writes, sa.key still signs with the old
    # key, which sa.pub accepts; the rerun begins reissue again and writes both.
    _write_pub(out, new, old)
    _files.atomic_write(os.path.join(out, f"{PATH}.key"), _crypto.key_pem(new), _files.KEY_MODE)


def remove(out, name, controller_kubeconfig):
    """Only the new public key is left."""
    del controller_kubeconfig
    _old, new = pair(out, name)
    _write_pub(out, new)


def forget(out, name):
    """Once ``remove`` is recorded: the rotation's copies go (the new key is sa.key now)."""
    del name
    for what in ("new.key", "old.pub"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(out, ROT, what))


def offenders(out, name, evidence, sources, controller_kubeconfig):
    """Key files in use that sign with the old key, or that do not accept the new one.

    ``evidence`` is the base64 contents of the ``sa.key`` and ``sa.pub`` read on
    the control-plane nodes, ``sources`` their ``node:path`` names."""
    del controller_kubeconfig
    old, new = pair(out, name)
    read = [(f"store:{PATH}{ext}", _files.read(os.path.join(out, f"{PATH}{ext}"))) for ext in (".key", ".pub")]
    names = list(sources) + [f"node {i}" for i in range(len(sources), len(evidence))]
    read += [(where, base64.b64decode(content)) for where, content in zip(names, evidence)]
    found = []
    for where, data in read:
        found += [f"{where}: {why}" for why in _judge(data or b"", old, new)]
    return found


def _judge(data, old, new):
    if b"PRIVATE KEY-----" in data:
        key = _crypto.load_key(data)
        if fingerprint(key) == fingerprint(old):
            return ["signs service-account tokens with the old key"]
        return []
    keys = [fingerprint(k) for k in publics(data)]
    if fingerprint(old) in keys and fingerprint(new) not in keys:
        return ["accepts tokens of the old key only"]
    return []
