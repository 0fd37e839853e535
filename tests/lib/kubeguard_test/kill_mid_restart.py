"""A play killed while a daemon restarts, then the same play again: the command
bench/availability.py wraps, so its writer and pollers see the kill and the rerun
as one run.

Runs the playbook in a session of its own; as soon as PROCESS in the node
container CONTAINER runs with another PID than at the start (its restart is under
way), kills the whole process group (SIGKILL: a lost controller, nothing runs
after), waits until PROCESS runs again, then runs the same playbook once more and
exits with that run's status. Prints one line first, MARK and JSON: whether
the kill landed while the play ran, and the PIDs seen.

Usage: python tests/lib/kubeguard_test/kill_mid_restart.py CONTAINER PROCESS TIMEOUT -- ansible-playbook ...
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time

MARK = "kill_mid_restart:"


def pid_of(container, process):
    run = subprocess.run(
        ["podman", "exec", container, "pgrep", "-o", "-x", process], capture_output=True, text=True, check=False
    )
    return run.stdout.strip() or None


def wait_until(check, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return False


def main(argv):
    container, process, timeout, separator, *play = argv
    if separator != "--" or not play:
        raise SystemExit(__doc__)
    timeout = float(timeout)
    before = pid_of(container, process)
    with tempfile.TemporaryFile("w+") as out:
        first = subprocess.Popen(play, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        restarted = wait_until(lambda: pid_of(container, process) != before or first.poll() is not None, timeout)
        killed = first.poll() is None
        if killed:
            os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=60)
        during = pid_of(container, process)
        out.seek(0)
        tail = out.read()[-3000:]
    came_back = wait_until(lambda: pid_of(container, process) is not None, timeout)
    print(
        MARK,
        json.dumps({"killed_while_running": killed and restarted, "pid_before": before, "pid_at_kill": during,
                    "pid_back": pid_of(container, process), "came_back": came_back, "first_run_tail": tail}),
        flush=True,
    )  # fmt: skip
    return subprocess.run(play, check=False).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
