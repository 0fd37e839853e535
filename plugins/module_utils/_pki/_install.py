# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to kubeguard.hardening: the node side of the cluster_pki role.

Installs one node's share of the PKI (the ``distribution`` the cluster_pki
module computed) in one module call: read current state, compare, act.
A CA certificate that differs from the node's is refused unless replacing is
asked for. Every file replaced is backed up under ``backup_dir`` and listed,
with the components to restart, in a pending-restart manifest there; the
restart (``_restart``) rolls the files back from it when a component does not
come back healthy, and a rerun after a killed play still restarts them.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import stat

from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError
from ansible_collections.kubeguard.hardening.plugins.module_utils._node import files as _files
from ansible_collections.kubeguard.hardening.plugins.module_utils._node import system
from ansible_collections.kubeguard.hardening.plugins.module_utils._pki._agents import ROOT as AGENT_ROOT
from ansible_collections.kubeguard.hardening.plugins.module_utils._pki._files import PRIVATE_DIR_MODE, PUBLIC_DIR_MODE


def target_path(roots, entry):
    """Absolute path of a distribution entry (``root`` key + relative ``dest``)."""
    dest, root = entry.get("dest"), entry.get("root")
    if root not in roots:
        raise KubeguardError("files", f"root must be one of {', '.join(sorted(roots))}, not {root!r}")
    if not isinstance(dest, str) or not dest or os.path.isabs(dest) or ".." in dest.split("/"):
        raise KubeguardError("files", f"dest {dest!r} must be a relative path without '..'")
    return os.path.join(roots[root], dest)


def file_mode(entry):
    try:
        return int(str(entry.get("mode")), 8)
    except ValueError:
        raise KubeguardError(
            "files", f"mode of {entry.get('dest')!r} must be octal such as '0600', not {entry.get('mode')!r}"
        ) from None


def directories_for(roots, paths):
    """Every directory from each root down to the files, with its mode:
    etcd's key directory 0700, the rest 0755 (as the role always set them).
    A node agent's file (root ``/``) is not under a root the PKI owns: see
    ``plan``."""
    wanted = {}
    for path in paths:
        root = next((r for k, r in roots.items() if k != AGENT_ROOT and path.startswith(r.rstrip("/") + "/")), None)
        if root is None:
            continue
        directory = os.path.dirname(path)
        while len(directory) >= len(root.rstrip("/")):
            wanted[directory] = PRIVATE_DIR_MODE if os.path.basename(directory) == "etcd" else PUBLIC_DIR_MODE
            directory = os.path.dirname(directory)
    return dict(sorted(wanted.items()))


def _current(path):
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return None
    return info


def plan(roots, files, contents, uid, gid, replace_ca=False):
    """What must change: (directories, files). Each file change says why:
    ``absent``, ``content``, ``mode`` or ``owner`` (in that order of weight).

    Raises KubeguardError("replace_ca") when an entry flagged ``ca`` would
    replace a different CA certificate on the node and ``replace_ca`` is false.
    """
    if len(files) != len(contents):
        raise KubeguardError("contents", f"{len(contents)} contents for {len(files)} files; they pair up by position")
    paths = [target_path(roots, entry) for entry in files]
    directory_changes = []
    for directory, mode in directories_for(roots, paths).items():
        info = _current(directory)
        if info is None or stat.S_IMODE(info.st_mode) != mode or (info.st_uid, info.st_gid) != (uid, gid):
            directory_changes.append((directory, mode))
    # A node agent's directory (/var/lib/kube-proxy) is the agent's: created when absent, never changed.
    for path, entry in zip(paths, files):
        parent = os.path.dirname(path)
        if (
            entry.get("root") == AGENT_ROOT
            and _current(parent) is None
            and (parent, PUBLIC_DIR_MODE) not in directory_changes
        ):
            directory_changes.append((parent, PUBLIC_DIR_MODE))
    file_changes = []
    for path, entry, content in zip(paths, files, contents):
        mode, data = file_mode(entry), content.encode()
        info = _current(path)
        if info is None:
            reason = "absent"
        elif _read(path) != data:
            reason = "content"
            if entry.get("ca") and not replace_ca:
                raise KubeguardError(
                    "replace_ca",
                    f"{path} on this node is a different CA than {entry.get('src')} in the PKI tree; a CA is never "
                    "replaced silently and nothing was written. Point kubeguard_pki_output_dir at this cluster's PKI "
                    "tree, or move the tree away so the node's CA is adopted (cluster_pki_adopt_enabled), or set "
                    "cluster_pki_replace_node_ca (module option replace_ca) to true to replace it.",
                )
        elif stat.S_IMODE(info.st_mode) != mode:
            reason = "mode"
        elif (info.st_uid, info.st_gid) != (uid, gid):
            reason = "owner"
        else:
            continue
        file_changes.append(
            {
                "path": path,
                "mode": mode,
                "data": data,
                "reason": reason,
                "components": list(entry.get("components") or []),
            }
        )
    return directory_changes, file_changes


