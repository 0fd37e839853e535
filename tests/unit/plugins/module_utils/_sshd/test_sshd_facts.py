"""The one gather call of sshd_facts, run against a directory tree and canned command output."""

import pytest
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError
from ansible_collections.kubeguard.hardening.plugins.module_utils._sshd import facts

ED25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAAAAAAAAAAAAAAAAAAAAAAA"
SHOW = """Id=ssh.service
LoadState=loaded
ActiveState=inactive
UnitFileState=disabled
Accept=no

Id=ssh.socket
LoadState=loaded
ActiveState=active
UnitFileState=enabled
Accept=no

Id=sshd.service
LoadState=not-found
"""


class Runner:
    def __init__(self, effective):
        self.effective, self.calls = effective, []

    def run_command(self, argv):
        self.calls.append(argv)
        if argv[:2] == ["ssh", "-V"]:
            return 0, "", "OpenSSH_10.0p2 Debian-7, OpenSSL 3.5.1 1 Jul 2025\n"
        if argv[:2] == ["ssh", "-Q"]:
            return 0, {"kex": "mlkem768x25519-sha256\ncurve25519-sha256\n"}.get(argv[2], "x\n"), ""
        if argv[0] == "sshd":
            return 0, self.effective, ""
        if argv[0] == "systemctl":
            return 0, SHOW, ""
        return 1, "", "unexpected"


@pytest.fixture
def tree(tmp_path, monkeypatch):
    monkeypatch.delenv("SUDO_USER", raising=False)
    etc = tmp_path / "etc" / "ssh"
    (etc / "sshd_config.d").mkdir(parents=True)
    (etc / "sshd_config").write_text("Port 22\nInclude sshd_config.d/*.conf\n")
    dropin = etc / "sshd_config.d" / "50-cloud-init.conf"
    dropin.write_text("PasswordAuthentication yes\nMatch User x\n  Banner none\n")
    (etc / "ssh_host_ed25519_key.pub").write_text(ED25519 + " root@node\n")
    (etc / "moduli").write_text("# c\n1 2 6 100 2047 5 C2\n1 2 6 100 3071 2 D3\n1 2 6 100 4095 5 E4\n")
    (tmp_path / "etc" / "shadow").write_text("root:!*:20000:0:99999:7:::\n")
    (tmp_path / "etc" / "os-release").write_text('ID=debian\nVERSION_ID="13"\n')
    (tmp_path / "root" / ".ssh").mkdir(parents=True)
    (tmp_path / "root" / ".ssh" / "authorized_keys").write_text(ED25519 + " me\n")
    (tmp_path / "proc" / "net").mkdir(parents=True)
    # One established connection 10.0.0.5 -> local port 22 (0x16).
    (tmp_path / "proc" / "net" / "tcp").write_text(
        "  sl  local_address rem_address   st\n   0: 0100007F:0016 0500000A:D431 01 0\n"
    )
    return tmp_path


def test_gather(tree):
    runner = Runner("port 22\nauthorizedkeysfile .ssh/authorized_keys\npersourcepenalties crash:90\n")
    params = {"user": "root", "sshd_config": "/etc/ssh/sshd_config", "moduli_min_bits": 3072}
    result = facts.gather(params, runner, str(tree))
    assert result["version_info"] == [10, 0]
    assert result["release"] == "debian13"
    assert result["algorithms"]["kex"] == ["mlkem768x25519-sha256", "curve25519-sha256"]
    assert result["keywords"] == ["authorizedkeysfile", "persourcepenalties", "port"]
    assert result["dropins"] == {"/etc/ssh/sshd_config.d/50-cloud-init.conf": [["passwordauthentication", "yes"]]}
    assert result["service"]["socket_activated"] is True
    assert result["service"]["socket_dropin"] == "/etc/systemd/system/ssh.socket.d/kubeguard-listen.conf"
    assert result["service"]["socket_dropin_exists"] is False
    assert result["host_keys"] == [{"path": "/etc/ssh/ssh_host_ed25519_key", "type": "ssh-ed25519", "bits": 256}]
    assert result["moduli_weak"] == 1
    assert result["account"]["key_types"] == ["ssh-ed25519"]
    assert result["connection"] == {"addr": "10.0.0.5", "host": "10.0.0.5", "lport": "22"}
    assert result["root_password_locked"] is True
    assert "listen_streams" not in result
    spec = runner.calls[[c[0] for c in runner.calls].index("sshd") + 1][-1]
    assert spec == "user=root,host=10.0.0.5,addr=10.0.0.5,lport=22"


def test_gather_validates_listen_inputs_before_any_command(tree):
    runner = Runner("port 22\n")
    with pytest.raises(KubeguardError) as err:
        facts.gather({"user": "root", "ports": [22, 70000]}, runner, str(tree))
    assert err.value.option == "ssh_hardening_ports"
    assert runner.calls == []
    ok = facts.gather({"user": "root", "ports": [22, 2222], "listen_addresses": []}, runner, str(tree))
    assert ok["listen_streams"] == ["22", "2222"]


def test_unknown_account_names_the_variable(tree):
    with pytest.raises(KubeguardError) as err:
        facts.gather({"user": "no-such-user-kg"}, Runner("port 22\n"), str(tree))
    assert err.value.option == "ssh_hardening_connection_user"


@pytest.mark.parametrize(
    ("text", "expected"),
    [('ID=debian\nVERSION_ID="12"\n', "debian12"), ("ID=ubuntu\nVERSION_ID=24.04\n", "ubuntu24"), ("", "")],
)
def test_release(text, expected):
    assert facts.release(text) == expected


def test_service_state_plain_service():
    show = "Id=ssh.service\nLoadState=loaded\nActiveState=active\nUnitFileState=enabled\n"
    state = facts.service_state(show, lambda path: True)
    assert state["service_active"] is True
    assert state["socket_activated"] is False
    assert state["socket_dropin_exists"] is True


IP_ADDR = "1: lo    inet 127.0.0.1/8 scope host lo\n2: eth0@if9    inet 10.123.0.10/24 scope global eth0\n"


class AddrRunner(Runner):
    def run_command(self, argv):
        if argv[:2] == ["ip", "-o"]:
            self.calls.append(argv)
            return 0, IP_ADDR, ""
        return super().run_command(argv)


@pytest.mark.parametrize(
    ("addresses", "words"),
    [
        (["10.9.9.9"], "10.9.9.9 is not an address of the node (it has 10.123.0.10, 127.0.0.1)"),
        (["10.123.0.10", "10.123.0.99"], "10.123.0.99 is not an address"),
        (["no-such-host.invalid"], "resolves to nothing on the node"),
    ],
)
def test_a_foreign_listen_address_is_refused_before_sshd_is_asked(tree, addresses, words):
    runner = AddrRunner("port 22\n")
    with pytest.raises(KubeguardError) as err:
        facts.gather({"user": "root", "ports": [22], "listen_addresses": addresses}, runner, str(tree))
    assert err.value.option == "ssh_hardening_listen_addresses"
    assert words in str(err.value)
    assert runner.calls == [["ip", "-o", "addr", "show"]]  # nothing else ran, nothing was written


def test_own_and_wildcard_listen_addresses_pass(tree):
    runner = AddrRunner("port 22\n")
    params = {"user": "root", "ports": [22], "listen_addresses": ["10.123.0.10", "0.0.0.0", "localhost"]}  # noqa: S104
    result = facts.gather(params, runner, str(tree))
    assert result["listen_streams"] == ["10.123.0.10:22", "0.0.0.0:22", "localhost:22"]
