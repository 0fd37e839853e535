# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: auditd watch rules on the files that hold the cluster's keys.

``run(params, check_mode, node)`` is the entry point of ``node_os_audit``.
Every rule is checked against auditctl's grammar for watches (``-w path -p
perms -k key``) before the file is written; where the kernel's audit
interface answers (``auditctl -s``) the rules are loaded with ``augenrules
--load`` and read back with ``auditctl -l``. A container node cannot: the
kernel accepts audit configuration only from the initial PID and user
namespaces, so the module reports auditctl's own error and leaves the rules
on disk for the day the node runs on a host kernel.
"""

from __future__ import annotations

import os
import re

from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError
from ansible_collections.kubeguard.hardening.plugins.module_utils._node import files as _files

KEY = re.compile(r"^[A-Za-z0-9_\-]{1,31}$")
PERMS = re.compile(r"^[rwxa]{1,4}$")


def check_watch(item, index):
    """Refuse what auditctl would refuse for ``-w path -p perms -k key``."""
    var = f"node_os_audit_watches[{index}]"
    if not isinstance(item, dict) or "path" not in item:
        raise KubeguardError(var, "each watch is a dict with path, perms and key")
    path, perms, key = str(item["path"]), str(item.get("perms", "wa")), str(item.get("key", "kubeguard"))
    if not path.startswith("/") or any(c.isspace() for c in path) or "//" in path:
        raise KubeguardError(var, f"{path!r}: auditctl watches an absolute path without blanks")
    if not PERMS.match(perms) or len(set(perms)) != len(perms):
        raise KubeguardError(var, f"perms {perms!r}: use each of r, w, x, a at most once")
    if not KEY.match(key):
        raise KubeguardError(var, f"key {key!r}: 1-31 letters, digits, '-' or '_'")
    return {"path": path.rstrip("/") or "/", "perms": perms, "key": key}


def parse_rule(line):
    """``-w PATH -p PERMS -k KEY`` -> dict; the same grammar, read back (tests, auditctl -l)."""
    words = line.split()
    if len(words) != 6 or words[0] != "-w" or words[2] != "-p" or words[4] != "-k":
        raise ValueError(f"not a watch rule: {line!r}")
    return {"path": words[1], "perms": words[3], "key": words[5]}


def render(watches, header):
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    lines += [f"-w {w['path']} -p {w['perms']} -k {w['key']}" for w in watches]
    return "\n".join(lines) + "\n"


def plan(watches):
    """Checked watches, and those whose path (or its parent) does not exist on this node."""
    kept, absent = [], []
    for index, item in enumerate(watches):
        watch = check_watch(item, index)
        # The kernel watches a missing file through its directory; a missing directory fails the load.
        if os.path.exists(watch["path"]) or os.path.isdir(os.path.dirname(watch["path"])):
            kept.append(watch)
        else:
            absent.append(watch["path"])
    return kept, absent


def run(params, check_mode, node):
    kept, absent = plan(params["watches"])
    content = render(kept, params["header"])
    current = _files.read(params["rules_file"])
    result = {"changed": content != current, "watches": kept, "absent": absent,
              "diff": {"before": current or "", "after": content, "before_header": params["rules_file"],
                       "after_header": params["rules_file"]}}  # fmt: skip
    for watch in kept:
        # Read back with the same grammar: what the file says is what was checked.
        parse_rule(f"-w {watch['path']} -p {watch['perms']} -k {watch['key']}")
    rc, out, err = node.run_command(["auditctl", "-s"])
    result["kernel"] = {"available": rc == 0, "detail": " ".join((err or out).split())}
    if result["kernel"]["available"]:
        rc, out, err = node.run_command(["auditctl", "-l"])
        loaded = {line.strip() for line in out.splitlines()}
        missing = [w for w in kept if f"-w {w['path']} -p {w['perms']} -k {w['key']}" not in loaded]
        result["changed"] = result["changed"] or bool(missing)
    result["pending"] = result["changed"]
    if not result["changed"] or check_mode:
        return result
    if content != current:
        os.makedirs(os.path.dirname(params["rules_file"]), exist_ok=True)
        _files.atomic_write(params["rules_file"], content.encode(), 0o640, replace=node.atomic_move)
    if result["kernel"]["available"]:
        rc, _unused, err = node.run_command(["augenrules", "--load"])
        if rc != 0:
            raise KubeguardError("node_os_audit_watches", f"augenrules --load failed: {' '.join(err.split())}")
    return result
