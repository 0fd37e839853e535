# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to kubeguard.hardening: the cluster_pki module's options, checked and
turned into a ``_model.Cluster`` (every error names the option).

Pure Python, no Ansible and no cryptography import, so it is unit-testable.
"""

from __future__ import annotations

import ipaddress
import re

from ansible_collections.kubeguard.hardening.plugins.module_utils._common import names
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError
from ansible_collections.kubeguard.hardening.plugins.module_utils._pki._model import ALGORITHMS, Cluster, Node

_DNS_SAN = re.compile(r"^(\*\.)?[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?)*$")


def _ip(value, option):
    try:
        return str(ipaddress.ip_address(str(value).strip()))
    except ValueError:
        raise KubeguardError(option, f"{value!r} is not a valid IP address") from None


def _dns(value, option):
    value = str(value).strip()
    if not value or len(value) > 253 or not _DNS_SAN.match(value):
        raise KubeguardError(option, f"{value!r} is not a valid DNS name")
    return value


def _san(value, option):
    try:
        return "ip", str(ipaddress.ip_address(str(value).strip()))
    except ValueError:
        return "dns", _dns(value, option)


# 100 years: no certificate needs more, and datetime and X.509 dates end not much later
MAX_DAYS = 36500


def _positive(params, option):
    value = params.get(option)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= MAX_DAYS:
        raise KubeguardError(option, f"must be a positive integer number of days, at most {MAX_DAYS}, got {value!r}")
    return value


# What each node list is: (control plane, etcd member by default, runs a kubelet).
_KINDS = {
    "control_plane_nodes": (True, True, True),
    "worker_nodes": (False, False, True),
    "etcd_nodes": (False, True, False),
}


def _nodes(raw, option, seen):
    control_plane, etcd_default, kubelet = _KINDS[option]
    nodes = []
    for index, entry in enumerate(raw or []):
        where = f"{option}[{index}]"
        if not isinstance(entry, dict):
            raise KubeguardError(where, "must be a dict with name, ips and optional dns_names")
        name = str(entry.get("name") or "")
        if not names.is_subdomain(name):
            raise KubeguardError(f"{where}.name", f"{name!r} is not a valid node name (lowercase DNS-1123)")
        if name in seen:
            raise KubeguardError(f"{where}.name", f"duplicate node name {name!r}")
        seen.add(name)
        ips = entry.get("ips") or []
        if isinstance(ips, str):
            ips = [ips]
        if not ips:
            raise KubeguardError(f"{where}.ips", f"node {name!r} needs at least one IP address")
        ips = tuple(_ip(ip, f"{where}.ips") for ip in ips)
        dns = tuple(_dns(d, f"{where}.dns_names") for d in entry.get("dns_names") or [])
        etcd = bool(entry.get("etcd", True)) if control_plane else etcd_default
        nodes.append(Node(name, ips, dns, control_plane, etcd, kubelet))
    return nodes


def parse_cluster(params):
    """Validate the module options; return a Cluster or raise KubeguardError."""
    name = str(params.get("cluster_name") or "")
    if not names.is_subdomain(name):
        raise KubeguardError("cluster_name", f"{name!r} is not a valid name (lowercase DNS-1123)")
    algorithm = params.get("key_algorithm")
    if algorithm not in ALGORITHMS:
        raise KubeguardError(
            "key_algorithm", f"unsupported algorithm {algorithm!r}; use one of {', '.join(ALGORITHMS)}"
        )
    seen = set()
    cps = _nodes(params.get("control_plane_nodes"), "control_plane_nodes", seen)
    if not cps:
        raise KubeguardError("control_plane_nodes", "at least one control-plane node is required")
    workers = _nodes(params.get("worker_nodes"), "worker_nodes", seen)
    etcd_only = _nodes(params.get("etcd_nodes"), "etcd_nodes", seen)
    cidr = str(params.get("service_cidr") or "")
    try:
        net = ipaddress.ip_network(cidr, strict=True)
    except ValueError as exc:
        raise KubeguardError("service_cidr", f"{cidr!r} is not a valid CIDR ({exc})") from None
    if net.num_addresses < 4:
        raise KubeguardError("service_cidr", f"{cidr!r} is too small for a service network")
    domain = _dns(params.get("dns_domain") or "", "dns_domain")
    api_port = params.get("api_port", 6443)
    if not isinstance(api_port, int) or not 0 < api_port < 65536:
        raise KubeguardError("api_port", f"{api_port!r} is not a TCP port")
    endpoint = params.get("control_plane_endpoint") or f"{cps[0].advertise_ip}:{api_port}"
    host, port = _split_endpoint(str(endpoint), api_port)
    extra = tuple(_san(s, "extra_sans") for s in params.get("extra_sans") or [])
    ca_days = _positive(params, "ca_validity_days")
    leaf_days = _positive(params, "leaf_validity_days")
    renew = params.get("renew_before_days")
    if not isinstance(renew, int) or isinstance(renew, bool) or renew < 0:
        raise KubeguardError("renew_before_days", f"must be a non-negative integer, got {renew!r}")
    if leaf_days > ca_days:
        raise KubeguardError(
            "leaf_validity_days", f"{leaf_days} d is longer than the CA validity ca_validity_days={ca_days} d"
        )
    if renew >= leaf_days:
        raise KubeguardError("renew_before_days", f"{renew} d must be shorter than leaf_validity_days={leaf_days} d")
    return Cluster(
        name,
        tuple(cps + workers + etcd_only),
        str(net),
        domain,
        host,
        port,
        api_port,
        extra,
        algorithm,
        ca_days,
        leaf_days,
        renew,
    )


def _split_endpoint(endpoint, default_port):
    option = "control_plane_endpoint"
    match = re.match(r"^\[([0-9a-fA-F:.]+)\](?::(\d+))?$", endpoint) or re.match(r"^([^:\[\]]+)(?::(\d+))?$", endpoint)
    if not match:
        raise KubeguardError(option, f"{endpoint!r} is not host[:port]")
    host, port = match.group(1), int(match.group(2) or default_port)
    if not 0 < port < 65536:
        raise KubeguardError(option, f"{endpoint!r} has an invalid port")
    host = _san(host, option)[1]
    return host, port
