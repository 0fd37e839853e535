"""Smoke checks: the node booted systemd and sshd answers on port 22."""


def test_systemd_is_pid_1(host):
    assert host.file("/proc/1/comm").content_string.strip() == "systemd"


def test_sshd_is_running_and_listening(host):
    assert host.service("ssh").is_running
    assert host.socket("tcp://0.0.0.0:22").is_listening


def test_sshd_speaks_ssh(host):
    # A real protocol exchange, not just an open port: the server banner.
    banner = host.run(
        "python3 -c \"import socket; s=socket.create_connection(('127.0.0.1',22)); print(s.recv(64).decode())\""
    )
    assert banner.rc == 0
    assert banner.stdout.startswith("SSH-2.0-OpenSSH_")
