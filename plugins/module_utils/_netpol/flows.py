# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: a node's live flows, from its conntrack table (``conntrack -L`` or /proc/net/nf_conntrack).

An entry holds the original tuple (what the client sent: its address, and the
Service IP and port for a ClusterIP after kube-proxy's DNAT) and the reply
tuple (what answers: the backend pod and its port). The real destination is
therefore the reply's source address and port. Only flows the destination
answered count: ``[UNREPLIED]`` entries and TCP entries that never got past
the handshake or were reset (SYN_SENT, SYN_RECV, CLOSE) are attempts, not
traffic a policy could cut. TIME_WAIT stays in: a client that opens a short
connection every second shows up mostly there (120 s by default).

The node entry point (``run``) reads both families in one module call and
returns the flows aggregated over ephemeral source ports.
"""

from __future__ import annotations

import os
import shutil

from .._errors import KubeguardError

PROTOCOLS = {"tcp": "TCP", "udp": "UDP", "sctp": "SCTP"}
# TCP states of a connection the destination accepted (the reply direction carried data or a FIN).
LIVE_TCP_STATES = {"ESTABLISHED", "FIN_WAIT", "CLOSE_WAIT", "LAST_ACK", "TIME_WAIT"}
PROC_TABLE = "/proc/net/nf_conntrack"
SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])


def parse_entry(line):
    """One conntrack line (tool or /proc format) -> dict, or None for anything that is not TCP/UDP/SCTP."""
    tokens = line.split()
    if tokens[:1] in (["ipv4"], ["ipv6"]):  # /proc/net/nf_conntrack: "ipv4 2 tcp 6 ..."
        tokens = tokens[2:]
    if len(tokens) < 4 or tokens[0] not in PROTOCOLS:
        return None
    protocol = PROTOCOLS[tokens[0]]
    tuples, flags, state = [{}, {}], set(), None
    if protocol != "UDP" and "=" not in tokens[3]:
        state = tokens[3]
    current = 0
    for token in tokens[3:]:
        if token.startswith("[") and token.endswith("]"):
            flags.add(token[1:-1])
            continue
        key, sep, value = token.partition("=")
        if not sep or key not in ("src", "dst", "sport", "dport"):
            continue
        if key in tuples[current]:
            current += 1
            if current > 1:
                break
        tuples[current][key] = value
    original, reply = tuples
    if any(key not in tuple_ for tuple_ in tuples for key in ("src", "dst", "sport", "dport")):
        return None
    return {
        "protocol": protocol,
        "state": state,
        "replied": "UNREPLIED" not in flags,
        "source": original["src"],
        "original_destination": original["dst"],
        "original_port": int(original["dport"]),
        # after DNAT (a ClusterIP Service) the pod that answers is the reply's source
        "destination": reply["src"],
        "port": int(reply["sport"]),
    }


def live(entry):
    """Did the destination really answer (traffic a policy could cut), rather than an attempt?"""
    if entry is None or not entry["replied"]:
        return False
    if entry["protocol"] == "TCP":
        return entry["state"] in LIVE_TCP_STATES
    return True


def _loopback(address):
    return address.startswith("127.") or address == "::1"


def aggregate(lines):
    """The live flows of conntrack lines, one per (protocol, source, destination, port), with a count."""
    flows = {}
    for line in lines:
        entry = parse_entry(line)
        if not live(entry) or _loopback(entry["source"]) or _loopback(entry["destination"]):
            continue
        key = (entry["protocol"], entry["source"], entry["destination"], entry["port"])
        flow = flows.setdefault(
            key,
            {
                "protocol": entry["protocol"],
                "source": entry["source"],
                "destination": entry["destination"],
                "port": entry["port"],
                "via": [],
                "entries": 0,
            },
        )
        flow["entries"] += 1
        via = f"{entry['original_destination']}:{entry['original_port']}"
        translated = (entry["original_destination"], entry["original_port"]) != (entry["destination"], entry["port"])
        if translated and via not in flow["via"]:
            flow["via"].append(via)
    return [flows[key] for key in sorted(flows)]


def read_table(run_command, read_file, proc_table=PROC_TABLE):
    """(source, lines): ``conntrack -L`` for IPv4 and IPv6 when the tool is there, else /proc/net/nf_conntrack."""
    tool = shutil.which("conntrack", path=SEARCH_PATH)
    if tool:
        lines, errors = [], []
        for family in ("ipv4", "ipv6"):
            rc, out, err = run_command([tool, "-L", "-f", family])
            if rc != 0:
                errors.append(f"conntrack -L -f {family}: {(err or out).strip()}")
                continue
            lines.extend(out.splitlines())
        if len(errors) == 2:
            raise KubeguardError("", f"cannot read the conntrack table: {'; '.join(errors)}")
        return "conntrack -L", lines
    text = read_file(proc_table) if os.path.exists(proc_table) else None
    if text is not None:
        return proc_table, text.splitlines()
    raise KubeguardError(
        "",
        "neither the conntrack tool nor /proc/net/nf_conntrack is available on this node"
        " (Debian: apt install conntrack)",
    )


def run(params, check_mode=False, run_command=None, read_file=None):
    """The node's live flows; read-only."""
    from .._node.files import read
    from .._node.system import run as system_run

    source, lines = read_table(run_command or system_run, read_file or read)
    flows = aggregate(lines)
    return {"changed": False, "source": source, "entries": len(lines), "flows": flows}
