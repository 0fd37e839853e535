"""The front-proxy CA rotation: the store's steps with the real engine in between; no kubeconfig is touched."""

import base64

import pytest
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError
from ansible_collections.kubeguard.hardening.plugins.module_utils._pki import _crypto, _engine, _rotate, _rotation
from ansible_collections.kubeguard.hardening.plugins.module_utils._pki import _rotation_store as store
from test_pki_engine import params as engine_params
from test_pki_rotation import NOW

NAME = "front-proxy-ca"


def _pki(out):
    return engine_params(out, worker_nodes=[{"name": "w1", "ips": ["10.0.0.11"]}], workers=1)


def _rot(out, action, step="", **extra):
    params = {"output_dir": str(out), "rotate": [NAME], "action": action, "ca": NAME, "step": step}
    params.update(key_algorithm="ECDSA-P256", ca_validity_days=3650, leaf_validity_days=365, **extra)
    return _rotate.run(params, now=NOW)


def _step(out, step, **extra):
    _rot(out, "begin", step, **extra)
    engine = _engine.run(_pki(out), now=NOW)
    _rot(out, "record", step, **extra)
    return engine


def _fps(path):
    return [_crypto.fingerprint(c) for c in store.certs(path.read_bytes())]


def _tree(out):
    return {p.relative_to(out): p.read_bytes() for p in out.rglob("*.conf")}


def test_every_front_proxy_step_leaves_a_store_the_engine_accepts(tmp_path):
    out = tmp_path / "pki"
    _engine.run(_pki(out), now=NOW)
    confs = _tree(out)
    ca, client = out / "pki/front-proxy-ca.crt", out / "pki/front-proxy-client.crt"
    old = _fps(ca)
    plan = _rot(out, "plan")["plan"][NAME]
    assert plan["due"] == list(_rotation.STEPS)
    assert not [f for f in plan["files"]["trust"] if f.endswith(".conf")]  # no kubeconfig embeds it
    assert "pki/front-proxy-client.crt" in plan["files"]["reissue"]

    assert not _step(out, "generate")["changed"]
    assert not _step(out, "trust")["changed"]
    new = _crypto.fingerprint(store.pair(str(out), NAME)[1])
    assert _fps(ca) == [*old, new]
    assert _rot(out, "pods", "pods", kubeconfig="")["pods"] == []  # nothing in a pod holds it: no API needed
    _rot(out, "record", "pods")
    before = client.read_bytes()
    assert _step(out, "reissue")["changed"]  # the engine reissues the front-proxy client certificate
    assert _fps(ca) == [new, *old]
    issued = store.certs(client.read_bytes())[0]
    assert client.read_bytes() != before and _crypto.signed_by(issued, store.pair(str(out), NAME)[1])

    stale = base64.b64encode(before).decode()
    with pytest.raises(KubeguardError, match=r"cp1:/etc/kubernetes/pki/front-proxy-client\.crt: .* old CA only"):
        _rot(
            out,
            "record",
            "verify",
            evidence=[stale],
            evidence_sources=["cp1:/etc/kubernetes/pki/front-proxy-client.crt"],
        )
    _step(out, "verify")
    _rot(out, "begin", "remove")
    assert not _engine.run(_pki(out), now=NOW)["changed"]
    _rot(out, "record", "remove")
    assert _fps(ca) == [new]
    assert _tree(out) == confs  # the kubeconfigs never changed
    assert not (out / "rotation/front-proxy-ca/new.key").exists()
    assert _rot(out, "plan")["plan"][NAME]["due"] == []


def test_front_proxy_has_no_kubeconfig_to_rewrite(tmp_path):
    out = tmp_path / "pki"
    _engine.run(_pki(out), now=NOW)
    with pytest.raises(KubeguardError, match="not front-proxy-ca trust") as err:
        _rot(out, "rewrite", "trust", contents=[""])
    assert err.value.option == "step"
