# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: login defaults - login.defs keys, the login shell's umask and idle
timeout, and the pre-login banners.

``run(params, check_mode)`` is the entry point of ``node_os_login``. Only the
named login.defs keys change (an uncommented line is replaced, a missing key is
appended); every other line stays as the distribution wrote it.
"""

from __future__ import annotations

import os
import re

from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError
from ansible_collections.kubeguard.hardening.plugins.module_utils._node import files as _files

_KEY = re.compile(r"^[A-Z][A-Z0-9_]*$")
_VALUE = re.compile(r"^[A-Za-z0-9_./-]+$")


def edit_login_defs(text, settings):
    """``text`` with each ``KEY value`` of ``settings`` set once (refuses malformed keys and values)."""
    lines = (text or "").splitlines()
    for key, value in settings.items():
        value = str(value)
        if not _KEY.match(str(key)) or not _VALUE.match(value):
            raise KubeguardError("node_os_login_defs", f"{key} {value!r}: login.defs takes KEY value (one word)")
        pattern = re.compile(rf"^\s*{re.escape(key)}\s")
        found = [i for i, line in enumerate(lines) if pattern.match(line)]
        wanted = f"{key}\t{value}"
        if found:
            lines[found[0]] = wanted
            lines = [line for i, line in enumerate(lines) if i not in found[1:]]
        else:
            lines.append(wanted)
    return "\n".join(lines) + "\n"


def profile(umask, tmout, header):
    if not re.match(r"^0?[0-7]{3}$", str(umask)):
        raise KubeguardError("node_os_login_umask", f"{umask!r} is not an octal umask like 027")
    if int(tmout) < 0:
        raise KubeguardError("node_os_login_tmout", "must be 0 (off) or a number of seconds")
    lines = [f"# {line}" for line in header.splitlines()] + [f"umask {umask}"]
    if int(tmout):
        lines += [f"TMOUT={int(tmout)}", "readonly TMOUT", "export TMOUT"]
    return "\n".join(lines) + "\n"


def _write_if_changed(path, content, mode, check_mode, changes):
    if _files.read(path) == content:
        return
    changes.append(path)
    if not check_mode:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        _files.atomic_write(path, content.encode(), mode)


def _profile_path(path):
    """``path`` when it names a file by its absolute path (an empty or directory path would end in an OSError)."""
    path = path or ""
    if not path.startswith("/") or path.endswith("/") or os.path.basename(path) in ("", ".", ".."):
        raise KubeguardError("profile_file", f"{path!r} is not the absolute path of a file")
    return path


def _not_a_directory(path, option):
    if os.path.isdir(path):
        raise KubeguardError(option, f"{path} is a directory")
    return path


def run(params, check_mode):
    """Entry point of ``node_os_login``."""
    profile_file = _profile_path(params["profile_file"])
    root = params.get("root") or "/"

    def at(path):
        return os.path.join(root, path.lstrip("/"))

    defs_path = at("/etc/login.defs")
    current = _files.read(defs_path)
    if current is None:
        raise KubeguardError("node_os_login_defs", "/etc/login.defs does not exist on this node")
    changes = []
    _write_if_changed(defs_path, edit_login_defs(current, params["login_defs"]), 0o644, check_mode, changes)
    profile_path = _not_a_directory(at(profile_file), "profile_file")
    _write_if_changed(
        profile_path, profile(params["umask"], params["tmout"], params["header"]), 0o644, check_mode, changes
    )
    banner = params["banner"].strip()
    if banner:
        for path in ("/etc/issue", "/etc/issue.net"):
            _write_if_changed(at(path), banner + "\n", 0o644, check_mode, changes)
    return {"changed": bool(changes), "pending": bool(changes), "files": changes,
            "diff": {"before": "", "after": "".join(f"{p} written\n" for p in changes)}}  # fmt: skip
