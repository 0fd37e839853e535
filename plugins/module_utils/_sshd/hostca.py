# Private to the kubeguard.hardening collection: no stable API (see __init__).
"""The controller side of SSH host certificates (``sshd_host_ca``).

The cluster's SSH host CA lives in the controller store beside the cluster
PKI (``~/.kubeguard/pki/<cluster>/ssh``): ``ssh_host_ca`` (0600, directory
0700) and ``ssh_host_ca.pub``. It is made with ``ssh-keygen -t ed25519`` when
absent; nothing here ever reads the private key into memory or returns it:
``ssh-keygen -s`` reads it to sign host public keys handed in from the nodes.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time

from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError
from ansible_collections.kubeguard.hardening.plugins.module_utils._node import files as _files

from . import hostcert

CA_NAME = "ssh_host_ca"
CA_COMMENT = "kubeguard ssh host CA"
# Host CA rotation with dual trust, one step per run (docs/ssh_hardening.md).
ROTATION = ("none", "add", "resign", "finish")
# Backdated start: a node clock slightly behind the controller still accepts a fresh certificate.
BACKDATE = "-5m"


def _keygen(runner, argv, option):
    rc, out, err = runner.run_command(["ssh-keygen", *argv])
    if rc != 0:
        raise KubeguardError(option, f"ssh-keygen {argv[0]} failed ({rc}): {' '.join((err or out).split())}")
    return out


def _store(ca_dir):
    if not isinstance(ca_dir, str) or not os.path.isabs(ca_dir):
        raise KubeguardError("ca_dir", f"{ca_dir!r} must be an absolute path")
    if os.path.exists(ca_dir) and not os.path.isdir(ca_dir):
        raise KubeguardError("ca_dir", f"{ca_dir} is not a directory")
    return os.path.join(ca_dir, CA_NAME)


def ensure_ca(ca_dir, check_mode, runner, name=CA_NAME):
    """``(public_key_line, created)``; the public key is '' in check mode when the CA would be created."""
    key = os.path.join(os.path.dirname(_store(ca_dir)), name)
    if os.path.exists(key):
        if _files.file_mode(key) & 0o077:
            raise KubeguardError(
                "ca_dir", f"{key} is readable by others (mode {_files.file_mode(key):04o}): chmod 0600"
            )
        # Derived from the private key (ssh-keygen prints only the public half): a .pub left
        # behind by an interrupted rotation cannot disagree with the key that signs.
        public = " ".join(_keygen(runner, ["-y", "-f", key], "ca_dir").split()[:2])
        if " ".join((_files.read(key + ".pub") or "").split()[:2]) != public and not check_mode:
            _files.atomic_write(key + ".pub", f"{public} {CA_COMMENT}\n".encode(), 0o644)
        return public, False
    if check_mode:
        return "", True
    try:
        os.makedirs(ca_dir, mode=0o700, exist_ok=True)
        os.chmod(ca_dir, 0o700)
        work = tempfile.mkdtemp(dir=ca_dir, prefix=".new-ca.")
    except OSError as exc:
        raise KubeguardError("ca_dir", f"cannot create {ca_dir}: {exc.strerror}") from None
    try:
        _keygen(
            runner, ["-q", "-t", "ed25519", "-N", "", "-C", CA_COMMENT, "-f", os.path.join(work, CA_NAME)], "ca_dir"
        )
        os.chmod(os.path.join(work, CA_NAME), 0o600)
        # The public half first: the private key's name is what marks the CA as present.
        os.replace(os.path.join(work, CA_NAME + ".pub"), key + ".pub")
        os.replace(os.path.join(work, CA_NAME), key)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return " ".join(_files.read(key + ".pub").split()[:2]), True


def promote(key):
    """Finish a rotation: keep the old CA as ``.retired``, then the next CA becomes the CA (one rename each)."""
    for suffix in ("", ".pub"):
        if os.path.exists(key + suffix):
            shutil.copy2(key + suffix, key + ".retired" + suffix)
    os.replace(key + ".next", key)
    os.replace(key + ".next.pub", key + ".pub")


def cas(params, check_mode, runner):
    """The CA that signs and the CAs clients trust, after the rotation step in ``params['rotation']``.

    none: the CA signs (and a pending next CA is trusted too); add: create the next CA and trust both;
    resign: the next CA signs, both trusted; finish: the next CA replaces the CA, only it is trusted.
    """
    rotation = params.get("rotation") or "none"
    if rotation not in ROTATION:
        raise KubeguardError("rotation", f"{rotation!r} is not one of {', '.join(ROTATION)}")
    key = _store(params["ca_dir"])
    current, created = ensure_ca(params["ca_dir"], check_mode, runner)
    state = {"created": created, "promoted": False, "signing_key": key}
    nxt, next_created = "", False
    if rotation == "add" or os.path.exists(key + ".next"):
        nxt, next_created = ensure_ca(params["ca_dir"], check_mode, runner, CA_NAME + ".next")
    elif rotation == "resign":
        raise KubeguardError("rotation", "there is no next CA to sign with: run the 'add' step first")
    state["created"] = created or next_created
    if rotation == "resign":
        state["signing_key"], state["signing"], state["trusted"] = key + ".next", nxt, [current, nxt]
    elif rotation == "finish" and nxt:
        if not check_mode:
            promote(key)
        state["signing_key"] = key if not check_mode else key + ".next"
        state.update(promoted=True, signing=nxt, trusted=[nxt])
    else:
        state["signing"], state["trusted"] = current, [current] + ([nxt] if nxt or next_created else [])
    return state


def sign(ca_key, requests, identity, principals, validity_days, runner):
    """Sign each request's host public key; return ``[{path, certificate, summary}]`` (public data only)."""
    signed = []
    work = tempfile.mkdtemp(prefix="kubeguard-hostcert.")
    try:
        for index, request in enumerate(requests):
            option = f"sign[{index}].public_key"
            public_key = request.get("public_key") or ""
            key_type = public_key.split()[0] if public_key.split() else ""
            if key_type not in hostcert.KEY_TYPES.values():
                raise KubeguardError(option, f"{key_type!r} is not an ed25519 or RSA host public key")
            hostcert.public_key_blob(public_key, option)
            pub = os.path.join(work, f"{index}.pub")
            with open(pub, "w") as handle:
                handle.write(public_key + "\n")
            serial = str(int(time.time()))
            _keygen(runner, ["-s", ca_key, "-h", "-I", f"{identity}:{key_type}", "-n", ",".join(principals),
                             "-V", f"{BACKDATE}:+{validity_days}d", "-z", serial, pub], "ca_dir")  # fmt: skip
            cert_path = os.path.join(work, f"{index}-cert.pub")
            listing = _keygen(runner, ["-L", "-f", cert_path], "ca_dir")
            signed.append({
                "path": request.get("certificate_path"),
                "certificate": " ".join(_files.read(cert_path).split()[:2]),
                "summary": hostcert.summary(hostcert.parse_listing(listing)),
            })  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return signed


