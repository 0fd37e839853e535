"""What a node reports: names and fingerprints by default, key bytes only when asked."""

import base64

import pytest
from ansible_collections.kubeguard.hardening.plugins.module_utils._encryption import config, facts, objects
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError

SECRET = base64.b64encode(b"s" * 32).decode()
ETCD = {"etcd-servers": "https://127.0.0.1:2379", "etcd-cafile": "/ca", "etcd-certfile": "/c", "etcd-keyfile": "/k"}


def test_no_flag_means_plain_text(tmp_path):
    out = facts.gather({}, flags=dict(ETCD))["encryption"]
    assert out["present"] is False and out["slots"] == []
    assert out["etcd"]["etcd-servers"] == "https://127.0.0.1:2379" and out["etcd"]["etcd-prefix"] == ""


@pytest.mark.parametrize("include_secrets", [False, True])
def test_config_is_read_with_or_without_key_bytes(tmp_path, include_secrets):
    path = tmp_path / "enc.yaml"
    path.write_text(
        config.render(
            ["secrets"], ["gen1-aescbc", "identity"], {"gen1-aescbc": {"provider": "aescbc", "secret": SECRET}}
        )
    )
    flags = dict(ETCD, **{"encryption-provider-config": str(path)})
    out = facts.gather({"include_secrets": include_secrets}, flags=flags)["encryption"]
    assert [s["name"] for s in out["slots"]] == ["gen1-aescbc", "identity"]
    assert out["slots"][0]["fingerprint"] == config.fingerprint(SECRET)
    assert (SECRET in str(out)) is include_secrets


def test_a_named_but_missing_config_stops(tmp_path):
    flags = dict(ETCD, **{"encryption-provider-config": str(tmp_path / "gone.yaml")})
    with pytest.raises(KubeguardError, match="is missing"):
        facts.gather({}, flags=flags)


class FakeClient:
    discovery_requests = 0
    requests = 0

    def request(self, method, path, query=None, body=None):
        self.requests += 1
        if path == "/api/v1":
            return {
                "resources": [
                    {"name": "secrets", "kind": "Secret", "namespaced": True, "verbs": ["list", "update"]},
                    {"name": "secrets/status", "kind": "Secret", "namespaced": True, "verbs": ["get"]},
                    {"name": "events", "kind": "Event", "namespaced": True, "verbs": ["list"]},
                ]
            }
        if path == "/apis":
            return {"groups": [{"name": "example.com", "preferredVersion": {"groupVersion": "example.com/v1"}}]}
        if path == "/apis/example.com/v1":
            return {
                "resources": [{"name": "widgets", "kind": "Widget", "namespaced": False, "verbs": ["list", "update"]}]
            }
        raise AssertionError(path)


def test_resolve_against_discovery():
    client = FakeClient()
    out = objects.run({"resources": ["secrets", "widgets.example.com"]}, client=client)
    assert out["resources"]["widgets.example.com"]["etcd_prefix"] == "/registry/example.com/widgets/"
    assert out["resources"]["secrets"]["kind"] == "Secret"
    assert client.requests == 3
    with pytest.raises(KubeguardError, match="does not serve events, gadgets"):
        objects.run({"resources": ["events", "gadgets.example.com"]}, client=FakeClient())
