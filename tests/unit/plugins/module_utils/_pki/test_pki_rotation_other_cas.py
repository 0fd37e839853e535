"""The front-proxy and etcd CA rotations: the store's steps with the engine in between; no kubeconfig touched.
And no rotation but the cluster CA's rewrites a node kubeconfig."""

import base64
import re

import pytest
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError
from ansible_collections.kubeguard.hardening.plugins.module_utils._pki import _crypto, _engine, _rotation
from ansible_collections.kubeguard.hardening.plugins.module_utils._pki import _rotation_store as store
from test_pki_rotation import NOW, _pki, _rot, _step

# (CA, its file, a leaf it signs, that leaf on a node)
CASES = [
    (
        "front-proxy-ca",
        "pki/front-proxy-ca.crt",
        "pki/front-proxy-client.crt",
        "/etc/kubernetes/pki/front-proxy-client.crt",
    ),
    ("etcd-ca", "pki/etcd/ca.crt", "nodes/cp1/pki/etcd/server.crt", "/etc/kubernetes/pki/etcd/server.crt"),
]


def _fps(path):
    return [_crypto.fingerprint(c) for c in store.certs(path.read_bytes())]


def _tree(out):
    return {p.relative_to(out): p.read_bytes() for p in out.rglob("*.conf")}


@pytest.mark.parametrize(("name", "ca_rel", "leaf_rel", "on_node"), CASES)
def test_every_step_leaves_a_store_the_engine_accepts(tmp_path, name, ca_rel, leaf_rel, on_node):
    out = tmp_path / "pki"
    _engine.run(_pki(out), now=NOW)
    confs = _tree(out)
    ca, leaf = out / ca_rel, out / leaf_rel
    old = _fps(ca)
    plan = _rot(out, "plan", name=name)["plan"][name]
    assert plan["due"] == list(_rotation.STEPS)
    assert not [f for f in plan["files"]["trust"] if f.endswith(".conf")]  # no kubeconfig embeds it
    assert leaf_rel in plan["files"]["reissue"]

    assert not _step(out, "generate", name)["changed"]
    assert not _step(out, "trust", name)["changed"]
    new = _crypto.fingerprint(store.pair(str(out), name)[1])
    assert _fps(ca) == [*old, new]
    assert _rot(out, "pods", "pods", name, kubeconfig="")["pods"] == []  # nothing in a pod holds it: no API needed
    _rot(out, "record", "pods", name)
    before = leaf.read_bytes()
    assert _step(out, "reissue", name)["changed"]  # the engine reissues the leaves of the new CA
    assert _fps(ca) == [new, *old]
    issued = store.certs(leaf.read_bytes())[0]
    assert leaf.read_bytes() != before and _crypto.signed_by(issued, store.pair(str(out), name)[1])

    stale = base64.b64encode(before).decode()
    with pytest.raises(KubeguardError, match=f"cp1:{re.escape(on_node)}: .* old CA only"):
        _rot(out, "record", "verify", name, evidence=[stale], evidence_sources=[f"cp1:{on_node}"])
    _step(out, "verify", name)
    _rot(out, "begin", "remove", name)
    assert not _engine.run(_pki(out), now=NOW)["changed"]
    _rot(out, "record", "remove", name)
    assert _fps(ca) == [new]
    assert _tree(out) == confs  # the kubeconfigs never changed
    assert not (out / f"rotation/{name}/new.key").exists()
    assert _rot(out, "plan", name=name)["plan"][name]["due"] == []


@pytest.mark.parametrize("name", ["sa", "front-proxy-ca", "etcd-ca"])
def test_only_the_cluster_ca_rewrites_node_kubeconfigs(tmp_path, name):
    out = tmp_path / "pki"
    _engine.run(_pki(out), now=NOW)
    with pytest.raises(KubeguardError, match=f"not {name} trust") as err:
        _rot(out, "rewrite", "trust", name, contents=[""])
    assert err.value.option == "step"
