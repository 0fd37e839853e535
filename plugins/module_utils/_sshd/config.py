# Private to the kubeguard.hardening collection: no stable API (see __init__).
"""The SSH constants, sshd_config rendering, ``sshd -T`` and drop-in parsing.

sshd keeps the FIRST value it reads for most keywords, and reads an
``Include`` at the point where it appears. The hardened settings are
therefore written at the top of the main file, before the Include, so a
drop-in such as cloud-init's 50-cloud-init.conf cannot override them.
"""

from __future__ import annotations

import glob
import os
import re

from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError

SSH_DIR = "/etc/ssh"
SSHD_CONFIG = "/etc/ssh/sshd_config"
# What the role writes after the hardened settings, and the default the distros ship.
DROPIN_INCLUDE = "/etc/ssh/sshd_config.d/*.conf"

# Keywords written once per list item.
MULTI_LINE = {"hostkey", "port", "listenaddress", "hostcertificate", "subsystem"}
# Keywords whose list value is comma separated.
COMMA_LISTS = {
    "kexalgorithms",
    "ciphers",
    "macs",
    "hostkeyalgorithms",
    "pubkeyacceptedalgorithms",
    "casignaturealgorithms",
    "hostbasedacceptedalgorithms",
    "persourcepenaltyexemptlist",
}
# Keywords that only some OpenSSH versions know; kept only when ``sshd -T`` prints them.
VERSION_DEPENDENT = {
    "persourcepenalties",
    "persourcepenaltyexemptlist",
    "persourcemaxstartups",
    "persourcenetblocksize",
    "requiredrsasize",
    "channeltimeout",
    "unusedconnectiontimeout",
    "debianbanner",
}
_SAFE_KEYWORD = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")


# sshd keywords named in ``sshd -t`` errors, and the role variable that sets them.
ERROR_OPTIONS = (
    ("authenticationmethods", "ssh_hardening_authentication_methods"),
    ("kexalgorithms", "ssh_hardening_kex_preference"),
    ("cipher", "ssh_hardening_cipher_preference"),
    ("mac spec", "ssh_hardening_mac_preference"),
    ("macs", "ssh_hardening_mac_preference"),
    ("hostkeyalgorithms", "ssh_hardening_host_key_algorithm_preference"),
    ("pubkeyacceptedalgorithms", "ssh_hardening_pubkey_algorithm_preference"),
    ("listenaddress", "ssh_hardening_listen_addresses"),
    ("match", "ssh_hardening_match_blocks"),
)


def option_for_error(text, default="ssh_hardening_custom_options"):
    """The role variable most likely behind an ``sshd -t`` error message."""
    lowered = text.lower()
    for keyword, option in ERROR_OPTIONS:
        if keyword in lowered:
            return option
    return default


def render_value(key, value):
    """Render one value as sshd expects it."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        sep = "," if key.lower() in COMMA_LISTS else " "
        return sep.join(str(v) for v in value)
    return str(value)


def _lines(settings, indent=""):
    out = []
    for key, value in settings.items():
        if not _SAFE_KEYWORD.match(key):
            raise KubeguardError("ssh_hardening_custom_options", f"invalid sshd keyword {key!r}")
        if value is None or (isinstance(value, (list, tuple)) and not value):
            continue
        if key.lower() in MULTI_LINE and isinstance(value, (list, tuple)):
            out.extend(f"{indent}{key} {v}" for v in value)
        else:
            out.append(f"{indent}{key} {render_value(key, value)}")
    return out


def drop_unsupported(settings, effective_keys):
    """Remove version-dependent keywords this sshd does not know; return ``(kept, dropped)``."""
    kept, dropped = {}, []
    for key, value in settings.items():
        if key.lower() in VERSION_DEPENDENT and key.lower() not in effective_keys:
            dropped.append(key)
        else:
            kept[key] = value
    return kept, dropped


def render(settings, header="", include=None, match_blocks=()):
    """Return the sshd_config text: header, settings, Include, then Match blocks."""
    out = [line.rstrip() for line in header.splitlines()] if header else []
    out.append("# Hardened settings come first: sshd keeps the first value it reads,")
    out.append("# so nothing in the Include below can override them.")
    out.extend(_lines(settings))
    if include:
        out.append(f"Include {include}")
    for block in match_blocks:
        criteria = block.get("criteria", "")
        if not criteria or "\n" in criteria:
            raise KubeguardError("ssh_hardening_match_blocks", f"invalid Match criteria {criteria!r}")
        out.append(f"Match {criteria}")
        out.extend(_lines(block.get("settings", {}), indent="    "))
    return "\n".join(out) + "\n"


def parse_effective(text):
    """Parse ``sshd -T`` output into ``{keyword: [value, ...]}`` (lower-case keywords)."""
    result = {}
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        key, _unused, value = line.partition(" ")
        result.setdefault(key.lower(), []).append(value.strip())
    return result


def first(effective, key, default=""):
    """The single value of ``key`` in a parsed effective config."""
    values = effective.get(key.lower())
    return values[0] if values else default


def words(effective, key):
    """All space-separated words of every line of ``key``."""
    return [w for value in effective.get(key.lower(), []) for w in value.split()]


def parse_dropin(text):
    """Return ``[(keyword_lower, value)]`` set outside Match blocks in a drop-in."""
    out = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        head = line.split()[0]
        key, _unused, value = line.replace("=", " ", 1).partition(" ") if "=" in head else line.partition(" ")
        if key.lower() == "match":
            break
        out.append((key.lower(), value.strip()))
    return out


def shadowed(dropins, settings):
    """Drop-in settings that the hardened settings override: ``[{path, keyword, value}]``."""
    ours = {k.lower() for k in settings}
    found = []
    for path, entries in dropins.items():
        for key, value in entries:
            if key in ours and key not in MULTI_LINE:
                found.append({"path": path, "keyword": key, "value": value})
    return found


def socket_dropin(service):
    """The role's ssh.socket listen drop-in for ``service`` (``ssh`` or ``sshd``)."""
    return f"/etc/systemd/system/{service}.socket.d/kubeguard-listen.conf"


def connection_spec(user, host="", addr="", lport=""):
    """The ``sshd -T -C`` spec for a connection; unknown host/addr fall back to loopback."""
    addr = addr or "127.0.0.1"
    spec = f"user={user},host={host or addr},addr={addr}"
    return f"{spec},lport={lport}" if lport else spec


def include_patterns(text, base=SSH_DIR):
    """The glob patterns of the Include lines of a main sshd_config (relative ones are under /etc/ssh)."""
    patterns = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) > 1 and fields[0].lower() == "include":
            patterns.extend(p if p.startswith("/") else os.path.join(base, p) for p in fields[1:])
    return patterns


def discover_dropins(patterns):
    """``{path: [(keyword, value)]}`` for every file the Include patterns match, in sshd's (sorted) order."""
    found = {}
    for pattern in patterns:
        for path in sorted(glob.glob(pattern)):
            with open(path, errors="replace") as handle:
                found[path] = parse_dropin(handle.read())
    return found
