# Private to the kubeguard.hardening collection: no stable API (see __init__).
"""Decide whether the account Ansible connects with keeps access under a candidate sshd config.

The input is the candidate's effective configuration for that connection
(``sshd -T -f candidate -C user=,host=,addr=,lport=``, parsed by
``config.parse_effective``), plus what the node knows about the account.
Every problem names the role variable that fixes it.
"""

from __future__ import annotations

import fnmatch
import ipaddress

from . import algorithms
from .config import first, words

ROOT_KEY_LOGIN = ("yes", "prohibit-password", "without-password")


def _match_host(pattern, host, addr):
    """sshd-style host part of a USER@HOST pattern: CIDR, address or hostname wildcard."""
    if "/" in pattern:
        if not addr:
            return None
        try:
            return ipaddress.ip_address(addr) in ipaddress.ip_network(pattern, strict=False)
        except ValueError:
            return False
    candidates = [c for c in (addr, host) if c]
    if not candidates:
        return None
    return any(fnmatch.fnmatchcase(c, pattern) for c in candidates)


def match_user(patterns, user, host, addr):
    """True, False or None (undecidable without the client address) for sshd user patterns."""
    undecided = False
    for pattern in patterns:
        upat, sep, hpat = pattern.partition("@")
        if not fnmatch.fnmatchcase(user, upat):
            continue
        if not sep:
            return True
        hit = _match_host(hpat, host, addr)
        if hit:
            return True
        if hit is None:
            undecided = True
    return None if undecided else False


def match_groups(patterns, groups):
    return any(fnmatch.fnmatchcase(g, p) for p in patterns for g in groups)


def _methods_ok(effective):
    """Whether Ansible (non-interactive, public key or certificate) can satisfy AuthenticationMethods."""
    value = first(effective, "authenticationmethods", "any")
    if value == "any":
        return True
    return any(all(m == "publickey" for m in alternative.split(",")) for alternative in value.split())


def check(effective, account, connection):
    """Return a list of ``(message, variable)`` problems; empty means access is kept.

    ``account``: name, uid, groups, key_types (types of the authorized keys found
    through the effective AuthorizedKeysFile).
    ``connection``: addr, host, lport (any may be empty when unknown).
    """
    problems = []
    user = account["name"]
    addr, host, lport = connection.get("addr") or "", connection.get("host") or "", connection.get("lport")

    if account.get("uid") == 0 and first(effective, "permitrootlogin") not in ROOT_KEY_LOGIN:
        problems.append(
            (
                f"Ansible connects as root and PermitRootLogin would be "
                f"'{first(effective, 'permitrootlogin')}': connect as an unprivileged sudo user "
                f"(ansible_user) or set ssh_hardening_permit_root_login",
                "ssh_hardening_permit_root_login",
            )
        )

    if first(effective, "pubkeyauthentication") != "yes":
        problems.append(
            ("PubkeyAuthentication would be off, the only way Ansible logs in", "ssh_hardening_pubkey_authentication")
        )

    if not _methods_ok(effective):
        problems.append(
            (
                f"AuthenticationMethods '{first(effective, 'authenticationmethods')}' cannot be satisfied by a "
                f"non-interactive public-key login as {user}; set ssh_hardening_authentication_methods to "
                f"'publickey' or 'any'",
                "ssh_hardening_authentication_methods",
            )
        )

    certs = first(effective, "trustedusercakeys", "none") != "none"
    keys_cmd = first(effective, "authorizedkeyscommand", "none") != "none"
    key_types = account.get("key_types") or []
    if not key_types and not certs and not keys_cmd:
        problems.append(
            (
                f"{user} has no authorized key in AuthorizedKeysFile "
                f"'{first(effective, 'authorizedkeysfile')}': install the key Ansible uses there first, "
                f"or fix ssh_hardening_authorized_keys_file",
                "ssh_hardening_authorized_keys_file",
            )
        )
    elif key_types and not certs and not keys_cmd:
        accepted = first(effective, "pubkeyacceptedalgorithms").split(",")
        if not any(algorithms.key_type_accepted(t, accepted) for t in key_types):
            problems.append(
                (
                    f"None of {user}'s authorized key types ({', '.join(sorted(set(key_types)))}) would be "
                    f"accepted; extend ssh_hardening_pubkey_algorithm_preference",
                    "ssh_hardening_pubkey_algorithm_preference",
                )
            )

    for keyword, variable, allow in (
        ("allowusers", "ssh_hardening_allow_users", True),
        ("denyusers", "ssh_hardening_deny_users", False),
    ):
        patterns = words(effective, keyword)
        if not patterns:
            continue
        hit = match_user(patterns, user, host, addr)
        if hit is None:
            problems.append(
                (
                    f"{keyword} ({' '.join(patterns)}) depends on the client address, which is unknown; "
                    f"set ssh_hardening_connection_addr or simplify {variable}",
                    variable,
                )
            )
        elif hit != allow:
            verb = "is not matched by" if allow else "is matched by"
            problems.append((f"{user} (from {addr or 'unknown'}) {verb} {keyword} {' '.join(patterns)}", variable))

    groups = account.get("groups") or []
    for keyword, variable, allow in (
        ("allowgroups", "ssh_hardening_allow_groups", True),
        ("denygroups", "ssh_hardening_deny_groups", False),
    ):
        patterns = words(effective, keyword)
        if patterns and match_groups(patterns, groups) != allow:
            verb = "matches none of" if allow else "matches"
            problems.append(
                (f"{user} (groups: {', '.join(groups) or 'none'}) {verb} {keyword} {' '.join(patterns)}", variable)
            )

    ports = words(effective, "port")
    if lport and ports and str(lport) not in ports:
        problems.append(
            (
                f"Ansible is connected through port {lport}, which would no longer be served "
                f"(ports {', '.join(ports)}): keep {lport} in ssh_hardening_ports until the inventory "
                f"(ansible_port) follows, then remove it",
                "ssh_hardening_ports",
            )
        )
    return problems
