"""The CA rotation: the pure state machine, and the store's steps with the real engine in between."""

import base64
import datetime
from pathlib import Path

import pytest
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError
from ansible_collections.kubeguard.hardening.plugins.module_utils._pki import (
    _crypto,
    _engine,
    _kubeconfig,
    _rotate,
    _rotation,
    _rotation_pods,
)
from ansible_collections.kubeguard.hardening.plugins.module_utils._pki import _rotation_store as store
from test_pki_engine import params as engine_params

NOW = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)


def test_a_new_rotation_is_due_in_full():
    assert _rotation.due(_rotation.empty_state(), "ca", 1) == list(_rotation.STEPS)


def test_steps_are_refused_out_of_order_and_resume_at_the_first_unrecorded():
    state = _rotation.empty_state()
    with pytest.raises(KubeguardError, match="has not begun"):
        _rotation.begin(state, "ca", 1, "trust")
    _rotation.begin(state, "ca", 1, "generate")
    _rotation.record(state, "ca", 1, "generate")
    with pytest.raises(KubeguardError, match="trust, pods not recorded"):
        _rotation.begin(state, "ca", 1, "reissue")
    _rotation.record(state, "ca", 1, "trust")
    assert _rotation.due(state, "ca", 1) == ["pods", "reissue", "verify", "remove"]
    assert _rotation.in_progress(state) == ["ca"]


def test_remove_never_comes_before_a_verify_with_evidence():
    state = _rotation.empty_state()
    _rotation.begin(state, "ca", 1, "generate")
    for step in ("generate", "trust", "pods", "reissue"):
        _rotation.record(state, "ca", 1, step)
    with pytest.raises(KubeguardError, match="verify not recorded"):
        _rotation.begin(state, "ca", 1, "remove")
    with pytest.raises(KubeguardError, match="chain only to the old CA") as err:
        _rotation.record(state, "ca", 1, "verify", offenders=["cp1:/x.crt: signed by the old CA only"])
    assert err.value.option == "step"
    assert _rotation.due(state, "ca", 1) == ["verify", "remove"]


def test_a_finished_round_is_not_run_again_and_a_higher_one_starts_anew():
    state = _rotation.empty_state()
    _rotation.begin(state, "ca", 1, "generate")
    for step in _rotation.STEPS:
        _rotation.record(state, "ca", 1, step, offenders=[])
    assert state["rotations"]["ca"]["finished"]
    assert _rotation.due(state, "ca", 1) == []
    assert _rotation.in_progress(state) == []
    assert _rotation.due({"version": 1, "rotations": {"ca": {"round": 3, "steps": []}}}, "ca", 2) == []
    assert _rotation.due(state, "ca", 2) == list(_rotation.STEPS)


def test_an_unfinished_round_blocks_a_new_one():
    state = _rotation.empty_state()
    _rotation.begin(state, "ca", 1, "generate")
    _rotation.record(state, "ca", 1, "generate")
    with pytest.raises(KubeguardError, match="unfinished"):
        _rotation.begin(state, "ca", 2, "generate")


@pytest.mark.parametrize(
    ("rotate", "match"),
    [(["nope"], "unknown CA nope"), ("ca", "must be a list")],
)
def test_bad_requests_name_the_option(rotate, match):
    with pytest.raises(KubeguardError, match=match) as err:
        _rotation.check_request(rotate, 1)
    assert err.value.option == "rotate"


def test_a_foreign_state_file_is_refused():
    with pytest.raises(KubeguardError, match="not a CA rotation state"):
        _rotation.check_state({"version": 9})


# ---------------------------------------------------------------- the store


def _pki(out):
    """The engine tests' cluster with a worker, as the rotation walks it."""
    return engine_params(out, worker_nodes=[{"name": "w1", "ips": ["10.0.0.11"]}], workers=1)


def _rot(out, action, step="", name="ca", **extra):
    params = {"output_dir": str(out), "rotate": [name], "action": action, "ca": name, "step": step}
    params.update(key_algorithm="ECDSA-P256", ca_validity_days=3650, leaf_validity_days=365, **extra)
    return _rotate.run(params, now=NOW)


