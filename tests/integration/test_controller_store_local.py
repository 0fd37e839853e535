"""The controller store without the lab (docs/controller-store.md): the cluster_pki role on the local
connection, hosts standing in for nodes (test_cluster_pki_role_local.py's kubeadm-made cp1 and an empty
worker1). Proves, with real ansible-playbook runs and ansible-core's own ansible-vault:

- with kubeguard_store_vault_password_file, every secret file of the store is ansible-vault encrypted on
  disk, the nodes get plaintext, and a rerun changes nothing;
- a deleted store makes the next run refuse, naming cluster_pki_adopt_enabled, with nothing written;
  adopting restores it, the CA byte-identical to the nodes';
- store_backup.yml then a deleted store then store_restore.yml gives back every file byte-identical.
"""

import json
import pathlib
import shutil
import stat
import subprocess

import pytest
from conftest import ansible_playbook
from test_cluster_pki_role_local import digest, kubeadm_tree, play

REPO = pathlib.Path(__file__).resolve().parents[2]
PASSWORD = "store password for the loopback test\n"
ADOPT = ("-e", json.dumps({"cluster_pki_adopt_enabled": True}))


@pytest.fixture
def cluster(tmp_path, lab_binaries):
    """cp1 made by kubeadm, worker1 empty, and a vault password file for the store."""
    kubeadm_tree(tmp_path, lab_binaries)
    password = tmp_path / "vault-password"
    password.write_text(PASSWORD)
    password.chmod(0o600)
    return tmp_path


def with_vault(base):
    return ("-e", json.dumps({"kubeguard_store_vault_password_file": str(base / "vault-password")}))


def vault_view(base, path):
    """The plaintext of a store file, through ansible-core's own ansible-vault command."""
    cmd = [str(REPO / ".venv/bin/ansible-vault"), "view", "--vault-password-file", str(base / "vault-password"), path]
    return subprocess.run(cmd, check=True, capture_output=True).stdout


def tree_state(root):
    """Every file's bytes and mode, every directory's mode."""
    return {
        str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None, stat.S_IMODE(p.stat().st_mode))
        for p in sorted(root.rglob("*"))
    }


def secret_files(root):
    return sorted(
        str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and not p.name.endswith((".crt", ".pub"))
    )


def test_the_store_is_vault_encrypted_at_rest_and_a_rerun_changes_nothing(cluster):
    base, tree = cluster, cluster / "tree"
    run, recap = play(base, *ADOPT, *with_vault(base))
    assert run.returncode == 0, run.stdout[-3000:]
    secrets = secret_files(tree)
    assert {"pki/ca.key", "pki/etcd/ca.key", "pki/sa.key", "admin.conf", "nodes/worker1/kubelet.conf"} <= set(secrets)
    for name in secrets:
        data = (tree / name).read_bytes()
        assert data.startswith(b"$ANSIBLE_VAULT;1.1;AES256\n"), name
        assert b"PRIVATE KEY" not in data and b"client-key-data" not in data, name
        assert stat.S_IMODE((tree / name).stat().st_mode) == 0o600, name
    # the adopted CA key, decrypted by ansible-vault, is kubeadm's, byte for byte
    assert vault_view(base, tree / "pki/ca.key") == (base / "nodes/cp1/etc/kubernetes/pki/ca.key").read_bytes()
    assert (tree / "pki/ca.crt").read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")
    # the nodes get plaintext
    worker_key = base / "nodes/worker1/var/lib/kubelet/pki/kubelet.key"
    assert worker_key.read_bytes().startswith(b"-----BEGIN")
    assert b"client-key-data" in (base / "nodes/worker1/etc/kubernetes/kubelet.conf").read_bytes()
    before = (tree_state(tree), digest(base / "nodes"))
    again, recap = play(base, *with_vault(base))
    assert again.returncode == 0, again.stdout[-3000:]
    assert {h: r["changed"] for h, r in recap.items()} == {"cp1": 0, "worker1": 0}
    assert (tree_state(tree), digest(base / "nodes")) == before
    # without the password the encrypted store is refused, naming the variables that give it
    bare, _ = play(base)
    assert bare.returncode != 0
    assert "kubeguard_store_vault_password_file" in bare.stdout + bare.stderr
    assert "PRIVATE KEY" not in bare.stdout + bare.stderr


