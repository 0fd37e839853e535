#!/usr/bin/python
# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: sshd_facts
short_description: Gather everything the SSH hardening needs from a node in one call
version_added: 0.1.0
description:
  - Returns the OpenSSH version, the algorithms the installed OpenSSH supports (C(ssh -Q)),
    the effective sshd configuration for the connection Ansible uses (C(sshd -T -C ...)),
    the sshd_config.d drop-ins, the service/socket activation state, host keys, weak moduli,
    the connecting account (groups, authorized key types) and whether root's password is locked.
  - Read-only; needs root (use become).
author:
  - kubeguard maintainers
options:
  user:
    description:
      - Account Ansible connects with. Detected from the SSH login that started the module
        (or C(SUDO_USER)) when omitted.
    type: str
  addr:
    description: Client address sshd sees for that connection. Detected from C(SSH_CONNECTION) when omitted.
    type: str
  host:
    description: Client host name for C(Match Host) evaluation. Defaults to the address.
    type: str
  sshd_config:
    description: Main sshd configuration file.
    type: path
    default: /etc/ssh/sshd_config
  moduli_min_bits:
    description: Moduli smaller than this are counted as weak.
    type: int
    default: 3072
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  idempotent:
    support: full
  safe_file_operations:
    support: none
    details: Writes nothing.
"""

EXAMPLES = r"""
- name: Gather SSH facts
  kubeguard.hardening.sshd_facts:
  become: true
  register: ssh_hardening_facts

- name: Gather SSH facts for a given account and address
  kubeguard.hardening.sshd_facts:
    user: operator
    addr: 192.0.2.10
  become: true
  register: ssh_hardening_facts
"""

RETURN = r"""
version:
  description: OpenSSH version string (C(ssh -V)).
  returned: success
  type: str
  sample: OpenSSH_10.0p2 Debian-7, OpenSSL 3.5.1 1 Jul 2025
version_info:
  description: Major and minor version numbers.
  returned: success
  type: list
  elements: int
  sample: [10, 0]
algorithms:
  description: Supported algorithms per C(ssh -Q) query (kex, cipher, mac, key, key-sig).
  returned: success
  type: dict
  sample: {"kex": ["mlkem768x25519-sha256", "curve25519-sha256"], "cipher": ["aes256-ctr"]}
effective:
  description: Effective sshd configuration for this connection, keyword (lower case) to list of values.
  returned: success
  type: dict
  sample: {"permitrootlogin": ["no"], "port": ["22"]}
keywords:
  description: Keywords this sshd prints in C(sshd -T), used to skip options it does not know.
  returned: success
  type: list
  elements: str
  sample: [port, persourcepenalties]
dropins:
  description: Files matched by the Include lines of the main config, with the keywords they set outside Match.
  returned: success
  type: dict
  sample: {"/etc/ssh/sshd_config.d/50-cloud-init.conf": [["passwordauthentication", "yes"]]}
service:
  description: Unit states for the SSH service and socket, and which one serves connections.
  returned: success
  type: dict
  sample: {"name": "ssh", "service_active": true, "socket_enabled": false, "socket_activated": false,
           "socket_dropin_exists": false}
host_keys:
  description: Host public keys found in /etc/ssh with type and size.
  returned: success
  type: list
  elements: dict
  sample: [{"path": "/etc/ssh/ssh_host_rsa_key", "type": "ssh-rsa", "bits": 3072}]
moduli_weak:
  description: Number of moduli lines below I(moduli_min_bits).
  returned: success
  type: int
  sample: 136
account:
  description: The connecting account, its groups and the types of its authorized keys.
  returned: success
  type: dict
  sample: {"name": "operator", "uid": 1000, "groups": ["operator", "sudo"], "key_types": ["ssh-ed25519"]}
connection:
  description: The connection as the node sees it (client address, host, local port).
  returned: success
  type: dict
  sample: {"addr": "10.88.0.1", "host": "10.88.0.1", "lport": "22"}
root_password_locked:
  description: Whether root's password is locked (null when /etc/shadow has no root entry).
  returned: success
  type: bool
  sample: false
