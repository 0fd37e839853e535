#!/usr/bin/python
# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: sshd_config
short_description: Render, validate, access-check and atomically write sshd_config, arming a rollback
version_added: 0.1.0
description:
  - Selects KexAlgorithms, Ciphers, MACs, HostKeyAlgorithms and PubkeyAcceptedAlgorithms from preference
    lists and the algorithms the node supports, so no unknown algorithm is ever written.
  - Renders the main sshd_config with the hardened settings before the C(Include) of the drop-in
    directory (sshd keeps the first value it reads, so drop-ins cannot override them), then Match blocks.
  - Refuses, before rendering, a C(Port) outside 1-65535, a C(ListenAddress) that is neither an address nor a host name,
    and C(MaxAuthTries) below 1, naming the role variable.
  - Validates the candidate with C(sshd -t) and evaluates it with C(sshd -T -C user=,host=,addr=,lport=)
    for the connection Ansible uses; refuses (before anything is written) when that account would lose
    access, naming the role variable to fix.
  - When the file changes, keeps a backup, copies the previous file to I(state_dir) and arms a dead-man
    rollback (C(systemd-run --on-active)) that restores it and reloads sshd unless disarmed.
author:
  - Kubeguard maintainers (@kubeguard)
extends_documentation_fragment:
  - kubeguard.hardening.role_vars
