"""The collection's one atomic write path."""

import os
import stat

import pytest
from ansible_collections.kubeguard.hardening.plugins.module_utils._node import files as _files


@pytest.mark.parametrize("mode", [0o600, 0o644])
def test_writes_content_and_mode(tmp_path, mode):
    target = tmp_path / "file"
    target.write_bytes(b"old")
    _files.atomic_write(str(target), b"new", mode)
    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(target.stat().st_mode) == mode
    assert os.listdir(tmp_path) == ["file"]


def test_a_failed_rename_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "file"
    target.write_bytes(b"old")

    def refuse(src, dst):
        raise OSError(13, "refused")

    with pytest.raises(OSError):
        _files.atomic_write(str(target), b"new", 0o600, replace=refuse)
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["file"]


def test_the_caller_chooses_the_rename(tmp_path):
    moves = []

    def record(src, dst):
        moves.append(dst)
        os.replace(src, dst)

    _files.atomic_write(str(tmp_path / "f"), b"x", 0o644, replace=record)
    assert moves == [str(tmp_path / "f")]