def _read(path):
    with open(path, "rb") as handle:
        return handle.read()


def apply(directory_changes, file_changes, uid, gid, backup_dir=""):
    if backup_dir and file_changes:
        _back_up(backup_dir, file_changes)
    for directory, mode in directory_changes:
        os.makedirs(directory, mode=mode, exist_ok=True)
        os.chmod(directory, mode)
        os.chown(directory, uid, gid)
    for change in file_changes:
        if change["reason"] in ("absent", "content"):
            _files.atomic_write(change["path"], change["data"], change["mode"])
        else:
            os.chmod(change["path"], change["mode"])
        os.chown(change["path"], uid, gid)


# ------------------------------------------------------------ backups and restart


MANIFEST = "pending-restart.json"


def read_manifest(backup_dir):
    """The pending restart left by an install: {'components': [...], 'files': {path: backup or None}}."""
    path = os.path.join(backup_dir, MANIFEST)
    if not backup_dir or not os.path.exists(path):
        return {"components": [], "files": {}}
    try:
        manifest = json.loads(_read(path))
        return {"components": list(manifest["components"]), "files": dict(manifest["files"])}
    except (ValueError, KeyError, TypeError):
        raise KubeguardError("backup_dir", f"{path} is corrupt; remove it") from None


def _back_up(backup_dir, file_changes):
    """Keep the previous content of every file about to be written, merged into
    the pending manifest: a file already backed up keeps its older (last known
    good) copy."""
    manifest = read_manifest(backup_dir)
    os.makedirs(os.path.join(backup_dir, "files"), mode=PRIVATE_DIR_MODE, exist_ok=True)
    os.chmod(backup_dir, PRIVATE_DIR_MODE)
    for change in file_changes:
        path = change["path"]
        if change["reason"] not in ("absent", "content") or path in manifest["files"]:
            continue
        backup = None
        if change["reason"] == "content":
            backup = os.path.join(backup_dir, "files", path.lstrip("/").replace("/", "%"))
            _files.atomic_write(backup, _read(path), 0o600)
        manifest["files"][path] = backup
    manifest["components"] = sorted(set(manifest["components"]) | {c for f in file_changes for c in f["components"]})
    _files.atomic_write(os.path.join(backup_dir, MANIFEST), json.dumps(manifest, indent=1).encode(), 0o600)


def restore(backup_dir):
    """Put back every file of the pending manifest (remove those that were absent). Returns the paths."""
    manifest = read_manifest(backup_dir)
    for path, backup in manifest["files"].items():
        if backup is None:
            if os.path.exists(path):
                os.unlink(path)
            continue
        mode = stat.S_IMODE(os.stat(path).st_mode) if os.path.exists(path) else 0o600
        _files.atomic_write(path, _read(backup), mode)
    return sorted(manifest["files"])


