"""Encryption at rest against a real etcd + kube-apiserver on loopback, driven
through the modules' entry points in the role's order: Secrets stored in plain
text before the first run come out encrypted with aescbc and byte-identical,
identity is gone afterwards, etcd's evidence refuses `verify` while a value
still needs an old key, and the resources are checked against discovery."""

import base64
import json
import os
import tempfile

import pytest
from ansible_collections.kubeguard.hardening.plugins.module_utils._encryption import etcd, machine, objects
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError
from encryption_loopback import converge, encrypted_cluster, secrets_data


@pytest.fixture(scope="module")
def cluster(lab_binaries):
    with tempfile.TemporaryDirectory(prefix="kg-enc10-") as work, encrypted_cluster(lab_binaries, work) as cluster:
        yield cluster


def scan(cluster):
    counts, _ = etcd.scan(cluster.etcd_reader(), ["/registry/secrets/"])
    return counts["/registry/secrets/"]


def test_plain_text_secrets_are_migrated_and_identity_removed(cluster, tmp_path):
    items = [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": f"pre-{i}", "namespace": "default"},
            "data": {"v": base64.b64encode(os.urandom(24)).decode()},
        }
        for i in range(30)
    ]
    cluster.kubectl_stdin(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}), "apply", "-f", "-")
    before = secrets_data(cluster)
    assert scan(cluster) == {"plaintext": len(before)}

    # stopped after "primary" (a killed run): nothing rewritten yet, and etcd's evidence says so
    report = converge(cluster, tmp_path, stop_after="primary")
    assert report["plan"]["steps"] == ["primary", "rewrite", "verify", "remove"]  # one apiserver: no secondary
    assert "identity" in cluster.config.read_text()
    state = {"key_store": str(tmp_path / "encryption-keys.json"), "state_file": str(tmp_path / "encryption-state.json")}
    evidence = etcd.run(
        {"prefixes": {"secrets": "/registry/secrets/"}, "expected_prefix": "k8s:enc:aescbc:v1:gen1-aescbc:"},
        etcd=cluster.etcd_reader(),
    )
    assert evidence["stale"] == len(before) and evidence["counts"] == {"plaintext": len(before)}
    with pytest.raises(KubeguardError, match="remove is not due"):
        machine.run(dict(state, action="begin", step="remove"))
    machine.run(dict(state, action="record", step="rewrite"))  # a rewrite that missed everything
    with pytest.raises(KubeguardError, match="retiring keys stay"):
        machine.run(dict(state, action="record", step="verify", evidence=evidence))

    # the rerun resumes: the rewrite is recorded, so verify finds the stale values and fails safe...
    with pytest.raises(KubeguardError, match="retiring keys stay"):
        converge(cluster, tmp_path)
    assert "identity" in cluster.config.read_text()
    # ...until the objects are rewritten; then it converges and identity goes
    objects.run({"kubeconfig": str(cluster.super_admin), "action": "rewrite", "resources": ["secrets"]})
    report = converge(cluster, tmp_path)
    assert report["plan"]["steps"] == ["verify", "remove"]
    assert scan(cluster) == {"k8s:enc:aescbc:v1:gen1-aescbc:": len(before)}
    assert secrets_data(cluster) == before
    config = cluster.config.read_text()
    assert "identity" not in config and "gen1-aescbc" in config
    # converged: nothing due, no restart
    restarts = cluster.restarts
    assert converge(cluster, tmp_path)["plan"]["steps"] == []
    assert cluster.restarts == restarts


def test_resources_are_checked_against_discovery(cluster):
    api = {"kubeconfig": str(cluster.super_admin)}
    served = objects.run(dict(api, resources=["secrets", "configmaps", "deployments.apps"]))["resources"]
    assert served["configmaps"]["etcd_prefix"] == "/registry/configmaps/"
    assert served["deployments.apps"]["etcd_prefix"] == "/registry/deployments/"
    with pytest.raises(KubeguardError, match=r"does not serve widgets\.example\.com"):
        objects.run(dict(api, resources=["secrets", "widgets.example.com"]))
