"""control_plane's etcd quorum checks (the restart engine of cluster_pki imports them), with the member
list and each member's /health faked."""

import json

import pytest
from ansible_collections.kubeguard.hardening.plugins.module_utils._control_plane import health
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError

FLAGS = {"name": "cp1", "listen-client-urls": "http://127.0.0.1:2379"}
MEMBERS = [{"name": n, "ID": i, "clientURLs": [f"http://{n}:2379"]} for i, n in enumerate(("cp1", "cp2", "cp3"))]


def fake(monkeypatch, down=(), answers=True):
    def request(url, context, body=None, timeout=10):
        if not answers:
            raise OSError("connection refused")
        return json.dumps({"members": MEMBERS})

    monkeypatch.setattr(health, "_request", request)
    monkeypatch.setattr(health, "_member_healthy", lambda m, _ctx: m["name"] not in down)


def test_the_others_keep_the_quorum_without_me_when_two_answer(monkeypatch):
    fake(monkeypatch, down=("cp1",))
    assert health.etcd_quorum_without_me(FLAGS, {"pki_dir": "/p"}) == (
        True,
        "2 of the other 2 etcd members answer /health; 2 of 3 keep the quorum",
    )


def test_a_member_down_elsewhere_refuses_my_restart(monkeypatch):
    fake(monkeypatch, down=("cp3",))
    ok, detail = health.etcd_quorum_without_me(FLAGS, {"pki_dir": "/p"})
    assert not ok and "(down: cp3)" in detail


def test_after_a_restart_the_quorum_counts_me(monkeypatch):
    fake(monkeypatch, down=("cp3",))
    assert health.etcd_quorum(FLAGS, {"pki_dir": "/p"}) == (
        True,
        "2 of 3 etcd members answer /health (down: cp3); 2 keep the quorum",
    )
    fake(monkeypatch, down=("cp2", "cp3"))
    assert not health.etcd_quorum(FLAGS, {"pki_dir": "/p"})[0]
    fake(monkeypatch, answers=False)
    ok, detail = health.etcd_quorum(FLAGS, {"pki_dir": "/p"})
    assert not ok and "does not answer" in detail


class _EtcdClientAPI:
    """The member list and update of etcd's client API; ``timeouts`` requests time out first (a slow raft
    proposal that the member still applies)."""

    def __init__(self, timeouts, applied_despite_timeout=True):
        self.timeouts, self.applied_despite_timeout = timeouts, applied_despite_timeout
        self.peer_urls, self.calls = ["http://10.0.0.1:2380"], []

    def __call__(self, url, context, body=None, timeout=10):
        path = url.split("/v3/", 1)[1]
        self.calls.append(path)
        if path == "cluster/member/update":
            if self.timeouts:
                self.timeouts -= 1
                if self.applied_despite_timeout:
                    self.peer_urls = body["peerURLs"]
                raise TimeoutError("timed out")
            self.peer_urls = body["peerURLs"]
            return "{}"
        return json.dumps({"members": [{"ID": "7", "name": "cp1", "peerURLs": self.peer_urls}]})


PEER_BEFORE = {
    "name": "cp1",
    "listen-client-urls": "http://127.0.0.1:2379",
    "initial-advertise-peer-urls": "http://10.0.0.1:2380",
}
PEER_AFTER = {**PEER_BEFORE, "initial-advertise-peer-urls": "https://10.0.0.1:2380"}


def test_a_member_update_that_times_out_but_applies_is_read_back_not_failed(monkeypatch):
    api = _EtcdClientAPI(timeouts=1)
    monkeypatch.setattr(health, "_request", api)
    moved = health.etcd_peer_urls(PEER_BEFORE, PEER_AFTER, {"health_timeout": 120}, sleep=lambda _s: None)
    assert moved is True and api.peer_urls == ["https://10.0.0.1:2380"]
    assert api.calls == ["cluster/member/list", "cluster/member/update", "cluster/member/list"]


def test_a_member_update_that_keeps_timing_out_fails_naming_the_health_timeout(monkeypatch):
    api = _EtcdClientAPI(timeouts=1000, applied_despite_timeout=False)
    monkeypatch.setattr(health, "_request", api)
    ticks = iter(range(0, 1000, 50))
    with pytest.raises(KubeguardError, match="did not complete within 120 s") as caught:
        health.etcd_peer_urls(
            PEER_BEFORE, PEER_AFTER, {"health_timeout": 120}, clock=lambda: next(ticks), sleep=lambda _s: None
        )
    assert caught.value.option == "control_plane_health_timeout"
    assert api.peer_urls == ["http://10.0.0.1:2380"]


def test_a_member_already_on_the_new_url_is_left_alone(monkeypatch):
    api = _EtcdClientAPI(timeouts=0)
    api.peer_urls = ["https://10.0.0.1:2380"]
    monkeypatch.setattr(health, "_request", api)
    assert health.etcd_peer_urls(PEER_BEFORE, PEER_AFTER, {"health_timeout": 120}) is False
    assert api.calls == ["cluster/member/list"]
