"""The cache of binaries' answers, with a real executable that counts its runs."""

from __future__ import annotations

import json
import os
import pathlib
import stat

from ansible_collections.kubeguard.hardening.plugins.module_utils._node import binaries


def fake_binary(tmp_path, body='echo "v1 $1"'):
    path = tmp_path / "kube-fake"
    path.write_text(f'#!/bin/sh\necho run >> "{tmp_path}/runs"\n{body}\n')
    path.chmod(0o755)
    return str(path)


def runs(tmp_path):
    log = tmp_path / "runs"
    return len(log.read_text().splitlines()) if log.exists() else 0


def test_asked_once_then_answered_from_the_cache(tmp_path):
    exe = fake_binary(tmp_path)
    first = binaries.ask(exe, ["--version"], ["--help"], keep=True)
    assert first == [(0, "v1 --version\n", ""), (0, "v1 --help\n", "")]
    assert runs(tmp_path) == 2
    assert binaries.ask(exe, ["--version"], ["--help"]) == first
    assert runs(tmp_path) == 2
    assert stat.S_IMODE(os.stat(binaries.CACHE_PATH).st_mode) == 0o600


def test_a_rewritten_binary_is_asked_again(tmp_path):
    exe = fake_binary(tmp_path)
    binaries.ask(exe, ["--version"], keep=True)
    fake_binary(tmp_path, body='echo "v2 $1"')  # same path, new content: size and ctime change
    assert binaries.ask(exe, ["--version"], keep=True) == [(0, "v2 --version\n", "")]
    assert runs(tmp_path) == 2


def test_the_key_is_the_file_not_the_path(tmp_path):
    """A static pod's binary is reached through /proc/<pid>/exe, a new path after every restart."""
    exe = fake_binary(tmp_path)
    binaries.ask(exe, ["--help"], keep=True)
    link = tmp_path / "link"
    link.symlink_to(exe)
    binaries.ask(str(link), ["--help"])
    assert runs(tmp_path) == 1


def test_failures_are_not_kept(tmp_path):
    exe = fake_binary(tmp_path, body='echo "broken" >&2; exit 3')
    assert binaries.ask(exe, ["--version"], keep=True) == [(3, "", "broken\n")]
    assert binaries.ask(exe, ["--version"])[0][0] == 3
    assert runs(tmp_path) == 2
    assert not os.path.exists(binaries.CACHE_PATH)


def test_a_missing_binary_or_an_unreadable_cache_asks_the_binary(tmp_path):
    assert binaries.ask(str(tmp_path / "absent"), ["--version"])[0][0] == 127
    exe = fake_binary(tmp_path)
    with open(binaries.CACHE_PATH, "w") as handle:
        handle.write("not json")
    assert binaries.ask(exe, ["--version"], keep=True) == [(0, "v1 --version\n", "")]
    assert list(json.loads(pathlib.Path(binaries.CACHE_PATH).read_text()).values()) == [["v1 --version\n", ""]]


def test_the_cache_keeps_the_newest_entries(tmp_path, monkeypatch):
    monkeypatch.setattr(binaries, "MAX_ENTRIES", 2)
    exe = fake_binary(tmp_path)
    for flag in ("--a", "--b", "--c"):
        binaries.ask(exe, [flag], keep=True)
    kept = [json.loads(key)[1] for key in json.loads(pathlib.Path(binaries.CACHE_PATH).read_text())]
    assert kept == [["--b"], ["--c"]]


def test_check_mode_and_the_audit_read_but_never_write(tmp_path):
    exe = fake_binary(tmp_path)
    binaries.ask(exe, ["--version"])
    assert not os.path.exists(binaries.CACHE_PATH)
    binaries.ask(exe, ["--version"], keep=True)
    binaries.ask(exe, ["--version"])
    assert runs(tmp_path) == 2
