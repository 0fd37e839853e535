"""The atomic write helper and the kubeconfig reader/writer."""

import os
import stat

import pytest
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError
from ansible_collections.kubeguard.hardening.plugins.module_utils._pki import _files, _kubeconfig


@pytest.mark.parametrize("mode", [_files.KEY_MODE, _files.CERT_MODE])
def test_atomic_write_sets_mode_and_replaces(tmp_path, mode):
    target = tmp_path / "f"
    target.write_text("old")
    os.chmod(target, 0o666)  # noqa: S103 - the helper must fix it
    _files.atomic_write(str(target), b"new", mode)
    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(target.stat().st_mode) == mode
    assert os.listdir(tmp_path) == ["f"]


def test_atomic_write_failure_names_output_dir_and_leaves_nothing(tmp_path):
    target = tmp_path / "dir-in-the-way"
    target.mkdir()
    with pytest.raises(KubeguardError, match="cannot write") as err:
        _files.atomic_write(str(target), b"x", 0o600)
    assert err.value.option == "output_dir"
    assert os.listdir(tmp_path) == ["dir-in-the-way"]


def test_atomic_write_in_missing_dir(tmp_path):
    with pytest.raises(KubeguardError, match="cannot write in"):
        _files.atomic_write(str(tmp_path / "missing/f"), b"x", 0o600)


def test_ensure_dir_fixes_mode(tmp_path):
    path = tmp_path / "a/b"
    _files.ensure_dir(str(path), 0o700)
    os.chmod(path, 0o755)  # noqa: S103 - the helper must fix it
    _files.ensure_dir(str(path), 0o700)
    assert stat.S_IMODE(path.stat().st_mode) == 0o700


def test_ensure_dir_failure(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(KubeguardError, match="cannot create directory"):
        _files.ensure_dir(str(tmp_path / "file/sub"), 0o700)


def test_check_writable(tmp_path):
    _files.check_writable(str(tmp_path / "new/deeper"))
    (tmp_path / "file").write_text("")
    with pytest.raises(KubeguardError, match="not a directory"):
        _files.check_writable(str(tmp_path / "file/sub"))


def test_read_missing(tmp_path):
    assert _files.read(str(tmp_path / "nope")) is None


def test_kubeconfig_round_trip():
    data = _kubeconfig.render("prod", "https://10.0.0.1:6443", "system:node:w1", b"CA\n", b"CERT\n", b"KEY\n")
    assert _kubeconfig.parse(data) == {
        "ca": b"CA\n",
        "server": "https://10.0.0.1:6443",
        "cert": b"CERT\n",
        "key": b"KEY\n",
    }
    assert b'current-context: "system:node:w1@prod"' in data


@pytest.mark.parametrize(
    "data",
    [
        b"\xff\xfe",
        b"apiVersion: v1\nkind: Config\n",
        b"    certificate-authority-data: !!!\n    server: https://x\n"
        b"    client-certificate-data: AA==\n    client-key-data: AA==\n",
        _kubeconfig.render("a", "https://x", "u", b"C", b"C", b"K")
        + b"- name: other\n  user:\n    client-key-data: AA==\n",
    ],
    ids=["binary", "no-fields", "bad-base64", "two-users"],
)
def test_kubeconfig_parse_rejects(data):
    assert _kubeconfig.parse(data) is None
