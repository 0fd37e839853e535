"""Node agents' client identities (cluster_pki_node_agents): the option's
checks, what the engine issues and distributes, the node side's unit filter,
and the restart order. The lab test (test_cluster_pki_node_agents.py) proves
them with a real kube-proxy."""

import datetime
import os

import pytest
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError
from ansible_collections.kubeguard.hardening.plugins.module_utils._pki import (
    _agents,
    _crypto,
    _engine,
    _install,
    _kubeconfig,
    _restart,
)
from test_pki_engine import params as engine_params

KUBE_PROXY = {
    "name": "kube-proxy",
    "common_name": "system:kube-proxy",
    "organizations": [],
    "kubeconfig": "/var/lib/kube-proxy/kubeconfig",
    "unit": "kube-proxy",
    "health_checks": ["http://127.0.0.1:10256/healthz"],
}
ROUTER = dict(
    KUBE_PROXY,
    name="kube-router",
    common_name="system:kube-router",
    organizations=["lab:agents"],
    kubeconfig="/var/lib/kube-router/kubeconfig",
    unit="kube-router",
    health_checks=[],
)


def params(out, agents, **extra):
    """The engine tests' cluster plus a worker, an external etcd member and a named endpoint."""
    return engine_params(
        out,
        worker_nodes=[{"name": "worker1", "ips": ["10.0.0.11"]}],
        etcd_nodes=[{"name": "etcd1", "ips": ["10.0.0.20"]}],
        control_plane_endpoint="api.unit.test:6443",
        node_agents=agents,
        **extra,
    )


# ------------------------------------------------------------------ the option


def test_the_default_entry_and_an_empty_list_parse():
    assert _agents.parse([KUBE_PROXY])[0] == _agents.Agent(
        "kube-proxy",
        "system:kube-proxy",
        (),
        "/var/lib/kube-proxy/kubeconfig",
        "kube-proxy",
        tuple(KUBE_PROXY["health_checks"]),
    )
    assert _agents.parse([]) == _agents.parse(None) == ()


@pytest.mark.parametrize(
    "agents,option,message",
    [
        ("kube-proxy", "node_agents", "must be a list"),
        (["kube-proxy"], "node_agents[0]", "must be a dict"),
        ([dict(KUBE_PROXY, name="Kube_Proxy")], "node_agents[0].name", "not a valid agent name"),
        ([dict(KUBE_PROXY, name="kubelet")], "node_agents[0].name", "already manages"),
        ([KUBE_PROXY, dict(ROUTER, name="kube-proxy")], "node_agents[1].name", "duplicate agent name"),
        ([dict(KUBE_PROXY, common_name="")], "node_agents[0].common_name", "CN"),
        ([dict(KUBE_PROXY, organizations="system:nodes")], "node_agents[0].organizations", "list of strings"),
        ([dict(KUBE_PROXY, kubeconfig="var/lib/kube-proxy/kubeconfig")], "node_agents[0].kubeconfig", "absolute"),
        ([dict(KUBE_PROXY, kubeconfig="/var/lib/../etc/shadow")], "node_agents[0].kubeconfig", "normalised"),
        (
            [KUBE_PROXY, dict(ROUTER, kubeconfig=KUBE_PROXY["kubeconfig"])],
            "node_agents[1].kubeconfig",
            "already the kubeconfig",
        ),
        ([dict(KUBE_PROXY, unit="kube-proxy.service")], "node_agents[0].unit", "without .service"),
        ([dict(KUBE_PROXY, unit="kube proxy")], "node_agents[0].unit", "not a systemd service"),
        ([dict(KUBE_PROXY, health_checks=["127.0.0.1:10256"])], "node_agents[0].health_checks", "http(s) URL"),
        ([dict(KUBE_PROXY, cert="/x")], "node_agents[0]", "unknown keys"),
    ],
)
def test_a_bad_agent_fails_naming_it_and_writes_nothing(tmp_path, agents, option, message):
    out = tmp_path / "pki"
    with pytest.raises(KubeguardError) as err:
        _engine.run(params(out, agents))
    assert err.value.option == option
    assert message in str(err.value)
    assert not out.exists()


