# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to kubeguard.hardening: the stamp of site.yml's fast rerun (docs/fast-rerun.md).

A run that went through every play of site.yml on every node, with every tag,
records on the controller what it left: its inputs (the inventory's kubeguard
variables, the collection, the controller store), each node's fingerprint
(``_node/fingerprint.py``) and the API's (``_k8s/fingerprint.py``). The next
run takes the same fingerprints first; when everything matches and the stamp
has not expired, no role has anything to do and site.yml skips to its audit.
Anything else (a changed variable, a touched file, a stopped unit, a new
namespace, another node, a certificate near its renewal) and the run is a full
one, and the stamp is removed before that run changes anything.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os

from ansible_collections.kubeguard.hardening.plugins.module_utils._node.files import atomic_write, read

VERSION = 1


def digest(value):
    """The SHA-256 of ``value`` as canonical JSON (anything JSON cannot encode is hashed as its repr)."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=repr).encode()).hexdigest()


def collection_digest(root):
    """The digest of the collection's own files under ``root``: each one's path, mode and content."""
    lines = []
    for directory, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(f for f in files if not f.endswith(".pyc")):
            path = os.path.join(directory, name)
            data = read(path, binary=True) or b""
            lines.append(f"{os.path.relpath(path, root)}\0{os.lstat(path).st_mode}\0{hashlib.sha256(data).hexdigest()}")
    return hashlib.sha256("\n".join(lines).encode(errors="surrogateescape")).hexdigest()


def load(path):
    """The recorded stamp, or None (missing, unreadable, or another version's)."""
    text = read(path)
    try:
        stamp = json.loads(text) if text else None
    except ValueError:
        return None
    return stamp if isinstance(stamp, dict) and stamp.get("version") == VERSION else None


def compare(stamp, inputs, nodes, api, now):
    """Why this run is not a rerun of the recorded converged one: [] when it is.

    ``inputs`` maps each input (variables, collection, controller store) to its
    digest, ``nodes`` each node to its fingerprint (None where none was taken),
    ``api`` the API fingerprint.
    """
    if stamp is None:
        return ["no converged run is recorded"]
    reasons = []
    if now >= stamp.get("valid_until", 0):
        reasons.append("the recorded run is older than kubeguard_fast_rerun_max_age_hours or a certificate is due")
    reasons.extend(f"{name} changed" for name in sorted(inputs) if stamp.get("inputs", {}).get(name) != inputs[name])
    recorded = stamp.get("nodes", {})
    if set(recorded) != set(nodes):
        reasons.append(f"the nodes differ (recorded: {', '.join(sorted(recorded))}; now: {', '.join(sorted(nodes))})")
    for node in sorted(set(recorded) & set(nodes)):
        if nodes[node] is None:
            reasons.append(f"{node}: no fingerprint this run")
            continue
        moved = _moved(recorded[node], nodes[node])
        if moved:
            reasons.append(f"{node}: {', '.join(moved)}")
    moved = _moved(stamp.get("api", {}), api)
    if moved:
        reasons.append(f"API: {', '.join(moved)}")
    return reasons


def _moved(before, now):
    return sorted(key for key in set(before) | set(now) if before.get(key) != now.get(key))


def record(path, inputs, nodes, api, valid_until):
    """Write the stamp (0600, atomically; the directory 0700 when created)."""
    os.makedirs(os.path.dirname(path) or ".", mode=0o700, exist_ok=True)
    stamp = {"version": VERSION, "valid_until": valid_until, "inputs": inputs, "nodes": nodes, "api": api}
    atomic_write(path, json.dumps(stamp, sort_keys=True, indent=1).encode(), 0o600)


def forget(path):
    """Remove the stamp; True when there was one."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
        return True
    return False
