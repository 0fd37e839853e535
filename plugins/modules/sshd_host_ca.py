#!/usr/bin/python
# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: sshd_host_ca
short_description: Keep the cluster SSH host CA on the controller, sign host keys, write ssh_known_hosts
version_added: 0.2.0
description:
  - Runs on the controller. Creates the cluster's SSH host CA (C(ssh-keygen -t ed25519)) in I(ca_dir) when it is
    absent, as C(ssh_host_ca) (mode 0600, directory 0700) and C(ssh_host_ca.pub); in check mode it reports that it
    would create it and writes nothing.
  - Signs the host public keys in I(sign) as host certificates (C(ssh-keygen -s CA -h -I -n -V)) and returns the
    certificates (public data); the private key is never read into the module, returned or diffed.
  - Writes an C(ssh_known_hosts) file with a C(@cert-authority) line for I(known_hosts_patterns) when
    I(known_hosts_path) is set.
  - Refuses, before anything is written, I(renew_before_days) not below I(validity_days), a principal that is
    not one, and a host pattern with a space or comma.
author:
  - Kubeguard maintainers (@kubeguard)
extends_documentation_fragment:
  - kubeguard.hardening.role_vars
options:
  ca_dir:
    description: Controller directory of the CA (absolute), e.g. C(~/.kubeguard/pki/<cluster>/ssh).
    type: path
    required: true
  sign:
    description:
      - Host keys to sign, as C(sign) of M(kubeguard.hardening.sshd_host_certificate)
        (C(public_key), C(certificate_path)).
    type: list
    elements: dict
    default: []
  identity:
    description: Certificate key ID prefix (the key type is appended), e.g. C(host:<inventory name>).
    type: str
    default: host
  principals:
    description: Principals of the certificates (C(principals) of M(kubeguard.hardening.sshd_host_certificate)).
    type: list
    elements: str
    default: []
  validity_days:
    description: Days a new certificate is valid.
    type: int
    default: 365
  renew_before_days:
    description: Checked against I(validity_days) (must be below it).
    type: int
    default: 30
  known_hosts_path:
    description: Controller C(ssh_known_hosts) file to write (absolute); unset writes none.
    type: path
  known_hosts_patterns:
    description: Host patterns of the C(@cert-authority) line.
    type: list
    elements: str
    default: []
  rotation:
    description:
      - Host CA rotation with dual trust, one step per run.
      - C(none) signs with the CA (a pending next CA is still trusted); C(add) creates the next CA
        (C(ssh_host_ca.next)) and trusts both; C(resign) signs with the next CA, both trusted; C(finish) makes the
        next CA the CA (the old one is kept as C(ssh_host_ca.retired)) and trusts only it.
    type: str
    choices: [none, add, resign, finish]
    default: none
  known_hosts_merge:
    description: Keep the host patterns the file already lists for this CA and add I(known_hosts_patterns), so a run
      limited to some nodes keeps trusting the CA for the others.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    description: Reports that the CA or known_hosts would be created or changed and writes nothing.
  diff_mode:
    support: full
    description: The ssh_known_hosts file before and after (public keys only).
  idempotent:
    support: full
    description: An existing CA is kept; known_hosts is rewritten only when its content differs.
  safe_file_operations:
    support: full
    description: The CA is generated in a temporary directory and renamed into place; known_hosts is written atomically.
"""

EXAMPLES = r"""
- name: Make sure the cluster SSH host CA exists
  kubeguard.hardening.sshd_host_ca:
    ca_dir: "{{ lookup('ansible.builtin.env', 'HOME') }}/.kubeguard/pki/kubernetes/ssh"
  delegate_to: localhost
  become: false
  run_once: true
  register: ssh_hardening_host_ca_result
"""

RETURN = r"""
public_key:
  description: The public key of the CA that signs (empty in check mode when it would be created).
  returned: success
  type: str
  sample: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI...
fingerprint:
  description: The CA's SHA256 fingerprint.
  returned: success
  type: str
  sample: SHA256:26M0Vk61A/qjq19Dv/W5cXj5DKjXbpDLgyp4TjdDACs
ca_created:
  description: Whether the CA was (or in check mode would be) created.
  returned: success
  type: bool
  sample: false
path:
  description: The signing CA's private key file (its path only).
  returned: success
  type: str
  sample: /root/.kubeguard/pki/kubernetes/ssh/ssh_host_ca
certificates:
  description: Signed certificates, one per I(sign) entry (C(path) on the node, C(certificate), C(summary)).
  returned: success
  type: list
  elements: dict
  sample: [{"path": "/etc/ssh/ssh_host_ed25519_key-cert.pub", "certificate": "ssh-ed25519-cert-v01@openssh.com AAAA...",
            "summary": "host:cp1:ssh-ed25519 by SHA256:26M0... for cp1,10.123.0.10 until 2027-12-05T07:00:00Z"}]
trusted:
  description: Public keys of the CAs the C(@cert-authority) lines trust (two during a rotation).
  returned: success
  type: list
  elements: str
  sample: [ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI...]
ca_promoted:
  description: Whether the C(finish) rotation step made the next CA the CA (in check mode, would).
  returned: success
  type: bool
  sample: false
known_hosts_changed:
  description: Whether the ssh_known_hosts file was (or would be) written.
  returned: success
  type: bool
  sample: true
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import ROLE_VARS_SPEC, run_module
from ansible_collections.kubeguard.hardening.plugins.module_utils._sshd import hostca

ARGUMENT_SPEC = {
    "ca_dir": {"type": "path", "required": True},
    "sign": {"type": "list", "elements": "dict", "default": []},
    "identity": {"type": "str", "default": "host"},
    "principals": {"type": "list", "elements": "str", "default": []},
    "validity_days": {"type": "int", "default": 365},
    "renew_before_days": {"type": "int", "default": 30},
    "known_hosts_path": {"type": "path"},
    "known_hosts_patterns": {"type": "list", "elements": "str", "default": []},
    "known_hosts_merge": {"type": "bool", "default": False},
    "rotation": {"type": "str", "default": "none", "choices": ["none", "add", "resign", "finish"]},
}


def main():
    module = AnsibleModule(argument_spec={**ROLE_VARS_SPEC, **ARGUMENT_SPEC}, supports_check_mode=True)
    run_module(module, hostca.run, module.params, module.check_mode, module)


if __name__ == "__main__":
    main()
