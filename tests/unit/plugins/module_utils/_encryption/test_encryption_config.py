"""EncryptionConfiguration rendering and parsing, the etcd prefixes and the etcd scan (pure)."""

import base64

import pytest
from ansible_collections.kubeguard.hardening.plugins.module_utils._encryption import config, etcd, objects
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError

KEYS = {
    "gen2-aescbc": {"provider": "aescbc", "secret": base64.b64encode(b"a" * 32).decode()},
    "gen1-aescbc": {"provider": "aescbc", "secret": base64.b64encode(b"b" * 32).decode()},
    "gen1-secretbox": {"provider": "secretbox", "secret": base64.b64encode(b"c" * 32).decode()},
}


def test_render_groups_adjacent_keys_and_round_trips():
    text = config.render(["secrets"], ["gen2-aescbc", "gen1-aescbc", "gen1-secretbox", "identity"], KEYS)
    parsed = config.parse(text, "x")
    assert [(s["provider"], s["name"]) for s in parsed["slots"]] == [
        ("aescbc", "gen2-aescbc"),
        ("aescbc", "gen1-aescbc"),
        ("secretbox", "gen1-secretbox"),
        ("identity", "identity"),
    ]
    assert text.count('"aescbc"') == 1
    view = config.public_view(parsed)
    assert KEYS["gen2-aescbc"]["secret"] not in str(view)
    assert view["slots"][0]["fingerprint"] == config.fingerprint(KEYS["gen2-aescbc"]["secret"])


def test_parse_reads_yaml_written_by_other_tools():
    text = """apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [secrets]
    providers:
      - secretbox:
          keys:
            - name: key1
              secret: {}
      - identity: {{}}
  - resources: [configmaps]
    providers:
      - kms:
          name: x
""".format(KEYS["gen1-secretbox"]["secret"])
    parsed = config.parse(text, "x")
    assert [s["name"] for s in parsed["slots"]] == ["key1", "identity"]
    assert parsed["unsupported"] == ["kms"]


def test_parse_refuses_other_documents():
    with pytest.raises(KubeguardError, match="not an EncryptionConfiguration"):
        config.parse('{"kind": "Pod"}', "x")


@pytest.mark.parametrize(
    ("resource", "group", "want"),
    [
        ("secrets", "", "/registry/secrets/"),
        ("services", "", "/registry/services/specs/"),
        ("deployments", "apps", "/registry/deployments/"),
        ("ingresses", "networking.k8s.io", "/registry/ingresses/"),
        ("widgets", "example.com", "/registry/example.com/widgets/"),
    ],
)
def test_etcd_prefix(resource, group, want):
    assert objects.etcd_prefix(resource, group) == want


@pytest.mark.parametrize(
    ("value", "want"),
    [
        (b"k8s:enc:aescbc:v1:gen1-aescbc:\x00\x01", "k8s:enc:aescbc:v1:gen1-aescbc:"),
        (b"k8s:enc:secretbox:v1:key1:zz", "k8s:enc:secretbox:v1:key1:"),
        (b"k8s\x00\n\x0c\n\x02v1\x12\x06Secret", "plaintext"),
    ],
)
def test_label(value, want):
    assert etcd.label(value) == want


class FakeEtcd:
    def __init__(self, data):
        self.data = dict(sorted(data.items()))
        self.requests = 0

    def range(self, key, range_end, limit):
        self.requests += 1
        keys = [k for k in self.data if key <= k < range_end][:limit]
        more = len([k for k in self.data if key <= k < range_end]) > limit
        return {
            "kvs": [
                {"key": base64.b64encode(k).decode(), "value": base64.b64encode(self.data[k]).decode()} for k in keys
            ],
            "more": more,
        }


def test_scan_pages_and_counts_by_prefix():
    data = {f"/registry/secrets/ns/s{i:03}".encode(): b"k8s:enc:aescbc:v1:gen2-aescbc:xx" for i in range(7)}
    data[b"/registry/secrets/ns/old"] = b"k8s:enc:aescbc:v1:gen1-aescbc:xx"
    data[b"/registry/configmaps/ns/c"] = b"k8s\x00plain"
    data[b"/registry/secretsx"] = b"k8s\x00plain"  # outside the prefix
    fake = FakeEtcd(data)
    counts, samples = etcd.scan(fake, ["/registry/secrets/"], page=3)
    assert counts == {"/registry/secrets/": {"k8s:enc:aescbc:v1:gen2-aescbc:": 7, "k8s:enc:aescbc:v1:gen1-aescbc:": 1}}
    assert samples["k8s:enc:aescbc:v1:gen1-aescbc:"] == ["/registry/secrets/ns/old"]
    assert fake.requests == 3
    result = etcd.run(
        {"prefixes": {"secrets": "/registry/secrets/"}, "expected_prefix": "k8s:enc:aescbc:v1:gen2-aescbc:"},
        etcd=fake,
    )
    assert result["stale"] == 1 and result["checked"] == 8
