# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the node's own IP addresses, and refusing an address the node does not have.

A certificate SAN, a listener or an etcd peer URL on an address that is not the
node's fails only when the daemon restarts (x509 errors, "cannot assign
requested address"): these checks run in the gather, before anything is written.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re

from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError

IP_ADDR_ARGV = ("ip", "-o", "addr", "show")
# "2: eth0    inet 10.123.0.10/24 brd ... scope global eth0" (one line per address with -o).
_ADDR = re.compile(r"^\d+:\s+(\S+?)(?:@\S+)?\s+inet6?\s+([0-9A-Fa-f:.]+)(?:/\d+)?", re.M)
WILDCARDS = ("0.0.0.0", "::")  # noqa: S104 - names the wildcard, binds nothing


def parse_ip_addr(text):
    """``{address: interface}`` from ``ip -o addr show`` output."""
    found = {}
    for interface, address in _ADDR.findall(text or ""):
        try:
            found[str(ipaddress.ip_address(address))] = interface
        except ValueError:
            continue
    return found


def parse_proc(fib_trie, if_inet6):
    """``{address: interface}`` from /proc/net/fib_trie (IPv4, LOCAL entries; interface
    unknown) and /proc/net/if_inet6: the same facts where iproute2 is not installed."""
    found = {}
    previous = ""
    for line in (fib_trie or "").splitlines():
        if "/32 host LOCAL" in line:
            match = re.search(r"\|-- ([0-9.]+)", previous)
            if match:
                found[match.group(1)] = ""
        previous = line
    for line in (if_inet6 or "").splitlines():
        words = line.split()
        if len(words) >= 6 and len(words[0]) == 32:
            text = ":".join(words[0][i : i + 4] for i in range(0, 32, 4))
            with contextlib.suppress(ValueError):
                found[str(ipaddress.ip_address(text))] = words[5]
    return found


def canonical(value):
    """The address in canonical form (``[::1]`` and ``::0001`` become ``::1``), or None."""
    text = str(value).strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        return str(ipaddress.ip_address(text.split("%", 1)[0]))
    except ValueError:
        return None


def require_local(option, values, local, node="the node", allow_wildcard=False):
    """Refuse any of ``values`` (IP addresses) that is not one of ``local`` ({address: interface})."""
    have = {canonical(a) for a in local} - {None}
    for value in values:
        address = canonical(value)
        if address is None:
            raise KubeguardError(option, f"{value!r} is not an IP address")
        if allow_wildcard and address in WILDCARDS:
            continue
        if address not in have:
            raise KubeguardError(
                option,
                f"{value} is not an address of {node} (it has {', '.join(sorted(have)) or 'none'}); "
                "a listener or certificate on it would fail only after the restart",
            )
    return [canonical(v) for v in values]
