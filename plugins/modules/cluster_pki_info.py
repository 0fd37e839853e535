#!/usr/bin/python
# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: cluster_pki_info
short_description: Report the expiry of every certificate and kubeconfig on a Kubernetes node
version_added: 0.1.0
description:
  - Reads kubeadm's files under O(kubernetes_dir) and the kubelet serving certificate under O(kubelet_pki_dir) and
    reports, like C(kubeadm certs check-expiration), each certificate's expiry, residual time, signing CA and whether
    its CA is externally managed (CA key absent). Only files present on the node are listed.
  - Never returns key material.
  - Needs no Python library beyond the standard library, so it runs on nodes without C(cryptography).
author: Kubeguard maintainers (@kubeguard)
extends_documentation_fragment:
  - kubeguard.hardening.role_vars
  - kubeguard.hardening.attributes.read_only
  - kubeguard.hardening.pki.node_dirs
  - kubeguard.hardening.pki
seealso:
  - module: kubeguard.hardening.cluster_pki
"""

EXAMPLES = r"""
- name: Report certificate expiry on every node
  kubeguard.hardening.cluster_pki_info:
  register: cluster_pki_expiry

- name: Fail when something expires within 30 days
  ansible.builtin.assert:
    that: cluster_pki_expiry.certificates | selectattr('expiring') | list | length == 0
"""

RETURN = r"""
certificates:
  description: Leaf certificates and kubeconfigs found on the node, with kubeadm's names.
  returned: always
  type: list
  elements: dict
  sample:
    - name: apiserver
      path: /etc/kubernetes/pki/apiserver.crt
      missing: false
      expiration_date: "2027-11-27T04:11:56Z"
      residual_days: 364
      residual_seconds: 31535997
      expiring: false
      subject: CN=kube-apiserver
      ca_name: ca
      externally_managed: false
certificate_authorities:
  description: CAs found on the node; C(externally_managed) is true when the CA key is absent.
  returned: always
  type: list
  elements: dict
  sample:
    - name: ca
      path: /etc/kubernetes/pki/ca.crt
      missing: false
      expiration_date: "2036-11-24T04:11:44Z"
      residual_days: 3649
      residual_seconds: 315359000
      expiring: false
      subject: CN=kubernetes
      externally_managed: true
unreadable:
  description: Files present but not parseable as a certificate or kubeconfig.
  returned: always
  type: list
  elements: str
  sample: []
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import run_module
from ansible_collections.kubeguard.hardening.plugins.module_utils._pki import _info, _specs


def main():
    module = AnsibleModule(
        argument_spec=_specs.INFO,
        supports_check_mode=True,
    )
    run_module(module, _info.run, module.params, check_mode=module.check_mode)


if __name__ == "__main__":
    main()
