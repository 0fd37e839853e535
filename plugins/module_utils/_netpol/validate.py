# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: refuse a malformed NetworkPolicy or pod before anything evaluates or sends it.

The API server refuses these too (HTTP 422), but only after a request; the
truth table would otherwise evaluate them into a wrong answer. A bad ``cidr``
and a bad ``except`` are refused alike, with the path of the field.
"""

from __future__ import annotations

import ipaddress

from .._errors import KubeguardError

OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


def cidr(value, option, where):
    """An IPv4/IPv6 network in CIDR notation (host bits allowed, as the API server allows them)."""
    if not isinstance(value, str) or "/" not in value:
        raise KubeguardError(option, f"{where}: {value!r} is not a CIDR like 10.0.0.0/8")
    try:
        return ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise KubeguardError(option, f"{where}: {value!r} is not a CIDR like 10.0.0.0/8") from None


def ip(value, option, where):
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        raise KubeguardError(option, f"{where}: {value!r} is not an IP address") from None


def _mapping(value, option, where):
    if not isinstance(value, dict):
        raise KubeguardError(option, f"{where}: must be a mapping, got {type(value).__name__}")
    return value


def _list(value, option, where):
    if value is None:
        return []
    if not isinstance(value, list):
        raise KubeguardError(option, f"{where}: must be a list, got {type(value).__name__}")
    return value


def selector(value, option, where):
    if value is None:
        return
    _mapping(value, option, where)
    labels = value.get("matchLabels")
    if labels is not None and not isinstance(labels, dict):
        raise KubeguardError(option, f"{where}.matchLabels: must be a mapping")
    for index, expr in enumerate(_list(value.get("matchExpressions"), option, f"{where}.matchExpressions")):
        here = f"{where}.matchExpressions[{index}]"
        _mapping(expr, option, here)
        if expr.get("operator") not in OPERATORS:
            raise KubeguardError(
                option, f"{here}.operator: {expr.get('operator')!r} is not one of {', '.join(OPERATORS)}"
            )
        _list(expr.get("values"), option, f"{here}.values")


def ip_block(block, option, where):
    _mapping(block, option, where)
    network = cidr(block.get("cidr"), option, f"{where}.cidr")
    for index, excluded in enumerate(_list(block.get("except"), option, f"{where}.except")):
        inner = cidr(excluded, option, f"{where}.except[{index}]")
        if inner.version != network.version or not inner.subnet_of(network):
            raise KubeguardError(option, f"{where}.except[{index}]: {excluded!r} is not inside cidr {block['cidr']!r}")


def _port(entry, option, where):
    """Types only: the evaluation needs them; ranges and protocols are left to the API server's own
    validation (k8s_bulk_apply's check mode is a server-side dry run that reports them per object)."""
    _mapping(entry, option, where)
    port = entry.get("port")
    if port is not None and (isinstance(port, bool) or not isinstance(port, (int, str))):
        raise KubeguardError(option, f"{where}.port: {port!r} is neither a number nor a port name")
    if entry.get("protocol") is not None and not isinstance(entry["protocol"], str):
        raise KubeguardError(option, f"{where}.protocol: {entry['protocol']!r} is not TCP, UDP or SCTP")
    end = entry.get("endPort")
    if end is not None and (isinstance(end, bool) or not isinstance(end, int)):
        raise KubeguardError(option, f"{where}.endPort: {end!r} is not a port number")


def spec(value, option, where="spec"):
    """A NetworkPolicy spec: selectors, peers, ipBlocks and ports as the evaluation reads them."""
    _mapping(value, option, where)
    selector(value.get("podSelector"), option, f"{where}.podSelector")
    for index, kind in enumerate(_list(value.get("policyTypes"), option, f"{where}.policyTypes")):
        if kind not in ("Ingress", "Egress"):
            raise KubeguardError(option, f"{where}.policyTypes[{index}]: {kind!r} is not Ingress or Egress")
    for field, peers_field in (("ingress", "from"), ("egress", "to")):
        for index, rule in enumerate(_list(value.get(field), option, f"{where}.{field}")):
            here = f"{where}.{field}[{index}]"
            _mapping(rule, option, here)
            for number, peer in enumerate(_list(rule.get(peers_field), option, f"{here}.{peers_field}")):
                at = f"{here}.{peers_field}[{number}]"
                _mapping(peer, option, at)
                if "ipBlock" in peer:
                    ip_block(peer["ipBlock"], option, f"{at}.ipBlock")
                selector(peer.get("podSelector"), option, f"{at}.podSelector")
                selector(peer.get("namespaceSelector"), option, f"{at}.namespaceSelector")
            for number, entry in enumerate(_list(rule.get("ports"), option, f"{here}.ports")):
                _port(entry, option, f"{here}.ports[{number}]")


def policies(items, option):
    """Every NetworkPolicy of ``items`` (a list of objects) has a namespace and a well-formed spec."""
    for index, policy in enumerate(_list(items, option, option)):
        _mapping(policy, option, f"item {index}")
        meta = _mapping(policy.get("metadata") or {}, option, f"item {index}.metadata")
        name = f"NetworkPolicy {meta.get('namespace')}/{meta.get('name')}"
        if not isinstance(meta.get("namespace"), str):
            raise KubeguardError(option, f"{name} (item {index}) has no metadata.namespace")
        spec(policy.get("spec") or {}, option, f"{name}: spec")


def pods(items, option):
    """Pods given as data: namespace and name, labels a mapping, ip an address."""
    for index, pod in enumerate(_list(items, option, option)):
        where = f"item {index}"
        _mapping(pod, option, where)
        for field in ("namespace", "name"):
            if not isinstance(pod.get(field), str) or not pod[field]:
                raise KubeguardError(option, f"{where}.{field}: must be a non-empty string")
        if pod.get("labels") is not None and not isinstance(pod["labels"], dict):
            raise KubeguardError(option, f"{where}.labels: must be a mapping")
        if pod.get("ip") is not None:
            ip(pod["ip"], option, f"{where}.ip")
        for number, port in enumerate(_list(pod.get("ports"), option, f"{where}.ports")):
            _mapping(port, option, f"{where}.ports[{number}]")
