"""Host-side helpers for the ssh_* verifiers: real clients against the published ports."""

from __future__ import annotations

import json
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


def _ssh_audit(port, *args, done):
    """Run ssh-audit until ``done(stdout)`` (OpenSSH 10 penalises the scanner's repeated connections)."""
    audit = os.path.join(os.path.dirname(os.environ.get("PATH_TO_VENV_BIN", "")) or "", "ssh-audit")
    audit = audit if os.path.exists(audit) else "ssh-audit"
    deadline = time.monotonic() + 90
    while True:
        proc = subprocess.run([audit, *args, "-p", str(port), "127.0.0.1"], capture_output=True, text=True, timeout=120)
        if done(proc.stdout) or time.monotonic() > deadline:
            return proc.stdout
        time.sleep(5)


def ssh_audit(port):
    """Run ssh-audit; return (output, [fail]/[warn] lines). Retries while the server refuses the scan."""
    out = _ssh_audit(port, "--skip-rate-test", "--no-colors", done=lambda out: "(gen) banner" in out)
    bad = [line for line in out.splitlines() if re.search(r"\[(fail|warn)\]", line)]
    return out, bad


def audit_findings(out):
    """``[(section, algorithm, line)]`` for every [fail]/[warn] line of ssh-audit's text output.

    A finding on a continuation line belongs to the algorithm named above it.
    """
    findings, section, name = [], "", ""
    for line in out.splitlines():
        match = re.match(r"^\((\w+)\) (\S+)", line)
        if match:
            section, name = match.groups()
        elif line.strip() and not line[0].isspace():
            section, name = "", ""
        if re.search(r"\[(fail|warn)\]", line):
            findings.append((section, name, line))
    return findings


def ssh_audit_policy(port, policy):
    """Evaluate the server against one of ssh-audit's built-in policies; return its JSON verdict."""
    out = _ssh_audit(port, "-P", policy, "-j", done=lambda out: '"passed"' in out)
    return json.loads(out)


# The key exchanges the role keeps after the post-quantum hybrids, in the
# order of ssh-audit's "Hardened Debian 12 (version 3)" policy.
CLASSICAL_KEX = (
    "curve25519-sha256",
    "curve25519-sha256@libssh.org",
    "diffie-hellman-group16-sha512",
    "diffie-hellman-group18-sha512",
    "diffie-hellman-group-exchange-sha256",
)
POLICY = {12: "Hardened Debian 12 (version 3)", 13: "Hardened Debian 13 (version 1)"}


def debian_release(host):
    return int(host.file("/etc/debian_version").content_string.split(".")[0])


ROLLBACK = "kubeguard-ssh-rollback"


def rollback_timer(host, since=None):
    """The dead-man timer as the node's systemd reports it: ``(is-active answer, events)``.

    ``events`` (oldest first, from the journal, since the epoch second ``since``):
    "armed" (the timer started), "stopped" (stopped before it fired: disarmed, or
    the rollback run at once) and "fired" (its service ran). A transient timer is
    unloaded once stopped, so is-active alone cannot tell "disarmed" from "never
    armed" or a systemd that did not answer: the journal can.
    """
    state = host.run(f"systemctl is-active {ROLLBACK}.timer").stdout.strip()
    window = f"--since=@{since}" if since is not None else ""
    journal = host.check_output(f"sudo -n journalctl -q -o cat {window} -u {ROLLBACK}.timer -u {ROLLBACK}.service")
    events = []
    for line in journal.splitlines():
        if line.startswith(f"Started {ROLLBACK}.timer"):
            events.append("armed")
        elif line.startswith(f"Stopped {ROLLBACK}.timer"):
            events.append("stopped")
        elif line.startswith(f"Started {ROLLBACK}.service"):
            events.append("fired")
    return state, events


def assert_rollback_disarmed(host, since=None):
    """Armed, then stopped before it fired, and nothing armed now."""
    state, events = rollback_timer(host, since)
    assert state == "inactive", f"is-active said {state!r}"
    assert "armed" in events, f"the rollback timer was never armed: {events}"
    last_armed = len(events) - 1 - events[::-1].index("armed")
    assert events[last_armed + 1 :] == ["stopped"], f"not disarmed after it was last armed: {events}"


def refused(func, seconds=60, step=3):
    """Retry ``func`` (a login expected to fail) until the server itself answers it.

    "Permission denied (<methods the server still offers>)" is sshd's refusal; a
    closed or reset connection says nothing about why (OpenSSH 10's
    PerSourcePenalties drops a source that just failed), so it is retried.
    """
    deadline = time.monotonic() + seconds
    while True:
        result = func()
        if result.returncode == 0 or "Permission denied" in result.stderr or time.monotonic() > deadline:
            return result
        time.sleep(step)


def node_now(host):
    """The node's clock, in epoch seconds (for journal windows)."""
    return int(host.check_output("date +%s"))


def server_log(host, since):
    """What the node's journal recorded since the epoch second ``since`` (sshd's reasons)."""
    return host.check_output(f"sudo -n journalctl -q -o cat --since=@{since}")
