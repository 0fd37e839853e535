"""control_plane's etcd quorum checks (the restart engine of cluster_pki imports them), with the member
list and each member's /health faked."""

import json

from ansible_collections.kubeguard.hardening.plugins.module_utils._control_plane import health

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
