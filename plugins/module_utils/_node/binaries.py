# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to kubeguard.hardening: what a node's binaries say about
themselves (``--version``, ``--help``), asked once per binary.

A Kubernetes binary takes 30-60 ms to print its help, and a rerun asks the
same four to six binaries in four modules. The answers are kept on the node,
keyed by the binary file's identity (device, inode, size, mtime, ctime), so a
replaced or rewritten binary is asked again. The path plays no part: a static
pod's binary is opened through /proc/<pid>/exe, whose pid changes with every
restart. Only clean answers (rc 0) are kept, and only by the gathers that run
outside check mode (control_plane_facts, kubelet_facts): check mode and the
audit (which writes nothing on a node, docs/audit.md) read the cache but never
write it. The cache is best effort: a node
where it cannot be read or written (no root, a read-only /var) asks the binary.
"""

from __future__ import annotations

import contextlib
import json
import os

from ansible_collections.kubeguard.hardening.plugins.module_utils._node import system
from ansible_collections.kubeguard.hardening.plugins.module_utils._node.files import atomic_write, read

CACHE_PATH = "/var/cache/kubeguard/binaries.json"
# A control-plane node asks five binaries two questions each: room for that twice (an upgrade, a static
# pod's new overlay), with the oldest answers dropped first. The file stays small enough to read in a few ms.
MAX_ENTRIES = 24


def identity(path):
    """The binary's identity as a string, or None when it cannot be stat'ed."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}"


def _load(cache_path):
    with contextlib.suppress(OSError, ValueError):
        data = json.loads(read(cache_path) or "{}")
        if isinstance(data, dict):
            return data
    return {}


def _save(cache_path, data):
    entries = list(data.items())[-MAX_ENTRIES:]
    with contextlib.suppress(OSError):
        os.makedirs(os.path.dirname(cache_path), mode=0o700, exist_ok=True)
        atomic_write(cache_path, json.dumps(dict(entries), sort_keys=False).encode(), 0o600)


def ask(path, *args_list, keep=False, cache_path=None, run=None):
    """``[(rc, stdout, stderr), ...]``, one per argument list in ``args_list``, of ``path`` run with it.

    Answered from the cache while the binary's identity holds, else asked. A clean answer (rc 0) is kept
    only when ``keep`` is set: by a gather running outside check mode, never by check mode or the audit.
    """
    cache_path, run = cache_path or CACHE_PATH, run or system.run
    ident = identity(path)
    cache = _load(cache_path) if ident else {}
    answers, missed = [], False
    for args in args_list:
        key = json.dumps([ident, list(args)])
        hit = cache.get(key)
        if isinstance(hit, list) and len(hit) == 2:
            answers.append((0, hit[0], hit[1]))
            continue
        rc, out, err = run([path, *args])
        answers.append((rc, out, err))
        # The binary may have been replaced while it ran: keep the answer only if its identity still holds.
        if keep and rc == 0 and ident and identity(path) == ident:
            cache.pop(key, None)
            cache[key] = [out, err]
            missed = True
    if missed:
        _save(cache_path, cache)
    return answers
