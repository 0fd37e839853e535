# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the CIS 1.1.x files (control_plane_files) and the etcd user and
data trees a non-root etcd needs."""

from __future__ import annotations

import os
import pwd

from ansible_collections.kubeguard.hardening.plugins.module_utils._control_plane.gather import ETCD_USER
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError, require_facts
from ansible_collections.kubeguard.hardening.plugins.module_utils._node import system
from ansible_collections.kubeguard.hardening.plugins.module_utils._node.files import chown_tree, file_state, mode_ok


def fix_files(params, check_mode):
    """Bring the CIS 1.1.x files to their modes and owners; create the etcd user if needed."""
    fixed = []
    require_facts(params["facts"], "control_plane_facts", files=list)
    needs_etcd = any(f["want_owner"] == ETCD_USER for f in params["facts"]["files"])
    created_user = ensure_etcd_user(check_mode) if needs_etcd else False
    for entry in params["facts"]["files"]:
        state = file_state(entry["path"])
        if not state["exists"]:
            continue
        want_mode = entry["want_mode"]
        mode_bad = want_mode is not None and not mode_ok(state["mode"], want_mode)
        owner_bad = state["owner"] != entry["want_owner"]
        if not (mode_bad or owner_bad):
            continue
        fixed.append({"path": entry["path"], "mode": state["mode"], "owner": state["owner"], "cis": entry["cis"]})
        if check_mode:
            continue
        user = pwd.getpwnam(entry["want_owner"])
        if mode_bad:
            os.chmod(entry["path"], int(want_mode, 8))
        if owner_bad:
            chown_tree(entry["path"], user.pw_uid, user.pw_gid, recursive=entry["want_owner"] == ETCD_USER)
    return {"changed": bool(fixed or created_user), "fixed": fixed, "created_etcd_user": created_user}


def ensure_etcd_user(check_mode):
    """Create the ``etcd`` system user when missing; whether it was (or would be) created."""
    try:
        pwd.getpwnam(ETCD_USER)
        return False
    except KeyError:
        pass
    if not check_mode:
        rc, out, err = system.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", ETCD_USER]
        )
        if rc != 0:
            raise KubeguardError("", f"useradd {ETCD_USER} failed: {(err or out).strip()}") from None
    return True


def _etcd_data_dirs(flags):
    return [flags[name] for name in ("data-dir", "wal-dir") if flags.get(name)]


def _unowned(paths, user):
    """Entries of the trees at ``paths`` not owned by ``user`` (a missing user owns nothing;
    a missing tree is one entry: it is created for ``user``)."""
    try:
        uid = pwd.getpwnam(user).pw_uid
    except KeyError:
        uid = None
    found = []
    for top in paths:
        if not os.path.lexists(top):
            found.append(top)
            continue
        for root, _dirs, names in os.walk(top):
            found.extend(p for p in [root, *(os.path.join(root, n) for n in names)] if os.lstat(p).st_uid != uid)
    return found


def _own_trees(paths, user):
    """Give ``user`` the data trees etcd as root wrote, before it restarts as ``user``."""
    entry = pwd.getpwnam(user)
    for top in paths:
        if not os.path.lexists(top):
            os.makedirs(top, mode=0o700)
        chown_tree(top, entry.pw_uid, entry.pw_gid, recursive=True)
