"""The sshd_config and sshd_moduli entry points against a fake node: no Ansible, no sshd."""

import os
import pathlib
import shutil

import pytest
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError
from ansible_collections.kubeguard.hardening.plugins.module_utils._sshd import apply

EFFECTIVE = """port 22
permitrootlogin no
pubkeyauthentication yes
authenticationmethods publickey
authorizedkeysfile {keys}
pubkeyacceptedalgorithms ssh-ed25519,rsa-sha2-512
"""


class FakeNode:
    """What the entry points use of an AnsibleModule: run_command, backup_local, atomic_move, tmpdir."""

    def __init__(self, tmp_path, effective, rc=None):
        self.tmpdir = str(tmp_path / "tmp")
        os.makedirs(self.tmpdir, exist_ok=True)
        self.effective, self.rc, self.calls = effective, rc or {}, []

    def run_command(self, argv):
        self.calls.append(argv)
        if argv[0] == "sshd" and argv[1] == "-T":
            return 0, self.effective, ""
        return self.rc.get(argv[0], (0, "", ""))

    def backup_local(self, path):
        shutil.copy2(path, path + ".bak")
        return path + ".bak"

    def atomic_move(self, src, dest):
        os.replace(src, dest)


@pytest.fixture
def setup(tmp_path, monkeypatch):
    monkeypatch.setattr(apply.shutil, "which", lambda *a, **k: "/usr/sbin/sshd")
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "authorized_keys").write_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAAAAAAAAAAAAAAAAAAAAAAA me\n")
    path = tmp_path / "sshd_config"
    path.write_text("PasswordAuthentication yes\n")
    params = {
        "path": str(path),
        "header": "# managed",
        "settings": {"Port": [22], "PermitRootLogin": "no", "MaxAuthTries": 3},
        "algorithm_preferences": {"kex": ["mlkem768x25519-sha256", "curve25519-sha256"]},
        "post_quantum_only": False,
        "supported_algorithms": {"kex": ["curve25519-sha256", "mlkem768x25519-sha256"]},
        "keywords": ["port"],
        "include": str(tmp_path / "sshd_config.d" / "*.conf"),
        "match_blocks": [],
        "account": {"name": "operator", "uid": 1000, "home": str(home), "groups": ["operator"]},
        "connection": {"addr": "10.0.0.1", "lport": "22"},
        "access_check": True,
        "backup": True,
        "rollback_timeout": 90,
        "state_dir": str(tmp_path / "state"),
        "service": "ssh",
        "socket_dropin": str(tmp_path / "kubeguard-listen.conf"),
    }
    node = FakeNode(tmp_path, EFFECTIVE.format(keys=str(home / ".ssh" / "authorized_keys")))
    return params, node, path


def test_check_mode_decides_and_writes_nothing(setup):
    params, node, path = setup
    result = apply.sshd_config(params, True, node)
    assert result["changed"] is True
    assert result["algorithms"]["KexAlgorithms"] == ["mlkem768x25519-sha256", "curve25519-sha256"]
    assert path.read_text() == "PasswordAuthentication yes\n"
    assert not os.path.exists(params["state_dir"])
    assert not [c for c in node.calls if c[0] == "systemd-run"]
    spec = next(c for c in node.calls if c[:2] == ["sshd", "-T"])[-1]
    assert spec == "user=operator,host=10.0.0.1,addr=10.0.0.1,lport=22"


def test_apply_writes_backs_up_and_arms_the_rollback(setup):
    params, node, path = setup
    result = apply.sshd_config(params, False, node)
    assert result["changed"] is True
    assert "KexAlgorithms mlkem768x25519-sha256,curve25519-sha256" in path.read_text()
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert pathlib.Path(result["backup_file"]).read_text() == "PasswordAuthentication yes\n"
    rollback = result["rollback"]
    assert rollback["armed"] is True
    assert pathlib.Path(rollback["previous"]).read_text() == "PasswordAuthentication yes\n"
    script = pathlib.Path(rollback["script"]).read_text()
    assert f"cp -p '{rollback['previous']}' '{path}'" in script
    assert "systemctl restart 'ssh.socket'" in script
    assert os.path.exists(os.path.join(params["state_dir"], "socket-dropin.absent"))
    (run,) = [c for c in node.calls if c[0] == "systemd-run"]
    assert "--on-active=90s" in run
    again = apply.sshd_config(params, False, node)
    assert again["changed"] is False
    assert again["rollback"]["armed"] is False


@pytest.mark.parametrize(
    ("change", "option"),
    [
        ({"settings": {"Port": [70000]}}, "ssh_hardening_ports"),
        ({"settings": {"ListenAddress": ["999.1.1.1"]}}, "ssh_hardening_listen_addresses"),
        ({"settings": {"MaxAuthTries": 0}}, "ssh_hardening_max_auth_tries"),
        ({"algorithm_preferences": {"kex": ["sntrup761x25519-sha512"]}}, "ssh_hardening_kex_preference"),
        (
            {"account": {"name": "root", "uid": 0, "home": "/nonexistent", "groups": []}},
            "ssh_hardening_permit_root_login",
        ),
    ],
)
def test_refusals_name_the_variable_and_write_nothing(setup, change, option):
    params, node, path = setup
    with pytest.raises(KubeguardError) as err:
        apply.sshd_config({**params, **change}, False, node)
    assert err.value.option == option
    assert path.read_text() == "PasswordAuthentication yes\n"
    assert not os.path.exists(params["state_dir"])


@pytest.mark.parametrize(
    ("command", "failure", "option"),
    [
        ("sshd", "/tmp/x line 9: Bad key types 'x' in KexAlgorithms", "ssh_hardening_kex_preference"),
        ("systemd-run", "Failed to start transient timer unit", "ssh_hardening_rollback_timeout"),
    ],
)
def test_node_command_failures_name_the_variable(setup, command, failure, option):
    """sshd -t rejects the candidate, or the rollback timer does not arm: nothing is written either way."""
    params, node, path = setup
    node.rc[command] = (255, "", failure)
    with pytest.raises(KubeguardError) as err:
        apply.sshd_config(params, False, node)
    assert err.value.option == option
    assert path.read_text() == "PasswordAuthentication yes\n"


def test_existing_socket_dropin_is_kept_for_the_rollback(setup):
    params, node, _ = setup
    with open(params["socket_dropin"], "w") as handle:
        handle.write("[Socket]\nListenStream=2222\n")
    apply.sshd_config(params, False, node)
    kept = os.path.join(params["state_dir"], "socket-dropin.previous")
    assert pathlib.Path(kept).read_text() == "[Socket]\nListenStream=2222\n"


MODULI = "# comment\n20240828044144 2 6 100 2047 5 C2CE\n20240828044144 2 6 100 3071 2 D3DF\n"


@pytest.mark.parametrize("check_mode", [True, False])
def test_sshd_moduli(tmp_path, check_mode):
    path = tmp_path / "moduli"
    path.write_text(MODULI)
    params = {"path": str(path), "min_bits": 3072, "backup": False}
    result = apply.sshd_moduli(params, check_mode, FakeNode(tmp_path, ""))
    assert (result["changed"], result["kept"], result["removed"]) == (True, 1, 1)
    assert result["diff"] == {"before": "2 moduli\n", "after": "1 moduli (>= 3072 bits)\n"}
    assert (path.read_text() == MODULI) is check_mode


def test_sshd_moduli_unreadable_names_the_option(tmp_path):
    with pytest.raises(KubeguardError) as err:
        apply.sshd_moduli({"path": str(tmp_path / "none"), "min_bits": 3072, "backup": False}, False, None)
    assert err.value.option == "path"