def test_a_plaintext_store_is_encrypted_in_place_on_the_next_run(cluster):
    base, tree = cluster, cluster / "tree"
    first, _ = play(base, *ADOPT)
    assert first.returncode == 0, first.stdout[-3000:]
    plain = {name: (tree / name).read_bytes() for name in secret_files(tree)}
    assert all(not data.startswith(b"$ANSIBLE_VAULT") for data in plain.values())
    nodes = digest(base / "nodes")
    run, recap = play(base, *with_vault(base))
    assert run.returncode == 0, run.stdout[-3000:]
    assert recap["cp1"]["changed"] >= 1  # reported as a change
    for name, data in plain.items():
        assert vault_view(base, tree / name) == data, name
    assert digest(base / "nodes") == nodes  # nothing reissued, nothing installed
    again, recap = play(base, *with_vault(base))
    assert {h: r["changed"] for h, r in recap.items()} == {"cp1": 0, "worker1": 0}, again.stdout[-3000:]


def test_a_lost_store_is_refused_naming_the_adopt_variable_and_adopt_restores_it(cluster):
    base, tree = cluster, cluster / "tree"
    run, _ = play(base, *ADOPT, *with_vault(base))
    assert run.returncode == 0, run.stdout[-3000:]
    shutil.rmtree(tree)
    nodes = digest(base / "nodes")
    refused, recap = play(base, *with_vault(base))
    out = refused.stdout + refused.stderr
    assert refused.returncode != 0
    assert "cluster_pki_adopt_enabled" in out and "store_restore.yml" in out, out[-3000:]
    assert "nodes/cp1/etc/kubernetes/pki/ca.crt" in out
    assert recap["cp1"]["failed"] == 1
    assert not tree.exists()  # nothing written on the controller
    assert digest(base / "nodes") == nodes  # nor on the nodes
    adopted, _ = play(base, *ADOPT, *with_vault(base))
    assert adopted.returncode == 0, adopted.stdout[-3000:]
    node_pki = base / "nodes/cp1/etc/kubernetes/pki"
    for name in ("ca", "etcd/ca", "front-proxy-ca"):
        assert (tree / f"pki/{name}.crt").read_bytes() == (node_pki / f"{name}.crt").read_bytes(), name
        assert vault_view(base, tree / f"pki/{name}.key") == (node_pki / f"{name}.key").read_bytes(), name
    assert vault_view(base, tree / "pki/sa.key") == (node_pki / "sa.key").read_bytes()
    assert digest(base / "nodes/cp1") == {k[len("cp1/") :]: v for k, v in nodes.items() if k.startswith("cp1/")}


def test_backup_then_loss_then_restore_gives_every_file_back_byte_identical(cluster):
    base, tree = cluster, cluster / "tree"
    archive = base / "backup/store.tar.vault"
    extra = ("-e", json.dumps({"kubeguard_store_archive": str(archive)}))
    run, _ = play(base, *ADOPT, *with_vault(base))
    assert run.returncode == 0, run.stdout[-3000:]
    refused, _ = ansible_playbook(base / "inventory.json", "store_backup.yml", *extra)
    assert refused.returncode != 0 and "kubeguard_store_vault_password_file" in refused.stdout + refused.stderr
    assert not archive.exists()
    backup, recap = ansible_playbook(base / "inventory.json", "store_backup.yml", *extra, *with_vault(base))
    assert backup.returncode == 0, backup.stdout[-3000:]
    assert recap["localhost"]["changed"] == 1
    assert archive.read_bytes().startswith(b"$ANSIBLE_VAULT;1.1;AES256\n")
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600
    again, recap = ansible_playbook(base / "inventory.json", "store_backup.yml", *extra, *with_vault(base))
    assert recap["localhost"]["changed"] == 0, again.stdout[-3000:]
    before = tree_state(tree)
    shutil.rmtree(tree)
    restore, recap = ansible_playbook(base / "inventory.json", "store_restore.yml", *extra, *with_vault(base))
    assert restore.returncode == 0, restore.stdout[-3000:]
    assert recap["localhost"]["changed"] == 1
    assert tree_state(tree) == before
    again, recap = ansible_playbook(base / "inventory.json", "store_restore.yml", *extra, *with_vault(base))
    assert recap["localhost"]["changed"] == 0, again.stdout[-3000:]
    # a store that differs from the archive is not overwritten without force
    (tree / "pki/ca.crt").write_bytes(b"other\n")
    refused, _ = ansible_playbook(base / "inventory.json", "store_restore.yml", *extra, *with_vault(base))
    assert refused.returncode != 0 and "pki/ca.crt" in refused.stdout + refused.stderr
    assert (tree / "pki/ca.crt").read_bytes() == b"other\n"
    force = ("-e", json.dumps({"kubeguard_store_restore_force": True}))
    forced, _ = ansible_playbook(base / "inventory.json", "store_restore.yml", *extra, *force, *with_vault(base))
    assert forced.returncode == 0, forced.stdout[-3000:]
    assert tree_state(tree) == before
    # the restored store is the cluster's: the role has nothing to do
    rerun, recap = play(base, *with_vault(base))
    assert {h: r["changed"] for h, r in recap.items()} == {"cp1": 0, "worker1": 0}, rerun.stdout[-3000:]