# ------------------------------------------------------------------ the engine


def agent_entries(result, node):
    return {e["agent"]: e for e in result["distribution"][node] if e.get("agent")}


def client(out, node, name):
    parsed = _kubeconfig.parse((out / f"nodes/{node}/node-agents/{name}.conf").read_bytes())
    return parsed, _crypto.load_cert(parsed["cert"])


def test_every_kubelet_node_gets_its_own_client_kubeconfig_from_the_cluster_ca(tmp_path):
    out = tmp_path / "pki"
    result = _engine.run(params(out, [KUBE_PROXY, ROUTER]))
    ca = _crypto.load_cert((out / "pki/ca.crt").read_bytes())
    # the external etcd member runs no kubelet, hence no kube-proxy
    assert set(agent_entries(result, "cp1")) == set(agent_entries(result, "worker1")) == {"kube-proxy", "kube-router"}
    assert agent_entries(result, "etcd1") == {}
    keys = set()
    for node, server in (("cp1", "https://10.0.0.10:6443"), ("worker1", "https://api.unit.test:6443")):
        entry = agent_entries(result, node)["kube-proxy"]
        assert {k: entry[k] for k in ("root", "dest", "mode", "secret", "components", "unit", "server")} == {
            "root": "/",
            "dest": "var/lib/kube-proxy/kubeconfig",
            "mode": "0600",
            "secret": True,
            "components": ["kube-proxy"],
            "unit": "kube-proxy",
            "server": server,
        }
        parsed, cert = client(out, node, "kube-proxy")
        assert parsed["server"] == server
        assert _crypto.signed_by(cert, ca)
        meta = _crypto.describe(cert)
        assert (meta["cn"], meta["orgs"], meta["eku"]) == ("system:kube-proxy", (), ("clientAuth",))
        assert not meta["dns"] and not meta["ips"]
        keys.add(_crypto.public_der(cert.public_key()))
    assert len(keys) == 2, "each node has its own key"
    _parsed, router = client(out, "worker1", "kube-router")
    assert _crypto.describe(router)["orgs"] == ("lab:agents",)
    # the kubeadm layout's entries carry no agent: distribute.yml installs them, node_agents.yml the others
    assert all("agent" not in e for e in result["distribution"]["etcd1"])


def test_a_rerun_changes_nothing_and_drift_or_expiry_reissues(tmp_path):
    out = tmp_path / "pki"
    _engine.run(params(out, [KUBE_PROXY]))
    assert _engine.run(params(out, [KUBE_PROXY]))["changed"] is False
    drift = _engine.run(params(out, [dict(KUBE_PROXY, organizations=["extra"])]))
    assert sorted(drift["changed_files"]) == [
        "nodes/cp1/node-agents/kube-proxy.conf",
        "nodes/worker1/node-agents/kube-proxy.conf",
    ]
    before = client(out, "worker1", "kube-proxy")[1]
    later = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=340)
    renewed = _engine.run(params(out, [dict(KUBE_PROXY, organizations=["extra"])]), now=later)
    assert "nodes/worker1/node-agents/kube-proxy.conf" in renewed["changed_files"]
    after = client(out, "worker1", "kube-proxy")[1]
    assert after.not_valid_after_utc > before.not_valid_after_utc
    actions = {c["path"]: c["action"] for c in renewed["certificates"]}
    assert actions["nodes/worker1/node-agents/kube-proxy.conf"].startswith("renewed")


def test_dropping_an_agent_leaves_the_layout_untouched(tmp_path):
    out = tmp_path / "pki"
    _engine.run(params(out, [KUBE_PROXY]))
    result = _engine.run(params(out, []))
    assert result["changed"] is False
    assert agent_entries(result, "worker1") == {}


# ------------------------------------------------------------------ the node side


