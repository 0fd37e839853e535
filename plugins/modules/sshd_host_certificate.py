#!/usr/bin/python
# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: sshd_host_certificate
short_description: Decide which SSH host keys need a (new) host certificate and install signed ones
version_added: 0.2.0
description:
  - Runs on the node. Computes the certificate principals (inventory name, the node's FQDN and host name, the
    addresses in I(addresses) that are IP addresses and not loopback, I(extra_principals)).
  - Reads each host key of I(key_types) and its certificate (C(ssh-keygen -L), in UTC) and returns in C(sign)
    the keys whose certificate is missing, certifies another key, was signed by another CA than
    I(ca_public_key), names other principals, or ends within I(renew_before_days).
  - Installs the certificates in I(certificates) (signed by M(kubeguard.hardening.sshd_host_ca) on the
    controller) as C(/etc/ssh/ssh_host_<type>_key-cert.pub), mode 0644, only where the content differs.
author:
  - Kubeguard maintainers (@kubeguard)
extends_documentation_fragment:
  - kubeguard.hardening.role_vars
options:
  key_types:
    description: Host key types (C(ed25519), C(rsa)).
    type: list
    elements: str
    default: [ed25519, rsa]
  names:
    description: Names of the node (its inventory name); the node's FQDN and host name are added.
    type: list
    elements: str
    default: []
  addresses:
    description: Candidate addresses (the node IP, C(ansible_host)); only IP addresses that are not loopback,
      unspecified or link-local become principals.
    type: list
    elements: str
    default: []
  extra_principals:
    description: More principals (host names or addresses, no wildcard).
    type: list
    elements: str
    default: []
  ca_public_key:
    description: The host CA's public key (C(public_key) of M(kubeguard.hardening.sshd_host_ca)); empty in check
      mode before the CA exists.
    type: str
    default: ''
  validity_days:
    description: Validity of new certificates (checked against I(renew_before_days)).
    type: int
    default: 365
  renew_before_days:
    description: A certificate ending within this many days is re-signed.
    type: int
    default: 30
  certificates:
    description: Signed certificates to install (C(certificates) of M(kubeguard.hardening.sshd_host_ca)).
    type: list
    elements: dict
    default: []
attributes:
  check_mode:
    support: full
    description: Decides and reports; installs nothing.
  diff_mode:
    support: full
    description: Each certificate's key ID, CA fingerprint, principals and end, before and after (no key material).
  idempotent:
    support: full
    description: Certificates that are current are neither in C(sign) nor rewritten.
  safe_file_operations:
    support: full
    description: Each certificate is written through a temporary file in /etc/ssh and renamed into place.
"""

EXAMPLES = r"""
- name: Decide which host keys need a certificate
  kubeguard.hardening.sshd_host_certificate:
    names: ["{{ inventory_hostname }}"]
    addresses: ["{{ ansible_host }}"]
    ca_public_key: "{{ ssh_hardening_host_ca_result.public_key }}"
  become: true
  register: ssh_hardening_host_certificate_plan
"""

RETURN = r"""
principals:
  description: The principals every certificate of this node names.
  returned: success
  type: list
  elements: str
  sample: [cp1, 10.123.0.10]
keys:
  description:
    - Each host key (C(type), C(path), C(certificate_path), C(public_key), C(fingerprint),
      C(current), C(reason)).
  returned: success
  type: list
  elements: dict
  sample: [{"type": "ed25519", "certificate_path": "/etc/ssh/ssh_host_ed25519_key-cert.pub", "reason": "missing"}]
sign:
  description: The entries of C(keys) that need a (new) certificate.
  returned: success
  type: list
  elements: dict
  sample: []
written:
  description: Certificate files written (or that would be written in check mode).
  returned: success
  type: list
  elements: str
  sample: [/etc/ssh/ssh_host_ed25519_key-cert.pub]
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import ROLE_VARS_SPEC, run_module
from ansible_collections.kubeguard.hardening.plugins.module_utils._sshd import certificates

ARGUMENT_SPEC = {
    "key_types": {"type": "list", "elements": "str", "default": ["ed25519", "rsa"], "no_log": False},
    "names": {"type": "list", "elements": "str", "default": []},
    "addresses": {"type": "list", "elements": "str", "default": []},
    "extra_principals": {"type": "list", "elements": "str", "default": []},
    "ca_public_key": {"type": "str", "default": "", "no_log": False},  # a public key
    "validity_days": {"type": "int", "default": 365},
    "renew_before_days": {"type": "int", "default": 30},
    "certificates": {"type": "list", "elements": "dict", "default": []},
}


def main():
    module = AnsibleModule(argument_spec={**ROLE_VARS_SPEC, **ARGUMENT_SPEC}, supports_check_mode=True)
    run_module(module, certificates.run, module.params, module.check_mode, module)


if __name__ == "__main__":
    main()
