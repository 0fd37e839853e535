"""With the default KEX, real clients log in by key, including ones without a post-quantum hybrid.

Each client logs in twice: with its own defaults, and limited to classical key
exchanges (what paramiko < 4, OpenSSH < 9.0, PuTTY < 0.78 and older Go
x/crypto/ssh offer). test_ssh_zz_strict.py shows the same limited clients
refused under ssh_hardening_kex_post_quantum_only, so these tests can fail.
"""

from __future__ import annotations

import pytest
from kubeguard_test import clients, sshcheck

CURVE25519 = ["curve25519-sha256", "curve25519-sha256@libssh.org"]


def test_openssh_client_default(host):
    result = sshcheck.until(lambda: sshcheck.ssh_key(sshcheck.port_of(host), "operator", "id", "-un"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "operator"


@pytest.mark.parametrize("kex", ["curve25519-sha256", "diffie-hellman-group16-sha512"])
def test_openssh_client_classical_kex(host, kex):
    result = sshcheck.until(
        lambda: sshcheck.ssh_key(sshcheck.port_of(host), "operator", "id", "-un", extra=("-o", f"KexAlgorithms={kex}"))
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "operator"


@pytest.mark.parametrize("kex", [None, CURVE25519], ids=["paramiko-default", "paramiko-curve25519-only"])
def test_paramiko_client(host, kex):
    wire = {}
    status, out, agreed = clients.paramiko_login(
        sshcheck.port_of(host), "operator", sshcheck.KEY, "id -un", kex=kex, negotiation=wire
    )
    assert (status, out.strip()) == (0, "operator")
    assert agreed
    # What the server offered on the wire is its configured list (plus the extension markers) ...
    effective = host.check_output("sudo -n sshd -T -C user=operator,host=client,addr=10.88.0.1")
    kex_line = next(line for line in effective.splitlines() if line.startswith("kexalgorithms "))
    configured = kex_line.split()[1].split(",")
    assert [k for k in wire["server"] if not k.startswith(("ext-info-", "kex-strict-"))] == configured, wire
    # ... and the key exchange agreed is RFC 4253's: the client's first that the server offers.
    if kex is not None:
        assert wire["client"] == [k for k in wire["client"] if k in kex] and agreed in kex, wire
    assert agreed == next(k for k in wire["client"] if k in wire["server"]), (agreed, wire)


@pytest.mark.parametrize("kex", [None, CURVE25519], ids=["go-default", "go-curve25519-only"])
def test_go_x_crypto_ssh_client(host, kex):
    result = clients.gossh_login(sshcheck.port_of(host), "operator", sshcheck.KEY, "id -un", kex=kex)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "operator"


def test_release_policy(host):
    """Debian 12 passes its ssh-audit policy as is; Debian 13's policy is post-quantum only.

    On Debian 13 the defaults differ from it only by the classical key exchanges
    kept for compatibility, appended after the policy's own list in order
    (test_ssh_zz_strict.py shows the full pass with post_quantum_only).
    """
    release = sshcheck.debian_release(host)
    verdict = sshcheck.ssh_audit_policy(sshcheck.port_of(host), sshcheck.POLICY[release])
    if release == 12:
        assert verdict["passed"], verdict["errors"]
        return
    assert [e["mismatched_field"] for e in verdict["errors"]] == ["Key exchanges"], verdict["errors"]
    (error,) = verdict["errors"]
    actual = [k for k in error["actual"] if k not in sshcheck.CLASSICAL_KEX]
    assert actual == error["expected_required"], error
