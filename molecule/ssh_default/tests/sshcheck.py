"""Host-side helpers for the ssh_* verifiers: real clients against the published ports."""

from __future__ import annotations

import os
import re
import subprocess
import time

KEY = os.path.join(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "."), "id_ed25519")
COMMON = [
    "-o", "StrictHostKeyChecking=no",
    "-o", "UserKnownHostsFile=/dev/null",
    "-o", "ControlMaster=no",
    "-o", "ControlPath=none",
    "-o", "ConnectTimeout=10",
    "-o", "LogLevel=ERROR",
]  # fmt: skip


def port_of(host):
    return int(host.ansible.get_variables()["ansible_port"])


def ssh_key(port, user, *command, key=KEY, extra=()):
    """Public-key login (BatchMode: never prompts)."""
    args = ["ssh", "-p", str(port), *COMMON, "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-i", key, *extra]
    return subprocess.run([*args, f"{user}@127.0.0.1", *command], capture_output=True, text=True, timeout=60)


def ssh_password(port, user, password, *command):
    """Password (or keyboard-interactive) login through sshpass, public keys disabled on the client."""
    args = [
        "sshpass", "-p", password, "ssh", "-p", str(port), *COMMON,
        "-o", "PubkeyAuthentication=no",
        "-o", "PreferredAuthentications=password,keyboard-interactive",
        "-o", "NumberOfPasswordPrompts=1",
    ]  # fmt: skip
    return subprocess.run([*args, f"{user}@127.0.0.1", *command], capture_output=True, text=True, timeout=60)


def until(func, seconds=60, step=3):
    """Retry ``func`` (returning a CompletedProcess) until rc 0: OpenSSH 10 penalises repeated failures."""
    deadline = time.monotonic() + seconds
    while True:
        result = func()
        if result.returncode == 0 or time.monotonic() > deadline:
            return result
        time.sleep(step)


def ssh_audit(port):
    """Run ssh-audit; return (output, [fail]/[warn] lines). Retries while the server refuses the scan."""
    audit = os.path.join(os.path.dirname(os.environ.get("PATH_TO_VENV_BIN", "")) or "", "ssh-audit")
    audit = audit if os.path.exists(audit) else "ssh-audit"
    deadline = time.monotonic() + 90
    while True:
        proc = subprocess.run(
            [audit, "--skip-rate-test", "--no-colors", "-p", str(port), "127.0.0.1"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        out = proc.stdout
        if "(gen) banner" in out or time.monotonic() > deadline:
            break
        time.sleep(5)
    bad = [line for line in out.splitlines() if re.search(r"\[(fail|warn)\]", line)]
    return out, bad
