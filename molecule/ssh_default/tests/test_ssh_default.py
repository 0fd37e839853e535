"""Verify the default hardening from outside, with real clients (ssh, sshpass, sftp, ssh-audit)."""

from __future__ import annotations

import subprocess

import pytest
from kubeguard_test import sshcheck


def effective(host):
    out = host.check_output("sudo -n sshd -T -C user=operator,host=client,addr=10.88.0.1")
    conf = {}
    for line in out.splitlines():
        key, _, value = line.partition(" ")
        conf.setdefault(key, []).append(value)
    return conf


@pytest.mark.parametrize(
    ("keyword", "value"),
    [
        ("permitrootlogin", "no"),
        ("passwordauthentication", "no"),
        ("kbdinteractiveauthentication", "no"),
        ("permitemptypasswords", "no"),
        ("pubkeyauthentication", "yes"),
        ("authenticationmethods", "publickey"),
        ("gssapiauthentication", "no"),
        ("hostbasedauthentication", "no"),
        ("usepam", "yes"),
        ("maxauthtries", "3"),
        ("logingracetime", "30"),
        ("maxstartups", "10:30:60"),
        ("clientaliveinterval", "300"),
        ("clientalivecountmax", "3"),
        ("loglevel", "VERBOSE"),
        ("allowagentforwarding", "no"),
        ("allowtcpforwarding", "no"),
        ("x11forwarding", "no"),
        ("permittunnel", "no"),
        ("permituserenvironment", "no"),
        ("compression", "no"),
        ("usedns", "no"),
        ("subsystem", "sftp internal-sftp"),
    ],
)
def test_effective_value(host, keyword, value):
    assert effective(host)[keyword] == [value]


def test_weak_dropin_cannot_reenable_passwords(host):
    # The image's own 00-lab-weak.conf says PasswordAuthentication yes: it stays but loses.
    assert "PasswordAuthentication yes" in host.file("/etc/ssh/sshd_config.d/00-lab-weak.conf").content_string
    assert effective(host)["passwordauthentication"] == ["no"]


def test_crypto_only_known_and_hardened(host):
    conf = effective(host)
    supported_kex = host.check_output("ssh -Q kex").split()
    kex = conf["kexalgorithms"][0].split(",")
    assert set(kex) <= set(supported_kex)
    # Post-quantum hybrids first, then the classical ones kept for compatibility
    # (ssh_custom checks the strict post_quantum_only opt-in).
    hybrids = [k for k in kex if "sntrup761" in k or "mlkem768" in k]
    assert hybrids
    assert kex == hybrids + [k for k in sshcheck.CLASSICAL_KEX if k in supported_kex]
    assert all("-etm@" in m for m in conf["macs"][0].split(","))
    assert sorted(conf["hostkey"]) == ["/etc/ssh/ssh_host_ed25519_key", "/etc/ssh/ssh_host_rsa_key"]
    if "mlkem768x25519-sha256" in supported_kex:
        assert kex[0] == "mlkem768x25519-sha256"
    if "persourcepenalties" in conf:
        assert conf["persourcepenalties"][0].startswith("crash:90 authfail:5")


def test_moduli_at_least_3072_bits(host):
    weak = host.check_output("awk '$5 ~ /^[0-9]+$/ && $5 < 3071' /etc/ssh/moduli | wc -l")
    assert weak == "0"


def test_rollback_disarmed(host):
    assert host.run("systemctl is-active kubeguard-ssh-rollback.timer").stdout.strip() != "active"
    # Converge armed it and disarmed it before it fired; the rollback never ran.
    sshcheck.assert_rollback_disarmed(host)
    assert "restored" not in host.run("sudo -n cat /var/lib/kubeguard/ssh_hardening/rollback.log").stdout


def test_operator_key_login_works(host):
    result = sshcheck.until(lambda: sshcheck.ssh_key(sshcheck.port_of(host), "operator", "id", "-un"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "operator"


def test_sftp_and_scp_work(host, tmp_path):
    port = sshcheck.port_of(host)
    src = tmp_path / "payload.txt"
    src.write_text("kubeguard\n")
    common = ["-P", str(port), *sshcheck.COMMON, "-o", "BatchMode=yes", "-i", sshcheck.KEY]
    scp = subprocess.run(["scp", *common, str(src), "operator@127.0.0.1:/tmp/scp.txt"], capture_output=True, text=True)
    assert scp.returncode == 0, scp.stderr
    sftp = subprocess.run(
        ["sftp", *common, "-b", "-", "operator@127.0.0.1"],
        input="put " + str(src) + " /tmp/sftp.txt\nls /tmp/sftp.txt\n",
        capture_output=True,
        text=True,
    )
    assert sftp.returncode == 0, sftp.stderr
    assert host.file("/tmp/sftp.txt").content_string == "kubeguard\n"


def test_ssh_audit_no_fail_and_warns_only_for_classical_kex(host):
    out, bad = sshcheck.ssh_audit(sshcheck.port_of(host))
    assert "(gen) banner" in out, out
    assert not [line for line in bad if "[fail]" in line], "\n".join(bad)
    findings = sshcheck.audit_findings(out)
    assert findings, "the classical key exchanges should be warned about"
    assert all(sec == "kex" and name in sshcheck.CLASSICAL_KEX for sec, name, _ in findings), "\n".join(bad)


@pytest.mark.parametrize(("user", "password"), [("operator", "operator"), ("root", "root")])
def test_password_login_refused(host, user, password):
    result = sshcheck.refused(lambda: sshcheck.ssh_password(sshcheck.port_of(host), user, password, "true"))
    assert result.returncode != 0
    assert "Permission denied" in result.stderr or "Connection closed" in result.stderr, result.stderr
    # sshd's own refusal: public keys are all it offers, so no password is even asked.
    assert "Permission denied (publickey)." in result.stderr, result.stderr


def test_root_key_login_refused(host):
    # prepare authorized the same key for root, so only PermitRootLogin stops it.
    assert host.file("/root/.ssh/authorized_keys").exists
    since = sshcheck.node_now(host)
    result = sshcheck.refused(lambda: sshcheck.ssh_key(sshcheck.port_of(host), "root", "true"))
    assert result.returncode != 0
    assert "Permission denied" in result.stderr or "Connection closed" in result.stderr, result.stderr
    assert "Permission denied (publickey)." in result.stderr, result.stderr
    # The server says why: PermitRootLogin, not the key.
    assert "ROOT LOGIN REFUSED" in sshcheck.server_log(host, since)
