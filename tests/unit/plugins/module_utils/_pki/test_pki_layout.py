"""The PKI layout is declared once (_model.LAYOUT); distribution and the
expiry report derive from it."""

import pytest
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError
from ansible_collections.kubeguard.hardening.plugins.module_utils._pki import _engine, _info, _inputs, _model

PARAMS = {
    "cluster_name": "unit",
    "control_plane_nodes": [{"name": "cp1", "ips": ["10.0.0.10"], "etcd": True}],
    "worker_nodes": [{"name": "w1", "ips": ["10.0.0.11"]}],
    "service_cidr": "10.96.0.0/12",
    "dns_domain": "cluster.local",
    "control_plane_endpoint": "api.unit.test:6443",
    "key_algorithm": "ECDSA-P256",
    "ca_validity_days": 3650,
    "leaf_validity_days": 365,
    "renew_before_days": 30,
}

# kubeadm certs check-expiration's names, CAs apart, plus the kubelet serving certificate.
KUBEADM_REPORT = [
    "admin.conf",
    "apiserver",
    "apiserver-etcd-client",
    "apiserver-kubelet-client",
    "controller-manager.conf",
    "etcd-healthcheck-client",
    "etcd-peer",
    "etcd-server",
    "front-proxy-client",
    "kubelet.conf",
    "scheduler.conf",
    "super-admin.conf",
    "kubelet-serving",
]


def test_every_catalogue_item_comes_from_the_layout():
    items = _model.catalogue(_inputs.parse_cluster(PARAMS))
    assert {i.layout.name for i in items} == {e.name for e in _model.LAYOUT}
    for item in items:
        assert item.kind == item.layout.kind
        assert bool(item.node) == item.layout.per_node, item.path


def test_the_expiry_report_tables_derive_from_the_layout():
    assert [name for name, *_ in _info.CERTIFICATES] == KUBEADM_REPORT
    assert _info.AUTHORITIES == (("ca", "pki/ca"), ("etcd-ca", "pki/etcd/ca"), ("front-proxy-ca", "pki/front-proxy-ca"))
    assert set(_model.CA_NAMES) == {name for name, _ in _info.AUTHORITIES}


def test_distribution_follows_the_receivers_of_the_layout(tmp_path):
    result = _engine.run(dict(PARAMS, output_dir=str(tmp_path)), check_mode=True)
    nodes = {n.name: n for n in _inputs.parse_cluster(PARAMS).nodes}
    for node_name, entries in result["distribution"].items():
        groups = _model.receivers(nodes[node_name])
        for entry in entries:
            stem = (
                entry["dest"].rsplit(".", 1)[0] if entry["dest"].endswith((".crt", ".key", ".pub")) else entry["dest"]
            )
            layout = next(e for e in _model.LAYOUT if e.dest == stem and e.root == entry["root"])
            wanted = layout.secret_to if entry["secret"] else layout.public_to
            assert layout.per_node or wanted in groups, (node_name, entry["dest"])
            assert entry.get("ca", False) == (layout.kind == "ca" and not entry["secret"])
            assert ("server" in entry) == (layout.kind == "kubeconfig")


@pytest.mark.parametrize(
    "dest, node, server, option",
    [
        ("admin.conf", "cp1", "https://api.unit.test:6443", "control_plane_endpoint"),
        ("kubelet.conf", "w1", "https://api.unit.test:6443", "control_plane_endpoint"),
        ("kubelet.conf", "cp1", "https://10.0.0.10:6443", "api_port"),
        ("scheduler.conf", "cp1", "https://10.0.0.10:6443", "api_port"),
    ],
)
def test_kubeconfig_entries_name_where_their_server_comes_from(tmp_path, dest, node, server, option):
    result = _engine.run(dict(PARAMS, output_dir=str(tmp_path)), check_mode=True)
    entry = next(e for e in result["distribution"][node] if e["dest"] == dest)
    assert (entry["server"], entry["server_option"]) == (server, option)


def test_an_external_etcd_member_gets_its_etcd_share_and_nothing_else(tmp_path):
    """A host only in the etcd group: the etcd CA, its own server and peer pairs and the health-check
    client; no cluster CA, kubelet or apiserver material."""
    params = dict(
        PARAMS,
        control_plane_nodes=[{"name": "cp1", "ips": ["10.0.0.10"], "etcd": False}],
        etcd_nodes=[{"name": "etcd1", "ips": ["10.0.0.31"], "dns_names": ["etcd1.unit.test"]}],
    )
    result = _engine.run(dict(params, output_dir=str(tmp_path)), check_mode=True)
    share = sorted(e["dest"] for e in result["distribution"]["etcd1"])
    assert share == [
        "pki/etcd/ca.crt",
        "pki/etcd/ca.key",
        "pki/etcd/healthcheck-client.crt",
        "pki/etcd/healthcheck-client.key",
        "pki/etcd/peer.crt",
        "pki/etcd/peer.key",
        "pki/etcd/server.crt",
        "pki/etcd/server.key",
    ]
    # The control plane is an etcd client only: the CA certificate and its apiserver client pair.
    cp1 = {e["dest"] for e in result["distribution"]["cp1"]}
    assert "pki/etcd/ca.crt" in cp1 and "pki/apiserver-etcd-client.key" in cp1
    assert not cp1 & {"pki/etcd/ca.key", "pki/etcd/server.crt", "pki/etcd/peer.crt"}
    server = next(i for i in _model.catalogue(_inputs.parse_cluster(params)) if i.path == "nodes/etcd1/pki/etcd/server")
    assert set(server.dns) == {"etcd1", "localhost", "etcd1.unit.test"}
    assert "10.0.0.31" in server.ips


def test_an_etcd_node_also_listed_as_a_worker_is_refused_by_its_list_and_index():
    params = dict(PARAMS, etcd_nodes=[{"name": "w1", "ips": ["10.0.0.31"]}])
    with pytest.raises(KubeguardError) as error:
        _inputs.parse_cluster(params)
    assert error.value.option == "etcd_nodes[0].name"
