# Private to the kubeguard.hardening collection: no stable API (see __init__).
"""The node side of SSH host certificates (``sshd_host_certificate``).

``run(params, check_mode, runner, now)`` reads the node's host public keys
and installed certificates (``ssh-keygen -L``, in UTC), decides with
``hostcert`` which must be signed and why, and, given the certificates the
controller signed, installs them atomically (0644, public data). The CA's
private key never comes here: signing happens on the controller.
"""

from __future__ import annotations

import datetime
import os
import socket

from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError
from ansible_collections.kubeguard.hardening.plugins.module_utils._node import files as _files

from . import config, hostcert


def _read(path):
    try:
        with open(path) as handle:
            return handle.read()
    except (OSError, UnicodeDecodeError):
        return None


def listing(runner, path):
    """The parsed certificate at ``path``, or None when absent or unreadable as one."""
    if _read(path) is None:
        return None
    rc, out, _unused = runner.run_command(["env", "TZ=UTC", "ssh-keygen", "-L", "-f", path])
    if rc != 0:
        return None
    try:
        return hostcert.parse_listing(out)
    except KubeguardError:
        return None


def node_names(params):
    """Inventory name plus the node's own FQDN and host name."""
    return [*params["names"], socket.getfqdn(), socket.gethostname()]


def inspect(params, runner, now, ssh_dir=config.SSH_DIR):
    """Every configured host key with its certificate's state and the reason to sign it (or None)."""
    hostcert.check_windows(params["validity_days"], params["renew_before_days"])
    wanted = hostcert.principals(node_names(params), params["addresses"], params["extra_principals"])
    ca_key = params["ca_public_key"]
    # Empty only in check mode before the CA exists: every certificate would be signed.
    ca_fp = hostcert.fingerprint(ca_key, "ca_public_key") if ca_key else None
    keys = []
    for key_type in params["key_types"]:
        if key_type not in hostcert.KEY_TYPES:
            raise KubeguardError("key_types", f"{key_type!r} is not one of {', '.join(hostcert.KEY_TYPES)}")
        path = os.path.join(ssh_dir, f"ssh_host_{key_type}_key")
        public_key = _read(path + ".pub")
        if public_key is None:
            # hostkeys.yml creates it; in check mode (or with hostkeys off) there may be none yet.
            keys.append({"type": key_type, "path": path, "certificate_path": hostcert.certificate_path(path),
                         "public_key": "", "current": "(no host key)", "reason": "no host key yet"})  # fmt: skip
            continue
        public_key = " ".join(public_key.split()[:2])
        cert = listing(runner, hostcert.certificate_path(path))
        key_fp = hostcert.fingerprint(public_key, "key_types")
        reason = hostcert.renewal_reason(cert, key_fp, ca_fp, wanted, now, params["renew_before_days"])
        if ca_fp is None and reason is None:
            reason = "the host CA is created in this run"
        keys.append({"type": key_type, "path": path, "certificate_path": hostcert.certificate_path(path),
                     "public_key": public_key, "fingerprint": key_fp, "current": hostcert.summary(cert),
                     "reason": reason})  # fmt: skip
    return wanted, keys


def install(certificates, keys, check_mode):
    """Write the signed certificates (only to the paths ``inspect`` listed); return the changed paths."""
    allowed = {k["certificate_path"]: k for k in keys}
    changed = []
    for index, item in enumerate(certificates):
        path, text = item.get("path"), item.get("certificate") or ""
        if path not in allowed:
            raise KubeguardError(f"certificates[{index}].path", f"{path!r} is not a host certificate path of key_types")
        if not text and not check_mode:
            raise KubeguardError(f"certificates[{index}].certificate", "is empty (signed in check mode?)")
        if text:
            blob_type = text.split()[0] if text.split() else ""
            if not blob_type.endswith("-cert-v01@openssh.com"):
                raise KubeguardError(f"certificates[{index}].certificate", "is not an OpenSSH certificate")
            hostcert.public_key_blob(text, f"certificates[{index}].certificate")
        content = text.strip() + "\n"
        if _read(path) != content:
            changed.append((path, content))
    if not check_mode:
        for path, content in changed:
            _files.atomic_write(path, content.encode(), 0o644)
    return [path for path, _unused in changed]


def run(params, check_mode, runner, now=None):
    """Entry point of ``sshd_host_certificate``."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    wanted, keys = inspect(params, runner, now)
    written = install(params["certificates"], keys, check_mode)
    after = {item.get("path"): item.get("summary", "(new)") for item in params["certificates"]}
    before_lines = [f"{k['certificate_path']}: {k['current']}\n" for k in keys]
    after_lines = [f"{k['certificate_path']}: {after.get(k['certificate_path'], k['current'])}\n" for k in keys]
    return {
        "changed": bool(written),
        "principals": wanted,
        "keys": keys,
        "sign": [k for k in keys if k["reason"] and k["public_key"]],
        "written": written,
        "diff": {"before": "".join(before_lines), "after": "".join(after_lines)},
    }
