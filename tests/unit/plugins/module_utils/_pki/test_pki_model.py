"""Cluster description validation (every failure branch) and kubeadm's certificate catalogue."""

import copy

import pytest
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError
from ansible_collections.kubeguard.hardening.plugins.module_utils._pki import _inputs, _model

GOOD = {
    "output_dir": "/tmp/unused",
    "cluster_name": "prod",
    "control_plane_nodes": [{"name": "cp1", "ips": ["10.0.0.10", "192.168.0.10"], "dns_names": ["cp1.example.test"]}],
    "worker_nodes": [{"name": "worker1", "ips": ["10.0.0.11"], "dns_names": []}],
    "service_cidr": "10.96.0.0/12",
    "dns_domain": "cluster.local",
    "control_plane_endpoint": "api.example.test:6443",
    "api_port": 6443,
    "extra_sans": ["127.0.0.1", "localhost"],
    "key_algorithm": "RSA-2048",
    "ca_validity_days": 3650,
    "leaf_validity_days": 365,
    "renew_before_days": 30,
}


def with_(path, value):
    params = copy.deepcopy(GOOD)
    target = params
    keys = path.split(".")
    for key in keys[:-1]:
        target = target[int(key)] if key.isdigit() else target[key]
    target[keys[-1]] = value
    return params


@pytest.mark.parametrize(
    ("params", "option", "message"),
    [
        (with_("cluster_name", "Prod_1"), "cluster_name", "not a valid name"),
        (with_("key_algorithm", "DSA-1024"), "key_algorithm", "unsupported algorithm"),
        (with_("control_plane_nodes", []), "control_plane_nodes", "at least one"),
        (with_("control_plane_nodes", ["cp1"]), "control_plane_nodes[0]", "must be a dict"),
        (with_("control_plane_nodes.0.name", "CP_1"), "control_plane_nodes[0].name", "not a valid node name"),
        (with_("worker_nodes.0.name", "cp1"), "worker_nodes[0].name", "duplicate node name"),
        (with_("worker_nodes.0.ips", []), "worker_nodes[0].ips", "at least one IP"),
        (with_("worker_nodes.0.ips", ["10.0.0.300"]), "worker_nodes[0].ips", "not a valid IP"),
        (
            with_("control_plane_nodes.0.dns_names", ["bad name"]),
            "control_plane_nodes[0].dns_names",
            "not a valid DNS name",
        ),
        (with_("service_cidr", "10.96.0.0/33"), "service_cidr", "not a valid CIDR"),
        (with_("service_cidr", "10.96.0.1/12"), "service_cidr", "not a valid CIDR"),
        (with_("service_cidr", "10.96.0.0/31"), "service_cidr", "too small"),
        (with_("dns_domain", "cluster..local"), "dns_domain", "not a valid DNS name"),
        (with_("api_port", 70000), "api_port", "not a TCP port"),
        (with_("control_plane_endpoint", "api:port"), "control_plane_endpoint", "not host[:port]"),
        (with_("control_plane_endpoint", "api:0"), "control_plane_endpoint", "invalid port"),
        (with_("control_plane_endpoint", "bad_host:6443"), "control_plane_endpoint", "not a valid DNS name"),
        (with_("extra_sans", ["in valid"]), "extra_sans", "not a valid DNS name"),
        (with_("ca_validity_days", 0), "ca_validity_days", "positive integer"),
        (with_("leaf_validity_days", True), "leaf_validity_days", "positive integer"),
        (with_("renew_before_days", -1), "renew_before_days", "non-negative"),
        (with_("leaf_validity_days", 4000), "leaf_validity_days", "longer than the CA validity"),
        (with_("renew_before_days", 365), "renew_before_days", "shorter than leaf_validity_days"),
    ],
)
def test_bad_input_names_the_option(params, option, message):
    with pytest.raises(KubeguardError) as err:
        _inputs.parse_cluster(params)
    assert err.value.option == option
    assert str(err.value).startswith(f"{option}: ")
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("endpoint", "host", "port"),
    [
        ("api.example.test:6443", "api.example.test", 6443),
        ("api.example.test", "api.example.test", 6443),
        ("10.0.0.5:443", "10.0.0.5", 443),
        ("[fd00::1]:6443", "fd00::1", 6443),
        (None, "10.0.0.10", 6443),
    ],
)
def test_endpoint(endpoint, host, port):
    cluster = _inputs.parse_cluster(with_("control_plane_endpoint", endpoint))
    assert (cluster.endpoint_host, cluster.endpoint_port) == (host, port)


def by_path(params=GOOD):
    return {item.path: item for item in _model.catalogue(_inputs.parse_cluster(params))}


