"""The host CA store, signing and known_hosts on the controller, and the node's decide/install, with the real
ssh-keygen in a temporary directory (no node, no network)."""

import datetime
import os
import shutil
import stat
import subprocess

import pytest
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError
from ansible_collections.kubeguard.hardening.plugins.module_utils._sshd import certificates, hostca, hostcert

pytestmark = pytest.mark.skipif(not shutil.which("ssh-keygen"), reason="ssh-keygen is not installed")


class Runner:
    def __init__(self):
        self.calls = []

    def run_command(self, argv):
        self.calls.append(argv)
        run = subprocess.run(argv, capture_output=True, text=True, check=False)
        return run.returncode, run.stdout, run.stderr


def ca_params(tmp_path, **changes):
    params = {
        "ca_dir": str(tmp_path / "store" / "ssh"),
        "sign": [],
        "identity": "host:cp1",
        "principals": [],
        "validity_days": 365,
        "renew_before_days": 30,
        "known_hosts_path": None,
        "known_hosts_patterns": [],
        "known_hosts_merge": False,
    }
    params.update(changes)
    return params


def test_check_mode_creates_nothing(tmp_path):
    result = hostca.run(ca_params(tmp_path, known_hosts_path=str(tmp_path / "kh"), known_hosts_patterns=["cp1"]),
                        True, Runner())  # fmt: skip
    assert result["changed"] and result["ca_created"] and result["public_key"] == ""
    assert not (tmp_path / "store").exists() and not (tmp_path / "kh").exists()


def test_created_once_0600_then_kept(tmp_path):
    first = hostca.run(ca_params(tmp_path), False, Runner())
    key = tmp_path / "store" / "ssh" / "ssh_host_ca"
    assert first["changed"] and first["public_key"].startswith("ssh-ed25519 ")
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(key.parent.stat().st_mode) == 0o700
    assert "PRIVATE" not in repr(first)
    second = hostca.run(ca_params(tmp_path), False, Runner())
    assert not second["changed"] and second["public_key"] == first["public_key"]
    assert sorted(os.listdir(key.parent)) == ["ssh_host_ca", "ssh_host_ca.pub"]


def test_a_group_readable_ca_is_refused(tmp_path):
    hostca.run(ca_params(tmp_path), False, Runner())
    os.chmod(tmp_path / "store" / "ssh" / "ssh_host_ca", 0o640)
    with pytest.raises(KubeguardError) as err:
        hostca.run(ca_params(tmp_path), False, Runner())
    assert err.value.option == "ca_dir"


@pytest.mark.parametrize(
    "changes,option",
    [
        ({"renew_before_days": 400}, "renew_before_days"),
        ({"known_hosts_path": "/nonexistent-kubeguard/kh", "known_hosts_patterns": ["a b"]}, "known_hosts_patterns[0]"),
        ({"known_hosts_path": "relative"}, "known_hosts_path"),
        ({"sign": [{"public_key": "x"}], "principals": ["*"]}, "principals[0]"),
        ({"ca_dir": "relative/dir"}, "ca_dir"),
    ],
)
def test_bad_input_writes_nothing(tmp_path, changes, option):
    with pytest.raises(KubeguardError) as err:
        hostca.run(ca_params(tmp_path, **changes), False, Runner())
    assert err.value.option == option
    assert not (tmp_path / "store").exists()


@pytest.fixture
def node(tmp_path, monkeypatch):
    """A node's /etc/ssh with an ed25519 host key, and the controller's CA."""
    ssh_dir = tmp_path / "etc_ssh"
    ssh_dir.mkdir()
    key = ssh_dir / "ssh_host_ed25519_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", str(key)], check=True)
    ca = hostca.run(ca_params(tmp_path), False, Runner())
    monkeypatch.setattr(certificates.socket, "getfqdn", lambda: "cp1.example.org")
    monkeypatch.setattr(certificates.socket, "gethostname", lambda: "cp1")
    params = {
        "key_types": ["ed25519"],
        "names": ["cp1"],
        "addresses": ["10.123.0.10", "127.0.0.1"],
        "extra_principals": [],
        "ca_public_key": ca["public_key"],
        "validity_days": 365,
        "renew_before_days": 30,
        "certificates": [],
    }
    return ssh_dir, params


def sign_and_install(tmp_path, ssh_dir, params, now, validity_days=365):
    wanted, keys = certificates.inspect(params, Runner(), now, str(ssh_dir))
    todo = [k for k in keys if k["reason"]]
    if not todo:
        return wanted, keys, []
    signed = hostca.run(ca_params(tmp_path, sign=todo, principals=wanted, validity_days=validity_days), False, Runner())
    return wanted, keys, certificates.install(signed["certificates"], keys, False)


def test_sign_install_then_nothing_to_do_until_the_window(tmp_path, node):
    ssh_dir, params = node
    now = datetime.datetime.now(datetime.timezone.utc)
    wanted, keys, written = sign_and_install(tmp_path, ssh_dir, params, now)
    assert wanted == ["cp1", "cp1.example.org", "10.123.0.10"]
    assert keys[0]["reason"] == "missing"
    cert_path = str(ssh_dir / "ssh_host_ed25519_key-cert.pub")
    assert written == [cert_path]
    assert stat.S_IMODE(os.stat(cert_path).st_mode) == 0o644
    listing = subprocess.run(["ssh-keygen", "-L", "-f", cert_path], capture_output=True, text=True, check=True).stdout
    cert = hostcert.parse_listing(listing)
    assert cert["kind"] == "host" and cert["principals"] == wanted
    # Rerun: nothing to sign. Within the window (e.g. 340 days later): renewed.
    assert sign_and_install(tmp_path, ssh_dir, params, now)[2] == []
    later = now + datetime.timedelta(days=340)
    _unused, keys, written = sign_and_install(tmp_path, ssh_dir, params, later)
    assert "within 30 days" in keys[0]["reason"] and written == [cert_path]


