"""The restart sequence: order, health waits and rollback, with systemd and
the health probe faked (the lab tests run them for real)."""

import os

import pytest
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError
from ansible_collections.kubeguard.hardening.plugins.module_utils._pki import _install, _restart

SERVICES = {c: c for c in _restart.ORDER}


class FakeNode:
    """systemctl and the health URLs of a node; ``broken`` components never get healthy."""

    def __init__(self, units=tuple(SERVICES), broken=()):
        self.units = {f"{u}.service" for u in units}
        self.broken = set(broken)
        self.calls = []
        self.now = 0.0
        self.pids = {}  # unit -> MainPID; a restart starts a new process

    def command(self, *argv):
        self.calls.append(argv)
        if argv[0] == "show":
            unit, prop = argv[-1], argv[2]
            if prop == "LoadState":
                return 0, "loaded" if unit in self.units else "not-found"
            if prop == "MainPID":
                return 0, str(self.pids.setdefault(unit, 100))
            return 0, "active"
        if argv[0] == "restart":
            self.pids[argv[-1]] = self.pids.get(argv[-1], 100) + 1
        return 0, ""

    def probe(self, url):
        return url.split("/")[-1] not in self.broken

    def sleep(self, seconds):
        self.now += seconds

    def clock(self):
        return self.now

    def restarted(self):
        return [argv[-1].removesuffix(".service") for argv in self.calls if argv[0] == "restart"]


def params(components, backup_dir="", **extra):
    health = {c: [f"http://127.0.0.1/{c}"] for c in _restart.ORDER}
    return {
        "components": components,
        "services": SERVICES,
        "health_checks": health,
        "backup_dir": backup_dir,
        "timeout": 10,
        **extra,
    }


def run(node, p, check_mode=False):
    restarter = _restart.Restarter(
        p, command=node.command, probe=node.probe, sleep=node.sleep, clock=node.clock, bound=lambda *_: None
    )
    return _restart.run(p, check_mode, restarter)


def test_components_restart_one_at_a_time_in_dependency_order():
    node = FakeNode()
    result = run(node, params(["kubelet", "kube-scheduler", "etcd", "kube-apiserver"]))
    assert node.restarted() == ["etcd", "kube-apiserver", "kube-scheduler", "kubelet"]
    assert result == {"changed": True, "restarted": node.restarted()}


def test_missing_units_are_skipped_and_check_mode_restarts_nothing():
    node = FakeNode(units=["kube-scheduler"])
    assert run(node, params(["kube-apiserver", "kube-scheduler"]), check_mode=True) == {
        "changed": True,
        "restarted": ["kube-scheduler"],
    }
    assert node.restarted() == []
    assert run(FakeNode(units=[]), params(["kubelet"])) == {"changed": False, "restarted": []}


def test_an_unhealthy_component_rolls_the_node_back_and_fails_naming_it(tmp_path):
    kdir = tmp_path / "k8s"
    kdir.mkdir()
    (kdir / "apiserver.crt").write_text("old\n")
    files = [{"root": "kubernetes", "dest": "apiserver.crt", "mode": "0644", "components": ["kube-apiserver"]}]
    install = {
        "files": files,
        "contents": ["new\n"],
        "kubernetes_dir": str(kdir),
        "kubelet_pki_dir": str(tmp_path),
        "owner": str(os.getuid()),
        "group": str(os.getgid()),
        "backup_dir": str(tmp_path / "backup"),
    }
    _install.run(install)
    node = FakeNode(broken=["kube-apiserver"])
    with pytest.raises(
        KubeguardError, match=r"kube-apiserver \(kube-apiserver.service\) did not become healthy"
    ) as err:
        run(node, params(["etcd"], str(tmp_path / "backup")))  # the manifest adds kube-apiserver
    assert err.value.option == "components"
    assert "restored the 1 previous file(s)" in str(err.value)
    assert (kdir / "apiserver.crt").read_text() == "old\n"
    # etcd and the apiserver were restarted again after the files came back
    assert node.restarted() == ["etcd", "kube-apiserver", "etcd", "kube-apiserver"]
    assert _install.read_manifest(str(tmp_path / "backup"))["components"] == []


def test_a_component_without_health_urls_must_stay_active():
    node = FakeNode()
    p = params(["kubelet"], health_checks={})
    assert run(node, p)["restarted"] == ["kubelet"]
    assert node.now >= 3


def test_unknown_components_are_refused():
    with pytest.raises(KubeguardError, match="unknown components"):
        run(FakeNode(), params(["kube-proxy"]))


MANIFEST = """apiVersion: v1
kind: Pod
metadata:
  name: kube-apiserver
  namespace: kube-system
spec:
  containers:
  - name: kube-apiserver
    command: [kube-apiserver, --secure-port=6443]
"""


class FakeKubelet(FakeNode):
    """kubeadm's layout: no unit; the kubelet starts a new process when a manifest in ``manifests`` changes."""

    def __init__(self, manifests, broken=()):
        super().__init__(units=["kubelet"], broken=broken)
        self.manifests, self.seen, self.static = manifests, {}, {}

    def processes(self, names):
        for name in names:
            text = (self.manifests / f"{name}.yaml").read_text()
            if self.seen.get(name) != text:  # the kubelet recreates the pod
                self.seen[name] = text
                self.static[name] = self.static.get(name, 200) + 1
        return {n: {"pid": self.static[n], "argv": self.argv(n)} for n in names}

    def argv(self, name):
        import yaml

        return yaml.safe_load((self.manifests / f"{name}.yaml").read_text())["spec"]["containers"][0]["command"]