# kubeadm's profiles (anchors.md §2), plus the kubelet serving certificate
@pytest.mark.parametrize(
    ("path", "signer", "cn", "orgs", "eku"),
    [
        ("pki/ca", "", "kubernetes", (), ()),
        ("pki/front-proxy-ca", "", "front-proxy-ca", (), ()),
        ("pki/etcd/ca", "", "etcd-ca", (), ()),
        ("nodes/cp1/pki/apiserver", "pki/ca", "kube-apiserver", (), ("serverAuth",)),
        (
            "pki/apiserver-kubelet-client",
            "pki/ca",
            "kube-apiserver-kubelet-client",
            ("kubeadm:cluster-admins",),
            ("clientAuth",),
        ),
        ("pki/front-proxy-client", "pki/front-proxy-ca", "front-proxy-client", (), ("clientAuth",)),
        ("nodes/cp1/pki/etcd/server", "pki/etcd/ca", "cp1", (), ("serverAuth", "clientAuth")),
        ("nodes/cp1/pki/etcd/peer", "pki/etcd/ca", "cp1", (), ("serverAuth", "clientAuth")),
        ("pki/etcd/healthcheck-client", "pki/etcd/ca", "kube-etcd-healthcheck-client", (), ("clientAuth",)),
        ("pki/apiserver-etcd-client", "pki/etcd/ca", "kube-apiserver-etcd-client", (), ("clientAuth",)),
        ("admin.conf", "pki/ca", "kubernetes-admin", ("kubeadm:cluster-admins",), ("clientAuth",)),
        ("super-admin.conf", "pki/ca", "kubernetes-super-admin", ("system:masters",), ("clientAuth",)),
        ("nodes/cp1/controller-manager.conf", "pki/ca", "system:kube-controller-manager", (), ("clientAuth",)),
        ("nodes/cp1/scheduler.conf", "pki/ca", "system:kube-scheduler", (), ("clientAuth",)),
        ("nodes/worker1/kubelet.conf", "pki/ca", "system:node:worker1", ("system:nodes",), ("clientAuth",)),
        ("nodes/worker1/kubelet/kubelet", "pki/ca", "system:node:worker1", ("system:nodes",), ("serverAuth",)),
    ],
)
def test_profiles(path, signer, cn, orgs, eku):
    item = by_path()[path]
    assert (item.signer, item.cn, item.orgs, item.eku) == (signer, cn, orgs, eku)


def test_sans():
    items = by_path()
    api = items["nodes/cp1/pki/apiserver"]
    assert api.dns == (
        "cp1",
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
        "api.example.test",
        "cp1.example.test",
        "localhost",
    )
    assert api.ips == ("10.96.0.1", "10.0.0.10", "192.168.0.10", "127.0.0.1")
    etcd = items["nodes/cp1/pki/etcd/server"]
    assert (etcd.dns, etcd.ips) == (
        ("cp1", "localhost", "cp1.example.test"),
        ("10.0.0.10", "127.0.0.1", "::1", "192.168.0.10"),
    )
    kubelet = items["nodes/worker1/kubelet/kubelet"]
    assert (kubelet.dns, kubelet.ips) == (("worker1",), ("10.0.0.11",))


def test_kubeconfig_servers():
    items = by_path()
    assert items["admin.conf"].server == "https://api.example.test:6443"
    assert items["nodes/worker1/kubelet.conf"].server == "https://api.example.test:6443"
    # kubeadm >= 1.33: node-local API server for the control-plane components and kubelet
    for conf in ("controller-manager.conf", "scheduler.conf", "kubelet.conf"):
        assert items[f"nodes/cp1/{conf}"].server == "https://10.0.0.10:6443"


def test_non_etcd_control_plane_has_no_etcd_certs():
    params = with_("control_plane_nodes.0.etcd", False)
    assert not [p for p in by_path(params) if p.startswith("nodes/cp1/pki/etcd/")]


def test_catalogue_size_scales_per_node():
    params = copy.deepcopy(GOOD)
    params["worker_nodes"] = [{"name": f"w{i}", "ips": [f"10.1.0.{i}"]} for i in range(1, 101)]
    params["control_plane_nodes"] = [{"name": f"cp{i}", "ips": [f"10.0.0.{i}"]} for i in range(1, 4)]
    items = _model.catalogue(_inputs.parse_cluster(params))
    # 3 CAs + sa + 4 shared leaves + 2 admin kubeconfigs + per control-plane node 5 + per node 2
    assert len(items) == 3 + 1 + 4 + 2 + 3 * 5 + 103 * 2
