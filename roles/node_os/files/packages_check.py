"""Plans node_os's packages concern on the node, installing and removing nothing:
which of the wanted packages are missing, which the node's apt sources do not
have or cannot install, which listed packages are installed and would go, and
what else their removal would take. Only when a wanted package is missing, the
apt index is refreshed first if it is older than the given cache_valid_time (a
stale index cannot tell a missing package from an unknown one); an idempotent
rerun runs no apt command at all. Prints one JSON object (tasks/packages.yml reads it)."""

import glob
import json
import os
import re
import subprocess
import sys
import time

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
        sys.exit(f"apt-get update failed: {(update.stdout + update.stderr).strip()[-1000:]}")
    os.makedirs(os.path.dirname(STAMP), exist_ok=True)
    with open(STAMP, "w", encoding="utf-8"):
        pass
    return True


def main():
    wanted = json.loads(sys.argv[1])
    install, remove = wanted["install"], wanted["remove"]
    plan = {"install": [], "unavailable": [], "unresolvable": "", "remove": [], "remove_also": []}
    missing = [name for name in install if not installed(name)]
    plan["refreshed"] = bool(missing) and refresh_if_stale(wanted["cache_valid_time"])
    plan["aide_db"] = os.path.exists(AIDE_DB)
    # Configuration files that differ from what the role writes (content, root:root 0644), and files
    # missing a line: only their tasks run.
    plan["files_pending"] = [path for path, content in wanted.get("files", {}).items() if not same(path, content)]
    plan["lines_pending"] = [path for path, line in wanted.get("lines", {}).items() if not has_line(path, line)]
    for name in missing:
        # A name the sources do not have, or only as a virtual package, has no candidate.
        policy = run(["apt-cache", "policy", name]).stdout
        candidate = re.search(r"^\s*Candidate:\s*(\S+)", policy, re.M)
        if not candidate or candidate.group(1) == "(none)":
            plan["unavailable"].append(name)
        else:
            plan["install"].append(name)
    if plan["install"] and not plan["unavailable"]:
        sim = run(["apt-get", "-s", *APT, "install", "--no-install-recommends", *plan["install"]])
        if sim.returncode != 0:
            plan["unresolvable"] = (sim.stdout + sim.stderr).strip()[-1500:]
    plan["remove"] = [name for name in remove if name not in install and installed(name)]
    if plan["remove"]:
        sim = run(["apt-get", "-s", *APT, "remove", *plan["remove"]])
        gone = re.findall(r"^Remv (\S+)", sim.stdout, re.M)
        plan["remove_also"] = sorted({name.split(":")[0] for name in gone} - set(plan["remove"]))
        if sim.returncode != 0:
            plan["remove_also"].append("(apt-get -s remove failed: " + (sim.stdout + sim.stderr).strip()[-500:] + ")")
    print(json.dumps(plan))


if __name__ == "__main__":
    main()
