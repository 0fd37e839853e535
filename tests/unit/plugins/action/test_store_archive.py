"""store_archive's pure parts: the tar is deterministic for one tree, and a restore refuses any member that is
not a relative file or directory."""

import io
import os
import tarfile

import pytest
from ansible.errors import AnsibleActionFail
from ansible_collections.kubeguard.hardening.plugins.action.store_archive import members, pack


def make_tree(root):
    (root / "pki/etcd").mkdir(parents=True)
    (root / "pki/ca.key").write_bytes(b"$ANSIBLE_VAULT;1.1;AES256\n3132\n")
    (root / "pki/ca.crt").write_bytes(b"cert\n")
    (root / "pki/etcd/ca.crt").write_bytes(b"etcd cert\n")
    os.chmod(root / "pki/ca.key", 0o600)


def test_one_tree_one_byte_string_and_every_file_comes_back(tmp_path):
    make_tree(tmp_path / "a")
    first, second = pack(tmp_path / "a"), pack(tmp_path / "a")
    assert first == second
    entries = {info.name: (data, info.mode & 0o777) for info, data in members(first)}
    assert entries["pki/ca.key"] == (b"$ANSIBLE_VAULT;1.1;AES256\n3132\n", 0o600)
    assert entries["pki/etcd/ca.crt"][0] == b"etcd cert\n"
    assert entries["pki/etcd"][0] is None
    (tmp_path / "a/pki/ca.crt").write_bytes(b"other\n")
    assert pack(tmp_path / "a") != first


@pytest.mark.parametrize("name", ["../escape", "/etc/passwd", "pki/../../x"])
def test_a_member_outside_the_store_is_refused(name):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(AnsibleActionFail, match="not a relative file or directory"):
        members(buffer.getvalue())


def test_a_symlink_member_is_refused():
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("pki/ca.key")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/shadow"
        tar.addfile(info)
    with pytest.raises(AnsibleActionFail):
        members(buffer.getvalue())


def test_a_symlink_in_the_store_is_not_packed(tmp_path):
    make_tree(tmp_path)
    (tmp_path / "pki/link").symlink_to("/etc/hostname")
    with pytest.raises(AnsibleActionFail, match="neither a file nor a directory"):
        pack(tmp_path)
