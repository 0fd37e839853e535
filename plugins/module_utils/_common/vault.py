# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to kubeguard.hardening: the controller store's secret files,
ansible-vault encrypted at rest.

The modules that write the store (cluster_pki, encryption_at_rest_state,
api_access_config) run in their own process, where only module_utils may be
imported (ansible-test's import rule), so ansible-core's VaultLib is not
available there. This is the same format, ``$ANSIBLE_VAULT;1.1;AES256``
(PBKDF2-SHA256 10000 rounds, AES-256-CTR, HMAC-SHA256 encrypt-then-MAC), on
the ``cryptography`` library; the unit tests prove that ansible-core's
VaultLib opens what this writes and the other way round, so ``ansible-vault
view`` works on every file. The password reaches the module through the
collection's action plugins (ansible's own VaultSecret: a password file or
script, or a ``--vault-id`` the play was given).

One module run at most one password: :func:`using` sets it for the run.
"""

from __future__ import annotations

import binascii
import contextlib
import hmac
import os

from .._errors import KubeguardError

HEADER = b"$ANSIBLE_VAULT"
OPTION = "store_vault_password"
ARGUMENT_SPEC = {OPTION: {"type": "str", "no_log": True}}
_ITERATIONS = 10000
_password = None


def is_vault(data):
    return bool(data) and data.lstrip().startswith(HEADER + b";")


@contextlib.contextmanager
def using(password):
    """Encrypt secret files with ``password`` (str) during the block; None or '' is off."""
    global _password
    previous, _password = _password, (password.encode("utf-8") if password else None)
    try:
        yield
    finally:
        _password = previous


def active():
    return _password is not None


def _keys(password, salt):
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

    derived = PBKDF2HMAC(algorithm=hashes.SHA256(), length=80, salt=salt, iterations=_ITERATIONS).derive(password)
    return derived[:32], derived[32:64], derived[64:80]


def encrypt(data, password, salt=None):
    """``data`` (bytes) as an ansible-vault 1.1 AES256 envelope (bytes)."""
    from cryptography.hazmat.primitives import hashes, padding
    from cryptography.hazmat.primitives import hmac as chmac
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    salt = salt or os.urandom(32)
    key1, key2, iv = _keys(password, salt)
    padder = padding.PKCS7(128).padder()
    encryptor = Cipher(algorithms.AES(key1), modes.CTR(iv)).encryptor()
    ciphertext = encryptor.update(padder.update(data) + padder.finalize()) + encryptor.finalize()
    mac = chmac.HMAC(key2, hashes.SHA256())
    mac.update(ciphertext)
    body = binascii.hexlify(
        b"\n".join([binascii.hexlify(salt), binascii.hexlify(mac.finalize()), binascii.hexlify(ciphertext)])
    )
    lines = [HEADER + b";1.1;AES256"] + [body[i : i + 80] for i in range(0, len(body), 80)]
    return b"\n".join(lines) + b"\n"


def decrypt(blob, password, where="", option=OPTION):
    """The plaintext of an ansible-vault AES256 envelope; KubeguardError(option) on a wrong password."""
    from cryptography.hazmat.primitives import hashes, padding
    from cryptography.hazmat.primitives import hmac as chmac
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    lines = blob.strip().splitlines()
    header = lines[0].strip().split(b";")
    if len(header) < 3 or header[2].strip() != b"AES256":
        raise KubeguardError(option, f"{where} is not an ansible-vault AES256 file")
    try:
        salt, tag, ciphertext = binascii.unhexlify(b"".join(line.strip() for line in lines[1:])).split(b"\n", 2)
        salt, tag, ciphertext = binascii.unhexlify(salt), binascii.unhexlify(tag), binascii.unhexlify(ciphertext)
    except (ValueError, binascii.Error):
        raise KubeguardError(option, f"{where} is a damaged ansible-vault file") from None
    key1, key2, iv = _keys(password, salt)
    mac = chmac.HMAC(key2, hashes.SHA256())
    mac.update(ciphertext)
    if not hmac.compare_digest(mac.finalize(), tag):
        raise KubeguardError(option, f"{where} does not open with the store's vault password (wrong password)")
    decryptor = Cipher(algorithms.AES(key1), modes.CTR(iv)).decryptor()
    unpadder = padding.PKCS7(128).unpadder()
    padded = decryptor.update(ciphertext) + decryptor.finalize()
    return unpadder.update(padded) + unpadder.finalize()


def open_secret(data, where, option=OPTION):
    """What a store file holds: decrypted when it is a vault file (refused without a password)."""
    if not is_vault(data):
        return data
    if _password is None:
        raise KubeguardError(
            option,
            f"{where} is ansible-vault encrypted, but no store vault password was given: set "
            "kubeguard_store_vault_password_file or kubeguard_store_vault_id (docs/controller-store.md)",
        )
    return decrypt(data, _password, where, option)


def seal(data):
    """``data`` as it is written to a secret file of the store: encrypted when a password is set."""
    return encrypt(data, _password) if _password is not None else data


def seal_in_place(paths, check_mode, write):
    """Encrypt existing plaintext secret files (a store made before the vault was on).
    ``write(path, data)`` is the caller's atomic 0600 write, which seals. Returns the paths (would be) sealed."""
    if _password is None:
        return []
    sealed = []
    for path in paths:
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise KubeguardError(OPTION, f"cannot read {path}: {exc.strerror}") from None
        if is_vault(data):
            continue
        sealed.append(path)
        if not check_mode:
            write(path, data)
    return sealed
