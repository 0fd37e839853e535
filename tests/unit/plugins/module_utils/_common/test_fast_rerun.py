"""The fast rerun's record: a run is a rerun of the recorded converged one only when its inputs, every node's
fingerprint and the API's match and the record has not expired; every difference is named."""

import json
import os

import pytest
from ansible_collections.kubeguard.hardening.plugins.module_utils._common import fast_rerun

INPUTS = {"the kubeguard variables": "v1", "the collection": "c1", "the controller store": "s1"}
NODES = {"cp1": {"tree:/etc": "a", "unit:kubelet.service": "b"}, "worker1": {"tree:/etc": "c"}}
API = {"api:namespaces": "n", "api:networkpolicies": "p"}


@pytest.fixture
def stamp(tmp_path):
    path = str(tmp_path / "store" / "pki.fast-rerun.json")
    fast_rerun.record(path, INPUTS, NODES, API, valid_until=2000.0)
    return path


def test_the_record_is_written_0600_and_reads_back(stamp):
    assert os.stat(stamp).st_mode & 0o777 == 0o600
    loaded = fast_rerun.load(stamp)
    assert (loaded["inputs"], loaded["nodes"], loaded["api"], loaded["valid_until"]) == (INPUTS, NODES, API, 2000.0)


def test_the_same_run_is_converged(stamp):
    assert fast_rerun.compare(fast_rerun.load(stamp), INPUTS, NODES, API, now=1000.0) == []


def test_no_record_means_a_full_run():
    assert fast_rerun.compare(None, INPUTS, NODES, API, now=1000.0) == ["no converged run is recorded"]


def test_an_expired_record_means_a_full_run(stamp):
    (reason,) = fast_rerun.compare(fast_rerun.load(stamp), INPUTS, NODES, API, now=2000.0)
    assert "certificate is due" in reason


def test_every_difference_is_named(stamp):
    inputs = {**INPUTS, "the collection": "c2"}
    nodes = {"cp1": {**NODES["cp1"], "unit:kubelet.service": "x"}, "worker1": {"tree:/etc": "c", "sysctls": "s"}}
    api = {**API, "api:networkpolicies": "q"}
    reasons = fast_rerun.compare(fast_rerun.load(stamp), inputs, nodes, api, now=1000.0)
    assert reasons == [
        "the collection changed",
        "cp1: unit:kubelet.service",
        "worker1: sysctls",
        "API: api:networkpolicies",
    ]


def test_a_node_without_a_fingerprint_or_another_set_of_nodes_is_not_converged(stamp):
    loaded = fast_rerun.load(stamp)
    assert fast_rerun.compare(loaded, INPUTS, {**NODES, "worker1": None}, API, 1000.0) == [
        "worker1: no fingerprint this run"
    ]
    (reason,) = fast_rerun.compare(loaded, INPUTS, {"cp1": NODES["cp1"]}, API, 1000.0)
    assert reason.startswith("the nodes differ")


def test_a_failed_api_fingerprint_is_a_difference(stamp):
    assert fast_rerun.compare(fast_rerun.load(stamp), INPUTS, NODES, {}, 1000.0) == [
        "API: api:namespaces, api:networkpolicies"
    ]


@pytest.mark.parametrize("content", ["not json", json.dumps({"version": 0}), json.dumps([1])])
def test_a_record_of_another_shape_or_version_is_no_record(tmp_path, content):
    path = tmp_path / "stamp.json"
    path.write_text(content)
    assert fast_rerun.load(str(path)) is None


def test_forget_removes_the_record_once(stamp):
    assert fast_rerun.forget(stamp) is True
    assert fast_rerun.forget(stamp) is False
    assert fast_rerun.load(stamp) is None


def test_the_collection_digest_follows_content_and_ignores_bytecode(tmp_path):
    (tmp_path / "roles/x/tasks").mkdir(parents=True)
    (tmp_path / "roles/x/tasks/main.yml").write_text("- debug: {}\n")
    before = fast_rerun.collection_digest(str(tmp_path))
    (tmp_path / "roles/x/__pycache__").mkdir()
    (tmp_path / "roles/x/__pycache__/a.pyc").write_bytes(b"\0")
    assert fast_rerun.collection_digest(str(tmp_path)) == before
    (tmp_path / "roles/x/tasks/main.yml").write_text("- debug: {msg: 1}\n")
    assert fast_rerun.collection_digest(str(tmp_path)) != before
