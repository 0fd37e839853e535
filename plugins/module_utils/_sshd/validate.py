# Private to the kubeguard.hardening collection: no stable API (see __init__).
"""Role inputs refused before anything is written, each error naming the role variable.

``sshd -t`` would catch most of these too, but only after rendering, and its
message names an sshd keyword, not the variable the operator has to change.
"""

from __future__ import annotations

import ipaddress
import socket

from ansible_collections.kubeguard.hardening.plugins.module_utils._common import addresses as addrlib
from ansible_collections.kubeguard.hardening.plugins.module_utils._common import names
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError


def _port(value, option):
    try:
        number = int(str(value), 10)
    except ValueError:
        number = 0
    if not 1 <= number <= 65535 or isinstance(value, bool):
        raise KubeguardError(option, f"{value!r} is not a TCP port (1-65535)")
    return number


def _address(value, option):
    """An IP address (IPv6 optionally in brackets) or a host name; '999.1.1.1' is neither."""
    text = str(value).strip()
    bare = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    try:
        return str(ipaddress.ip_address(bare))
    except ValueError:
        pass
    if names.is_host_name(text):
        return text
    raise KubeguardError(option, f"{value!r} is not an IP address or host name")


def _at_least_one(value, option):
    if isinstance(value, bool) or not str(value).isdigit() or int(value) < 1:
        raise KubeguardError(option, f"{value!r} must be a whole number of at least 1 (0 refuses every login)")
    return int(value)


# sshd keyword -> (role variable, checker of one value).
SETTINGS = {
    "port": ("ssh_hardening_ports", _port),
    "listenaddress": ("ssh_hardening_listen_addresses", _address),
    "maxauthtries": ("ssh_hardening_max_auth_tries", _at_least_one),
}


def settings(values):
    """Check the sshd settings the role renders; raise KubeguardError naming the role variable."""
    for keyword, value in values.items():
        rule = SETTINGS.get(keyword.lower())
        if rule is None or value is None:
            continue
        option, check = rule
        for item in value if isinstance(value, (list, tuple)) else [value]:
            check(item, option)


def listen_streams(ports, addresses):
    """The ssh.socket ``ListenStream=`` values for the role's ports and listen addresses (validated)."""
    ports = [_port(p, "ssh_hardening_ports") for p in ports]
    if not ports:
        raise KubeguardError("ssh_hardening_ports", "at least one port is needed")
    hosts = [_address(a, "ssh_hardening_listen_addresses") for a in addresses]
    if not hosts:
        return [str(p) for p in ports]
    return [f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for p in ports for h in hosts]


def _resolve(host):
    try:
        return sorted({info[4][0] for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)})
    except OSError:
        return []


def local_listen_addresses(values, local, resolve=_resolve):
    """Refuse a listen address the node does not have: sshd (or ssh.socket) could not
    bind it and would lose its listener at the reload. ``local`` is
    ``{address: interface}`` (``ip -o addr``); a host name must resolve to one of them."""
    option = "ssh_hardening_listen_addresses"
    for value in values:
        host = _address(value, option)
        if addrlib.canonical(host) is not None:
            addrlib.require_local(option, [host], local, allow_wildcard=True)
            continue
        found = resolve(host)
        if not any(addrlib.canonical(a) in local for a in found):
            raise KubeguardError(
                option,
                f"{value} resolves to {', '.join(found) or 'nothing'} on the node, none of them its own "
                f"({', '.join(sorted(local)) or 'none'}); sshd could not listen there",
            )
