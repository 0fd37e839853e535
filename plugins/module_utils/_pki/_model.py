# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to kubeguard.hardening: the cluster description and the catalogue
of every file the cluster PKI consists of (kubeadm's names, CN, O, EKU, SANs).

Pure Python, no Ansible and no cryptography import, so it is unit-testable.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

ALGORITHMS = ("RSA-2048", "RSA-3072", "RSA-4096", "ECDSA-P256", "ECDSA-P384")
SERVER_AUTH = "serverAuth"
CLIENT_AUTH = "clientAuth"
# kubeadm: leaves digitalSignature + keyEncipherment, CAs add keyCertSign.
LEAF_KEY_USAGE = ("digital_signature", "key_encipherment")
CA_KEY_USAGE = ("digital_signature", "key_encipherment", "key_cert_sign")

# Component names used to decide which services to restart.
ETCD = "etcd"
APISERVER = "kube-apiserver"
CONTROLLER_MANAGER = "kube-controller-manager"
SCHEDULER = "kube-scheduler"
KUBELET = "kubelet"


@dataclass(frozen=True)
class Node:
    name: str
    ips: tuple
    dns_names: tuple = ()
    control_plane: bool = False
    etcd: bool = False
    kubelet: bool = True  # an external etcd member runs no kubelet of the cluster

    @property
    def advertise_ip(self):
        return self.ips[0]


@dataclass(frozen=True)
class Cluster:
    name: str
    nodes: tuple
    service_cidr: str
    dns_domain: str
    endpoint_host: str
    endpoint_port: int
    api_port: int
    extra_sans: tuple
    algorithm: str
    ca_days: int
    leaf_days: int
    renew_before_days: int

    @property
    def control_plane(self):
        return [n for n in self.nodes if n.control_plane]

    @property
    def api_vip(self):
        net = ipaddress.ip_network(self.service_cidr, strict=False)
        return str(net.network_address + 1)

    @property
    def endpoint_url(self):
        return _url(self.endpoint_host, self.endpoint_port)


def _url(host, port):
    if ":" in host:
        return f"https://[{host}]:{port}"
    return f"https://{host}:{port}"


# Who receives a file on the nodes.
ALL = "all"  # every node that runs a kubelet (all but external etcd members)
CONTROL_PLANE = "control_plane"
ETCD = "etcd"  # etcd members
ETCD_CLIENTS = "etcd_clients"  # etcd members and control-plane nodes (the apiserver is an etcd client)
OWN_NODE = "own_node"  # per-node material: only the node it was issued for


@dataclass(frozen=True)
class Layout:
    """One file (or cert+key pair) of kubeadm's layout, independent of any cluster.

    ``dest`` is relative to ``root`` (``kubernetes``: /etc/kubernetes,
    ``kubelet``: /var/lib/kubelet/pki), without extension for pairs.
    ``public_to``/``secret_to`` say who receives the certificate (or public
    key) and the private key (kubeconfigs are secret as a whole).
    """

    name: str  # kubeadm's name (``kubeadm certs check-expiration``)
    dest: str
    kind: str  # ca | leaf | kubeconfig | sa
    signer: str = ""  # name of the signing CA
    public_to: str = OWN_NODE
    secret_to: str = OWN_NODE
    components: tuple = ()  # services that read the file
    root: str = "kubernetes"
    unit: str = ""  # node agents (_agents): installed only where this systemd unit exists

    @property
    def per_node(self):
        return self.public_to == OWN_NODE


_API_READERS = (APISERVER, CONTROLLER_MANAGER, SCHEDULER, KUBELET)
# THE layout, declared once: the engine's distribution, the expiry report of
# cluster_pki_info and the node-side CA guard of cluster_pki_install all derive
# from this table.
LAYOUT = (
    Layout("ca", "pki/ca", "ca", public_to=ALL, secret_to=CONTROL_PLANE, components=_API_READERS),
    Layout(
        "front-proxy-ca",
        "pki/front-proxy-ca",
        "ca",
        public_to=CONTROL_PLANE,
        secret_to=CONTROL_PLANE,
        components=(APISERVER, CONTROLLER_MANAGER),
    ),
    Layout("etcd-ca", "pki/etcd/ca", "ca", public_to=ETCD_CLIENTS, secret_to=ETCD, components=(ETCD, APISERVER)),
    Layout(
        "sa",
        "pki/sa",
        "sa",
        public_to=CONTROL_PLANE,
        secret_to=CONTROL_PLANE,
        components=(APISERVER, CONTROLLER_MANAGER),
    ),
    Layout(
        "apiserver-kubelet-client",
        "pki/apiserver-kubelet-client",
        "leaf",
        "ca",
        CONTROL_PLANE,
        CONTROL_PLANE,
        (APISERVER,),
    ),
    Layout(
        "front-proxy-client",
        "pki/front-proxy-client",
        "leaf",
        "front-proxy-ca",
        CONTROL_PLANE,
        CONTROL_PLANE,
        (APISERVER,),
    ),
    Layout("etcd-healthcheck-client", "pki/etcd/healthcheck-client", "leaf", "etcd-ca", ETCD, ETCD),
    Layout(
        "apiserver-etcd-client",
        "pki/apiserver-etcd-client",
        "leaf",
        "etcd-ca",
        CONTROL_PLANE,
        CONTROL_PLANE,
        (APISERVER,),
    ),
    Layout("admin.conf", "admin.conf", "kubeconfig", "ca", CONTROL_PLANE, CONTROL_PLANE),
    Layout("super-admin.conf", "super-admin.conf", "kubeconfig", "ca", CONTROL_PLANE, CONTROL_PLANE),
    Layout("apiserver", "pki/apiserver", "leaf", "ca", components=(APISERVER,)),
    Layout("etcd-server", "pki/etcd/server", "leaf", "etcd-ca", components=(ETCD,)),
    Layout("etcd-peer", "pki/etcd/peer", "leaf", "etcd-ca", components=(ETCD,)),
    Layout("controller-manager.conf", "controller-manager.conf", "kubeconfig", "ca", components=(CONTROLLER_MANAGER,)),
    Layout("scheduler.conf", "scheduler.conf", "kubeconfig", "ca", components=(SCHEDULER,)),
    Layout("kubelet.conf", "kubelet.conf", "kubeconfig", "ca", components=(KUBELET,)),
    Layout("kubelet-serving", "kubelet", "leaf", "ca", components=(KUBELET,), root="kubelet"),
)
LAYOUT_BY_NAME = {entry.name: entry for entry in LAYOUT}
CA_NAMES = tuple(entry.name for entry in LAYOUT if entry.kind == "ca")


def receivers(node):
    """The receiver groups a node belongs to (OWN_NODE material is matched by node name)."""
    # An external etcd member takes only etcd material: no kubelet reads the cluster CA there.
    groups = {ALL} if node.kubelet else set()
    if node.control_plane:
        groups |= {CONTROL_PLANE, ETCD_CLIENTS}
    if node.etcd:
        groups |= {ETCD, ETCD_CLIENTS}
    return groups


@dataclass(frozen=True)
class Item:
    """One artefact of a cluster: a LAYOUT entry made concrete (CN, SANs, node).

    ``path`` is relative to the output directory, without extension for
    cert/key pairs (``pki/ca`` -> ``pki/ca.crt`` + ``pki/ca.key``).
    """

    path: str
    kind: str  # ca | leaf | kubeconfig | sa
    cn: str = ""
    orgs: tuple = ()
    eku: tuple = ()
    dns: tuple = ()
    ips: tuple = ()
    signer: str = ""  # path of the signing CA item
    node: str = ""  # "" for cluster-wide material
    server: str = ""  # kubeconfigs only
    server_option: str = ""  # kubeconfigs only: the option the server URL comes from
    layout: Layout = None  # None only for ad-hoc items of the unit tests

    @property
    def dest(self):
        return self.layout.dest if self.layout else self.path

    @property
    def root(self):
        return self.layout.root if self.layout else "kubernetes"

    @property
    def components(self):
        return self.layout.components if self.layout else ()

    @property
    def key_usage(self):
        return CA_KEY_USAGE if self.kind == "ca" else LEAF_KEY_USAGE


# ---------------------------------------------------------------- catalogue


def _classify(value):
    """("ip", value) or ("dns", value) of a SAN that parse_cluster already checked."""
    try:
        return "ip", str(ipaddress.ip_address(value))
    except ValueError:
        return "dns", value


def _split_sans(values):
    dns = [v for k, v in values if k == "dns"]
    ips = [v for k, v in values if k == "ip"]
    return dns, ips


def _uniq(values):
    return tuple(dict.fromkeys(values))


def _item(name, node="", **fields):
    """The Item of LAYOUT entry ``name`` (for ``node`` when it is per-node material)."""
    layout = LAYOUT_BY_NAME[name]
    path = layout.dest if layout.root == "kubernetes" else f"{layout.root}/{layout.dest}"
    if node:
        path = f"nodes/{node}/{path}"
    signer = LAYOUT_BY_NAME[layout.signer].dest if layout.signer else ""
    return Item(path, layout.kind, signer=signer, node=node, layout=layout, **fields)


def catalogue(cluster):
    """Every artefact of the cluster, in dependency order (CAs first)."""
    # kubeadm CAs carry their CN as a DNS SAN too.
    items = [
        _item("ca", cn="kubernetes", dns=("kubernetes",)),
        _item("front-proxy-ca", cn="front-proxy-ca", dns=("front-proxy-ca",)),
        _item("etcd-ca", cn="etcd-ca", dns=("etcd-ca",)),
        _item("sa"),
        _item(
            "apiserver-kubelet-client",
            cn="kube-apiserver-kubelet-client",
            orgs=("kubeadm:cluster-admins",),
            eku=(CLIENT_AUTH,),
        ),
        _item("front-proxy-client", cn="front-proxy-client", eku=(CLIENT_AUTH,)),
        _item("etcd-healthcheck-client", cn="kube-etcd-healthcheck-client", eku=(CLIENT_AUTH,)),
        _item("apiserver-etcd-client", cn="kube-apiserver-etcd-client", eku=(CLIENT_AUTH,)),
        _kubeconfig("admin.conf", "kubernetes-admin", ("kubeadm:cluster-admins",), cluster.endpoint_url),
        _kubeconfig("super-admin.conf", "kubernetes-super-admin", ("system:masters",), cluster.endpoint_url),
    ]
    extra_dns, extra_ips = _split_sans(cluster.extra_sans)
    endpoint_dns, endpoint_ips = _split_sans([_classify(cluster.endpoint_host)])
    for node in cluster.nodes:
        local_url = _url(node.advertise_ip, cluster.api_port)
        if node.etcd:
            etcd_dns = _uniq([node.name, "localhost", *node.dns_names])
            etcd_ips = _uniq([node.advertise_ip, "127.0.0.1", "::1", *node.ips[1:]])
            for name in ("etcd-server", "etcd-peer"):
                items.append(
                    _item(name, node.name, cn=node.name, eku=(SERVER_AUTH, CLIENT_AUTH), dns=etcd_dns, ips=etcd_ips)
                )
        if node.control_plane:
            dns = [node.name, "kubernetes", "kubernetes.default", "kubernetes.default.svc"]
            dns += [f"kubernetes.default.svc.{cluster.dns_domain}", *endpoint_dns, *node.dns_names, *extra_dns]
            ips = [cluster.api_vip, node.advertise_ip, *endpoint_ips, *node.ips[1:], *extra_ips]
            items.append(
                _item("apiserver", node.name, cn="kube-apiserver", eku=(SERVER_AUTH,), dns=_uniq(dns), ips=_uniq(ips))
            )
            items.append(
                _kubeconfig(
                    "controller-manager.conf", "system:kube-controller-manager", (), local_url, node.name, "api_port"
                )
            )
            items.append(_kubeconfig("scheduler.conf", "system:kube-scheduler", (), local_url, node.name, "api_port"))
        if not node.kubelet:
            continue
        # kubeadm >= 1.33 (ControlPlaneKubeletLocalMode): control-plane kubelets use the local API server.
        if node.control_plane:
            kubelet_url, kubelet_option = local_url, "api_port"
        else:
            kubelet_url, kubelet_option = cluster.endpoint_url, "control_plane_endpoint"
        items.append(
            _kubeconfig(
                "kubelet.conf", f"system:node:{node.name}", ("system:nodes",), kubelet_url, node.name, kubelet_option
            )
        )
        items.append(
            _item(
                "kubelet-serving",
                node.name,
                cn=f"system:node:{node.name}",
                orgs=("system:nodes",),
                eku=(SERVER_AUTH,),
                dns=_uniq([node.name, *node.dns_names]),
                ips=node.ips,
            )
        )
    return items


def _kubeconfig(name, user, orgs, server, node="", server_option="control_plane_endpoint"):
    return _item(name, node, cn=user, orgs=orgs, eku=(CLIENT_AUTH,), server=server, server_option=server_option)


def item_files(item):
    """The files of an item, relative to the output directory."""
    if item.kind == "kubeconfig":
        return (item.path,)
    if item.kind == "sa":
        return (f"{item.path}.key", f"{item.path}.pub")
    return (f"{item.path}.crt", f"{item.path}.key")