STORES_PLAY = """
- name: The encryption key store and the static token store through the action plugins
  hosts: localhost
  connection: local
  gather_facts: false
  vars:
    ansible_python_interpreter: {python}
  tasks:
    - name: Plan encryption at rest for one plain-text apiserver (a new key is stored)
      kubeguard.hardening.encryption_at_rest_state:
        action: plan
        key_store: "{base}/store/encryption-keys.json"
        state_file: "{base}/store/encryption-state.json"
        nodes: {{cp1: {{resources: [], slots: [], other_keys: [], unsupported: []}}}}
    - name: Static tokens for one user (a new token is stored)
      kubeguard.hardening.api_access_config:
        config_dir: /etc/kubernetes/kubeguard
        static_tokens_enabled: true
        static_tokens: [{{user: ci-bot, groups: [ci]}}]
        static_token_store: "{base}/store/api_access/static-tokens.json"
"""


def test_the_encryption_and_token_stores_are_vault_encrypted_through_the_action_plugins(tmp_path):
    (tmp_path / "vault-password").write_text(PASSWORD)
    (tmp_path / "inventory.ini").write_text("localhost\n")
    book = tmp_path / "stores.yml"
    book.write_text(STORES_PLAY.format(base=tmp_path, python=REPO / ".venv/bin/python"))
    run, _ = ansible_playbook(tmp_path / "inventory.ini", str(book), *with_vault(tmp_path))
    assert run.returncode == 0, run.stdout[-3000:]
    keys, tokens = tmp_path / "store/encryption-keys.json", tmp_path / "store/api_access/static-tokens.json"
    for path in (keys, tokens):
        assert path.read_bytes().startswith(b"$ANSIBLE_VAULT;1.1;AES256\n"), path
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "aescbc" in json.dumps(json.loads(vault_view(tmp_path, keys))["keys"])
    token = json.loads(vault_view(tmp_path, tokens))["ci-bot"]
    assert token not in run.stdout
    assert json.loads((tmp_path / "store/encryption-state.json").read_text())["transition"]  # no secret: plain
    # the second run reads both back through the vault: the same key and token, nothing new stored
    before = (keys.read_bytes(), tokens.read_bytes())
    again, _ = ansible_playbook(tmp_path / "inventory.ini", str(book), *with_vault(tmp_path))
    assert again.returncode == 0, again.stdout[-3000:]
    assert (keys.read_bytes(), tokens.read_bytes()) == before
    # without the password both are refused, naming the variable
    bare, _ = ansible_playbook(tmp_path / "inventory.ini", str(book))
    assert bare.returncode != 0 and "kubeguard_store_vault_password_file" in bare.stdout + bare.stderr
    # AWX/AAP: the secret comes as the run's --vault-id (a vault credential), named by kubeguard_store_vault_id
    by_id = ("--vault-id", f"store@{tmp_path / 'vault-password'}", "-e", "kubeguard_store_vault_id=store")
    awx, _ = ansible_playbook(tmp_path / "inventory.ini", str(book), *by_id)
    assert awx.returncode == 0, awx.stdout[-3000:]
    assert (keys.read_bytes(), tokens.read_bytes()) == before
    other = ("--vault-id", f"store@{tmp_path / 'vault-password'}", "-e", "kubeguard_store_vault_id=prod")
    missing, _ = ansible_playbook(tmp_path / "inventory.ini", str(book), *other)
    assert missing.returncode != 0
    assert "kubeguard_store_vault_id: this run was given no vault secret with id 'prod'" in missing.stdout