def node_params(tmp_path, files, contents, **extra):
    return {
        "files": files,
        "contents": contents,
        "kubernetes_dir": str(tmp_path / "etc-kubernetes"),
        "kubelet_pki_dir": str(tmp_path / "kubelet-pki"),
        "owner": str(os.getuid()),
        "group": str(os.getgid()),
        "backup_dir": str(tmp_path / "backup"),
        **extra,
    }


def agent_entry(tmp_path, name="kube-proxy"):
    return {
        "root": "/",
        "dest": f"{str(tmp_path).lstrip('/')}/var/lib/{name}/kubeconfig",
        "mode": "0600",
        "components": [name],
        "agent": name,
        "unit": name,
    }


def test_an_agent_without_its_unit_on_the_node_gets_nothing(tmp_path):
    """kubeadm: kube-proxy is a DaemonSet, no kube-proxy.service."""
    files = [agent_entry(tmp_path)]
    result = _install.run(node_params(tmp_path, files, ["secret"]), loaded=lambda unit: False)
    assert result["agents_skipped"] == ["kube-proxy"]
    assert result["changed"] is False and result["components"] == []
    assert not (tmp_path / "var").exists()


def test_an_agent_with_its_unit_gets_its_kubeconfig_and_its_restart(tmp_path):
    (tmp_path / "var/lib").mkdir(parents=True)
    os.chmod(tmp_path / "var/lib", 0o700)
    files = [agent_entry(tmp_path), agent_entry(tmp_path, "kube-router")]
    seen = []

    def loaded(unit):
        seen.append(unit)
        return unit == "kube-proxy"

    result = _install.run(node_params(tmp_path, files, ["proxy", "router"]), loaded=loaded)
    assert sorted(seen) == ["kube-proxy", "kube-router"]
    assert result["agents_skipped"] == ["kube-router"]
    assert result["components"] == ["kube-proxy"]
    path = tmp_path / "var/lib/kube-proxy/kubeconfig"
    assert path.read_text() == "proxy" and (path.stat().st_mode & 0o777) == 0o600
    assert (path.parent.stat().st_mode & 0o777) == 0o755
    # the parent the agent's directory sits in is not the PKI's: its mode is left alone
    assert ((tmp_path / "var/lib").stat().st_mode & 0o777) == 0o700
    assert not (tmp_path / "var/lib/kube-router").exists()
    _install.clear(str(tmp_path / "backup"))
    again = _install.run(node_params(tmp_path, files, ["proxy", "router"]), loaded=loaded)
    assert again["changed"] is False


def test_the_unit_defaults_to_the_agent_name():
    present, absent = _install.agents_here([{"agent": "cni"}, {"root": "kubernetes"}], lambda unit: unit == "cni")
    assert (present, absent) == ({"cni"}, [])


# ------------------------------------------------------------------ the restart


class Node:
    def __init__(self):
        self.restarted = []
        self.pids = {}

    def command(self, *argv):
        if argv[0] == "show":
            if argv[2] == "LoadState":
                return 0, "loaded"
            if argv[2] == "MainPID":
                return 0, str(self.pids.setdefault(argv[-1], 100))
            return 0, "active"
        if argv[0] == "restart":
            self.restarted.append(argv[-1].removesuffix(".service"))
            self.pids[argv[-1]] = self.pids.get(argv[-1], 100) + 1
        return 0, ""


def restart(node, components, services):
    p = {"components": components, "services": services, "health_checks": {}, "timeout": 10, "settle": 0}
    restarter = _restart.Restarter(
        p, command=node.command, probe=lambda url: True, sleep=lambda s: None, clock=lambda: 0.0, bound=lambda *_: None
    )
    return _restart.run(p, False, restarter)


def test_agents_restart_after_the_components_and_must_be_known():
    services = {c: c for c in _restart.ORDER} | {"kube-proxy": "kube-proxy", "cni": "cni-agent"}
    node = Node()
    assert restart(node, ["kube-proxy", "kubelet", "cni"], services)["restarted"] == ["kubelet", "cni", "kube-proxy"]
    assert node.restarted == ["kubelet", "cni-agent", "kube-proxy"]
    with pytest.raises(KubeguardError, match="unknown components"):
        restart(Node(), ["kube-router"], services)