def kubelet_restarter(node, p, **etcd):
    return _restart.Restarter(
        p,
        command=node.command,
        probe=node.probe,
        sleep=node.sleep,
        clock=node.clock,
        bound=lambda *_: None,
        processes=node.processes,
        **etcd,
    )


class FakeEtcd:
    """control_plane's etcd checks as the restart engine calls them: the quorum without this member
    (before its manifest changes) and the member's health with the quorum (after)."""

    def __init__(self, manifests, quorum=True, healthy=True):
        self.manifests, self.quorum, self.healthy_after = manifests, quorum, healthy
        self.calls = []

    def without_me(self, flags, params):
        self.calls.append(("without_me", flags.get("name"), params["pki_dir"]))
        return self.quorum, "1 of the other 2 etcd members answer /health (down: cp2); 2 of 3 keep the quorum"

    def health(self, flags, params):
        self.calls.append(("health", flags.get("name"), params["pki_dir"]))
        return self.healthy_after, "3 of 3 etcd members answer /health; 2 keep the quorum"


def test_a_static_pod_is_restarted_through_its_manifest_annotation_and_waited_for(tmp_path):
    import yaml

    (tmp_path / "kube-apiserver.yaml").write_text(MANIFEST)
    os.chmod(tmp_path / "kube-apiserver.yaml", 0o600)
    node = FakeKubelet(tmp_path)
    p = params(["kube-apiserver", "kubelet"], static_pod_dir=str(tmp_path))
    restarter = kubelet_restarter(node, p)
    node.processes(["kube-apiserver"])  # the running pod
    assert _restart.run(p, False, restarter) == {"changed": True, "restarted": ["kube-apiserver", "kubelet"]}
    pod = yaml.safe_load((tmp_path / "kube-apiserver.yaml").read_text())
    assert _restart.RESTARTED_AT in pod["metadata"]["annotations"]
    assert pod["spec"] == yaml.safe_load(MANIFEST)["spec"]  # nothing else changed
    assert os.stat(tmp_path / "kube-apiserver.yaml").st_mode & 0o777 == 0o600
    assert node.static["kube-apiserver"] == 202 and node.restarted() == ["kubelet"]


ETCD_MANIFEST = """apiVersion: v1
kind: Pod
metadata:
  name: etcd
spec:
  containers:
  - name: etcd
    command: [etcd, --name=cp1, --listen-client-urls=https://127.0.0.1:2379]
"""


def etcd_node(tmp_path, **fake):
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    (manifests / "etcd.yaml").write_text(ETCD_MANIFEST)
    (manifests / "kube-apiserver.yaml").write_text(MANIFEST)
    node, etcd = FakeKubelet(manifests), FakeEtcd(manifests, **fake)
    p = params(["etcd", "kube-apiserver"], static_pod_dir=str(manifests))
    restarter = kubelet_restarter(node, p, etcd_quorum_without_me=etcd.without_me, etcd_health=etcd.health)
    node.processes(["etcd", "kube-apiserver"])  # the running pods
    return manifests, node, etcd, p, restarter


def test_static_pod_etcd_is_restarted_after_the_quorum_check_and_waited_for_with_the_quorum(tmp_path):
    import yaml

    manifests, node, etcd, p, restarter = etcd_node(tmp_path)
    assert _restart.run(p, False, restarter) == {"changed": True, "restarted": ["etcd", "kube-apiserver"]}
    assert _restart.RESTARTED_AT in yaml.safe_load((manifests / "etcd.yaml").read_text())["metadata"]["annotations"]
    assert node.static["etcd"] == 202
    pki = str(tmp_path / "pki")  # kubeadm's, beside the manifests
    # The check before the manifest changes, then health twice (2 s apart), before the apiserver.
    assert etcd.calls == [("without_me", "cp1", pki), ("health", "cp1", pki), ("health", "cp1", pki)]


def test_static_pod_etcd_is_not_restarted_when_the_others_would_lose_the_quorum(tmp_path):
    manifests, node, _etcd, p, restarter = etcd_node(tmp_path, quorum=False)
    backups, ca = tmp_path / "backup", tmp_path / "etcd-ca.crt"
    ca.write_text("old\n")
    change = {"path": str(ca), "mode": 0o644, "data": b"new\n", "reason": "content", "components": ["etcd"]}
    _install.apply([], [change], os.getuid(), os.getgid(), str(backups))  # what the install wrote
    p["backup_dir"] = str(backups)
    refused = r"etcd \(etcd.service\) was not restarted: 1 of the other 2 .*down: cp2.*restarted nothing"
    with pytest.raises(KubeguardError, match=refused):
        _restart.run(p, False, restarter)
    assert (manifests / "etcd.yaml").read_text() == ETCD_MANIFEST  # untouched
    assert ca.read_text() == "old\n"  # the files are put back
    assert node.static == {"etcd": 201, "kube-apiserver": 201}


def test_static_pod_etcd_that_does_not_get_its_quorum_back_is_named_and_rolled_back(tmp_path):
    _manifests, _node, _etcd, p, restarter = etcd_node(tmp_path, healthy=False)
    with pytest.raises(KubeguardError, match=r"etcd \(etcd.service\) did not become healthy .*2 keep the quorum"):
        _restart.run(p, False, restarter)


def test_a_static_pod_that_does_not_come_back_healthy_is_named(tmp_path):
    (tmp_path / "kube-apiserver.yaml").write_text(MANIFEST)
    node = FakeKubelet(tmp_path, broken=["kube-apiserver"])
    p = params(["kube-apiserver"], static_pod_dir=str(tmp_path))
    restarter = kubelet_restarter(node, p)
    with pytest.raises(KubeguardError, match=r"kube-apiserver .* did not become healthy"):
        _restart.run(p, False, restarter)