def test_regenerated_key_new_principal_and_new_ca_each_re_sign(tmp_path, node):
    ssh_dir, params = node
    now = datetime.datetime.now(datetime.timezone.utc)
    sign_and_install(tmp_path, ssh_dir, params, now)
    key = ssh_dir / "ssh_host_ed25519_key"
    os.unlink(key)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", str(key)], input="y\n", text=True)
    assert "another key" in sign_and_install(tmp_path, ssh_dir, params, now)[1][0]["reason"]
    params["extra_principals"] = ["ssh.example.org"]
    assert "differ" in sign_and_install(tmp_path, ssh_dir, params, now)[1][0]["reason"]
    other = subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "other")], check=True)
    assert other.returncode == 0
    params["ca_public_key"] = (tmp_path / "other.pub").read_text()
    assert "another CA" in certificates.inspect(params, Runner(), now, str(ssh_dir))[1][0]["reason"]


def test_install_writes_only_certificate_paths(tmp_path, node):
    ssh_dir, params = node
    _unused, keys = certificates.inspect(params, Runner(), datetime.datetime.now(datetime.timezone.utc), str(ssh_dir))
    with pytest.raises(KubeguardError) as err:
        certificates.install([{"path": "/etc/passwd", "certificate": "x"}], keys, False)
    assert err.value.option == "certificates[0].path"
    with pytest.raises(KubeguardError) as err:
        certificates.install([{"path": keys[0]["certificate_path"], "certificate": "ssh-ed25519 AAAA"}], keys, False)
    assert err.value.option == "certificates[0].certificate"
    assert not os.path.exists(keys[0]["certificate_path"])


def test_known_hosts_written_once(tmp_path):
    params = ca_params(
        tmp_path, known_hosts_path=str(tmp_path / "kh" / "ssh_known_hosts"), known_hosts_patterns=["cp1"]
    )
    first = hostca.run(params, False, Runner())
    text = (tmp_path / "kh" / "ssh_known_hosts").read_text()
    assert first["known_hosts_changed"] and f"@cert-authority cp1 {first['public_key']} " in text
    assert not hostca.run(params, False, Runner())["changed"]


def test_known_hosts_merge_keeps_the_nodes_of_earlier_runs(tmp_path):
    params = ca_params(tmp_path, known_hosts_path=str(tmp_path / "ssh_known_hosts"), known_hosts_patterns=["cp1", "w1"])
    hostca.run(params, False, Runner())
    params.update(known_hosts_patterns=["w2", "cp1"], known_hosts_merge=True)
    result = hostca.run(params, False, Runner())
    assert hostcert.known_patterns((tmp_path / "ssh_known_hosts").read_text(), result["public_key"]) == [
        "cp1",
        "w1",
        "w2",
    ]
    params.update(known_hosts_merge=False)
    hostca.run(params, False, Runner())
    assert hostcert.known_patterns((tmp_path / "ssh_known_hosts").read_text(), result["public_key"]) == ["w2", "cp1"]


def test_rotation_with_dual_trust(tmp_path):
    kh = tmp_path / "ssh_known_hosts"
    params = ca_params(tmp_path, known_hosts_path=str(kh), known_hosts_patterns=["cp1"])
    old = hostca.run(params, False, Runner())["public_key"]
    with pytest.raises(KubeguardError) as err:
        hostca.run(dict(params, rotation="resign"), False, Runner())
    assert err.value.option == "rotation"
    assert hostca.run(dict(params, rotation="add"), True, Runner())["trusted"] == [old, ""]
    assert not (tmp_path / "store" / "ssh" / "ssh_host_ca.next").exists()
    added = hostca.run(dict(params, rotation="add"), False, Runner())
    new = added["trusted"][1]
    assert added["changed"] and added["public_key"] == old and new != old
    assert [line.split()[2:4] for line in kh.read_text().splitlines()[1:]] == [old.split(), new.split()]
    assert not hostca.run(dict(params, rotation="add"), False, Runner())["changed"]
    assert hostca.run(params, False, Runner())["trusted"] == [old, new]  # "none" keeps the pending next CA
    resign = hostca.run(dict(params, rotation="resign"), False, Runner())
    assert resign["public_key"] == new and resign["path"].endswith("ssh_host_ca.next")
    assert not resign["changed"]
    finish = hostca.run(dict(params, rotation="finish"), False, Runner())
    assert finish["ca_promoted"] and finish["trusted"] == [new] and finish["path"].endswith("ssh_host_ca")
    assert [line.split()[2:4] for line in kh.read_text().splitlines()[1:]] == [new.split()]
    store = tmp_path / "store" / "ssh"
    assert sorted(os.listdir(store)) == [
        "ssh_host_ca",
        "ssh_host_ca.pub",
        "ssh_host_ca.retired",
        "ssh_host_ca.retired.pub",
    ]
    assert stat.S_IMODE((store / "ssh_host_ca").stat().st_mode) == 0o600
    again = hostca.run(dict(params, rotation="finish"), False, Runner())
    assert not again["changed"] and again["public_key"] == new
