# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to kubeguard.hardening: a node's fingerprint for site.yml's fast rerun.

The state every role's check reads on a node, reduced to one digest per item:
the metadata of the watched paths (lstat: type, mode, owner, size, mtime,
ctime, inode, link target; never content, so no key is ever read), the units'
states, the live nftables tables, the live values of the sysctls the sysctl.d
files set, the loaded audit rules and which of the node's addresses it still
has. ctime moves on any write, chmod or chown and cannot be set from user
space, so a change made and undone still shows. The controller compares the
fingerprint with the one recorded at the end of the last converged run
(``_common/fast_rerun.py``); any difference sends the run down the full path.
"""

from __future__ import annotations

import glob
import hashlib
import os
import stat

from ansible_collections.kubeguard.hardening.plugins.module_utils._common import addresses as addrlib
from ansible_collections.kubeguard.hardening.plugins.module_utils._node.files import read
from ansible_collections.kubeguard.hardening.plugins.module_utils._node.system import run


def _digest(lines):
    return hashlib.sha256("\n".join(lines).encode(errors="surrogateescape")).hexdigest()


def _entry(path):
    """One line of a path's metadata; a path that is gone or unreadable says so."""
    try:
        st = os.lstat(path)
    except OSError as exc:
        return f"{path}\0missing:{exc.errno}"
    target = os.readlink(path) if stat.S_ISLNK(st.st_mode) else ""
    fields = (st.st_mode, st.st_uid, st.st_gid, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, target)
    return "\0".join([path, *map(str, fields)])


def tree(root):
    """The metadata of ``root`` and of everything below it, links not followed."""
    lines = [_entry(root)]
    if os.path.isdir(root) and not os.path.islink(root):
        for directory, dirs, files in os.walk(root):
            dirs.sort()
            lines.extend(_entry(os.path.join(directory, name)) for name in sorted(dirs + files))
    return _digest(lines)


def units(names):
    """``{unit: digest}`` of each unit's load, active and enablement state, in one systemctl call."""
    if not names:
        return {}
    properties = "Id,LoadState,ActiveState,SubState,UnitFileState,FragmentPath,DropInPaths"
    rc, out, err = run(["systemctl", "show", f"--property={properties}", *names])
    blocks = out.strip().split("\n\n") if rc == 0 else []
    if len(blocks) != len(names):
        return {f"unit:{name}": _digest([f"systemctl:{rc}", err.strip()]) for name in names}
    return {f"unit:{name}": _digest(sorted(block.splitlines())) for name, block in zip(names, blocks)}


def nft_tables(tables):
    """``{table: digest}`` of each live nftables table, stateless (no counters)."""
    found = {}
    for table in tables:
        rc, out, err = run(["nft", "-s", "list", "table", *table.split()])
        found[f"nft:{table}"] = _digest([str(rc), out if rc == 0 else err.strip()])
    return found


def sysctls(patterns):
    """The live value of every key the matching sysctl.d files set (and the files' keys themselves)."""
    lines = []
    for path in sorted({p for pattern in patterns for p in glob.glob(pattern)}):
        for raw in (read(path) or "").splitlines():
            line = raw.strip()
            if not line or line.startswith(("#", ";")) or "=" not in line:
                continue
            key = line.split("=", 1)[0].strip().lstrip("-")
            live = read("/proc/sys/" + key.replace(".", "/"))
            lines.append(f"{path}\0{key}\0{' '.join(live.split()) if live is not None else 'missing'}")
    return _digest(lines)


def audit_rules():
    """The loaded audit rules, or why they cannot be read (a container without the audit capability)."""
    rc, out, err = run(["auditctl", "-l"])
    return _digest([str(rc), out if rc == 0 else err.strip()])


def addresses(wanted):
    """Which of ``wanted`` the node has, in order (``_common/addresses``: iproute2, else /proc)."""
    rc, out, _unused = run(list(addrlib.IP_ADDR_ARGV))
    have = addrlib.parse_ip_addr(out) if rc == 0 else {}
    have = have or addrlib.parse_proc(read("/proc/net/fib_trie"), read("/proc/net/if_inet6"))
    return _digest([f"{address}\0{addrlib.canonical(address) in have}" for address in wanted])


def fingerprint(params):
    """``{item: digest}``: one item per watched tree, path, unit and nftables table, plus the sysctls, the
    audit rules and the addresses when asked."""
    found = {f"tree:{path}": tree(path) for path in params.get("trees") or ()}
    found.update({f"path:{path}": _digest([_entry(path)]) for path in params.get("paths") or ()})
    found.update(units(list(params.get("units") or ())))
    found.update(nft_tables(params.get("nft_tables") or ()))
    if params.get("sysctl_files"):
        found["sysctls"] = sysctls(params["sysctl_files"])
    if params.get("audit_rules"):
        found["audit_rules"] = audit_rules()
    if params.get("addresses"):
        found["addresses"] = addresses(params["addresses"])
    return {"changed": False, "fingerprint": found}
