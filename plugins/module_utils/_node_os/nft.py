# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: apply the node firewall behind its checks, with the dead-man rollback.

``apply(params, check_mode, node)`` is the entry point of ``node_os_firewall``.
``node`` has ``run_command(argv) -> (rc, out, err)`` and ``atomic_move``
(an AnsibleModule); the unit tests pass a fake. Order on a change: validate
the candidate with ``nft -c``, keep the live table (or its absence) and the
previous file, arm the timer that restores them, write the file, ``nft -f``.
The role then proves a fresh SSH login and the kubelet's path to the
apiserver before it disarms the timer (roles/node_os/tasks/firewall_apply.yml).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile

from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError
from ansible_collections.kubeguard.hardening.plugins.module_utils._node import files as _files
from ansible_collections.kubeguard.hardening.plugins.module_utils._sshd.node import find_connection

from . import firewall

ROLLBACK_UNIT = "kubeguard-node-firewall-rollback"
RESTORE = """#!/bin/sh
# kubeguard.hardening node_os dead-man rollback: puts back the previous node firewall.
systemctl stop '{unit}.timer' 2>/dev/null
nft -f '{state_dir}/table.previous'
if [ -f '{state_dir}/file.previous' ]; then cp -p '{state_dir}/file.previous' '{path}'; else rm -f '{path}'; fi
rm -f '{state_dir}/live.sha256'
echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) restored the previous node firewall" >> '{state_dir}/rollback.log'
logger -t {unit} "restored the previous node firewall" || true
"""


def live_table(node):
    """Our live table as ``nft -s list`` prints it (no counter values), or None when absent."""
    rc, out, _unused = node.run_command(["nft", "-s", "list", "table", "inet", firewall.TABLE])
    return out if rc == 0 else None


def _digest(text):
    return hashlib.sha256((text or "").encode()).hexdigest()


def check_candidate(node, content):
    """``nft -c -f``: the kernel's own parser and validator, nothing applied."""
    fd, tmp = tempfile.mkstemp(prefix="node-firewall.", suffix=".nft", dir=getattr(node, "tmpdir", None))
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(content)
        rc, _unused, err = node.run_command(["nft", "-c", "-f", tmp])
    finally:
        os.unlink(tmp)
    if rc != 0:
        raise KubeguardError("node_os_firewall", f"nft refused the rendered ruleset: {' '.join(err.split())}")


def arm_rollback(node, params, live, previous_file):
    state_dir = params["state_dir"]
    os.makedirs(state_dir, mode=0o700, exist_ok=True)
    table = f"table inet {firewall.TABLE}\ndelete table inet {firewall.TABLE}\n" + (live or "")
    _files.atomic_write(os.path.join(state_dir, "table.previous"), table.encode(), 0o600)
    saved = os.path.join(state_dir, "file.previous")
    if previous_file is None:
        if os.path.exists(saved):
            os.unlink(saved)
    else:
        _files.atomic_write(saved, previous_file.encode(), 0o600)
    script = os.path.join(state_dir, "rollback.sh")
    body = RESTORE.format(unit=ROLLBACK_UNIT, state_dir=state_dir, path=params["path"])
    _files.atomic_write(script, body.encode(), 0o700)
    node.run_command(["systemctl", "stop", f"{ROLLBACK_UNIT}.timer", f"{ROLLBACK_UNIT}.service"])
    node.run_command(["systemctl", "reset-failed", f"{ROLLBACK_UNIT}.timer", f"{ROLLBACK_UNIT}.service"])
    rc, _unused, err = node.run_command([
        "systemd-run", f"--unit={ROLLBACK_UNIT}", "--description=kubeguard node_os firewall dead-man rollback",
        f"--on-active={params['rollback_timeout']}s", "--timer-property=AccuracySec=1s", "/bin/sh", script,
    ])  # fmt: skip
    if rc != 0:
        raise KubeguardError("node_os_firewall_rollback_timeout", f"cannot arm the rollback timer: {err.strip()}")
    return {"armed": True, "unit": ROLLBACK_UNIT, "script": script, "timeout": params["rollback_timeout"]}


def boot_unit_pending(node, params):
    """Whether the boot unit file differs from ``boot_unit`` or the unit is not enabled (read only)."""
    path = params["boot_unit_path"]
    if _files.read(path) != params["boot_unit"]:
        return True
    rc, out, _unused = node.run_command(["systemctl", "is-enabled", os.path.basename(path)])
    return rc != 0 or out.strip() != "enabled"


def apply(params, check_mode, node, connection=None):
    """Entry point of ``node_os_firewall``."""
    if not shutil.which("nft", path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin"):
        raise KubeguardError(None, "nft not found; install nftables")
    if connection is None and params["lockout_check"]:
        connection = find_connection()
    planned = firewall.plan(params, connection if params["lockout_check"] else None)
    content = firewall.render(planned, params["header"])
    current = _files.read(params["path"])
    live = live_table(node)
    recorded = _files.read(os.path.join(params["state_dir"], "live.sha256"))
    # Changed when the file differs or the live table drifted from what the last apply left.
    drifted = live is None or recorded is None or recorded.strip() != _digest(live)
    result = {
        "changed": content != current or drifted,
        "ports": firewall.port_table(planned),
        "connection": connection,
        "drifted": drifted and content == current,
        "rollback": {"armed": False, "unit": ROLLBACK_UNIT},
        "diff": {
            "before": current or "",
            "after": content,
            "before_header": params["path"],
            "after_header": params["path"],
        },
    }
    result["pending"] = result["changed"]
    if params.get("boot_unit") is not None:
        # Reported, never written here: the role installs the unit only when this is true.
        result["boot_unit_pending"] = boot_unit_pending(node, params)
    if not result["changed"]:
        return result
    check_candidate(node, content)
    if check_mode:
        return result
    if params["rollback_timeout"] > 0:
        result["rollback"] = arm_rollback(node, params, live, current)
    os.makedirs(os.path.dirname(params["path"]), mode=0o755, exist_ok=True)
    _files.atomic_write(params["path"], content.encode(), 0o600, replace=node.atomic_move)
    rc, _unused, err = node.run_command(["nft", "-f", params["path"]])
    if rc != 0:
        if result["rollback"]["armed"]:
            node.run_command(["/bin/sh", result["rollback"]["script"]])
        raise KubeguardError("node_os_firewall", f"nft -f failed, previous firewall restored: {err.strip()}")
    now = live_table(node)
    os.makedirs(params["state_dir"], mode=0o700, exist_ok=True)
    _files.atomic_write(os.path.join(params["state_dir"], "live.sha256"), _digest(now).encode(), 0o600)
    return result
