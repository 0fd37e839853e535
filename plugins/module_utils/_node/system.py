# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to kubeguard.hardening: the command runner, systemctl and unit
state, and the processes of /proc."""

from __future__ import annotations

import glob
import os
import pwd
import subprocess

from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError
from ansible_collections.kubeguard.hardening.plugins.module_utils._node.files import read


def run(argv, timeout=60):
    """``(rc, stdout, stderr)``; a missing binary or a timeout is rc 127 with the reason."""
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 127, "", str(exc)
    return proc.returncode, proc.stdout, proc.stderr


def systemctl(*args):
    """Run systemctl; a failure is a KubeguardError with what systemctl said."""
    rc, out, err = run(["systemctl", *args], timeout=120)
    if rc != 0:
        raise KubeguardError("", f"systemctl {' '.join(args)} failed: {(err or out).strip()}")
    return out


def systemctl_status(*args):
    """Run systemctl; ``(rc, stdout stripped)``, never raising (a node without systemd has no units)."""
    rc, out, err = run(["systemctl", *args], timeout=120)
    return rc, (out if rc == 0 else (err or out)).strip()


def unit_properties(unit, properties):
    """``{property: value}`` of a systemd unit (``systemctl show``); {} when systemctl fails."""
    rc, out, _unused = run(["systemctl", "show", f"--property={','.join(properties)}", unit])
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line) if rc == 0 else {}


def cmdline(pid, proc="/proc"):
    """A process's argv, [] for a zombie or a process mid-exec, None when it is gone."""
    raw = read(f"{proc}/{pid}/cmdline", binary=True)
    if raw is None:
        return None
    return [a.decode(errors="replace") for a in raw.rstrip(b"\0").split(b"\0")] if raw else []


def processes(names, proc="/proc"):
    """``{name: {"pid": n, "argv": [...]}}`` of the running processes whose binary is one of ``names``.

    The oldest process of a name wins: a restart's new process is what callers wait for separately.
    """
    found = {}
    for path in glob.glob(f"{proc}/[0-9]*/cmdline"):
        raw = read(path, binary=True)
        if not raw:
            continue
        argv = [a.decode(errors="replace") for a in raw.rstrip(b"\0").split(b"\0")]
        name = os.path.basename(argv[0])
        if name in names:
            pid = int(path.split("/")[-2])
            if name not in found or pid < found[name]["pid"]:
                found[name] = {"pid": pid, "argv": argv}
    return found


def process(name, proc="/proc"):
    """``{"pid": n, "argv": [...]}`` of the oldest process running ``name``, or None."""
    return processes((name,), proc).get(name)


def process_user(pid):
    """The name (or uid) of the real user a process runs as."""
    for line in (read(f"/proc/{pid}/status") or "").splitlines():
        if line.startswith("Uid:"):
            uid = int(line.split()[1])
            try:
                return pwd.getpwuid(uid).pw_name
            except KeyError:
                return str(uid)
    return None


def systemctl_with(run_command):
    """systemctl for ``restart.Engine`` through another runner (an AnsibleModule's
    ``run_command(argv) -> (rc, out, err)``, or a unit test's fake)."""

    def command(*args):
        rc, out, err = run_command(["systemctl", *args])
        return rc, (out if rc == 0 else (err or out)).strip()

    return command