"""

import glob
import os
import re

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.kubeguard.hardening.plugins.module_utils._sshd import algorithms, config, node
from ansible_collections.kubeguard.hardening.plugins.module_utils._sshd.errors import SshdHardeningError

QUERIES = ("kex", "cipher", "mac", "key", "key-sig")
UNITS = ("ssh.service", "ssh.socket", "sshd.service", "sshd.socket")


def run(module, args, check=True):
    rc, out, err = module.run_command(args)
    if check and rc != 0:
        raise SshdHardeningError(f"{' '.join(args)} failed ({rc}): {err.strip() or out.strip()}")
    return out, err


def service_state(module):
    props = "--property=Id,LoadState,ActiveState,UnitFileState,Accept"
    out, _ = run(module, ["systemctl", "show", props, *UNITS], False)
    units = {}
    for block in out.strip().split("\n\n"):
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
        "socket_dropin_exists": os.path.exists(f"/etc/systemd/system/{name}.socket.d/kubeguard-listen.conf"),
    }


def dropins(path):
    found = {}
    try:
        with open(path) as handle:
            includes = [line.split(None, 1)[1] for line in handle if line.strip().lower().startswith("include ")]
    except OSError as exc:
        raise SshdHardeningError(f"Cannot read {path}: {exc}", option="sshd_config") from exc
    for pattern in " ".join(includes).split():
        if not pattern.startswith("/"):
            pattern = os.path.join("/etc/ssh", pattern)
        for match in sorted(glob.glob(pattern)):
            with open(match, errors="replace") as handle:
                found[match] = [list(item) for item in config.parse_dropin(handle.read())]
    return found


def gather(module):
    p = module.params
    version = run(module, ["ssh", "-V"])[1].strip()
    numbers = re.search(r"OpenSSH_(\d+)\.(\d+)", version)
    supported = {q: algorithms.parse_query(run(module, ["ssh", "-Q", q])[0]) for q in QUERIES}

    conn = node.find_connection() or {}
    user = p["user"] or os.environ.get("SUDO_USER") or ""
    if not user and "uid" in conn:
        user = node.pwd.getpwuid(conn["uid"]).pw_name
    user = user or node.pwd.getpwuid(os.geteuid()).pw_name
    acct = node.account(user)
    if acct is None:
        raise SshdHardeningError(f"Account {user!r} does not exist on the node", option="ssh_hardening_connection_user")
    current = config.parse_effective(run(module, ["sshd", "-T", "-f", p["sshd_config"]])[0])
    if not conn:
        # No readable SSH_CONNECTION (containers lack CAP_SYS_PTRACE): use the socket
        # table when all SSH connections come from one address to one port.
        tables = []
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            try:
                with open(table) as handle:
                    tables.append(handle.read())
            except OSError:
                continue
        conn = node.connection_from_sockets(tables, config.words(current, "port"))
    addr = p["addr"] or conn.get("addr") or ""
    host = p["host"] or addr
    lport = conn.get("lport") or ""

    spec = f"user={user},host={host or 'localhost'},addr={addr or '127.0.0.1'}"
    if lport:
        spec += f",lport={lport}"
    effective = config.parse_effective(run(module, ["sshd", "-T", "-f", p["sshd_config"], "-C", spec])[0])
    files = node.expand_authorized_keys_files(
        config.first(effective, "authorizedkeysfile"), user, acct["home"], acct["uid"]
    )
    acct["key_types"] = node.read_key_types(files)

    host_keys = []
    for pub in sorted(glob.glob("/etc/ssh/ssh_host_*_key.pub")):
        with open(pub) as handle:
            key_type, bits = node.public_key_info(handle.read())
        host_keys.append({"path": pub[: -len(".pub")], "type": key_type, "bits": bits})

    weak = 0
    if os.path.exists("/etc/ssh/moduli"):
        with open("/etc/ssh/moduli") as handle:
            for line in handle:
                fields = line.split()
                if len(fields) == 7 and fields[4].isdigit() and int(fields[4]) + 1 < p["moduli_min_bits"]:
                    weak += 1
    try:
        with open("/etc/shadow") as handle:
            locked = node.shadow_password_locked(handle.read())
    except OSError:
        locked = None

    return {
        "version": version,
        "version_info": [int(numbers.group(1)), int(numbers.group(2))] if numbers else [],
        "algorithms": supported,
        "effective": effective,
        "keywords": sorted(effective),
        "dropins": dropins(p["sshd_config"]),
        "service": service_state(module),
        "host_keys": host_keys,
        "moduli_weak": weak,
        "account": acct,
        "connection": {"addr": addr, "host": host, "lport": lport},
        "root_password_locked": locked,
    }


def main():
    module = AnsibleModule(
        argument_spec={
            "user": {"type": "str"},
            "addr": {"type": "str"},
            "host": {"type": "str"},
            "sshd_config": {"type": "path", "default": "/etc/ssh/sshd_config"},
            "moduli_min_bits": {"type": "int", "default": 3072},
        },
        supports_check_mode=True,
    )
    try:
        result = gather(module)
    except SshdHardeningError as exc:
        module.fail_json(msg=str(exc), option=exc.option)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
