"""The strict opt-in, switched on under --tags ssh_hardening_config and back off: runs last.

With ssh_hardening_kex_post_quantum_only only the post-quantum hybrids are
offered: ssh-audit shows 0 [fail] and 0 [warn], Debian 13 passes its policy,
and the classical-only clients that log in under the defaults
(test_ssh_kex_compat.py) are refused, while a hybrid-capable client still gets in.
"""

from __future__ import annotations

import json
import pathlib

import paramiko
import pytest
from kubeguard_test import clients, molecule, sshcheck

PLAY = str(pathlib.Path(__file__).resolve().parents[1] / "role.yml")
STRICT = json.dumps({"ssh_hardening_kex_post_quantum_only": True})
CURVE25519 = ["curve25519-sha256", "curve25519-sha256@libssh.org"]


def test_post_quantum_only(host):
    name = host.ansible.get_variables()["inventory_hostname"]
    port = sshcheck.port_of(host)
    change = ("--tags", "ssh_hardening_config", "--limit", name)
    try:
        proc, recap = molecule.playbook(PLAY, *change, "-e", STRICT)
        assert proc.returncode == 0, proc.stdout[-3000:]
        assert recap[name]["changed"] >= 1, recap

        out, bad = sshcheck.ssh_audit(port)
        assert "(gen) banner" in out, out
        assert bad == [], "\n".join(bad)
        if sshcheck.debian_release(host) == 13:
            verdict = sshcheck.ssh_audit_policy(port, sshcheck.POLICY[13])
            assert verdict["passed"], verdict["errors"]

        hybrid = sshcheck.until(lambda: sshcheck.ssh_key(port, "operator", "id", "-un"))
        assert hybrid.returncode == 0, hybrid.stderr
        # -v: the negotiation failure is logged below the verifier's LogLevel=ERROR.
        classical = sshcheck.ssh_key(port, "operator", "true", extra=("-v", "-o", "KexAlgorithms=curve25519-sha256"))
        assert classical.returncode != 0
        assert "no matching key exchange" in classical.stderr, classical.stderr
        with pytest.raises(paramiko.SSHException, match="kex"):
            clients.paramiko_login(port, "operator", sshcheck.KEY, "true", kex=CURVE25519)
        go = clients.gossh_login(port, "operator", sshcheck.KEY, "true", kex=CURVE25519)
        assert go.returncode != 0
        assert "no common algorithm for key exchange" in go.stderr, go.stderr
    finally:
        proc, _ = molecule.playbook(PLAY, *change)
        assert proc.returncode == 0, proc.stdout[-3000:]
    # Back on the defaults: the classical-only client gets in again.
    status, out, _ = clients.paramiko_login(port, "operator", sshcheck.KEY, "id -un", kex=CURVE25519)
    assert (status, out.strip()) == (0, "operator")
