"""Failure branches of the engine, the writer and the expiry report that need a patched OS."""

import os
import shutil

import pytest
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError
from ansible_collections.kubeguard.hardening.plugins.module_utils._pki import _engine, _files, _info


def params(out, **extra):
    base = {
        "output_dir": str(out) if out else "",
        "cluster_name": "unit",
        "control_plane_nodes": [{"name": "cp1", "ips": ["10.0.0.10"]}],
        "worker_nodes": [],
        "service_cidr": "10.96.0.0/12",
        "dns_domain": "cluster.local",
        "key_algorithm": "ECDSA-P256",
        "ca_validity_days": 3650,
        "leaf_validity_days": 365,
        "renew_before_days": 30,
    }
    base.update(extra)
    return base


def test_output_dir_is_required():
    with pytest.raises(KubeguardError, match="output_dir: is required"):
        _engine.run(params(None))


def test_output_dir_not_writable(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "access", lambda *_: False)
    with pytest.raises(KubeguardError, match="is not writable") as err:
        _engine.run(params(tmp_path / "pki"))
    assert err.value.option == "output_dir"
    assert not (tmp_path / "pki").exists()


def test_mode_fix_failure_names_output_dir(tmp_path, monkeypatch):
    out = tmp_path / "pki"
    _engine.run(params(out))
    os.chmod(out / "pki/ca.key", 0o640)

    def refuse(*_):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "chmod", refuse)
    with pytest.raises(KubeguardError, match=r"cannot set the mode of pki/ca\.key") as err:
        _engine.run(params(out))
    assert err.value.option == "output_dir"


def test_info_lists_unreadable_files_and_skips_absent_ones(tmp_path):
    out = tmp_path / "pki"
    result = _engine.run(params(out))
    kdir = tmp_path / "node"
    for entry in result["distribution"]["cp1"]:
        if entry["root"] == "kubernetes":
            dest = kdir / entry["dest"]
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(entry["src"], dest)
    (kdir / "scheduler.conf").write_text("not a kubeconfig")
    (kdir / "pki/etcd/ca.crt").write_text("garbage")
    report = _info.check_expiration(str(kdir), str(tmp_path / "no-kubelet-dir"))
    assert sorted(report["unreadable"]) == [str(kdir / "pki/etcd/ca.crt"), str(kdir / "scheduler.conf")]
    names = {c["name"] for c in report["certificates"]}
    assert "scheduler.conf" not in names and "kubelet-serving" not in names
    assert {"apiserver", "etcd-server", "admin.conf", "kubelet.conf"} <= names
    assert all(c["residual_days"] in (364, 365) and not c["externally_managed"] for c in report["certificates"])


def test_modes_are_constants():
    assert (_files.KEY_MODE, _files.CERT_MODE, _files.PRIVATE_DIR_MODE) == (0o600, 0o644, 0o700)
