"""Real SSH clients other than OpenSSH, for proving who can still log in after hardening.

- paramiko (the library behind Ansible's paramiko connection and many Python tools);
- a Go client on golang.org/x/crypto/ssh (tests/clients/gossh), built once from
  the Go module proxy and cached by its go.sum.

Each login can be limited to given key exchanges, to play an older client
that knows no post-quantum hybrid.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pathlib
import shutil
import subprocess

import paramiko

REPO = pathlib.Path(__file__).resolve().parents[3]
GOSSH_SRC = REPO / "tests" / "clients" / "gossh"
GOSSH_CACHE = pathlib.Path(os.environ.get("KUBEGUARD_GOSSH_CACHE", REPO / ".cache" / "gossh"))


def paramiko_login(port, user, key_path, command, kex=None, negotiation=None):
    """Log in by key with paramiko and run ``command``; return ``(exit_status, stdout, agreed kex)``.

    ``kex``: only these key exchanges are offered (None: paramiko's defaults).
    ``negotiation``: a dict, filled with what each side offered on the wire:
    ``server`` (the server's KEXINIT list) and ``client`` (this client's, in order).
    Raises paramiko.SSHException when no algorithm matches or the login fails.
    """
    key = paramiko.Ed25519Key.from_private_key_file(key_path)
    # paramiko names the agreed key exchange only in its debug log ("Kex: <name>").
    log = logging.getLogger("paramiko.transport")
    agreed = _Agreed()
    previous_level = log.level
    log.addHandler(agreed)
    log.setLevel(logging.DEBUG)
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())  # noqa: S507 - throwaway lab host keys
    disabled = {}
    if kex is not None:
        disabled["kex"] = [k for k in paramiko.Transport._preferred_kex if k not in kex]
    try:
        client.connect(
            "127.0.0.1",
            port=port,
            username=user,
            pkey=key,
            allow_agent=False,
            look_for_keys=False,
            timeout=15,
            banner_timeout=15,
            auth_timeout=15,
            disabled_algorithms=disabled,
        )
        if negotiation is not None:
            negotiation["server"] = agreed.server_kex
            negotiation["client"] = list(client.get_transport().preferred_kex)
        _, stdout, _ = client.exec_command(command, timeout=30)
        out = stdout.read().decode()
        return stdout.channel.recv_exit_status(), out, agreed.kex
    finally:
        client.close()
        log.removeHandler(agreed)
        log.setLevel(previous_level)


class _Agreed(logging.Handler):
    kex = ""
    server_kex = None

    def emit(self, record):
        message = record.getMessage()
        if message.startswith("Kex: "):
            self.kex = message[len("Kex: ") :]
        # The peer's KEXINIT, logged as received (the first one: the initial key exchange).
        elif message.startswith("kex algos: ") and self.server_kex is None:
            self.server_kex = message[len("kex algos: ") :].split(", ")


def gossh_binary():
    """Build tests/clients/gossh once per go.sum (module proxy) and return the cached binary's path."""
    digest = hashlib.sha256(
        b"".join((GOSSH_SRC / name).read_bytes() for name in ("go.mod", "go.sum", "main.go"))
    ).hexdigest()[:16]
    binary = GOSSH_CACHE / f"gossh-{digest}"
    if binary.exists():
        return str(binary)
    GOSSH_CACHE.mkdir(parents=True, exist_ok=True)
    tmp = binary.with_suffix(f".tmp{os.getpid()}")
    go = shutil.which("go") or "/usr/local/go/bin/go"
    build = subprocess.run(
        [go, "build", "-mod=readonly", "-o", str(tmp), "."],
        cwd=GOSSH_SRC,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "CGO_ENABLED": "0"},
    )
    if build.returncode != 0:
        raise RuntimeError(f"go build of {GOSSH_SRC} failed (module proxy?):\n{build.stderr}")
    os.replace(tmp, binary)
    return str(binary)


def gossh_login(port, user, key_path, command, kex=None):
    """Log in by key with the Go x/crypto/ssh client; return the CompletedProcess (stdout: output, kex)."""
    args = [gossh_binary(), "-addr", f"127.0.0.1:{port}", "-user", user, "-key", key_path]
    if kex:
        args += ["-kex", ",".join(kex)]
    return subprocess.run([*args, "--", command], capture_output=True, text=True, timeout=60)