def _step(out, step, name="ca", **extra):
    _rot(out, "begin", step, name, **extra)
    engine = _engine.run(_pki(out), now=NOW)
    _rot(out, "record", step, name, **extra)
    return engine


def _controller(tmp_path, out):
    """A controller kubeconfig like the lab's: a copy of admin.conf outside the store."""
    path = tmp_path / "controller.kubeconfig"
    path.write_bytes((out / "admin.conf").read_bytes())
    path.chmod(0o600)
    return str(path)


def _ca_data(path):
    return store.certs(_kubeconfig.parse(Path(path).read_bytes())["ca"])


def test_every_step_leaves_a_store_the_engine_accepts(tmp_path):
    out = tmp_path / "pki"
    _engine.run(_pki(out), now=NOW)
    kubeconfig = _controller(tmp_path, out)
    old = store.certs((out / "pki/ca.crt").read_bytes())[0]
    plan = _rot(out, "plan", controller_kubeconfig=kubeconfig)["plan"]["ca"]
    assert plan["due"] == list(_rotation.STEPS)
    assert kubeconfig in plan["files"]["trust"]
    assert not (out / "rotation").exists()  # a plan writes nothing

    assert not _step(out, "generate")["changed"]
    assert not _step(out, "trust", controller_kubeconfig=kubeconfig)["changed"]  # consistent: nothing reissued
    new = store.certs((out / "rotation/ca/new.crt").read_bytes())[0]
    fp = _crypto.fingerprint
    assert [fp(c) for c in store.certs((out / "pki/ca.crt").read_bytes())] == [fp(old), fp(new)]
    assert [fp(c) for c in _ca_data(out / "nodes/w1/kubelet.conf")] == [fp(old), fp(new)]
    assert [fp(c) for c in _ca_data(kubeconfig)] == [fp(old), fp(new)]

    _step(out, "pods")
    reissued = _step(out, "reissue", controller_kubeconfig=kubeconfig)
    assert reissued["changed"]
    assert fp(store.certs((out / "pki/ca.crt").read_bytes())[0]) == fp(new)
    apiserver = store.certs((out / "nodes/cp1/pki/apiserver.crt").read_bytes())[0]
    assert _crypto.signed_by(apiserver, new)
    client = _kubeconfig.parse(Path(kubeconfig).read_bytes())["cert"]
    assert _crypto.signed_by(_crypto.load_cert(client), new)

    _step(out, "pods")
    # A node file still signed by the old CA alone blocks verify (and so remove).
    other = tmp_path / "other"
    _engine.run(_pki(other), now=NOW)  # a leaf of another CA is not an offender
    foreign = base64.b64encode((other / "nodes/cp1/pki/apiserver.crt").read_bytes()).decode()
    stale = base64.b64encode((out / "rotation/ca/old.crt").read_bytes()).decode()
    with pytest.raises(KubeguardError, match=r"w1:/etc/x\.crt: trusts the old CA only"):
        _rot(out, "record", "verify", evidence=[foreign, stale], evidence_sources=["cp1:/f.crt", "w1:/etc/x.crt"])
    _step(out, "verify", controller_kubeconfig=kubeconfig)
    _rot(out, "begin", "remove", controller_kubeconfig=kubeconfig)
    after = _engine.run(_pki(out), now=NOW)
    assert not after["changed"], after["certificates"]
    _rot(out, "record", "remove", controller_kubeconfig=kubeconfig)
    assert [fp(c) for c in store.certs((out / "pki/ca.crt").read_bytes())] == [fp(new)]
    assert [fp(c) for c in _ca_data(kubeconfig)] == [fp(new)]
    assert not (out / "rotation/ca/new.key").exists()
    assert _rot(out, "plan")["plan"]["ca"]["due"] == []
    assert _rot(out, "begin", "generate")["skipped"]  # the finished round changes nothing
    assert not (out / "rotation/ca/old.crt").exists()
    # A second round starts from the CA the first one made.
    _rot(out, "begin", "generate", round=2)
    assert fp(store.certs((out / "rotation/ca/old.crt").read_bytes())[0]) == fp(new)
    _rot(out, "begin", "trust", round=2)
    assert fp(store.certs((out / "pki/ca.crt").read_bytes())[0]) == fp(new)


