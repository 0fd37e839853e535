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


# ----------------------------------------------------------------- CA guard


def test_a_different_ca_on_the_node_is_refused_before_anything_is_written(roots):
    files = [dict(entry("pki/ca.crt"), ca=True, src="/tree/pki/ca.crt"), entry("admin.conf", "0600")]
    install(roots, files, ["old CA\n", "conf\n"])
    with pytest.raises(KubeguardError, match=r"is a different CA than /tree/pki/ca\.crt") as error:
        _install.plan(roots, files, ["new CA\n", "new conf\n"], UID, GID)
    assert error.value.option == "replace_ca"
    assert "cluster_pki_replace_node_ca" in str(error.value)
    assert pathlib.Path(roots["kubernetes"], "admin.conf").read_text() == "conf\n"


def test_replace_ca_allows_it_and_an_identical_ca_is_no_change(roots):
    files = [dict(entry("pki/ca.crt"), ca=True)]
    install(roots, files, ["old CA\n"])
    assert _install.plan(roots, files, ["old CA\n"], UID, GID) == ([], [])
    _, changes = _install.plan(roots, files, ["new CA\n"], UID, GID, replace_ca=True)
    assert [c["reason"] for c in changes] == ["content"]


# ------------------------------------------------- backups and pending restart


def run_params(roots, files, contents, backup_dir, **extra):
    return {
        "files": files,
        "contents": contents,
        "kubernetes_dir": roots["kubernetes"],
        "kubelet_pki_dir": roots["kubelet"],
        "owner": str(UID),
        "group": str(GID),
        "backup_dir": str(backup_dir),
        **extra,
    }


def test_replaced_files_are_backed_up_and_restored(roots, tmp_path):
    backup = tmp_path / "backup"
    files = [entry("pki/apiserver.crt"), entry("scheduler.conf", "0600", components=("kube-scheduler",))]
    _install.run(run_params(roots, files[:1], ["v1\n"], ""))
    result = _install.run(run_params(roots, files, ["v2\n", "conf\n"], backup))
    assert result["components"] == ["kube-apiserver", "kube-scheduler"] and result["pending_restart"]
    assert stat.S_IMODE(os.stat(backup).st_mode) == 0o700
    # A rerun before the restart still reports the restart as pending (a killed play converges).
    again = _install.run(run_params(roots, files, ["v2\n", "conf\n"], backup))
    assert (again["changed"], again["changed_files"], again["components"]) == (
        True,
        [],
        ["kube-apiserver", "kube-scheduler"],
    )
    # A second change before the restart keeps the oldest (last known good) copy.
    _install.run(run_params(roots, files, ["v3\n", "conf\n"], backup))
    restored = _install.restore(str(backup))
    assert pathlib.Path(roots["kubernetes"], "pki/apiserver.crt").read_text() == "v1\n"
    assert not pathlib.Path(roots["kubernetes"], "scheduler.conf").exists()
    assert len(restored) == 2
    _install.clear(str(backup))
    assert _install.read_manifest(str(backup)) == {"components": [], "files": {}}
    assert list((backup / "files").iterdir()) == []


def test_check_mode_reports_planned_files_and_writes_no_backup(roots, tmp_path):
    planned = [entry("kubelet.conf", "0600", components=("kubelet",))]
    result = _install.run(run_params(roots, [], [], tmp_path / "backup", planned=planned), check_mode=True)
    assert result["changed"] and result["components"] == ["kubelet"]
    assert [c["reason"] for c in result["changed_files"]] == ["planned"]
    assert not (tmp_path / "backup").exists() and not os.path.exists(roots["kubernetes"])


def test_a_corrupt_manifest_names_backup_dir(tmp_path):
    (tmp_path / _install.MANIFEST).write_text("{not json")
    with pytest.raises(KubeguardError, match="is corrupt") as error:
        _install.read_manifest(str(tmp_path))
    assert error.value.option == "backup_dir"


def test_an_idempotent_install_writes_no_backup(roots, tmp_path):
    files = [entry("pki/ca.crt")]
    _install.run(run_params(roots, files, ["ca\n"], ""))
    result = _install.run(run_params(roots, files, ["ca\n"], tmp_path / "backup"))
    assert not result["changed"] and not (tmp_path / "backup").exists()