def clear(backup_dir):
    """Forget the pending restart: drop the manifest and the backups."""
    manifest = read_manifest(backup_dir)
    for backup in manifest["files"].values():
        if backup and os.path.exists(backup):
            os.unlink(backup)
    path = os.path.join(backup_dir, MANIFEST)
    if os.path.exists(path):
        os.unlink(path)


# ----------------------------------------------------------------- entry point


def _id(value, lookup, option):
    """A user or group given by name or numeric ID, as ansible.builtin.file accepts it."""
    value = str(value)
    if value.isdigit():
        return int(value)
    try:
        return lookup(value)
    except KeyError:
        raise KubeguardError(option, f"unknown user or group {value!r}") from None


def roots_of(params):
    """The install roots: the PKI's two directories and ``/`` for node agents' files."""
    return {"kubernetes": params["kubernetes_dir"], "kubelet": params["kubelet_pki_dir"], AGENT_ROOT: "/"}


def unit_loaded(unit):
    rc, out = system.systemctl_status("show", "-p", "LoadState", "--value", f"{unit}.service")
    return rc == 0 and out == "loaded"


def agents_here(entries, loaded):
    """Which node agents of ``entries`` run from a unit on this node: (present, absent) names.

    kubeadm's kube-proxy is a DaemonSet with its ServiceAccount token: no
    unit, so its identity is not installed there.
    """
    units = {e["agent"]: e.get("unit") or e["agent"] for e in entries if e.get("agent")}
    present = {name for name, unit in units.items() if loaded(unit)}
    return present, sorted(set(units) - present)


def run(params, check_mode=False, loaded=unit_loaded):
    """Make the node match its entries; the module result."""
    roots = roots_of(params)
    uid = _id(params["owner"], lambda n: pwd.getpwnam(n).pw_uid, "owner")
    gid = _id(params["group"], lambda n: grp.getgrnam(n).gr_gid, "group")
    backup_dir = params.get("backup_dir") or ""
    if len(params["files"]) != len(params["contents"]):
        raise KubeguardError(
            "contents", f"{len(params['contents'])} contents for {len(params['files'])} files; they pair up by position"
        )
    present, absent = agents_here(list(params["files"]) + list(params.get("planned") or []), loaded)
    pairs = [(e, c) for e, c in zip(params["files"], params["contents"]) if not e.get("agent") or e["agent"] in present]
    wanted = [e for e, _unused in pairs]
    try:
        directories, files = plan(roots, wanted, [c for _unused, c in pairs], uid, gid, params.get("replace_ca"))
        # Check mode: the PKI tree does not hold these files yet; they would be written.
        planned = [
            {
                "path": target_path(roots, e),
                "mode": file_mode(e),
                "reason": "planned",
                "components": e.get("components") or [],
            }
            for e in params.get("planned") or []
            if not e.get("agent") or e["agent"] in present
        ]
        pending = read_manifest(backup_dir)["components"]
        if not check_mode:
            apply(directories, files, uid, gid, backup_dir)
    except OSError as exc:
        raise KubeguardError("kubernetes_dir", f"cannot install {exc.filename}: {exc.strerror}") from None
    changes = files + planned
    components = {c for f in changes for c in f["components"]} | set(pending)
    result = {
        "changed": bool(directories or changes or pending),
        "changed_files": [{"path": f["path"], "reason": f["reason"]} for f in changes],
        "components": sorted(components),
        "pending_restart": bool(components),
        "agents_skipped": absent,
    }
    if directories or changes:
        result["diff"] = {
            "before": "".join(f"{d}/\n" for d, _unused in directories) + "".join(f"{f['path']}\n" for f in changes),
            "after": "".join(f"{d}/ ({m:04o})\n" for d, m in directories)
            + "".join(f"{f['path']} ({f['mode']:04o}, {f['reason']})\n" for f in changes),
        }
    return result
