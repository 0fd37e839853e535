# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to kubeguard.hardening: the cluster description and the catalogue
of every file the cluster PKI consists of (kubeadm's names, CN, O, EKU, SANs).

Pure Python, no Ansible and no cryptography import, so it is unit-testable.
"""

from __future__ import annotations

import ipaddress
import re
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

_DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_SAN = re.compile(r"^(\*\.)?[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?)*$")


class PkiError(Exception):
    """The one domain exception of the PKI backend; ``option`` names what to fix."""

    def __init__(self, option, message):
        super().__init__(f"{option}: {message}")
        self.option = option


@dataclass(frozen=True)
class Node:
    name: str
    ips: tuple
    dns_names: tuple = ()
    control_plane: bool = False
    etcd: bool = False

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


@dataclass(frozen=True)
class Item:
    """One artefact: a CA, a leaf cert+key pair, a kubeconfig or the sa key pair.

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
    components: tuple = ()  # services that read this file
    dest: str = ""  # path on the node, relative to ``root`` (kubeadm name)
    root: str = "kubernetes"  # kubernetes: /etc/kubernetes; kubelet: /var/lib/kubelet/pki

    @property
    def key_usage(self):
        return CA_KEY_USAGE if self.kind == "ca" else LEAF_KEY_USAGE


# --------------------------------------------------------------- validation


def _ip(value, option):
    try:
        return str(ipaddress.ip_address(str(value).strip()))
    except ValueError:
        raise PkiError(option, f"{value!r} is not a valid IP address") from None


def _dns(value, option):
    value = str(value).strip()
    if not value or len(value) > 253 or not _DNS_SAN.match(value):
        raise PkiError(option, f"{value!r} is not a valid DNS name")
    return value


def _san(value, option):
    try:
        return "ip", str(ipaddress.ip_address(str(value).strip()))
    except ValueError:
        return "dns", _dns(value, option)


def _positive(params, option):
    value = params.get(option)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise PkiError(option, f"must be a positive integer number of days, got {value!r}")
    return value


def _nodes(raw, option, control_plane, seen):
    nodes = []
    for index, entry in enumerate(raw or []):
        where = f"{option}[{index}]"
        if not isinstance(entry, dict):
            raise PkiError(where, "must be a dict with name, ips and optional dns_names")
        name = str(entry.get("name") or "")
        if not _DNS1123.match(name) or len(name) > 253:
            raise PkiError(f"{where}.name", f"{name!r} is not a valid node name (lowercase DNS-1123)")
        if name in seen:
            raise PkiError(f"{where}.name", f"duplicate node name {name!r}")
        seen.add(name)
        ips = entry.get("ips") or []
        if isinstance(ips, str):
            ips = [ips]
        if not ips:
            raise PkiError(f"{where}.ips", f"node {name!r} needs at least one IP address")
        ips = tuple(_ip(ip, f"{where}.ips") for ip in ips)
        dns = tuple(_dns(d, f"{where}.dns_names") for d in entry.get("dns_names") or [])
        etcd = bool(entry.get("etcd", True)) if control_plane else False
        nodes.append(Node(name, ips, dns, control_plane, etcd))
    return nodes


def parse_cluster(params):
    """Validate the module options; return a Cluster or raise PkiError."""
    name = str(params.get("cluster_name") or "")
    if not _DNS1123.match(name):
        raise PkiError("cluster_name", f"{name!r} is not a valid name (lowercase DNS-1123)")
    algorithm = params.get("key_algorithm")
    if algorithm not in ALGORITHMS:
        raise PkiError("key_algorithm", f"unsupported algorithm {algorithm!r}; use one of {', '.join(ALGORITHMS)}")
    seen = set()
    cps = _nodes(params.get("control_plane_nodes"), "control_plane_nodes", True, seen)
    if not cps:
        raise PkiError("control_plane_nodes", "at least one control-plane node is required")
    workers = _nodes(params.get("worker_nodes"), "worker_nodes", False, seen)
    cidr = str(params.get("service_cidr") or "")
    try:
        net = ipaddress.ip_network(cidr, strict=True)
    except ValueError as exc:
        raise PkiError("service_cidr", f"{cidr!r} is not a valid CIDR ({exc})") from None
    if net.num_addresses < 4:
        raise PkiError("service_cidr", f"{cidr!r} is too small for a service network")
    domain = _dns(params.get("dns_domain") or "", "dns_domain")
    api_port = params.get("api_port", 6443)
    if not isinstance(api_port, int) or not 0 < api_port < 65536:
        raise PkiError("api_port", f"{api_port!r} is not a TCP port")
    endpoint = params.get("control_plane_endpoint") or f"{cps[0].advertise_ip}:{api_port}"
    host, port = _split_endpoint(str(endpoint), api_port)
    extra = tuple(_san(s, "extra_sans") for s in params.get("extra_sans") or [])
    ca_days = _positive(params, "ca_validity_days")
    leaf_days = _positive(params, "leaf_validity_days")
    renew = params.get("renew_before_days")
    if not isinstance(renew, int) or isinstance(renew, bool) or renew < 0:
        raise PkiError("renew_before_days", f"must be a non-negative integer, got {renew!r}")
    if leaf_days > ca_days:
        raise PkiError(
            "leaf_validity_days", f"{leaf_days} d is longer than the CA validity ca_validity_days={ca_days} d"
        )
    if renew >= leaf_days:
        raise PkiError("renew_before_days", f"{renew} d must be shorter than leaf_validity_days={leaf_days} d")
    return Cluster(
        name, tuple(cps + workers), str(net), domain, host, port, api_port, extra, algorithm, ca_days, leaf_days, renew
    )


def _split_endpoint(endpoint, default_port):
    option = "control_plane_endpoint"
    match = re.match(r"^\[([0-9a-fA-F:.]+)\](?::(\d+))?$", endpoint) or re.match(r"^([^:\[\]]+)(?::(\d+))?$", endpoint)
    if not match:
        raise PkiError(option, f"{endpoint!r} is not host[:port]")
    host, port = match.group(1), int(match.group(2) or default_port)
    if not 0 < port < 65536:
        raise PkiError(option, f"{endpoint!r} has an invalid port")
    host = _san(host, option)[1]
    return host, port


# ---------------------------------------------------------------- catalogue


def _split_sans(values):
    dns = [v for k, v in values if k == "dns"]
    ips = [v for k, v in values if k == "ip"]
    return dns, ips


def _uniq(values):
    return tuple(dict.fromkeys(values))


def catalogue(cluster):
    """Every artefact of the cluster, in dependency order (CAs first)."""
    # kubeadm CAs carry their CN as a DNS SAN too.
    api_cps = (APISERVER, CONTROLLER_MANAGER, SCHEDULER, KUBELET)
    items = [
        Item("pki/ca", "ca", cn="kubernetes", dns=("kubernetes",), components=api_cps, dest="pki/ca"),
        Item(
            "pki/front-proxy-ca",
            "ca",
            cn="front-proxy-ca",
            dns=("front-proxy-ca",),
            components=(APISERVER, CONTROLLER_MANAGER),
            dest="pki/front-proxy-ca",
        ),
        Item("pki/etcd/ca", "ca", cn="etcd-ca", dns=("etcd-ca",), components=(ETCD, APISERVER), dest="pki/etcd/ca"),
        Item("pki/sa", "sa", components=(APISERVER, CONTROLLER_MANAGER), dest="pki/sa"),
        Item(
            "pki/apiserver-kubelet-client",
            "leaf",
            cn="kube-apiserver-kubelet-client",
            orgs=("kubeadm:cluster-admins",),
            eku=(CLIENT_AUTH,),
            signer="pki/ca",
            components=(APISERVER,),
            dest="pki/apiserver-kubelet-client",
        ),
        Item(
            "pki/front-proxy-client",
            "leaf",
            cn="front-proxy-client",
            eku=(CLIENT_AUTH,),
            signer="pki/front-proxy-ca",
            components=(APISERVER,),
            dest="pki/front-proxy-client",
        ),
        Item(
            "pki/etcd/healthcheck-client",
            "leaf",
            cn="kube-etcd-healthcheck-client",
            eku=(CLIENT_AUTH,),
            signer="pki/etcd/ca",
            dest="pki/etcd/healthcheck-client",
        ),
        Item(
            "pki/apiserver-etcd-client",
            "leaf",
            cn="kube-apiserver-etcd-client",
            eku=(CLIENT_AUTH,),
            signer="pki/etcd/ca",
            components=(APISERVER,),
            dest="pki/apiserver-etcd-client",
        ),
        _kubeconfig("admin.conf", "kubernetes-admin", ("kubeadm:cluster-admins",), cluster.endpoint_url),
        _kubeconfig("super-admin.conf", "kubernetes-super-admin", ("system:masters",), cluster.endpoint_url),
    ]
    extra_dns, extra_ips = _split_sans(cluster.extra_sans)
    endpoint_dns, endpoint_ips = _split_sans([_san(cluster.endpoint_host, "control_plane_endpoint")])
    for node in cluster.nodes:
        base = f"nodes/{node.name}"
        local_url = _url(node.advertise_ip, cluster.api_port)
        if node.control_plane:
            dns = [node.name, "kubernetes", "kubernetes.default", "kubernetes.default.svc"]
            dns += [f"kubernetes.default.svc.{cluster.dns_domain}", *endpoint_dns, *node.dns_names, *extra_dns]
            ips = [cluster.api_vip, node.advertise_ip, *endpoint_ips, *node.ips[1:], *extra_ips]
            items.append(
                Item(
                    f"{base}/pki/apiserver",
                    "leaf",
                    cn="kube-apiserver",
                    eku=(SERVER_AUTH,),
                    dns=_uniq(dns),
                    ips=_uniq(ips),
                    signer="pki/ca",
                    node=node.name,
                    components=(APISERVER,),
                    dest="pki/apiserver",
                )
            )
            if node.etcd:
                etcd_dns = _uniq([node.name, "localhost", *node.dns_names])
                etcd_ips = _uniq([node.advertise_ip, "127.0.0.1", "::1", *node.ips[1:]])
                for kind in ("server", "peer"):
                    items.append(
                        Item(
                            f"{base}/pki/etcd/{kind}",
                            "leaf",
                            cn=node.name,
                            eku=(SERVER_AUTH, CLIENT_AUTH),
                            dns=etcd_dns,
                            ips=etcd_ips,
                            signer="pki/etcd/ca",
                            node=node.name,
                            components=(ETCD,),
                            dest=f"pki/etcd/{kind}",
                        )
                    )
            for conf, user, component in (
                ("controller-manager.conf", "system:kube-controller-manager", CONTROLLER_MANAGER),
                ("scheduler.conf", "system:kube-scheduler", SCHEDULER),
            ):
                items.append(_kubeconfig(f"{base}/{conf}", user, (), local_url, node.name, (component,), conf))
        # kubeadm >= 1.33 (ControlPlaneKubeletLocalMode): control-plane kubelets use the local API server.
        kubelet_url = local_url if node.control_plane else cluster.endpoint_url
        items.append(
            _kubeconfig(
                f"{base}/kubelet.conf",
                f"system:node:{node.name}",
                ("system:nodes",),
                kubelet_url,
                node.name,
                (KUBELET,),
                "kubelet.conf",
            )
        )
        items.append(
            Item(
                f"{base}/kubelet/kubelet",
                "leaf",
                cn=f"system:node:{node.name}",
                orgs=("system:nodes",),
                eku=(SERVER_AUTH,),
                dns=_uniq([node.name, *node.dns_names]),
                ips=node.ips,
                signer="pki/ca",
                node=node.name,
                components=(KUBELET,),
                dest="kubelet",
                root="kubelet",
            )
        )
    return items


def _kubeconfig(path, user, orgs, server, node="", components=(), dest=""):
    return Item(
        path,
        "kubeconfig",
        cn=user,
        orgs=orgs,
        eku=(CLIENT_AUTH,),
        signer="pki/ca",
        node=node,
        server=server,
        components=components,
        dest=dest or path,
    )


def item_files(item):
    """The files of an item, relative to the output directory."""
    if item.kind == "kubeconfig":
        return (item.path,)
    if item.kind == "sa":
        return (f"{item.path}.key", f"{item.path}.pub")
    return (f"{item.path}.crt", f"{item.path}.key")
