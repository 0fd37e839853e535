# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to kubeguard.hardening: the rollback record of a component's files.

Written (0600, in a 0700 directory) before anything is replaced and removed
once the component is healthy: a record left behind means an earlier run was
interrupted, and its "before" is the last known good, so it wins.
"""

from __future__ import annotations

import contextlib
import json
import os

from ansible_collections.kubeguard.hardening.plugins.module_utils._node.files import atomic_write, read


def path(state_dir, name):
    return os.path.join(state_dir, f"{name}.rollback.json")


def load(state_dir, name):
    """``{path: (content or None, mode)}`` an earlier run recorded, or None."""
    text = read(path(state_dir, name))
    return {k: tuple(v) for k, v in json.loads(text).items()} if text else None


def remember(state_dir, name, before):
    """The record to roll back to: an interrupted run's, else ``before`` (then recorded)."""
    recorded = load(state_dir, name)
    if recorded is not None:
        return recorded
    os.makedirs(state_dir, mode=0o700, exist_ok=True)
    atomic_write(path(state_dir, name), json.dumps(before).encode(), 0o600)
    return before


def forget(state_dir, name):
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path(state_dir, name))
