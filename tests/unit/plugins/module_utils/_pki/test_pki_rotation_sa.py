"""The service-account key rotation (sa): its step order, and the store's steps with the real engine in between."""

import base64

import pytest
import test_pki_rotation as rotation
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError
from ansible_collections.kubeguard.hardening.plugins.module_utils._pki import (
    _crypto,
    _engine,
    _rotate,
    _rotation,
    _rotation_pods,
)
from ansible_collections.kubeguard.hardening.plugins.module_utils._pki import _rotation_sa as sa
from test_pki_rotation import NOW, _pki

ORDER = ["generate", "trust", "reissue", "pods", "verify", "remove"]


def _rot(out, action, step="", **extra):
    return rotation._rot(out, action, step, "sa", **extra)


def _step(out, step):
    return rotation._step(out, step, "sa")


def _publics(out):
    return [sa.fingerprint(k) for k in sa.publics((out / "pki/sa.pub").read_bytes())]


def _signer(out):
    return sa.fingerprint(_crypto.load_key((out / "pki/sa.key").read_bytes()))


def test_pods_comes_after_reissue_for_sa_only():
    assert _rotation.due(_rotation.empty_state(), "sa", 1) == ORDER
    assert _rotation.check_request(["sa", "ca"], 1) == ["sa", "ca"]
    assert _rotation.check_request(["etcd-ca", "front-proxy-ca", "sa"], 1) == ["etcd-ca", "front-proxy-ca", "sa"]
    state = _rotation.empty_state()
    _rotation.begin(state, "sa", 1, "generate")
    _rotation.record(state, "sa", 1, "generate")
    _rotation.record(state, "sa", 1, "trust")
    with pytest.raises(KubeguardError, match="reissue not recorded"):
        _rotation.begin(state, "sa", 1, "pods")
    assert _rotation.pods_after("sa") == "reissue" and _rotation.pods_after("ca") == "trust"


def test_every_sa_step_leaves_a_store_the_engine_accepts(tmp_path):
    out = tmp_path / "pki"
    _engine.run(_pki(out), now=NOW)
    old = _signer(out)
    plan = _rot(out, "plan")["plan"]["sa"]
    assert plan["due"] == ORDER
    assert plan["files"]["reissue"][:2] == ["pki/sa.key", "pki/sa.pub"]
    assert not (out / "rotation").exists()  # a plan writes nothing

    assert not _step(out, "generate")["changed"]
    new = sa.fingerprint(sa.pair(str(out))[1])
    assert sa.generate(str(out), "sa", "ECDSA-P256", 0, NOW)["new"] == new  # a rerun keeps the new key
    assert not _step(out, "trust")["changed"]  # the first public key is still sa.key's: nothing reissued
    assert _publics(out) == [old, new] and _signer(out) == old

    assert not _step(out, "reissue")["changed"]
    assert _publics(out) == [new, old] and _signer(out) == new
    assert _rotation.due(_rotate.store.read_state(str(out)), "sa", 1) == ["pods", "verify", "remove"]
    state = _rotate.store.read_state(str(out))["rotations"]["sa"]
    assert state["pods_since"] and state["old"] == old and state["new"] == new
    _rot(out, "record", "pods")

    # A control-plane node still signing with the old key blocks verify (and so remove).
    stale = base64.b64encode((out / "rotation/sa/old.pub").read_bytes()).decode()
    with pytest.raises(KubeguardError, match=r"cp1:/etc/kubernetes/pki/sa\.pub: accepts tokens of the old key only"):
        _rot(out, "record", "verify", evidence=[stale], evidence_sources=["cp1:/etc/kubernetes/pki/sa.pub"])
    current = [base64.b64encode((out / f"pki/sa.{e}").read_bytes()).decode() for e in ("key", "pub")]
    _rot(out, "record", "verify", evidence=current, evidence_sources=["cp1:sa.key", "cp1:sa.pub"])

    _rot(out, "begin", "remove")
    assert not _engine.run(_pki(out), now=NOW)["changed"]
    _rot(out, "record", "remove")
    assert _publics(out) == [new]
    assert not (out / "rotation/sa/new.key").exists()
    assert _rot(out, "plan")["plan"]["sa"]["due"] == []
    assert _rot(out, "begin", "generate")["skipped"]