options:
  path:
    description: Main sshd configuration file.
    type: path
    default: /etc/ssh/sshd_config
  header:
    description: Comment block written first (the role passes C(ansible_managed | comment)).
    type: str
    default: ''
  settings:
    description: Ordered mapping of sshd keywords to values (bool -> yes/no, list -> joined or one line per item).
    type: dict
    required: true
  algorithm_preferences:
    description:
      - Preference lists keyed by C(kex), C(ciphers), C(macs), C(host_key_algorithms), C(pubkey_accepted_algorithms).
    type: dict
    default: {}
  post_quantum_only:
    description:
      - Drop classical KEX when the node supports a post-quantum hybrid.
      - Off by default, so clients without a post-quantum hybrid (older paramiko, OpenSSH, PuTTY and Go)
        can still connect.
    type: bool
    default: false
  supported_algorithms:
    description: C(algorithms) as returned by M(kubeguard.hardening.sshd_facts).
    type: dict
    required: true
  keywords:
    description: C(keywords) from M(kubeguard.hardening.sshd_facts); version-dependent keywords not in it are skipped.
    type: list
    elements: str
    default: []
  include:
    description: Include pattern written after the hardened settings; empty to omit.
    type: str
    default: /etc/ssh/sshd_config.d/*.conf
  match_blocks:
    description: List of C({criteria, settings}) Match blocks written last.
    type: list
    elements: dict
    default: []
  account:
    description: C(account) from M(kubeguard.hardening.sshd_facts) (name, uid, home, groups).
    type: dict
    required: true
  connection:
    description: C(connection) from M(kubeguard.hardening.sshd_facts) (addr, host, lport).
    type: dict
    default: {}
  access_check:
    description: Refuse a candidate under which I(account) would lose access.
    type: bool
    default: true
  backup:
    description: Keep a timestamped copy of the previous file next to it.
    type: bool
    default: true
  rollback_timeout:
    description: Seconds after which the armed rollback restores the previous file; C(0) arms nothing.
    type: int
    default: 90
  state_dir:
    description: Directory for the rollback copy, script and log.
    type: path
    default: /var/lib/kubeguard/ssh_hardening
  service:
    description: Service unit name used by the rollback to reload sshd.
    type: str
    default: ssh
  socket_dropin:
    description:
      - The role's ssh.socket listen drop-in; the rollback restores (or removes) it too.
      - Defaults to C(/etc/systemd/system/<service>.socket.d/kubeguard-listen.conf).
    type: path
attributes:
  check_mode:
    support: full
    description: Renders, validates and access-checks; writes and arms nothing.
  diff_mode:
    support: full
    description: The sshd_config before and after.
  idempotent:
    support: full
    description: A second call with the same input writes nothing and arms no rollback.
  safe_file_operations:
    support: full
    description: The file is written through a temporary file in its directory and renamed into place.
"""

EXAMPLES = r"""
- name: Write the hardened sshd_config
  kubeguard.hardening.sshd_config:
    settings:
      PermitRootLogin: false
      PasswordAuthentication: false
    algorithm_preferences:
      kex: [mlkem768x25519-sha256, sntrup761x25519-sha512, curve25519-sha256]
      macs: [hmac-sha2-512-etm@openssh.com, hmac-sha2-256-etm@openssh.com]
    supported_algorithms: "{{ ssh_hardening_facts_result.algorithms }}"
    keywords: "{{ ssh_hardening_facts_result.keywords }}"
    account: "{{ ssh_hardening_facts_result.account }}"
    connection: "{{ ssh_hardening_facts_result.connection }}"
    rollback_timeout: 90
  become: true
  register: ssh_hardening_config_result
"""

RETURN = r"""
algorithms:
  description: Selected algorithms per sshd keyword.
  returned: success
  type: dict
  sample: {"KexAlgorithms": ["mlkem768x25519-sha256", "sntrup761x25519-sha512"]}
skipped_keywords:
  description: Version-dependent keywords left out because this sshd does not know them.
  returned: success
  type: list
  elements: str
  sample: [PerSourcePenalties]
shadowed:
  description: Drop-in settings that the hardened settings override (they can no longer take effect).
  returned: success
  type: list
  elements: dict
  sample: [{"path": "/etc/ssh/sshd_config.d/50-cloud-init.conf", "keyword": "passwordauthentication", "value": "yes"}]
effective:
  description: Effective configuration of the candidate for the Ansible connection (C(sshd -T -C ...)).
  returned: success
  type: dict
  sample: {"passwordauthentication": ["no"]}
backup_file:
  description: Backup of the previous file.
  returned: changed and backup enabled
  type: str
  sample: /etc/ssh/sshd_config.12345.2026-11-27@04:00:00~
rollback:
  description: Dead-man rollback state (armed, unit, timeout, script, previous copy).
  returned: success
  type: dict
  sample: {"armed": true, "unit": "kubeguard-ssh-rollback", "timeout": 90}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import ROLE_VARS_SPEC, run_module
from ansible_collections.kubeguard.hardening.plugins.module_utils._sshd import apply, config

ARGUMENT_SPEC = {
    "path": {"type": "path", "default": config.SSHD_CONFIG},
    "header": {"type": "str", "default": ""},
    "settings": {"type": "dict", "required": True},
    "algorithm_preferences": {"type": "dict", "default": {}},
    "post_quantum_only": {"type": "bool", "default": False},
    "supported_algorithms": {"type": "dict", "required": True},
    "keywords": {"type": "list", "elements": "str", "default": [], "no_log": False},  # keyword names, not keys
    "include": {"type": "str", "default": config.DROPIN_INCLUDE},
    "match_blocks": {"type": "list", "elements": "dict", "default": []},
    "account": {"type": "dict", "required": True},
    "connection": {"type": "dict", "default": {}},
    "access_check": {"type": "bool", "default": True},
    "backup": {"type": "bool", "default": True},
    "rollback_timeout": {"type": "int", "default": 90},
    "state_dir": {"type": "path", "default": "/var/lib/kubeguard/ssh_hardening"},
    "service": {"type": "str", "default": "ssh"},
    "socket_dropin": {"type": "path"},
}


def main():
    module = AnsibleModule(argument_spec={**ROLE_VARS_SPEC, **ARGUMENT_SPEC}, supports_check_mode=True)
    run_module(module, apply.sshd_config, module.params, module.check_mode, module)


if __name__ == "__main__":
    main()
