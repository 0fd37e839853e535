# Private to the kubeguard.hardening collection: no stable API (see __init__).
"""The one gather call per node behind ``sshd_facts``: everything the role decides from.

``gather(params, node, root)`` uses only ``node.run_command(argv) -> (rc, out, err)``
(an AnsibleModule fits); ``root`` prefixes every file it reads, so the unit tests
run it against a directory tree and canned command output.
"""

from __future__ import annotations

import glob
import os
import pwd
import re

from ansible_collections.kubeguard.hardening.plugins.module_utils._common import addresses as addrlib
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError

from . import algorithms, config, moduli, node, validate

QUERIES = ("kex", "cipher", "mac", "key", "key-sig")
UNITS = ("ssh.service", "ssh.socket", "sshd.service", "sshd.socket")


class _Reader:
    def __init__(self, runner, root):
        self.runner, self.root = runner, root

    def path(self, path):
        """The real path of a node path (under ``root``)."""
        return os.path.join(self.root, path.lstrip("/")) if self.root != "/" else path

    def node_path(self, real):
        """The node path of a real path (inverse of ``path``)."""
        return "/" + os.path.relpath(real, self.root) if self.root != "/" else real

    def read(self, path, default=None):
        try:
            with open(self.path(path), errors="replace") as handle:
                return handle.read()
        except OSError:
            return default

    def run(self, argv, check=True):
        rc, out, err = self.runner.run_command(argv)
        if check and rc != 0:
            raise KubeguardError(None, f"{' '.join(argv)} failed ({rc}): {err.strip() or out.strip()}")
        return out, err


def service_state(show_output, dropin_exists):
    """Unit states of the SSH service and socket from ``systemctl show`` of UNITS."""
    units = {}
    for block in show_output.strip().split("\n\n"):
        props = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        if props.get("LoadState") == "loaded":
            units[props["Id"]] = props
    name = "ssh" if "ssh.service" in units else "sshd"
    svc, sock = units.get(f"{name}.service", {}), units.get(f"{name}.socket", {})
    socket_enabled = sock.get("UnitFileState") == "enabled"
    socket_active = sock.get("ActiveState") == "active"
    return {
        "name": name,
        "service_enabled": svc.get("UnitFileState") == "enabled",
        "service_active": svc.get("ActiveState") == "active",
        "socket_exists": bool(sock),
        "socket_enabled": socket_enabled,
        "socket_active": socket_active,
        "socket_accept": sock.get("Accept") == "yes",
        "socket_activated": socket_enabled or socket_active,
        "socket_dropin": config.socket_dropin(name),
        "socket_dropin_exists": dropin_exists(config.socket_dropin(name)),
    }


def release(os_release_text):
    """``<ID><VERSION_ID major>`` from /etc/os-release (``debian12``), or empty when unknown."""
    fields = {}
    for line in (os_release_text or "").splitlines():
        key, sep, value = line.partition("=")
        if sep:
            fields[key.strip()] = value.strip().strip("\"'")
    major = fields.get("VERSION_ID", "").split(".")[0]
    return f"{fields.get('ID', '')}{major}" if fields.get("ID") else ""


def _connection(reader, current):
    conn = node.find_connection(proc=reader.path("/proc")) or {}
    if not conn:
        # No readable SSH_CONNECTION (containers lack CAP_SYS_PTRACE): use the socket
        # table when all SSH connections come from one address to one port.
        tables = [t for t in (reader.read("/proc/net/tcp"), reader.read("/proc/net/tcp6")) if t]
        conn = node.connection_from_sockets(tables, config.words(current, "port"))
    return conn


def gather(params, runner, root="/"):
    """Return the sshd_facts result (see the module's RETURN)."""
    reader = _Reader(runner, root)
    listen = {}
    if params.get("ports") is not None:
        listen["listen_streams"] = validate.listen_streams(params["ports"], params.get("listen_addresses") or [])
    if params.get("listen_addresses"):
        rc, out, _unused = reader.runner.run_command(list(addrlib.IP_ADDR_ARGV))
        local = addrlib.parse_ip_addr(out) if rc == 0 else {}
        # No iproute2 on the node: the kernel's own tables say the same.
        local = local or addrlib.parse_proc(reader.read("/proc/net/fib_trie"), reader.read("/proc/net/if_inet6"))
        validate.local_listen_addresses(params["listen_addresses"], local)
    version = reader.run(["ssh", "-V"])[1].strip()
    numbers = re.search(r"OpenSSH_(\d+)\.(\d+)", version)
    supported = {q: algorithms.parse_query(reader.run(["ssh", "-Q", q])[0]) for q in QUERIES}

    main_config = params.get("sshd_config") or config.SSHD_CONFIG
    current = config.parse_effective(reader.run(["sshd", "-T", "-f", main_config])[0])
    conn = _connection(reader, current)
    user = params.get("user") or os.environ.get("SUDO_USER") or ""
    if not user and "uid" in conn:
        user = pwd.getpwuid(conn["uid"]).pw_name
    user = user or pwd.getpwuid(os.geteuid()).pw_name
    acct = node.account(user)
    if acct is None:
        raise KubeguardError("ssh_hardening_connection_user", f"account {user!r} does not exist on the node")
    addr = params.get("addr") or conn.get("addr") or ""
    host = params.get("host") or addr
    lport = conn.get("lport") or ""

    spec = config.connection_spec(user, host, addr, lport)
    effective = config.parse_effective(reader.run(["sshd", "-T", "-f", main_config, "-C", spec])[0])
    files = node.expand_authorized_keys_files(
        config.first(effective, "authorizedkeysfile"), user, acct["home"], acct["uid"]
    )
    acct["key_types"] = node.read_key_types(reader.path(f) for f in files)

    main_text = reader.read(main_config)
    if main_text is None:
        raise KubeguardError("sshd_config", f"cannot read {main_config}")
    patterns = [reader.path(p) for p in config.include_patterns(main_text)]
    dropins = {
        reader.node_path(path): [list(item) for item in entries]
        for path, entries in config.discover_dropins(patterns).items()
    }
    show = reader.run(["systemctl", "show", "--property=Id,LoadState,ActiveState,UnitFileState,Accept", *UNITS], False)
    shadow = reader.read("/etc/shadow")
    return {
        "version": version,
        "version_info": [int(numbers.group(1)), int(numbers.group(2))] if numbers else [],
        "release": release(reader.read("/etc/os-release")),
        "algorithms": supported,
        "effective": effective,
        "keywords": sorted(effective),
        "dropins": dropins,
        "service": service_state(show[0], lambda p: os.path.exists(reader.path(p))),
        "host_keys": _host_keys(reader),
        "moduli_weak": moduli.count_weak(reader.read(moduli.MODULI, ""), params.get("moduli_min_bits") or 3072),
        "account": acct,
        "connection": {"addr": addr, "host": host, "lport": lport},
        "root_password_locked": None if shadow is None else node.shadow_password_locked(shadow),
        **listen,
    }


def _host_keys(reader):
    keys = []
    for pub in sorted(glob.glob(reader.path(f"{config.SSH_DIR}/ssh_host_*_key.pub"))):
        with open(pub) as handle:
            key_type, bits = node.public_key_info(handle.read())
        keys.append({"path": reader.node_path(pub)[: -len(".pub")], "type": key_type, "bits": bits})
    return keys
