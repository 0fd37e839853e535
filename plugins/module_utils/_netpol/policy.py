# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: does a NetworkPolicy set allow this connection? Pure functions, upstream semantics.

- A pod is isolated for a direction when a policy of its namespace selects it
  and lists that direction in ``policyTypes`` (defaulted like the API server
  does: Ingress always, Egress when the policy has egress rules). An isolated
  pod accepts only what some rule of those policies allows; rules add up.
- A peer with both ``namespaceSelector`` and ``podSelector`` matches pods that
  satisfy both; ``podSelector`` alone means the policy's own namespace; an
  empty selector matches everything in its scope; ``ipBlock`` matches the
  peer's IP within ``cidr`` outside every ``except``.
- Ports: no ``ports`` means every port; a port without ``port`` means every
  port of the protocol (TCP by default); ``endPort`` makes a range; a named
  port is resolved on the destination pod's container ports.
- A connection is allowed when the source's egress and the destination's
  ingress both allow it.
"""

from __future__ import annotations

from .._errors import KubeguardError
from . import validate


class Pod:
    """What the evaluation needs of a pod: where it is, its labels, its IP and its named ports."""

    def __init__(self, namespace, name, labels=None, ip=None, ports=None):
        self.namespace = namespace
        self.name = name
        self.labels = dict(labels or {})
        self.ip = ip
        # [{"name": "serve-80", "port": 80, "protocol": "TCP"}]
        self.ports = [dict(p) for p in ports or []]

    @property
    def key(self):
        return f"{self.namespace}/{self.name}"

    def named_port(self, name, protocol):
        for port in self.ports:
            if port.get("name") == name and (port.get("protocol") or "TCP").upper() == protocol:
                return port.get("port") or port.get("containerPort")
        return None


def selector_matches(selector, labels):
    """Kubernetes label selector semantics: None matches nothing, {} matches everything."""
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, operator, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
        if operator not in ("In", "NotIn", "Exists", "DoesNotExist"):
            raise KubeguardError("policies", f"unknown label selector operator {operator!r}")
    return True


def policy_types(policy):
    spec = policy.get("spec") or {}
    types = spec.get("policyTypes")
    if types:
        return set(types)
    return {"Ingress", "Egress"} if spec.get("egress") else {"Ingress"}


def selects(policy, pod):
    meta = policy.get("metadata") or {}
    return meta.get("namespace") == pod.namespace and selector_matches(
        (policy.get("spec") or {}).get("podSelector") or {}, pod.labels
    )


def ip_block_matches(block, ip):
    if not ip:
        return False
    # a malformed cidr or except is refused alike (validate.policies refuses them before any evaluation)
    address = validate.ip(ip, "pods", "pod IP")
    network = validate.cidr(block.get("cidr"), "policies", "ipBlock.cidr")
    if address.version != network.version or address not in network:
        return False
    for excluded in block.get("except") or []:
        excluded_net = validate.cidr(excluded, "policies", "ipBlock.except")
        if address.version == excluded_net.version and address in excluded_net:
            return False
    return True


def peer_matches(peer, policy_namespace, other, namespace_labels):
    """Does ``peer`` (one entry of from/to) match the pod ``other``?"""
    if "ipBlock" in peer:
        return ip_block_matches(peer["ipBlock"], other.ip)
    pod_selector = peer.get("podSelector")
    namespace_selector = peer.get("namespaceSelector")
    if namespace_selector is None and pod_selector is None:
        return False  # an empty peer is invalid upstream; match nothing rather than everything
    if other.namespace is None:
        return False  # an address outside the pods (a node, the world): only an ipBlock matches it
    if namespace_selector is None:
        in_scope = other.namespace == policy_namespace
    else:
        in_scope = selector_matches(namespace_selector, namespace_labels.get(other.namespace, {}))
    if not in_scope:
        return False
    return pod_selector is None or selector_matches(pod_selector, other.labels)


def port_matches(rule_ports, port, protocol, destination):
    """Does the list ``rule_ports`` of a rule allow ``protocol``/``port`` on ``destination``?"""
    if not rule_ports:
        return True
    for entry in rule_ports:
        if (entry.get("protocol") or "TCP").upper() != protocol:
            continue
        wanted = entry.get("port")
        if wanted is None:
            return True
        if isinstance(wanted, str) and not wanted.isdigit():
            if destination.named_port(wanted, protocol) == port:
                return True
            continue
        low = int(wanted)
        high = int(entry.get("endPort") or low)
        if low <= port <= high:
            return True
    return False


def _allowed(policies, subject, other, port, protocol, destination, namespace_labels, direction):
    field, peers_field = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    isolating = [p for p in policies if selects(p, subject) and direction in policy_types(p)]
    if not isolating:
        return True
    for policy in isolating:
        namespace = policy["metadata"]["namespace"]
        for rule in (policy.get("spec") or {}).get(field) or []:
            peers = rule.get(peers_field)
            if peers and not any(peer_matches(peer, namespace, other, namespace_labels) for peer in peers):
                continue
            if port_matches(rule.get("ports"), port, protocol, destination):
                return True
    return False


def verdict(policies, source, destination, port, protocol="TCP", namespace_labels=None):
    """{"egress", "ingress", "allowed"} for ``source`` connecting to ``destination`` on ``protocol``/``port``."""
    labels = namespace_labels or {}
    egress = _allowed(policies, source, destination, port, protocol, destination, labels, "Egress")
    ingress = _allowed(policies, destination, source, port, protocol, destination, labels, "Ingress")
    return {"egress": egress, "ingress": ingress, "allowed": egress and ingress}
