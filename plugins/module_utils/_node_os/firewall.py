# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the node firewall's validation and rendering (pure, no node access).

The ruleset is one nftables table of our own (``inet kubeguard_node_os``),
replaced in one transaction: ``table``/``delete table``/``table {...}`` in a
single ``nft -f`` file. Other tables (kube-proxy's, kube-router's, the CNI's)
are never named. In nftables every base chain on a hook sees the packet: our
``drop`` is final, our ``accept`` only ends our own chain, so the other
tables keep their own verdicts.
"""

from __future__ import annotations

import ipaddress

from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError

TABLE = "kubeguard_node_os"
ANY = ("0.0.0.0/0", "::/0")
# The data-plane ports each CNI needs between nodes (docs/node_os.md).
# "bridge": the bridge plugin with static routes (kube-router as firewall only
# adds nothing: it programs the node's own netfilter and talks only to the API).
CNI_PORTS = {
    "bridge": [],
    "flannel": [{"name": "flannel VXLAN", "proto": "udp", "ports": "8472"}],
    "calico": [
        {"name": "calico BGP", "proto": "tcp", "ports": "179"},
        {"name": "calico VXLAN", "proto": "udp", "ports": "4789"},
        {"name": "calico Typha", "proto": "tcp", "ports": "5473"},
        {"name": "calico IP-in-IP", "proto": "ipip", "ports": ""},
    ],
    "cilium": [
        {"name": "cilium VXLAN", "proto": "udp", "ports": "8472"},
        {"name": "cilium health", "proto": "tcp", "ports": "4240"},
    ],
    "kube-router": [
        {"name": "kube-router BGP", "proto": "tcp", "ports": "179"},
        {"name": "kube-router IP-in-IP", "proto": "ipip", "ports": ""},
    ],
}
PROTOS = ("tcp", "udp")


def cidr(value, var):
    """A CIDR or a single address -> ip_network; refuses what does not parse."""
    try:
        return ipaddress.ip_network(str(value).strip(), strict=False)
    except ValueError as exc:
        raise KubeguardError(var, f"{value!r} is not an IP address or CIDR ({exc})") from exc


def cidrs(values, var):
    if isinstance(values, str):
        values = [values]
    return [cidr(v, var) for v in values or []]


def ports(value, var):
    """``"22"``, ``22``, ``"30000-32767"`` -> (first, last); refuses out-of-range ports."""
    text = str(value).strip()
    parts = text.split("-", 1)
    try:
        first, last = int(parts[0]), int(parts[-1])
    except ValueError as exc:
        raise KubeguardError(var, f"{value!r} is not a port or a port range") from exc
    if not (1 <= first <= 65535 and 1 <= last <= 65535):
        raise KubeguardError(var, f"{value!r}: ports run from 1 to 65535")
    if first > last:
        raise KubeguardError(var, f"{value!r}: the range starts after it ends")
    return first, last


def _port_text(span):
    first, last = span
    return str(first) if first == last else f"{first}-{last}"


def check_lockout(admin, ssh_ports, connection):
    """Refuse admin networks or SSH ports that would cut the controller's own connection."""
    if not connection:
        return
    addr = ipaddress.ip_address(connection["addr"].split("%")[0])
    if addr.version == 6 and addr.ipv4_mapped:
        addr = addr.ipv4_mapped
    if not any(addr.version == net.version and addr in net for net in admin):
        raise KubeguardError(
            "node_os_firewall_admin_networks",
            f"refusing a lockout: the controller reaches this node from {addr}, which none of "
            f"{[str(n) for n in admin]} contains",
        )
    lport = int(connection.get("lport") or 0)
    if lport and not any(first <= lport <= last for first, last in ssh_ports):
        raise KubeguardError(
            "node_os_firewall_ssh_ports",
            f"refusing a lockout: the controller's SSH connection uses port {lport}, which is not in the list",
        )


def plan(params, connection=None):
    """Validate every input and return the rules as data: ``[{name, proto, ports, sources}]``.

    ``sources`` is a list of ip_network, or None for "from anywhere".
    """
    p = params
    roles = set(p["roles"])
    admin = cidrs(p["admin_networks"], "node_os_firewall_admin_networks")
    if not admin and connection:
        admin = [cidr(connection["addr"].split("%")[0], "node_os_firewall_admin_networks")]
    if not admin:
        raise KubeguardError("node_os_firewall_admin_networks", "name at least one network SSH is allowed from")
    ssh_ports = [ports(v, "node_os_firewall_ssh_ports") for v in p["ssh_ports"]]
    if not ssh_ports:
        raise KubeguardError("node_os_firewall_ssh_ports", "name at least one SSH port")
    check_lockout(admin, ssh_ports, connection)
    cp = cidrs(p["control_plane_ips"], "kubeguard_node_ip (control_plane group)")
    etcd = cidrs(p["etcd_ips"], "kubeguard_node_ip (etcd group)")
    nodes = cidrs(p["node_ips"], "kubeguard_node_ip")
    pods = cidrs(p["pod_cidrs"], "node_os_firewall_pod_cidrs")
    services = cidrs(p["service_cidrs"], "node_os_firewall_service_cidrs")
    if p["cni"] not in CNI_PORTS:
        raise KubeguardError("node_os_firewall_cni", f"{p['cni']!r} is not one of {sorted(CNI_PORTS)}")

    api_port = ports(p["api_port"], "node_os_firewall_api_port")
    rules = [{"name": "SSH from the admin networks", "proto": "tcp", "ports": ssh_ports, "sources": admin}]
    if "control_plane" in roles:
        api = _anywhere(cidrs(p["api_sources"], "node_os_firewall_api_sources"))
        # Kubelets and in-cluster clients (the kubernetes Service DNATs to here) always need the API.
        rules.append({"name": "kube-apiserver", "proto": "tcp", "ports": [api_port],
                      "sources": None if api is None else _unique(api + nodes + pods)})  # fmt: skip
    if "etcd" in roles:
        extra = cidrs(p["etcd_client_sources"], "node_os_firewall_etcd_client_sources")
        rules.append({"name": "etcd clients", "proto": "tcp", "ports": [(2379, 2379)],
                      "sources": _unique(etcd + cp + extra)})  # fmt: skip
        rules.append({"name": "etcd peers", "proto": "tcp", "ports": [(2380, 2380)], "sources": _unique(etcd)})
    extra = cidrs(p["kubelet_sources"], "node_os_firewall_kubelet_sources")
    # Refused (TCP reset), not dropped: a client without the right learns it at once.
    rules.append({"name": "kubelet API from the control plane", "proto": "tcp", "ports": [(10250, 10250)],
                  "sources": _unique(cp + extra), "others": "reject"})  # fmt: skip
    if p["nodeports_enabled"]:
        span = ports(p["nodeport_range"], "node_os_firewall_nodeport_range")
        src = _anywhere(cidrs(p["nodeport_sources"], "node_os_firewall_nodeport_sources"))
        for proto in PROTOS:
            rules.append({"name": f"NodePorts ({proto})", "proto": proto, "ports": [span], "sources": src})
    for need in CNI_PORTS[p["cni"]]:
        span = [ports(need["ports"], "node_os_firewall_cni")] if need["ports"] else []
        rules.append({"name": need["name"], "proto": need["proto"], "ports": span, "sources": nodes})
    for index, item in enumerate(p["extra_ports"] or []):
        var = f"node_os_firewall_extra_ports[{index}]"
        if not isinstance(item, dict) or "port" not in item:
            raise KubeguardError(var, "each entry is a dict with port, and optionally proto, sources and name")
        proto = item.get("proto", "tcp")
        if proto not in PROTOS:
            raise KubeguardError(var, f"proto {proto!r} is not tcp or udp")
        src = item.get("sources", list(ANY))
        rules.append({"name": str(item.get("name") or f"extra {proto}/{item['port']}"), "proto": proto,
                      "ports": [ports(item["port"], var + ".port")],
                      "sources": _anywhere(cidrs(src, var + ".sources"))})  # fmt: skip
    return {
        "rules": rules,
        "pods": _unique(pods),
        "services": _unique(services),
        "nodeports_enabled": p["nodeports_enabled"],
        "nodeport_range": ports(p["nodeport_range"], "node_os_firewall_nodeport_range"),
        "nodeport_sources": _anywhere(cidrs(p["nodeport_sources"], "node_os_firewall_nodeport_sources")),
        "localhost_only": [] if "control_plane" not in roles else [(10257, 10257), (10259, 10259)],
        "reject_sources": _unique(cidrs(p.get("reject_sources") or [], "node_os_firewall_reject_sources")),
    }


def _anywhere(networks):
    """None (from anywhere) when a list holds a /0; otherwise the networks."""
    return None if any(n.prefixlen == 0 for n in networks) else networks


def _unique(networks):
    seen = []
    for net in networks:
        if net not in seen:
            seen.append(net)
    return seen


def _family_sets(networks):
    v4 = [str(n) for n in networks if n.version == 4]
    v6 = [str(n) for n in networks if n.version == 6]
    return [(fam, addrs) for fam, addrs in (("ip", v4), ("ip6", v6)) if addrs]


def _match(rule):
    """The nft match for a rule's protocol and ports (without sources)."""
    if rule["proto"] == "ipip":
        return "meta l4proto ipip"
    spans = [_port_text(s) for s in rule["ports"]]
    if len(spans) == 1:
        return f"{rule['proto']} dport {spans[0]}"
    return f"{rule['proto']} dport {{ {', '.join(spans)} }}"


def _comment(text):
    return '"' + text.replace('"', "'")[:120] + '"'


def render_rule(rule):
    match, comment = _match(rule), _comment(rule["name"])
    if rule["sources"] is None:
        return [f"{match} accept comment {comment}"]
    lines = [
        f"{fam} saddr {{ {', '.join(addrs)} }} {match} accept comment {comment}"
        for fam, addrs in _family_sets(rule["sources"])
    ]
    if rule.get("others") == "reject":
        lines.append(f"{match} counter reject with tcp reset comment {_comment(rule['name'] + ': refused to others')}")
    return lines


def render(planned, header):
    """The whole ``nft -f`` file: our table replaced in one transaction."""
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    lines += [f"table inet {TABLE}", f"delete table inet {TABLE}", f"table inet {TABLE} {{"]
    lines += ["  chain input {", "    type filter hook input priority filter + 10; policy drop;"]
    lines += [
        '    iif "lo" accept comment "loopback"',
        '    ct state established,related accept comment "replies"',
        '    ct state invalid counter drop comment "invalid"',
        '    meta l4proto { icmp, ipv6-icmp } accept comment "ICMP: errors, PMTU, neighbour discovery"',
        '    ip6 saddr fe80::/10 udp dport 546 accept comment "DHCPv6 client"',
    ]
    for span in planned["localhost_only"]:
        lines.append(f'    tcp dport {_port_text(span)} counter drop comment "localhost only"')
    for rule in planned["rules"]:
        lines += ["    " + line for line in render_rule(rule)]
    # The operator's own hosts learn at once that a port is closed; everyone else gets silence.
    for fam, addrs in _family_sets(planned["reject_sources"]):
        joined = ", ".join(addrs)
        lines.append(f'    {fam} saddr {{ {joined} }} meta l4proto tcp counter reject with tcp reset comment "refused"')
        # Per-family ICMP: nft lists icmpx back as a bare "reject", and the rollback reloads that listing.
        icmp = "icmp" if fam == "ip" else "icmpv6"
        lines.append(f'    {fam} saddr {{ {joined} }} counter reject with {icmp} port-unreachable comment "refused"')
    lines += ['    counter drop comment "everything else"', "  }"]
    lines += _prerouting(planned)
    lines += ["  chain forward {", "    type filter hook forward priority filter + 10; policy drop;"]
    lines.append('    ct state established,related accept comment "replies"')
    for fam, addrs in _family_sets(planned["pods"] + planned["services"]):
        joined = ", ".join(addrs)
        lines.append(f'    {fam} saddr {{ {joined} }} accept comment "from pods and Services"')
        lines.append(f'    {fam} daddr {{ {joined} }} accept comment "to pods and Services"')
    lines += ['    counter drop comment "everything else"', "  }", "}", ""]
    return "\n".join(lines)


def _prerouting(planned):
    """NodePorts are decided before kube-proxy's DNAT turns them into pod traffic (forwarded)."""
    first, last = planned["nodeport_range"]
    match = f"fib daddr type local meta l4proto {{ tcp, udp }} th dport {first}-{last} ct state new"
    if planned["nodeports_enabled"] and planned["nodeport_sources"] is None:
        return []
    lines = ["  chain prerouting {", "    type filter hook prerouting priority dstnat - 10; policy accept;"]
    if not planned["nodeports_enabled"]:
        lines.append(f'    {match} counter drop comment "NodePorts are off"')
    else:
        allowed = dict(_family_sets(planned["nodeport_sources"]))
        for fam in ("ip", "ip6"):
            if fam in allowed:
                lines.append(f"    {fam} saddr != {{ {', '.join(allowed[fam])} }} {match} counter drop "
                             'comment "NodePorts from elsewhere"')  # fmt: skip
            else:
                lines.append(
                    f'    meta nfproto {_NFPROTO[fam]} {match} counter drop comment "NodePorts from elsewhere"'
                )
    return [*lines, "  }"]


_NFPROTO = {"ip": "ipv4", "ip6": "ipv6"}


def port_table(planned):
    """Rows for the docs and the module result: what is open to whom."""
    rows = []
    for rule in planned["rules"]:
        rows.append({
            "name": rule["name"],
            "proto": rule["proto"],
            "ports": [_port_text(s) for s in rule["ports"]],
            "sources": "anywhere" if rule["sources"] is None else [str(n) for n in rule["sources"]],
        })  # fmt: skip
    return rows
