# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to the kubeguard.hardening collection: node_os's packages concern,
planned on the node, installing and removing nothing: which of the wanted
packages are missing, which the node's apt sources do not have or cannot
install, which listed packages are installed and would go, and what else their
removal would take. Only when a wanted package is missing, the apt index is
refreshed first if it is older than cache_valid_time (a stale index cannot tell
a missing package from an unknown one); an idempotent rerun runs no apt command."""

from __future__ import annotations

import glob
import os
import re
import subprocess
import time

from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError

STAMP = "/var/lib/apt/periodic/update-success-stamp"
AIDE_DB = "/var/lib/aide/aide.db"

APT = ["-o", "Debug::NoLocking=1", "-o", "APT::Get::Show-User-Simulation-Note=false"]


def run(argv):
    return subprocess.run(
        argv, capture_output=True, text=True, check=False, env={"LC_ALL": "C", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    )


def installed(name):
    return run(["dpkg-query", "-W", "-f=${db:Status-Status}", name]).stdout.strip() == "installed"


def same(path, content):
    """Whether ``path`` holds exactly ``content``, owned by root with mode 0644."""
    try:
        with open(path, encoding="utf-8") as handle:
            current = handle.read()
        info = os.stat(path)
    except (OSError, UnicodeDecodeError):
        return False
    return current == content and (info.st_mode & 0o7777, info.st_uid, info.st_gid) == (0o644, 0, 0)


def has_line(path, line):
    try:
        with open(path, encoding="utf-8") as handle:
            return line in handle.read().splitlines()
    except (OSError, UnicodeDecodeError):
        return False


def refresh_if_stale(valid_seconds):
    """apt-get update when the index is missing or older than ``valid_seconds``; True when it ran."""
    fresh = os.path.exists(STAMP) and time.time() - os.stat(STAMP).st_mtime < valid_seconds
    if fresh and glob.glob("/var/lib/apt/lists/*_Packages*"):
        return False
    update = run(["apt-get", "-q", "update"])
    if update.returncode != 0:
        output = (update.stdout + update.stderr).strip()[-1000:]
        raise KubeguardError("node_os_packages_install", f"apt-get update failed: {output}")
    os.makedirs(os.path.dirname(STAMP), exist_ok=True)
    with open(STAMP, "w", encoding="utf-8"):
        pass
    return True


def plan(wanted):
    """Entry point of node_os_plan's ``packages`` concern: the plan, installing and removing nothing."""
    install, remove = wanted["install"], wanted["remove"]
    result = {"install": [], "unavailable": [], "unresolvable": "", "remove": [], "remove_also": []}
    missing = [name for name in install if not installed(name)]
    result["refreshed"] = bool(missing) and refresh_if_stale(wanted["cache_valid_time"])
    result["aide_db"] = os.path.exists(AIDE_DB)
    # Configuration files that differ from what the role writes (content, root:root 0644), and files
    # missing a line: only their tasks run.
    result["files_pending"] = [path for path, content in wanted.get("files", {}).items() if not same(path, content)]
    result["lines_pending"] = [path for path, line in wanted.get("lines", {}).items() if not has_line(path, line)]
    for name in missing:
        # A name the sources do not have, or only as a virtual package, has no candidate.
        policy = run(["apt-cache", "policy", name]).stdout
        candidate = re.search(r"^\s*Candidate:\s*(\S+)", policy, re.M)
        if not candidate or candidate.group(1) == "(none)":
            result["unavailable"].append(name)
        else:
            result["install"].append(name)
    if result["install"] and not result["unavailable"]:
        sim = run(["apt-get", "-s", *APT, "install", "--no-install-recommends", *result["install"]])
        if sim.returncode != 0:
            result["unresolvable"] = (sim.stdout + sim.stderr).strip()[-1500:]
    result["remove"] = [name for name in remove if name not in install and installed(name)]
    if result["remove"]:
        sim = run(["apt-get", "-s", *APT, "remove", *result["remove"]])
        gone = re.findall(r"^Remv (\S+)", sim.stdout, re.M)
        result["remove_also"] = sorted({name.split(":")[0] for name in gone} - set(result["remove"]))
        if sim.returncode != 0:
            result["remove_also"].append("(apt-get -s remove failed: " + (sim.stdout + sim.stderr).strip()[-500:] + ")")
    return result