@pytest.mark.parametrize("name", _rotation.ROTATABLE)
def test_check_mode_writes_nothing(tmp_path, name):
    out = tmp_path / "pki"
    _engine.run(_pki(out), now=NOW)
    before = sorted(p.name for p in out.rglob("*"))
    params = {"output_dir": str(out), "rotate": [name], "action": "begin", "ca": name, "step": "generate"}
    params.update(key_algorithm="ECDSA-P256", ca_validity_days=10, leaf_validity_days=5)
    result = _rotate.run(params, check_mode=True, now=NOW)
    assert result["changed"]
    assert f"rotation/{name}/new.key" in result["files"]
    assert sorted(p.name for p in out.rglob("*")) == before


def test_a_killed_generate_keeps_the_new_ca(tmp_path):
    out = tmp_path / "pki"
    _engine.run(_pki(out), now=NOW)
    first = store.generate(str(out), "ca", "ECDSA-P256", 10, NOW)
    assert store.generate(str(out), "ca", "ECDSA-P256", 10, NOW) == first


def test_an_expiring_ca_is_reported(tmp_path):
    out = tmp_path / "pki"
    _engine.run(engine_params(out, ca_validity_days=20, leaf_validity_days=10, renew_before_days=5), now=NOW)
    result = _rot(out, "plan", ca_renew_before_days=90)
    assert result["expiry"]["ca"]["days_left"] == 20
    assert any("cluster_pki_rotate_ca: [ca]" in w for w in result["warnings"])


# ---------------------------------------------------------------- pods


def _pod(name, started, owner=None, volume="projected", mirror=False):
    volumes = {
        "projected": [{"name": "t", "projected": {"sources": [{"configMap": {"name": "kube-root-ca.crt"}}]}}],
        "configmap": [{"name": "c", "configMap": {"name": "kube-root-ca.crt"}}],
        "none": [{"name": "e", "emptyDir": {}}],
    }[volume]
    meta = {"name": name, "namespace": "ns", "annotations": {"kubernetes.io/config.mirror": "x"} if mirror else {}}
    if owner:
        meta["ownerReferences"] = [{"kind": owner[0], "name": owner[1], "controller": True}]
    return {"metadata": meta, "spec": {"volumes": volumes}, "status": {"startTime": started}}


def test_pods_started_before_trust_that_mount_the_root_ca_are_listed_with_their_controller():
    before = "2026-01-01T10:00:00Z"
    rs = [
        {
            "metadata": {
                "name": "web-1",
                "namespace": "ns",
                "ownerReferences": [{"kind": "Deployment", "name": "web", "controller": True}],
            }
        }
    ]
    pods = [
        _pod("web-1-a", "2026-01-01T09:00:00Z", ("ReplicaSet", "web-1")),
        _pod("ds-a", "2026-01-01T09:00:00Z", ("DaemonSet", "ds"), volume="configmap"),
        _pod("bare", "2026-01-01T09:00:00Z"),
        _pod("job-a", "2026-01-01T09:00:00Z", ("Job", "job")),
        _pod("late", "2026-01-01T11:00:00Z", ("DaemonSet", "ds")),
        _pod("no-ca", "2026-01-01T09:00:00Z", ("DaemonSet", "ds"), volume="none"),
        _pod("static", "2026-01-01T09:00:00Z", mirror=True),
    ]
    found = _rotation_pods.holders(pods, rs, before)
    assert [(h["pod"], h["kind"], h["name"]) for h in found] == [
        ("web-1-a", "Deployment", "web"),
        ("ds-a", "DaemonSet", "ds"),
        ("bare", "", ""),
        ("job-a", "", ""),
    ]
    assert _rotation_pods.targets(found) == [("DaemonSet", "ns", "ds"), ("Deployment", "ns", "web")]