def test_a_store_signing_with_the_old_key_fails_verify(tmp_path):
    out = tmp_path / "pki"
    _engine.run(_pki(out), now=NOW)
    for step in ("generate", "trust"):
        _step(out, step)
    old_key = base64.b64encode((out / "pki/sa.key").read_bytes()).decode()
    _step(out, "reissue")
    _rot(out, "record", "pods")
    with pytest.raises(KubeguardError, match=r"cp1:sa\.key: signs service-account tokens with the old key"):
        _rot(out, "record", "verify", evidence=[old_key], evidence_sources=["cp1:sa.key"])


def test_pods_with_a_projected_token_are_the_holders_for_sa():
    token = [{"name": "t", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}}]
    ca_only = [{"name": "c", "configMap": {"name": "kube-root-ca.crt"}}]
    pods = [
        {"metadata": {"name": n, "namespace": "ns"}, "spec": {"volumes": v}, "status": {"startTime": t}}
        for n, v, t in (
            ("old-token", token, "2026-01-01T09:00:00Z"),
            ("ca-only", ca_only, "2026-01-01T09:00:00Z"),
            ("new-token", token, "2026-01-01T11:00:00Z"),
        )
    ]
    found = _rotation_pods.holders(pods, [], "2026-01-01T10:00:00Z", _rotation_pods.TOKEN)
    assert [h["pod"] for h in found] == ["old-token"]
    assert [h["pod"] for h in _rotation_pods.holders(pods, [], "2026-01-01T10:00:00Z")] == ["ca-only"]


def _jwt(kid):
    header = base64.urlsafe_b64encode(f'{{"alg":"RS256","kid":"{kid}"}}'.encode()).decode().rstrip("=")
    return base64.b64encode(f"{header}.e30.c2ln".encode()).decode()


class _SecretsApi:
    """The three calls reissue_secrets makes; the controller-manager's refill is simulated on the next GET."""

    def __init__(self, secrets, new_kid):
        self.secrets = {s["metadata"]["name"]: s for s in secrets}
        self.new_kid, self.patches = new_kid, []

    def request(self, method, path, query=None, body=None, content_type=""):
        name = path.rsplit("/", 1)[-1]
        if method == "GET" and path == "/api/v1/secrets":
            assert query == {"fieldSelector": f"type={_rotation_pods.LEGACY}"}
            return {"items": list(self.secrets.values())}
        if method == "PATCH":
            assert content_type == "application/json-patch+json"
            assert body[0] == {"op": "test", "path": "/data/token", "value": self.secrets[name]["data"]["token"]}
            self.patches.append(name)
            self.secrets[name]["data"] = {}
            return {}
        data = self.secrets[name]["data"]
        if not data.get("token"):
            data["token"] = _jwt(self.new_kid)
        return {"data": data}


def _secret(name, token):
    return {"metadata": {"name": name, "namespace": "ns"}, "data": {"token": token} if token else {}}


def test_legacy_token_secrets_the_new_key_did_not_sign_are_re_signed():
    key = _crypto.load_der(_crypto.generate_der("RSA-2048"))
    new_kid = _crypto.key_id(key)
    assert "=" not in new_kid and len(new_kid) == 43  # base64url of a SHA-256, unpadded
    assert _rotation_pods.token_key_id({"token": _jwt(new_kid)}) == new_kid
    assert _rotation_pods.token_key_id({"token": "bm90IGEgand0"}) == ""  # "not a jwt"
    secrets = [_secret("old", _jwt("old-kid")), _secret("new", _jwt(new_kid)), _secret("unfilled", "")]
    api = _SecretsApi(secrets, new_kid)
    listed = _rotation_pods.reissue_secrets(api, new_kid, reissue=False, check_mode=False)
    assert listed == {"token_secrets": ["ns/new", "ns/old", "ns/unfilled"], "token_secrets_reissued": []}
    assert _rotation_pods.reissue_secrets(api, new_kid, True, check_mode=True)["token_secrets_reissued"] == ["ns/old"]
    assert api.patches == []  # check mode patches nothing
    done = _rotation_pods.reissue_secrets(api, new_kid, True, check_mode=False)
    assert done["token_secrets_reissued"] == ["ns/old"] and api.patches == ["old"]
    assert _rotation_pods.token_key_id(api.secrets["old"]["data"]) == new_kid
    assert _rotation_pods.reissue_secrets(api, new_kid, True, check_mode=False)["token_secrets_reissued"] == []
