"""The failure branches of the cluster_pki and cluster_pki_info module files."""

import json
import os

import pytest
from ansible.module_utils.testing import patch_module_args
from ansible_collections.kubeguard.hardening.plugins.modules import (
    cluster_pki,
    cluster_pki_info,
    cluster_pki_install,
)


def run_main(module, args, capsys):
    with patch_module_args(args), pytest.raises(SystemExit):
        module.main()
    return json.loads(capsys.readouterr().out)


ARGS = {"output_dir": "/nonexistent-unused", "control_plane_nodes": [{"name": "cp1", "ips": ["10.0.0.10"]}]}


def test_missing_cryptography_is_reported(monkeypatch, capsys):
    monkeypatch.setattr(cluster_pki, "CRYPTOGRAPHY_ERROR", "Traceback: No module named 'cryptography'")
    result = run_main(cluster_pki, ARGS, capsys)
    assert result["failed"] is True
    assert "cryptography >= 42.0" in result["msg"]


def test_domain_error_is_caught_once_and_names_the_option(tmp_path, capsys):
    args = dict(ARGS, output_dir=str(tmp_path / "pki"), leaf_validity_days=5000)
    result = run_main(cluster_pki, args, capsys)
    assert result["failed"] is True
    assert result["option"] == "leaf_validity_days"
    assert result["msg"].startswith("leaf_validity_days: ")
    assert not (tmp_path / "pki").exists()


def test_check_mode_writes_nothing_and_diff_is_metadata(tmp_path, capsys):
    args = dict(
        ARGS, output_dir=str(tmp_path / "pki"), key_algorithm="ECDSA-P256", _ansible_check_mode=True, _ansible_diff=True
    )
    result = run_main(cluster_pki, args, capsys)
    assert result["changed"] is True
    assert not (tmp_path / "pki").exists()
    assert result["diff"][0]["after"] == "(to be issued)\n"


def test_info_rejects_negative_window(capsys):
    result = run_main(cluster_pki_info, {"renew_before_days": -1}, capsys)
    assert result["failed"] is True and "renew_before_days" in result["msg"]


def install_args(tmp_path, **extra):
    files = [{"root": "kubernetes", "dest": "pki/ca.key", "mode": "0600", "components": ["kube-apiserver"]}]
    args = {
        "files": files,
        "contents": ["SECRET-KEY-MATERIAL\n"],
        "kubernetes_dir": str(tmp_path / "k8s"),
        "kubelet_pki_dir": str(tmp_path / "kubelet"),
        "owner": str(os.getuid()),
        "group": str(os.getgid()),
    }
    return {**args, **extra}


def test_install_check_mode_predicts_writes_nothing_and_diffs_no_content(tmp_path, capsys):
    result = run_main(cluster_pki_install, install_args(tmp_path, _ansible_check_mode=True, _ansible_diff=True), capsys)
    assert result["changed"] is True
    assert result["components"] == ["kube-apiserver"]
    assert not (tmp_path / "k8s").exists()
    assert "SECRET-KEY-MATERIAL" not in json.dumps(result)


def test_install_applies_then_is_idempotent(tmp_path, capsys):
    first = run_main(cluster_pki_install, install_args(tmp_path), capsys)
    assert [f["reason"] for f in first["changed_files"]] == ["absent"]
    assert (tmp_path / "k8s/pki/ca.key").read_text() == "SECRET-KEY-MATERIAL\n"
    second = run_main(cluster_pki_install, install_args(tmp_path), capsys)
    assert (second["changed"], second["changed_files"], second["components"]) == (False, [], [])


def test_install_unknown_owner_fails_naming_the_option_and_writes_nothing(tmp_path, capsys):
    result = run_main(cluster_pki_install, install_args(tmp_path, owner="no-such-user-kubeguard"), capsys)
    assert result["failed"] is True
    assert result["option"] == "owner"
    assert not (tmp_path / "k8s").exists()


def test_install_bad_entry_fails_naming_files(tmp_path, capsys):
    args = install_args(tmp_path)
    args["files"][0]["dest"] = "../../etc/shadow"
    result = run_main(cluster_pki_install, args, capsys)
    assert (result["failed"], result["option"]) == (True, "files")
    assert not (tmp_path / "k8s").exists()
