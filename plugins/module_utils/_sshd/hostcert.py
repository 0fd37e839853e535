# Private to the kubeguard.hardening collection: no stable API (see __init__).
"""SSH host certificates: the decisions, with no I/O.

Which principals a node's certificate names, what ``ssh-keygen -L`` says
about an installed certificate, and whether it must be (re)signed: missing,
for another key (host key regenerated), by another CA, for other
principals, or within ``renew_before_days`` of its end.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
import ipaddress
import re

from ansible_collections.kubeguard.hardening.plugins.module_utils._common.names import is_host_name
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError

# A principal is matched literally by the client: no list separator, space or wildcard in it.
_PRINCIPAL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:%-]*$")
# ssh-keygen -L prints times as %Y-%m-%dT%H:%M:%S in the TZ it runs with (UTC here).
_TIME = "%Y-%m-%dT%H:%M:%S"
CERT_SUFFIX = "-cert.pub"
KEY_TYPES = {"ed25519": "ssh-ed25519", "rsa": "ssh-rsa"}


def certificate_path(key_path):
    """``/etc/ssh/ssh_host_ed25519_key`` -> ``/etc/ssh/ssh_host_ed25519_key-cert.pub`` (sshd's convention)."""
    return key_path + CERT_SUFFIX


def _address(text):
    try:
        return ipaddress.ip_address(str(text).strip().strip("[]"))
    except ValueError:
        return None


def principals(names, addresses, extra=(), option="extra_principals"):
    """The certificate's principals, in order, without duplicates.

    ``names``: inventory name, FQDN, short host name; kept when they are host
    names (``localhost`` never: every node is localhost). ``addresses``: kept
    when they are IP addresses and not loopback, unspecified or link-local,
    which would let any node's certificate vouch for them (``ansible_host``
    may be a name or 127.0.0.1 behind a published port). ``extra`` is the
    operator's list, refused (naming ``option``) when a value cannot be a
    principal.
    """
    found = []
    for name in names:
        name = str(name or "").strip().rstrip(".").lower()
        if is_host_name(name) and name != "localhost" and not name.startswith("localhost."):
            found.append(name)
    # An inventory name may itself be an address (no ansible_host then): kept as one.
    for value in [n for n in names if n and _address(n)] + list(addresses):
        addr = _address(value) if value else None
        if addr is not None and not (addr.is_loopback or addr.is_unspecified or addr.is_link_local):
            found.append(str(addr))
    for index, value in enumerate(extra):
        if not isinstance(value, str) or not _PRINCIPAL.match(value):
            raise KubeguardError(
                f"{option}[{index}]", f"{value!r} cannot be a certificate principal (no space, comma or wildcard)"
            )
        found.append(value)
    unique = list(dict.fromkeys(found))
    if not unique:
        raise KubeguardError(option, "the node has no usable principal (inventory name, FQDN or address); add one")
    return unique


def public_key_blob(line, option="public_key"):
    """The decoded key blob of an OpenSSH public key or certificate line."""
    fields = str(line or "").split()
    if len(fields) < 2:
        raise KubeguardError(option, "is not an OpenSSH public key line")
    try:
        blob = base64.b64decode(fields[1], validate=True)
    except (binascii.Error, ValueError):
        raise KubeguardError(option, "is not an OpenSSH public key line (bad base64)") from None
    # The blob starts with its own type name, length-prefixed.
    if len(blob) < 4 or blob[4 : 4 + int.from_bytes(blob[:4], "big")].decode(errors="replace") != fields[0]:
        raise KubeguardError(option, f"is not an OpenSSH {fields[0]} key")
    return blob


def fingerprint(line, option="public_key"):
    """``SHA256:...`` as ``ssh-keygen -l`` prints it."""
    digest = hashlib.sha256(public_key_blob(line, option)).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def _time(text):
    try:
        return datetime.datetime.strptime(text, _TIME).replace(tzinfo=datetime.timezone.utc)
    except ValueError:
        raise KubeguardError("certificate", f"unreadable validity time {text!r} in ssh-keygen -L output") from None


def parse_validity(text):
    """``(valid_from, valid_to)`` from the Valid: field; None is unbounded."""
    text = text.strip()
    if text == "forever":
        return None, None
    match = re.fullmatch(r"from (\S+) to (\S+)", text)
    if match:
        return _time(match.group(1)), None if match.group(2) == "forever" else _time(match.group(2))
    match = re.fullmatch(r"(after|before) (\S+)", text)
    if match:
        when = _time(match.group(2))
        return (when, None) if match.group(1) == "after" else (None, when)
    raise KubeguardError("certificate", f"unreadable validity {text!r} in ssh-keygen -L output")


def parse_listing(text):
    """``ssh-keygen -L`` output (run with TZ=UTC) -> the certificate's fields."""
    cert = {"principals": []}
    in_principals = False
    for raw in text.splitlines():
        line = raw.strip()
        if in_principals:
            if raw.startswith("\t\t") or raw.startswith(" " * 16):
                cert["principals"].append(line)
                continue
            in_principals = False
        key, sep, value = line.partition(": ")
        if not sep and line.endswith(":"):
            key, value = line[:-1], ""
        value = value.strip()
        if key == "Type":
            cert["type"], _unused, kind = value.partition(" ")
            cert["kind"] = kind.split()[0] if kind else ""
        elif key == "Public key":
            cert["key_fingerprint"] = value.split()[-1]
        elif key == "Signing CA":
            cert["ca_fingerprint"] = value.split()[1] if len(value.split()) > 1 else ""
        elif key == "Key ID":
            cert["key_id"] = value.strip('"')
        elif key == "Serial":
            cert["serial"] = int(value) if value.isdigit() else 0
        elif key == "Valid":
            cert["valid_from"], cert["valid_to"] = parse_validity(value)
        elif key == "Principals":
            in_principals = value != "(none)"
    missing = [k for k in ("type", "kind", "key_fingerprint", "ca_fingerprint", "valid_to") if k not in cert]
    if missing:
        raise KubeguardError("certificate", f"not a certificate listing (no {', '.join(missing)})")
    return cert


def renewal_reason(cert, key_fingerprint, ca_fingerprint, wanted, now, renew_before_days):
    """Why the certificate must be (re)signed, or None when it is kept."""
    if cert is None:
        return "missing"
    if cert["kind"] != "host":
        return f"a {cert['kind'] or 'non-host'} certificate, not a host certificate"
    if cert["key_fingerprint"] != key_fingerprint:
        return "certifies another key (the host key was regenerated)"
    if cert["ca_fingerprint"] != ca_fingerprint:
        return f"signed by another CA ({cert['ca_fingerprint']})"
    if set(cert["principals"]) != set(wanted):
        return f"principals {','.join(cert['principals']) or '(none)'} differ from {','.join(wanted)}"
    if cert.get("valid_from") and cert["valid_from"] > now + datetime.timedelta(minutes=10):
        return f"not valid before {cert['valid_from']:%Y-%m-%dT%H:%M:%SZ}"
    if cert["valid_to"] is None:
        return "valid forever: a host certificate should end"
    if cert["valid_to"] - now <= datetime.timedelta(days=renew_before_days):
        return f"ends {cert['valid_to']:%Y-%m-%dT%H:%M:%SZ}, within {renew_before_days} days"
    return None


def summary(cert):
    """One line for diffs and results: id, principals, end (no key material)."""
    if not cert:
        return "(absent)"
    end = f"{cert['valid_to']:%Y-%m-%dT%H:%M:%SZ}" if cert.get("valid_to") else "forever"
    return f"{cert.get('key_id', '')} by {cert['ca_fingerprint']} for {','.join(cert['principals'])} until {end}"


def check_windows(validity_days, renew_before_days):
    """Refuse a validity/renewal pair under which every run would re-sign (not idempotent)."""
    for option, value in (("validity_days", validity_days), ("renew_before_days", renew_before_days)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise KubeguardError(option, f"{value!r} must be a whole number of days, at least 0")
    if validity_days < 1:
        raise KubeguardError("validity_days", "must be at least 1 day")
    if renew_before_days >= validity_days:
        raise KubeguardError(
            "renew_before_days",
            f"{renew_before_days} must be below validity_days ({validity_days}), or every run re-signs",
        )


def known_hosts(ca_public_keys, patterns, option="known_hosts_patterns"):
    """The ``ssh_known_hosts`` text: one ``@cert-authority`` line per trusted CA."""
    if not patterns:
        raise KubeguardError(option, "at least one host pattern is needed")
    for index, pattern in enumerate(patterns):
        if not isinstance(pattern, str) or not pattern or re.search(r"[\s,#]", pattern):
            raise KubeguardError(f"{option}[{index}]", f"{pattern!r} is not a known_hosts host pattern")
    head = "# kubeguard.hardening ssh_hardening: trust the cluster SSH host CA for these hosts\n"
    lines = [f"@cert-authority {','.join(patterns)} {' '.join(key.split()[:2])} {comment}\n"
             for key, comment in ca_public_keys]  # fmt: skip
    return head + "".join(lines)


def known_patterns(text, ca_public_key):
    """Host patterns of the ``@cert-authority`` lines for ``ca_public_key`` in an ssh_known_hosts text."""
    key = ca_public_key.split()[:2]
    found = []
    for line in (text or "").splitlines():
        fields = line.split()
        if len(fields) >= 4 and fields[0] == "@cert-authority" and fields[2:4] == key:
            found.extend(fields[1].split(","))
    return found
