"""Verify the non-default hardening from outside: groups, CA certificates, banner, ports, socket, Match."""

from __future__ import annotations

import os
import subprocess

from kubeguard_test import sshcheck

EPHEMERAL = os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", ".")
SECOND_PORT = {22360: 22362, 22361: 22363}


def effective(host, user="operator"):
    out = host.check_output(f"sudo -n sshd -T -C user={user},host=client,addr=10.88.0.1")
    conf = {}
    for line in out.splitlines():
        key, _, value = line.partition(" ")
        conf.setdefault(key, []).append(value)
    return conf


def test_effective_custom_values(host):
    conf = effective(host)
    assert conf["allowgroups"] == ["sshusers"]
    assert sorted(conf["port"]) == ["22", "2222"]
    assert conf["maxauthtries"] == ["2"]
    assert conf["logingracetime"] == ["20"]
    assert conf["maxstartups"] == ["5:50:20"]
    assert conf["maxsessions"] == ["6"]
    assert conf["permitlisten"] == ["none"]
    assert conf["ciphers"] == ["chacha20-poly1305@openssh.com,aes256-gcm@openssh.com"]
    assert conf["macs"] == ["hmac-sha2-512-etm@openssh.com"]
    assert all("sntrup761" in k or "mlkem768" in k for k in conf["kexalgorithms"][0].split(","))
    assert conf["banner"] == ["/etc/ssh/sshd_banner"]
    assert conf["trustedusercakeys"] == ["/etc/ssh/trusted_user_ca_keys"]
    assert conf["authorizedprincipalsfile"] == ["/etc/ssh/auth_principals/%u"]


def test_cloud_init_dropin_cannot_reenable_passwords(host):
    assert host.file("/etc/ssh/sshd_config.d/50-cloud-init.conf").content_string == "PasswordAuthentication yes\n"
    assert effective(host)["passwordauthentication"] == ["no"]


def test_match_block_for_sftponly(host):
    assert effective(host, "bob")["forcecommand"] == ["internal-sftp"]


def test_weak_rsa_host_key_regenerated(host):
    out = host.check_output("ssh-keygen -lf /etc/ssh/ssh_host_rsa_key.pub")
    assert out.split()[0] == "4096"


def test_root_password_locked(host):
    assert host.check_output("sudo -n passwd -S root").split()[1] == "L"


def test_socket_activation_kept_on_trixie(host):
    name = host.ansible.get_variables()["inventory_hostname"]
    if "trixie" not in name:
        assert host.service("ssh").is_enabled
        return
    assert host.run("systemctl is-enabled ssh.socket").stdout.strip() == "enabled"
    assert host.run("systemctl is-enabled ssh.service").stdout.strip() == "disabled"
    assert host.run("systemctl is-enabled ssh.socket").stdout.strip() != "masked"
    dropin = host.file("/etc/systemd/system/ssh.socket.d/kubeguard-listen.conf").content_string
    assert "ListenStream=2222" in dropin
    assert "2222" in host.check_output("systemctl show -p Listen ssh.socket")


def test_operator_in_allowed_group_logs_in_on_both_ports(host):
    port = sshcheck.port_of(host)
    for p in (port, SECOND_PORT[port]):
        result = sshcheck.until(lambda p=p: sshcheck.ssh_key(p, "operator", "id", "-un"))
        assert result.returncode == 0, f"port {p}: {result.stderr}"


def test_banner_is_shown(host):
    proc = subprocess.run(
        ["ssh", "-p", str(sshcheck.port_of(host)), *sshcheck.COMMON[:-2], "-o", "BatchMode=yes",
         "-i", sshcheck.KEY, "operator@127.0.0.1", "true"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert "kubeguard lab node: authorized access only." in proc.stderr


def test_certificate_login_with_principal(host):
    key = os.path.join(EPHEMERAL, "alice")
    result = sshcheck.until(
        lambda: sshcheck.ssh_key(
            sshcheck.port_of(host), "alice", "id", "-un", key=key, extra=("-o", f"CertificateFile={key}-cert.pub")
        )
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "alice"


def test_sftp_only_user_gets_sftp_but_no_shell(host):
    port = sshcheck.port_of(host)
    sftp = subprocess.run(
        ["sftp", "-P", str(port), *sshcheck.COMMON, "-o", "BatchMode=yes", "-i", sshcheck.KEY, "-b", "-",
         "bob@127.0.0.1"],
        input="ls\n", capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert sftp.returncode == 0, sftp.stderr
    shell = sshcheck.ssh_key(port, "bob", "id", "-un")
    assert "bob" not in shell.stdout


def test_ssh_audit_no_fail_no_warn(host):
    out, bad = sshcheck.ssh_audit(sshcheck.port_of(host))
    assert "(gen) banner" in out, out
    assert bad == [], "\n".join(bad)


def test_alice_without_certificate_refused(host):
    key = os.path.join(EPHEMERAL, "alice")
    result = sshcheck.refused(
        lambda: sshcheck.ssh_key(sshcheck.port_of(host), "alice", "true", key=key, extra=("-o", "CertificateFile=none"))
    )
    assert result.returncode != 0
    assert "Permission denied (publickey)." in result.stderr, result.stderr


def test_user_outside_allow_groups_refused(host):
    since = sshcheck.node_now(host)
    result = sshcheck.refused(lambda: sshcheck.ssh_key(sshcheck.port_of(host), "carol", "true"))
    assert result.returncode != 0
    assert "Permission denied" in result.stderr or "Connection closed" in result.stderr, result.stderr
    assert "Permission denied (publickey)." in result.stderr, result.stderr
    # The server says why: AllowGroups, not the key.
    log = sshcheck.server_log(host, since)
    assert "User carol from" in log and "none of user's groups are listed in AllowGroups" in log, log[-2000:]


def test_password_login_refused_despite_cloud_init(host):
    result = sshcheck.refused(lambda: sshcheck.ssh_password(sshcheck.port_of(host), "operator", "operator", "true"))
    assert result.returncode != 0
    assert "Permission denied (publickey)." in result.stderr, result.stderr
