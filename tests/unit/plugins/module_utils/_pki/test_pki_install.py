"""The node side of the role: what must change on a node, and why."""

import os
import pathlib
import stat

import pytest
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError
from ansible_collections.kubeguard.hardening.plugins.module_utils._pki import _install

UID, GID = os.getuid(), os.getgid()


@pytest.fixture
def roots(tmp_path):
    return {"kubernetes": str(tmp_path / "etc-kubernetes"), "kubelet": str(tmp_path / "kubelet-pki")}


def entry(dest, mode="0644", root="kubernetes", components=("kube-apiserver",)):
    return {"root": root, "dest": dest, "mode": mode, "components": list(components), "src": "/ignored"}


def install(roots, files, contents):
    directories, changes = _install.plan(roots, files, contents, UID, GID)
    _install.apply(directories, changes, UID, GID)
    return directories, changes


def test_a_fresh_node_gets_everything_with_modes_and_directories(roots):
    files = [entry("pki/ca.crt"), entry("pki/etcd/server.key", "0600"), entry("kubelet.key", "0600", "kubelet")]
    directories, changes = install(roots, files, ["ca\n", "key\n", "kkey\n"])
    assert [c["reason"] for c in changes] == ["absent"] * 3
    modes = {os.path.relpath(d, os.path.dirname(roots["kubernetes"])): m for d, m in directories}
    assert modes == {
        "etc-kubernetes": 0o755,
        "etc-kubernetes/pki": 0o755,
        "etc-kubernetes/pki/etcd": 0o700,
        "kubelet-pki": 0o755,
    }
    key = os.path.join(roots["kubernetes"], "pki/etcd/server.key")
    assert pathlib.Path(key).read_text() == "key\n"
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    assert _install.plan(roots, files, ["ca\n", "key\n", "kkey\n"], UID, GID) == ([], [])


@pytest.mark.parametrize(
    "tamper, reason",
    [
        (lambda path: os.remove(path), "absent"),
        (lambda path: pathlib.Path(path).write_text("other\n"), "content"),
        (lambda path: os.chmod(path, 0o640), "mode"),
    ],
)
def test_only_the_tampered_file_changes_and_says_why(roots, tamper, reason):
    files = [entry("pki/ca.crt"), entry("admin.conf", "0600", components=())]
    install(roots, files, ["ca\n", "conf\n"])
    tamper(os.path.join(roots["kubernetes"], "admin.conf"))
    _, changes = install(roots, files, ["ca\n", "conf\n"])
    assert [(os.path.basename(c["path"]), c["reason"]) for c in changes] == [("admin.conf", reason)]
    assert _install.plan(roots, files, ["ca\n", "conf\n"], UID, GID) == ([], [])


def test_changed_files_carry_their_components(roots):
    files = [entry("pki/ca.crt", components=("kube-apiserver", "kubelet"))]
    _, changes = _install.plan(roots, files, ["ca\n"], UID, GID)
    assert changes[0]["components"] == ["kube-apiserver", "kubelet"]


@pytest.mark.parametrize(
    "bad, message",
    [
        (entry("../etc/shadow"), "without '..'"),
        (entry("/etc/shadow"), "without '..'"),
        (entry("pki/ca.crt", root="elsewhere"), "root must be one of"),
        (entry("pki/ca.crt", mode="rw-r--r--"), "must be octal"),
    ],
)
def test_bad_entries_fail_naming_files_and_write_nothing(roots, bad, message):
    with pytest.raises(KubeguardError, match=message) as error:
        _install.plan(roots, [bad], ["x"], UID, GID)
    assert str(error.value).startswith("files:")
    assert not os.path.exists(roots["kubernetes"])


def test_contents_must_pair_with_files(roots):
    with pytest.raises(KubeguardError, match=r"^contents: 1 contents for 2 files"):
        _install.plan(roots, [entry("a"), entry("b")], ["x"], UID, GID)
