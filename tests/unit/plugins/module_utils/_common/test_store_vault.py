"""The store vault: the module side's ansible-vault format against ansible-core's own VaultLib, and the
store writers (PKI tree, encryption key store, static token store) with the vault on and off."""

import json
import os
import pathlib
import stat

import pytest
from ansible.parsing.vault import VaultLib, VaultSecret
from ansible_collections.kubeguard.hardening.plugins.module_utils._api_access import tokens
from ansible_collections.kubeguard.hardening.plugins.module_utils._common import vault
from ansible_collections.kubeguard.hardening.plugins.module_utils._encryption import keystore
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError
from ansible_collections.kubeguard.hardening.plugins.module_utils._pki import _engine

PASSWORD = "correct horse battery staple"
DATA = b"-----BEGIN PRIVATE KEY-----\nsecret\n-----END PRIVATE KEY-----\n"


def ansible_vault(password=PASSWORD):
    return VaultLib([("default", VaultSecret(password.encode()))])


@pytest.mark.parametrize("data", [DATA, b"", b"x" * 16, bytes(range(256))])
def test_ansible_core_opens_what_the_module_writes(data):
    blob = vault.encrypt(data, PASSWORD.encode())
    assert blob.startswith(b"$ANSIBLE_VAULT;1.1;AES256\n")
    assert all(len(line) <= 80 for line in blob.splitlines())
    assert ansible_vault().decrypt(blob) == data


@pytest.mark.parametrize("data", [DATA, b"", bytes(range(256))])
def test_the_module_opens_what_ansible_vault_writes(data):
    blob = ansible_vault().encrypt(data)
    assert vault.decrypt(blob, PASSWORD.encode()) == data
    with_id = VaultLib([("store", VaultSecret(PASSWORD.encode()))]).encrypt(data, vault_id="store")
    assert with_id.startswith(b"$ANSIBLE_VAULT;1.2;AES256;store")
    assert vault.decrypt(with_id, PASSWORD.encode()) == data


def test_a_fixed_salt_gives_a_fixed_envelope_and_a_random_one_does_not():
    salt = b"s" * 32
    assert vault.encrypt(DATA, b"pw", salt) == vault.encrypt(DATA, b"pw", salt)
    assert vault.encrypt(DATA, b"pw") != vault.encrypt(DATA, b"pw")


def test_wrong_password_and_damage_are_refused_naming_the_option():
    blob = vault.encrypt(DATA, PASSWORD.encode())
    with pytest.raises(KubeguardError, match="wrong password") as caught:
        vault.decrypt(blob, b"other", "/x/ca.key")
    assert caught.value.option == vault.OPTION
    damaged = blob.splitlines()[0] + b"\nzz\n"
    with pytest.raises(KubeguardError, match="damaged"):
        vault.decrypt(damaged, PASSWORD.encode(), "/x/ca.key")


def test_open_secret_passes_plaintext_and_refuses_vault_without_password():
    assert vault.open_secret(DATA, "/x") == DATA
    blob = vault.encrypt(DATA, PASSWORD.encode())
    with pytest.raises(KubeguardError, match="kubeguard_store_vault_password_file"):
        vault.open_secret(blob, "/x/ca.key")
    with vault.using(PASSWORD):
        assert vault.open_secret(blob, "/x/ca.key") == DATA
        assert vault.active()
    assert not vault.active()
    assert vault.seal(DATA) == DATA


def pki_params(out):
    return {
        "output_dir": str(out),
        "cluster_name": "unit",
        "control_plane_nodes": [{"name": "cp1", "ips": ["10.0.0.10"]}],
        "worker_nodes": [{"name": "w1", "ips": ["10.0.0.11"]}],
        "service_cidr": "10.96.0.0/12",
        "dns_domain": "cluster.local",
        "key_algorithm": "ECDSA-P256",
        "ca_validity_days": 3650,
        "leaf_validity_days": 365,
        "renew_before_days": 30,
    }


def tree(out):
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def test_pki_tree_secrets_are_vault_encrypted_certs_are_not_and_a_rerun_changes_nothing(tmp_path):
    out = tmp_path / "pki"
    with vault.using(PASSWORD):
        first = _engine.run(pki_params(out))
        assert first["changed"]
        files = tree(out)
        secret = {f for f in files if not f.endswith((".crt", ".pub"))}
        assert {"pki/ca.key", "pki/sa.key", "admin.conf", "nodes/w1/kubelet.conf"} <= secret
        for name, data in files.items():
            assert data.startswith(b"$ANSIBLE_VAULT;1.1;AES256") == (name in secret), name
            assert stat.S_IMODE(os.stat(out / name).st_mode) == (0o600 if name in secret else 0o644)
        assert b"BEGIN" in ansible_vault().decrypt(files["pki/ca.key"])
        again = _engine.run(pki_params(out))
        assert not again["changed"] and again["vault_sealed"] == []
        assert tree(out) == files
    with pytest.raises(KubeguardError, match="kubeguard_store_vault_password_file"):
        _engine.run(pki_params(out))


def test_a_plaintext_pki_tree_is_sealed_in_place_once_and_check_mode_only_reports(tmp_path):
    out = tmp_path / "pki"
    _engine.run(pki_params(out))
    plain = tree(out)
    with vault.using(PASSWORD):
        check = _engine.run(pki_params(out), check_mode=True)
        assert check["changed"] and "pki/ca.key" in check["vault_sealed"]
        assert tree(out) == plain
        run = _engine.run(pki_params(out))
        assert run["changed"] and sorted(run["vault_sealed"]) == sorted(check["vault_sealed"])
        sealed = tree(out)
        for name, data in plain.items():
            if name in run["vault_sealed"]:
                assert ansible_vault().decrypt(sealed[name]) == data
            else:
                assert sealed[name] == data  # certificates untouched, nothing reissued
        assert not _engine.run(pki_params(out))["changed"]


def test_encryption_key_store_sealed_and_read_back(tmp_path):
    path = str(tmp_path / "encryption-keys.json")
    secret = "MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE="  # 32 bytes, base64
    keys = {"gen1-aescbc": {"provider": "aescbc", "generation": 1, "secret": secret, "created": "t"}}
    keystore.save_store(path, keys)
    assert keystore.seal_store(path, False) == []  # vault off: nothing to do
    with vault.using(PASSWORD):
        assert keystore.seal_store(path, True) == [path]
        assert not vault.is_vault(pathlib.Path(path).read_bytes())
        assert keystore.seal_store(path, False) == [path]
        assert vault.is_vault(pathlib.Path(path).read_bytes())
        assert keystore.load_store(path) == keys
        assert keystore.seal_store(path, False) == []
        keystore.save_store(path, keys)
        assert json.loads(ansible_vault().decrypt(pathlib.Path(path).read_bytes()))["keys"] == keys
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with pytest.raises(KubeguardError) as caught:
        keystore.load_store(path)
    assert "kubeguard_store_vault_password_file" in str(caught.value)


def test_static_token_store_sealed_in_place_and_reused(tmp_path):
    path = str(tmp_path / "static-tokens.json")
    users, changed, _before, _after = tokens.resolve([{"user": "ci"}], path, False)
    token = users[0]["token"]
    assert changed
    with vault.using(PASSWORD):
        users, changed, _before, _after = tokens.resolve([{"user": "ci"}], path, False)
        assert changed and users[0]["token"] == token
        assert json.loads(ansible_vault().decrypt(pathlib.Path(path).read_bytes())) == {"ci": token}
        users, changed, _before, _after = tokens.resolve([{"user": "ci"}], path, False)
        assert not changed and users[0]["token"] == token
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
