#!/usr/bin/python
# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: cluster_pki_node_plan
short_description: Check a node's side of the cluster PKI in one call; writes nothing
version_added: 0.2.0
description:
  - Does on one node, in one call, what M(kubeguard.hardening.cluster_pki_endpoint),
    M(kubeguard.hardening.cluster_pki_install) (in check mode, for the node's files and for its node agents'
    kubeconfigs) and M(kubeguard.hardening.cluster_pki_info) would do, each concern with its own module's code and
    argument spec, and returns each result under the concern's name. Nothing is written or restarted.
  - 'Runs in check mode only (C(check_mode: true) on the task); elsewhere it fails and does nothing.'
  - The endpoint proof comes first; its refusal fails the call, naming the role variable, as
    M(kubeguard.hardening.cluster_pki_endpoint) would. A refusal of another concern (a different CA on the node,
    an unknown owner) does not fail the call; the concern is RV(pending) with its C(error), so its own task runs and
    refuses in its place.
  - The C(kubeguard.hardening.cluster_pki) role calls it on every node at once, before anything is written anywhere;
    only the nodes with something RV(pending) run the install tasks.
  - Never returns or diffs file contents or key material.
author:
  - Kubeguard maintainers (@kubeguard)
extends_documentation_fragment:
  - kubeguard.hardening.role_vars
  - kubeguard.hardening.attributes.check_only