def write_known_hosts(path, content, check_mode):
    """Atomically write the controller's ssh_known_hosts (0644); True when it changed."""
    if not isinstance(path, str) or not os.path.isabs(path):
        raise KubeguardError("known_hosts_path", f"{path!r} must be an absolute path")
    if os.path.isdir(path):
        raise KubeguardError("known_hosts_path", f"{path} is a directory")
    current = _files.read(path)
    if current == content:
        return False
    if not check_mode:
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            _files.atomic_write(path, content.encode(), 0o644)
        except OSError as exc:
            raise KubeguardError("known_hosts_path", f"cannot write {path}: {exc.strerror}") from None
    return True


def run(params, check_mode, runner):
    """Entry point of ``sshd_host_ca``: ensure the CA, sign what is asked, write known_hosts."""
    p = params
    hostcert.check_windows(p["validity_days"], p["renew_before_days"])
    if p["sign"] or p["principals"]:
        wanted = hostcert.principals([], [], p["principals"], "principals")
    if p["known_hosts_path"]:
        # Checked before the CA is created: nothing is written on bad input.
        if not os.path.isabs(str(p["known_hosts_path"])) or os.path.isdir(p["known_hosts_path"]):
            raise KubeguardError("known_hosts_path", f"{p['known_hosts_path']!r} must be an absolute file path")
        hostcert.known_hosts([("ssh-ed25519 AAAA", "")], p["known_hosts_patterns"])
    state = cas(p, check_mode, runner)
    public_key = state["signing"]
    result = {
        "changed": state["created"] or state["promoted"],
        "ca_created": state["created"],
        "ca_promoted": state["promoted"],
        "public_key": public_key,
        "fingerprint": hostcert.fingerprint(public_key, "ca_dir") if public_key else "",
        "trusted": state["trusted"],
        "path": state["signing_key"],
        "certificates": [],
        "known_hosts_changed": False,
    }
    if p["sign"]:
        if public_key:
            result["certificates"] = sign(state["signing_key"], p["sign"], p["identity"], wanted, p["validity_days"],
                                          runner)  # fmt: skip
        else:
            # Check mode, CA not created yet: the nodes report what they would receive.
            result["certificates"] = [{"path": r.get("certificate_path"), "certificate": "",
                                       "summary": "(signed by the new CA)"} for r in p["sign"]]  # fmt: skip
    if p["known_hosts_path"]:
        before = _files.read(p["known_hosts_path"]) or ""
        patterns = p["known_hosts_patterns"]
        if p["known_hosts_merge"]:
            # A run limited to some nodes (--limit) keeps trusting the CA for the others.
            known = [pattern for ca in state["trusted"] if ca for pattern in hostcert.known_patterns(before, ca)]
            patterns = list(dict.fromkeys(known + patterns))
        trusted = [(ca or "ssh-ed25519 (created-in-this-run)", CA_COMMENT) for ca in state["trusted"]]
        content = hostcert.known_hosts(trusted, patterns)
        result["known_hosts_changed"] = write_known_hosts(p["known_hosts_path"], content, check_mode)
        result["changed"] = result["changed"] or result["known_hosts_changed"]
        result["diff"] = {"before": before, "after": content,
                          "before_header": p["known_hosts_path"], "after_header": p["known_hosts_path"]}  # fmt: skip
    return result
