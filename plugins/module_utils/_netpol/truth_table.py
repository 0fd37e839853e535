# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: pods x pods x ports -> allowed/blocked, as JSON and as Cyclonus-style matrices.

Rows are sources, columns destinations, ``.`` allowed and ``X`` blocked, one
matrix per port, like the upstream e2e network-policy tests print them.
"""

from __future__ import annotations

from .._errors import KubeguardError
from .policy import verdict

PROTOCOLS = ("TCP", "UDP", "SCTP")


def parse_port(spec, option="ports"):
    """``80``, ``"80"``, ``"tcp/80"``, ``"udp/53"`` -> ("TCP", 80)."""
    text = str(spec)
    protocol, _unused, number = text.rpartition("/")
    protocol = (protocol or "TCP").upper()
    if protocol not in PROTOCOLS or not number.isdigit() or not 0 < int(number) < 65536:
        raise KubeguardError(option, f"{spec!r} is not a port like 80, tcp/80 or udp/53")
    return protocol, int(number)


def port_label(protocol, number):
    return f"{protocol.lower()}/{number}"


def build(pods, policies, namespace_labels, ports, loopback_allowed=True):
    """The truth table: {"pods", "ports", "table": {port: {src: {dst: bool}}}, "details", "matrices"}."""
    parsed = [parse_port(p) for p in ports]
    pods = sorted(pods, key=lambda pod: pod.key)
    table, details, matrices = {}, {}, {}
    for protocol, number in parsed:
        label = port_label(protocol, number)
        rows, why = {}, {}
        for source in pods:
            rows[source.key], why[source.key] = {}, {}
            for destination in pods:
                if loopback_allowed and source is destination:
                    result = {"egress": True, "ingress": True, "allowed": True}
                else:
                    result = verdict(policies, source, destination, number, protocol, namespace_labels)
                rows[source.key][destination.key] = result["allowed"]
                why[source.key][destination.key] = result
        table[label], details[label] = rows, why
        matrices[label] = render(label, [p.key for p in pods], rows)
    return {
        "pods": [p.key for p in pods],
        "ports": list(table),
        "table": table,
        "details": details,
        "matrices": matrices,
    }


def render(label, keys, rows):
    """One port's matrix: tab-separated, sources down, destinations across."""
    lines = ["\t".join([label, *keys])]
    for source in keys:
        lines.append("\t".join([source, *("." if rows[source][d] else "X" for d in keys)]))
    return "\n".join(lines)


def differences(expected, observed):
    """[(port, src, dst, expected, observed)] where two tables disagree."""
    out = []
    for port, rows in expected.items():
        for source, columns in rows.items():
            for destination, allowed in columns.items():
                seen = ((observed.get(port) or {}).get(source) or {}).get(destination)
                if seen != allowed:
                    out.append((port, source, destination, allowed, seen))
    return out
