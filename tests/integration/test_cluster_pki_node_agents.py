"""cluster_pki_node_agents on the lab (hard-way layout), after site.yml: kube-proxy's
client identity comes from the cluster PKI (lab-up already had the role issue it;
the lab issues none itself), it is what RBAC says system:kube-proxy is, a
renewal replaces it and restarts kube-proxy, which keeps serving Services, and
the rerun changes nothing. An agent whose unit a node lacks (kubeadm's
kube-proxy DaemonSet) gets nothing there."""

import datetime
import json
import os
import pathlib
import re
import subprocess

import pytest
from ansible_collections.kubeguard.hardening.plugins.module_utils._pki import (
    _crypto,
    _files,
    _kubeconfig,
    _model,
)
from conftest import CONTAINERS_CONF, ansible_playbook
from kubeguard_test.kube import Kubectl
from kubeguard_test.waiting import wait_for

pytestmark = pytest.mark.lab

KUBECONFIG = "/var/lib/kube-proxy/kubeconfig"
NAMESPACE = "node-agents"


def play(lab, *extra):
    return ansible_playbook(lab.inventory, "cluster_pki.yml", *extra, timeout=900)


@pytest.fixture(scope="module")
def tree(lab):
    if lab.vars.get("kubeguard_lab_layout", "hardway") != "hardway":
        pytest.skip("kube-proxy runs from a unit with a client certificate on the hard-way layout")
    # site.yml's PKI play, converged (test_50_site ran site.yml itself).
    run, _recap = play(lab)
    assert run.returncode == 0, run.stdout[-4000:]
    return pathlib.Path(lab.vars["kubeguard_pki_output_dir"])


def node_kubeconfig(lab, host):
    run = lab.podman_exec(host, "cat", KUBECONFIG)
    assert run.returncode == 0, run.stderr
    return run.stdout.encode()


def certificate(data):
    parsed = _kubeconfig.parse(data)
    assert parsed is not None
    return parsed, _crypto.load_cert(parsed["cert"])


def kube_proxy_state(lab, host):
    run = lab.podman_exec(host, "systemctl", "show", "-p", "MainPID", "-p", "ActiveState", "--value", "kube-proxy")
    return run.stdout.split()


def test_every_node_has_its_own_kube_proxy_identity_from_the_cluster_ca(lab, tree):
    ca = _crypto.load_cert((tree / "pki/ca.crt").read_bytes())
    keys = set()
    for host in lab.hosts:
        node = lab.hostvars[host].get("kubeguard_node_name", host)
        data = node_kubeconfig(lab, host)
        # exactly the tree's file: the collection issued it, not the lab
        assert data == _files.read(str(tree / f"nodes/{node}/node-agents/kube-proxy.conf")), host
        assert lab.podman_exec(host, "stat", "-c", "%a %U:%G", KUBECONFIG).stdout.split() == ["600", "root:root"]
        node_ca = lab.podman_exec(host, "cat", "/etc/kubernetes/pki/ca.crt").stdout.encode()
        assert _crypto.load_cert(node_ca) == ca, host
        parsed, cert = certificate(data)
        assert parsed["ca"].strip() == _crypto.cert_pem(ca).strip()
        assert _crypto.signed_by(cert, ca), host
        meta = _crypto.describe(cert)
        assert (meta["cn"], meta["orgs"], meta["eku"], meta["dns"], meta["ips"]) == (
            "system:kube-proxy",
            (),
            ("clientAuth",),
            (),
            (),
        ), host
        keys.add(_crypto.public_der(cert.public_key()))
        assert kube_proxy_state(lab, host)[1] == "active", host
    assert len(keys) == len(lab.hosts), "one key per node"


def test_the_kubeconfig_is_system_kube_proxy_as_rbac_says(lab, tree):
    """Real requests from a worker with kube-proxy's kubeconfig: what
    system:node-proxier grants is served, the rest is forbidden by name."""
    host = lab.groups["workers"][0]
    kubectl = ("kubectl", "--kubeconfig", KUBECONFIG, "--request-timeout=20s")
    allowed = lab.podman_exec(host, *kubectl, "get", "endpointslices", "-A", "-o", "name")
    assert allowed.returncode == 0, allowed.stderr
    assert "endpointslice.discovery.k8s.io/kubernetes" in allowed.stdout
    denied = lab.podman_exec(host, *kubectl, "get", "secrets", "-n", "kube-system")
    assert denied.returncode != 0
    assert 'User "system:kube-proxy" cannot list resource "secrets"' in denied.stderr, denied.stderr


@pytest.fixture(scope="module")
def service(lab, lab_binaries, tree):
    """A ClusterIP Service whose one backend runs on another node than the client node."""
    kube = Kubectl(lab_binaries, lab.kubeconfig)
    kube.fresh_namespace(NAMESPACE)
    backend = lab.groups["workers"][1]
    kube.apply(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "web", "namespace": NAMESPACE, "labels": {"app": "web"}},
            "spec": {
                "nodeName": lab.hostvars[backend].get("kubeguard_node_name", backend),
                "terminationGracePeriodSeconds": 1,
                "containers": [
                    {
                        "name": "web",
                        "image": lab.vars["kubeguard_lab_images"]["agnhost"],
                        "imagePullPolicy": "Never",
                        "args": ["netexec", "--http-port=8080"],
                        "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1},
                    }
                ],
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web", "namespace": NAMESPACE},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
        },
    )
    kube("-n", NAMESPACE, "wait", "--for=condition=Ready", "pod/web", "--timeout=120s")
    ip = kube.get("-n", NAMESPACE, "service", "web")["spec"]["clusterIP"]
    yield ip
    kube("delete", "namespace", NAMESPACE, "--wait=false", check=False)