options:
  endpoint:
    description: The options of M(kubeguard.hardening.cluster_pki_endpoint); omit to skip.
    type: dict
    suboptions: &endpoint_options
      files:
        description: As O(kubeguard.hardening.cluster_pki_endpoint#module:files).
        type: list
        elements: dict
        required: true
      ca_certificate:
        description: As O(kubeguard.hardening.cluster_pki_endpoint#module:ca_certificate).
        type: str
        default: ""
      kubernetes_dir:
        description: kubeadm's configuration directory (the C(kubernetes) root of distribution entries).
        type: path
        default: /etc/kubernetes
      kubelet_pki_dir:
        description: Directory of the kubelet serving certificate (the C(kubelet) root of entries).
        type: path
        default: /var/lib/kubelet/pki
      timeout:
        description: As O(kubeguard.hardening.cluster_pki_endpoint#module:timeout).
        type: int
        default: 5
      role_vars:
        description: As O(kubeguard.hardening.cluster_pki_endpoint#module:role_vars).
        type: dict
        default: {}
  distribute:
    description:
      - The options of M(kubeguard.hardening.cluster_pki_install) for the node's certificates, keys and kubeconfigs;
        omit to skip.
    type: dict
    suboptions: &install_options
      files:
        description: As O(kubeguard.hardening.cluster_pki_install#module:files).
        type: list
        elements: dict
        required: true
      contents:
        description: As O(kubeguard.hardening.cluster_pki_install#module:contents); C(no_log).
        type: list
        elements: str
        required: true
      planned:
        description:
          - As O(kubeguard.hardening.cluster_pki_install#module:planned); the files a run of
            M(kubeguard.hardening.cluster_pki) after this check would write, reported as pending without being read.
        type: list
        elements: dict
        default: []
      kubernetes_dir:
        description: kubeadm's configuration directory (the C(kubernetes) root of distribution entries).
        type: path
        default: /etc/kubernetes
      kubelet_pki_dir:
        description: Directory of the kubelet serving certificate (the C(kubelet) root of entries).
        type: path
        default: /var/lib/kubelet/pki
      owner:
        description: As O(kubeguard.hardening.cluster_pki_install#module:owner).
        type: str
        default: root
      group:
        description: As O(kubeguard.hardening.cluster_pki_install#module:group).
        type: str
        default: root
      replace_ca:
        description: As O(kubeguard.hardening.cluster_pki_install#module:replace_ca).
        type: bool
        default: false
      backup_dir:
        description: As O(kubeguard.hardening.cluster_pki_install#module:backup_dir).
        type: path
        default: ""
      role_vars:
        description: As O(kubeguard.hardening.cluster_pki_install#module:role_vars).
        type: dict
        default: {}
  node_agents:
    description:
      - The options of M(kubeguard.hardening.cluster_pki_install) for the node agents' kubeconfigs; omit to skip.
    type: dict
    suboptions: *install_options
  report:
    description: The options of M(kubeguard.hardening.cluster_pki_info); omit to skip.
    type: dict
    suboptions:
      kubernetes_dir:
        description: kubeadm's configuration directory.
        type: path
        default: /etc/kubernetes
      kubelet_pki_dir:
        description: Directory of the kubelet serving certificate C(kubelet.crt).
        type: path
        default: /var/lib/kubelet/pki
      renew_before_days:
        description: As O(kubeguard.hardening.cluster_pki_info#module:renew_before_days).
        type: int
        default: 30
      role_vars:
        description: As O(kubeguard.hardening.cluster_pki_info#module:role_vars).
        type: dict
        default: {}
seealso:
  - module: kubeguard.hardening.cluster_pki_endpoint
  - module: kubeguard.hardening.cluster_pki_install
  - module: kubeguard.hardening.cluster_pki_info
"""

EXAMPLES = r"""
- name: Prove the endpoints, check the node's files and report expiry in one call
  kubeguard.hardening.cluster_pki_node_plan:
    endpoint:
      files: "{{ pki_plan.distribution[inventory_hostname] }}"
      ca_certificate: "{{ pki_plan.ca_certificate }}"
    distribute:
      files: "{{ node_files }}"
      contents: "{{ query('ansible.builtin.file', *(node_files | map(attribute='src')), rstrip=false) }}"
    report: {}
  vars:
    node_files: "{{ pki_plan.distribution[inventory_hostname] | rejectattr('pending') | list }}"
  check_mode: true
  any_errors_fatal: true
  register: pki_node_plan
"""

RETURN = r"""
pending:
  description:
    - The concerns whose task has to run, in order (C(distribute), C(node_agents)); also a concern whose check was
      refused (see its C(error)). The endpoint proof and the report are never pending.
  returned: success
  type: list
  elements: str
  sample: [distribute]
endpoint:
  description: What M(kubeguard.hardening.cluster_pki_endpoint) returns.
  returned: when O(endpoint) is given
  type: dict
  sample: {"changed": false, "checked": []}
distribute:
  description:
    - What M(kubeguard.hardening.cluster_pki_install) would return in check mode; or C(error), the message of its
      refusal.
  returned: when O(distribute) is given
  type: dict
  sample: {"changed": true, "changed_files": [{"path": "/var/lib/kubelet/pki/kubelet.crt", "reason": "absent"}],
           "components": ["kubelet"], "pending_restart": true, "agents_skipped": []}
node_agents:
  description: As RV(distribute), for the node agents' kubeconfigs.
  returned: when O(node_agents) is given
  type: dict
  sample: {"changed": false, "changed_files": [], "components": [], "pending_restart": false,
           "agents_skipped": ["kube-proxy"]}
report:
  description: What M(kubeguard.hardening.cluster_pki_info) returns (C(certificates), C(certificate_authorities),
    C(unreadable)).
  returned: when O(report) is given
  type: dict
  sample: {"changed": false, "certificates": [], "certificate_authorities": [], "unreadable": []}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.kubeguard.hardening.plugins.module_utils._common.concerns import validated
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import ROLE_VARS_SPEC, run_module
from ansible_collections.kubeguard.hardening.plugins.module_utils._pki import _node_plan, _specs

# Each concern's options as a sub-spec, so that its module's no_log (contents) holds here too.
ARGUMENT_SPEC = {
    **ROLE_VARS_SPEC,
    **{name: {"type": "dict", "options": spec} for name, spec in _specs.CONCERNS.items()},
}
# Only to refuse a concern that is not a dict, which ansible-core's sub-spec validation does not survive
# (a TypeError, not a validation error); no_log, since what it holds is not sorted into secrets and the rest.
UNCHECKED_SPEC = {**ROLE_VARS_SPEC, **{name: {"type": "raw", "no_log": True} for name in _specs.CONCERNS}}


def main():
    try:
        module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    except TypeError:
        module = AnsibleModule(argument_spec=UNCHECKED_SPEC, supports_check_mode=True)
        run_module(module, _node_plan.require_dicts, module.params)
    run_module(module, lambda: _node_plan.run(validated(module.params, _specs.CONCERNS), module.check_mode))


if __name__ == "__main__":
    main()
