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
  - Kubeguard maintainers (@kubeguard)
extends_documentation_fragment:
  - kubeguard.hardening.role_vars
  - kubeguard.hardening.attributes.read_only
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
  ports:
    description:
      - Ports sshd should listen on. When given, each is checked (1-65535) and C(listen_streams) is returned,
        so a bad port is refused before any task writes it.
    type: list
    elements: raw
  listen_addresses:
    description: Listen addresses for I(ports); each must be an IP address or a host name.
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
- name: Gather SSH facts
  kubeguard.hardening.sshd_facts:
  become: true
  register: ssh_hardening_facts_result

- name: Gather SSH facts for a given account and address
  kubeguard.hardening.sshd_facts:
    user: operator
    addr: 192.0.2.10
  become: true
  register: ssh_hardening_facts_result
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
release:
  description: Distribution ID and major version from /etc/os-release (empty when unknown).
  returned: success
  type: str
  sample: debian13
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
           "socket_dropin": "/etc/systemd/system/ssh.socket.d/kubeguard-listen.conf", "socket_dropin_exists": false}
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
listen_streams:
  description: C(ListenStream=) values of the ssh.socket drop-in for I(ports) and I(listen_addresses).
  returned: when I(ports) is given
  type: list
  elements: str
  sample: ["22", "2222"]
root_password_locked:
  description: Whether root's password is locked (null when /etc/shadow has no root entry).
  returned: success
  type: bool
  sample: false
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import ROLE_VARS_SPEC, run_module
from ansible_collections.kubeguard.hardening.plugins.module_utils._sshd import config, facts

ARGUMENT_SPEC = {
    "user": {"type": "str"},
    "addr": {"type": "str"},
    "host": {"type": "str"},
    "sshd_config": {"type": "path", "default": config.SSHD_CONFIG},
    "moduli_min_bits": {"type": "int", "default": 3072},
    "ports": {"type": "list", "elements": "raw"},
    "listen_addresses": {"type": "list", "elements": "str", "default": []},
}


def main():
    module = AnsibleModule(argument_spec={**ROLE_VARS_SPEC, **ARGUMENT_SPEC}, supports_check_mode=True)
    run_module(module, lambda: {"changed": False, **facts.gather(module.params, module)})


if __name__ == "__main__":
    main()