@pytest.mark.parametrize(
    ("kind", "status", "done"),
    [
        ("Deployment", {"observedGeneration": 2, "updatedReplicas": 2, "availableReplicas": 2, "replicas": 2}, True),
        ("Deployment", {"observedGeneration": 2, "updatedReplicas": 2, "availableReplicas": 2, "replicas": 3}, False),
        ("Deployment", {"observedGeneration": 1, "updatedReplicas": 2, "availableReplicas": 2, "replicas": 2}, False),
        (
            "DaemonSet",
            {"observedGeneration": 2, "desiredNumberScheduled": 3, "updatedNumberScheduled": 3, "numberAvailable": 3},
            True,
        ),
        (
            "DaemonSet",
            {"observedGeneration": 2, "desiredNumberScheduled": 3, "updatedNumberScheduled": 2, "numberAvailable": 3},
            False,
        ),
    ],
)
def test_rolled_out_reads_the_status_like_kubectl(kind, status, done):
    obj = {"metadata": {"generation": 2}, "spec": {"replicas": 2}, "status": status}
    assert _rotation_pods.rolled_out(kind, obj) is done


class _RolloutClient:
    """The API of the pods step: two controllers whose pods hold the root CA; each rolls out two polls after its
    restart. Records every write and every rollout poll, in order."""

    def __init__(self):
        self.calls, self.polls = [], {}
        rs = {"metadata": {"name": "web-1", "namespace": "ns"}}
        rs["metadata"]["ownerReferences"] = [{"kind": "Deployment", "name": "web", "controller": True}]
        self.items = {
            "/api/v1/pods": [
                _pod("web-1-a", "2026-01-01T09:00:00Z", ("ReplicaSet", "web-1")),
                _pod("ds-a", "2026-01-01T09:00:00Z", ("DaemonSet", "ds")),
            ],
            "/apis/apps/v1/replicasets": [rs],
        }

    def request(self, method, path, query=None, body=None, content_type=None):
        if path in self.items:
            return {"items": self.items[path]}
        self.calls.append((method, path.rsplit("/", 1)[-1]))
        if method == "PATCH":
            self.polls[path] = 0
            return {}
        self.polls[path] += 1
        done = self.polls[path] >= 2
        status = {"observedGeneration": 2, "updatedReplicas": 1, "availableReplicas": 1, "replicas": 1}
        status.update(desiredNumberScheduled=1, updatedNumberScheduled=int(done), numberAvailable=1)
        if not done:
            status["updatedReplicas"] = 0
        return {"metadata": {"generation": 2}, "spec": {"replicas": 1}, "status": status}


def test_controllers_are_restarted_one_at_a_time_each_rolled_out_before_the_next(monkeypatch):
    monkeypatch.setattr(_rotation_pods.time, "sleep", lambda _seconds: None)
    client = _RolloutClient()
    result = _rotation_pods.run(client, "2026-01-01T10:00:00Z", True, False, "", "2026-01-01T10:05:00Z")
    assert result["restarted"] == ["DaemonSet/ns/ds", "Deployment/ns/web"]
    assert client.calls == [
        ("PATCH", "ds"),
        ("GET", "ds"),
        ("GET", "ds"),
        ("PATCH", "web"),
        ("GET", "web"),
        ("GET", "web"),
    ]


def test_a_controller_that_does_not_roll_out_stops_the_step_before_the_next_is_restarted(monkeypatch):
    monkeypatch.setattr(_rotation_pods.time, "sleep", lambda _seconds: None)
    ticks = iter(range(0, 10_000, 100))
    monkeypatch.setattr(_rotation_pods.time, "monotonic", lambda: next(ticks))
    client = _RolloutClient()
    client.request = _never_rolled_out(client.request)
    with pytest.raises(KubeguardError, match="DaemonSet ns/ds did not roll out within 180 s"):
        _rotation_pods.run(client, "2026-01-01T10:00:00Z", True, False, "", "2026-01-01T10:05:00Z")
    assert [call for call in client.calls if call[0] == "PATCH"] == [("PATCH", "ds")]


def _never_rolled_out(request):
    def wrapped(method, path, **kwargs):
        answer = request(method, path, **kwargs)
        if method == "GET" and "status" in answer:
            answer["status"]["updatedNumberScheduled"] = 0
        return answer

    return wrapped
