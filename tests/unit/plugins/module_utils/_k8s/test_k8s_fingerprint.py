"""The API fingerprint: one metadata-only list per kind, digested whatever the listing order; any write
(a new resourceVersion), deletion or new object moves its kind's digest."""

from ansible_collections.kubeguard.hardening.plugins.module_utils._k8s import fingerprint


def item(name, version, namespace="default"):
    return {"metadata": {"namespace": namespace, "name": name, "uid": f"uid-{name}", "resourceVersion": version}}


def test_the_order_of_a_listing_does_not_matter():
    assert fingerprint.digest([item("a", "1"), item("b", "2")]) == fingerprint.digest([item("b", "2"), item("a", "1")])


def test_a_write_a_deletion_or_a_new_object_moves_the_digest():
    base = fingerprint.digest([item("a", "1"), item("b", "2")])
    assert fingerprint.digest([item("a", "3"), item("b", "2")]) != base
    assert fingerprint.digest([item("a", "1")]) != base
    assert fingerprint.digest([item("a", "1"), item("b", "2"), item("c", "4")]) != base


class Client:
    def __init__(self):
        self.requests = 0
        self.calls = []

    def request(self, method, path, accept="application/json"):
        self.requests += 1
        self.calls.append((method, path, accept))
        return {"items": [item(path.rsplit("/", 1)[1], "1")]}


def test_one_metadata_only_list_per_kind(monkeypatch):
    client = Client()
    monkeypatch.setattr(fingerprint.Client, "from_kubeconfig", classmethod(lambda cls, *args: client))
    result = fingerprint.run({"kubeconfig": "k", "context": None, "request_timeout": 5}, check_mode=False)
    assert result["changed"] is False and result["requests"] == len(fingerprint.KINDS)
    assert {call[1] for call in client.calls} >= {"/api/v1/namespaces", "/apis/networking.k8s.io/v1/networkpolicies"}
    assert all(call[0] == "GET" and "PartialObjectMetadataList" in call[2] for call in client.calls)
    assert set(result["fingerprint"]) == {f"api:{plural}" for _, plural in fingerprint.KINDS}
