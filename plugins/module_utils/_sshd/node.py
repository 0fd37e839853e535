# Private to the kubeguard.hardening collection: no stable API (see __init__).
"""Read-only helpers about the node: accounts, authorized keys, host keys, the SSH connection."""

from __future__ import annotations

import base64
import grp
import ipaddress
import os
import pwd
import re
import struct

_KEY_TYPE = re.compile(r"^(ssh-|ecdsa-|sk-)[A-Za-z0-9@.\-]+$")


def parse_ssh_connection(value):
    """``SSH_CONNECTION`` ("client_ip client_port server_ip server_port") -> dict or None."""
    parts = (value or "").split()
    if len(parts) != 4:
        return None
    return {"addr": parts[0], "lport": parts[3]}


def _environ(pid, proc):
    try:
        with open(f"{proc}/{pid}/environ", "rb") as handle:
            return dict(item.split(b"=", 1) for item in handle.read().split(b"\0") if b"=" in item)
    except OSError:
        # sudo is set-uid and not dumpable: its environ is unreadable even for root.
        return {}


def find_connection(pid=None, proc="/proc"):
    """Walk up from ``pid`` to the first ancestor whose environment has SSH_CONNECTION.

    Under become (sudo) the module's own environment may be reset, but the
    login shell that started sudo still carries the variable, and its owner
    is the account Ansible connected as.
    """
    pid = pid or os.getpid()
    for _unused in range(32):
        conn = parse_ssh_connection(_environ(pid, proc).get(b"SSH_CONNECTION", b"").decode(errors="replace"))
        try:
            if conn:
                conn["uid"] = os.stat(f"{proc}/{pid}").st_uid
                return conn
            with open(f"{proc}/{pid}/stat") as handle:
                pid = int(handle.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            return None
        if pid <= 1:
            return None
    return None


def _hex_addr(text):
    raw = bytes.fromhex(text)
    # /proc/net/tcp* stores addresses as host-order (little-endian) 32-bit words.
    words = [raw[i : i + 4][::-1] for i in range(0, len(raw), 4)]
    addr = ipaddress.ip_address(b"".join(words))
    if addr.version == 6 and addr.ipv4_mapped:
        addr = addr.ipv4_mapped
    return str(addr)


def established(tcp_tables, ports):
    """Established TCP connections to any of ``ports``: ``[(remote_addr, local_port)]``.

    ``tcp_tables`` are the texts of /proc/net/tcp and /proc/net/tcp6.
    """
    wanted = {int(p) for p in ports}
    found = []
    for text in tcp_tables:
        for line in text.splitlines()[1:]:
            fields = line.split()
            if len(fields) < 4 or fields[3] != "01":
                continue
            local, remote = fields[1].split(":"), fields[2].split(":")
            if int(local[1], 16) in wanted:
                found.append((_hex_addr(remote[0]), str(int(local[1], 16))))
    return found


def connection_from_sockets(tcp_tables, ports):
    """The connection when every established SSH connection comes from one address to one port, else {}."""
    conns = set(established(tcp_tables, ports))
    addrs = {addr for addr, _unused in conns}
    lports = {lport for _unused, lport in conns}
    result = {}
    if len(addrs) == 1:
        result["addr"] = addrs.pop()
    if len(lports) == 1:
        result["lport"] = lports.pop()
    return result


def account(name):
    """uid, home and group names of a local account, or None."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        return None
    groups = []
    for gid in os.getgrouplist(name, entry.pw_gid):
        try:
            groups.append(grp.getgrgid(gid).gr_name)
        except KeyError:
            groups.append(str(gid))
    return {"name": name, "uid": entry.pw_uid, "home": entry.pw_dir, "groups": sorted(set(groups))}


def expand_authorized_keys_files(value, user, home, uid):
    """Expand sshd's AuthorizedKeysFile tokens (%h %u %U %%); relative paths are under the home."""
    paths = []
    for entry in (value or "").split():
        if entry == "none":
            continue
        path = entry.replace("%%", "\0").replace("%h", home).replace("%u", user).replace("%U", str(uid))
        path = path.replace("\0", "%")
        if not path.startswith("/"):
            path = os.path.join(home, path)
        paths.append(path)
    return paths


def key_types(text):
    """Key types of the usable lines of an authorized_keys file (options prefixes allowed)."""
    types = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split()
        for index, field in enumerate(fields[:-1]):
            if _KEY_TYPE.match(field) and len(fields[index + 1]) > 16:
                types.append(field)
                break
    return types


def read_key_types(paths):
    found = []
    for path in paths:
        try:
            with open(path, encoding="utf-8", errors="replace") as handle:
                found.extend(key_types(handle.read()))
        except OSError:
            continue
    return found


def public_key_info(line):
    """``(type, bits)`` of an OpenSSH public key line; bits are exact for RSA, nominal otherwise."""
    fields = line.split()
    if len(fields) < 2:
        return None, 0
    key_type = fields[0]
    nominal = {"ssh-ed25519": 256, "ecdsa-sha2-nistp256": 256, "ecdsa-sha2-nistp384": 384, "ecdsa-sha2-nistp521": 521}
    if key_type == "ssh-rsa":
        try:
            blob = base64.b64decode(fields[1])
            offset = 0
            parts = []
            for _unused in range(3):
                (length,) = struct.unpack(">I", blob[offset : offset + 4])
                parts.append(blob[offset + 4 : offset + 4 + length])
                offset += 4 + length
            return key_type, int.from_bytes(parts[2], "big").bit_length()
        except (ValueError, struct.error):
            return key_type, 0
    return key_type, nominal.get(key_type, 1024 if key_type == "ssh-dss" else 0)


def shadow_password_locked(shadow_text, user="root"):
    """Whether ``user``'s password field in /etc/shadow is locked or empty-disabled."""
    for line in shadow_text.splitlines():
        fields = line.split(":")
        if fields and fields[0] == user and len(fields) > 1:
            return fields[1].startswith(("!", "*"))
    return None