def served(lab, host, ip):
    """A real HTTP request from the node to the ClusterIP (kube-proxy's rules on that node)."""
    run = lab.podman_exec(host, "curl", "-s", "--max-time", "3", f"http://{ip}/hostname")
    return run.stdout.strip() == "web" or (run.returncode, run.stdout, run.stderr)


def plant_expiring(lab, tree, host, days=10):
    """kube-proxy's kubeconfig on ``host`` and in the tree, re-signed by the
    cluster CA to end in ``days``: what a year without a rerun leaves."""
    node = lab.hostvars[host].get("kubeguard_node_name", host)
    path = tree / f"nodes/{node}/node-agents/kube-proxy.conf"
    parsed, _cert = certificate(_files.read(str(path)))
    ca_cert = _crypto.load_cert((tree / "pki/ca.crt").read_bytes())
    ca_key = _crypto.load_key(_files.read(str(tree / "pki/ca.key")))
    key = _crypto.load_key(parsed["key"])
    now = datetime.datetime.now(datetime.timezone.utc)
    item = _model.Item(str(path), "kubeconfig", cn="system:kube-proxy", eku=(_model.CLIENT_AUTH,))
    cert = _crypto.build_cert(item, key, now, now + datetime.timedelta(days=days), (ca_cert, ca_key))
    data = _kubeconfig.render(
        lab.vars["kubeguard_cluster_name"],
        parsed["server"],
        "system:kube-proxy",
        _crypto.cert_pem(ca_cert),
        _crypto.cert_pem(cert),
        _crypto.key_pem(key),
    )
    _files.atomic_write(str(path), data, _files.KEY_MODE)
    container = lab.hostvars[host]["kubeguard_lab_container"]
    env = dict(os.environ, CONTAINERS_CONF=CONTAINERS_CONF)
    subprocess.run(
        [
            "podman",
            "exec",
            "-i",
            container,
            "sh",
            "-c",
            f"umask 077 && cat > {KUBECONFIG}.new && mv {KUBECONFIG}.new {KUBECONFIG}",
        ],
        input=data,
        check=True,
        env=env,
        timeout=60,
    )
    assert lab.podman_exec(host, "systemctl", "restart", "kube-proxy").returncode == 0
    return cert


def test_a_renewal_replaces_it_restarts_kube_proxy_and_services_keep_working(lab, tree, service):
    client, other = lab.groups["workers"][0], lab.groups["workers"][1]
    wait_for(lambda: served(lab, client, service), 60, "the ClusterIP Service from the client node")
    planted = plant_expiring(lab, tree, client)
    wait_for(lambda: served(lab, client, service), 60, "the Service with the planted near-expiry identity")
    assert certificate(node_kubeconfig(lab, client))[1] == planted
    before, other_before = kube_proxy_state(lab, client), kube_proxy_state(lab, other)

    run, recap = play(lab)
    assert run.returncode == 0, run.stdout[-4000:]
    assert re.search(r"node-agents/kube-proxy.conf: '?renewed", run.stdout), run.stdout[-4000:]
    _parsed, renewed = certificate(node_kubeconfig(lab, client))
    assert renewed != planted
    assert renewed.not_valid_after_utc - datetime.datetime.now(datetime.timezone.utc) > datetime.timedelta(days=300)
    assert _crypto.describe(renewed)["cn"] == "system:kube-proxy"
    assert _crypto.signed_by(renewed, _crypto.load_cert((tree / "pki/ca.crt").read_bytes()))
    # kube-proxy was restarted (a new process) on that node only, and is healthy
    after = kube_proxy_state(lab, client)
    assert after[0] != before[0] and after[1] == "active", (before, after)
    assert kube_proxy_state(lab, other) == other_before
    health = lab.podman_exec(
        client, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:10256/healthz"
    )
    assert health.stdout == "200"
    wait_for(lambda: served(lab, client, service), 60, "the ClusterIP Service after the renewal")

    again, recap = play(lab)
    assert again.returncode == 0, again.stdout[-4000:]
    assert all(stats["changed"] == 0 for stats in recap.values()), recap
    assert kube_proxy_state(lab, client) == after


def test_an_agent_whose_unit_a_node_lacks_gets_nothing_there(lab, tree):
    """As kubeadm's kube-proxy DaemonSet (no unit): issued in the tree, installed nowhere."""
    agents = lab.vars["cluster_pki_node_agents"] + [
        {
            "name": "cni-agent",
            "common_name": "system:cni-agent",
            "kubeconfig": "/var/lib/cni-agent/kubeconfig",
            "unit": "cni-agent",
        }
    ]
    run, recap = play(
        lab, "-e", json.dumps({"cluster_pki_node_agents": agents}), "--tags", "cluster_pki_node_agents", "-v"
    )
    assert run.returncode == 0, run.stdout[-4000:]
    skipped = re.findall(r"agents_skipped:\s+-\s+cni-agent|agents_skipped: \[cni-agent\]", run.stdout)
    assert len(skipped) == len(lab.hosts), run.stdout[-4000:]
    tree_files = sorted(p.parent.parent.name for p in tree.glob("nodes/*/node-agents/cni-agent.conf"))
    assert tree_files == sorted(lab.hostvars[h].get("kubeguard_node_name", h) for h in lab.hosts)
    for host in lab.hosts:
        assert lab.podman_exec(host, "test", "-e", "/var/lib/cni-agent").returncode != 0, host
    assert all(stats["failed"] == 0 for stats in recap.values())
    # The store keeps what it issued: drop this agent's files, as a user who removes an agent from the list
    # would, so that later runs (a CA rotation's verify step reads the whole store) do not find them.
    for path in tree.glob("nodes/*/node-agents/cni-agent*"):
        path.unlink()
