#!/usr/bin/python
# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: kubelet_plan
short_description: Check a node's kubelet configuration, kubelet files and kube-proxy in one call; writes nothing
version_added: 0.2.0
description:
  - Checks each concern it is given exactly as its own module does in check mode
    (M(kubeguard.hardening.kubelet_config), M(kubeguard.hardening.kubelet_files),
    M(kubeguard.hardening.kubelet_kube_proxy)), validated with that module's argument spec, and returns each
    result under the concern's name. Nothing is written or restarted.
  - 'Runs in check mode only (C(check_mode: true) on the task); elsewhere it fails and does nothing.'
  - The kubelet role calls it in kubelet.yml's check play, on every node at once; only the nodes with something
    RV(pending) go through the plays that change them, one batch at a time.
  - A refusal names the role variable through the concern's own C(role_vars), as its module would.
author:
  - Kubeguard maintainers (@kubeguard)
extends_documentation_fragment:
  - kubeguard.hardening.role_vars
  - kubeguard.hardening.attributes.check_only
options:
  config:
    description: The options of M(kubeguard.hardening.kubelet_config); omit to skip.
    type: dict
  files:
    description: The options of M(kubeguard.hardening.kubelet_files); omit to skip.
    type: dict
  kube_proxy:
    description: The options of M(kubeguard.hardening.kubelet_kube_proxy); omit to skip.
    type: dict
"""

EXAMPLES = r"""
- name: Check the kubelet's concerns on this node in one call
  kubeguard.hardening.kubelet_plan:
    files:
      facts: "{{ kubelet_facts }}"
      client_ca_file: /etc/kubernetes/pki/ca.crt
  check_mode: true
  become: true
"""

RETURN = r"""
pending:
  description: The concerns that would change, in order (C(config), C(files), C(kube_proxy)).
  returned: success
  type: list
  elements: str
  sample: [config]
config:
  description: What M(kubeguard.hardening.kubelet_config) would return.
  returned: when O(config) is given
  type: dict
  sample: {"changed": true, "restarted": false}
files:
  description: What M(kubeguard.hardening.kubelet_files) would return.
  returned: when O(files) is given
  type: dict
  sample: {"changed": false, "fixed": []}
kube_proxy:
  description: What M(kubeguard.hardening.kubelet_kube_proxy) would return.
  returned: when O(kube_proxy) is given
  type: dict
  sample: {"changed": false}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.kubeguard.hardening.plugins.module_utils._common.concerns import validated
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import ROLE_VARS_SPEC, run_module
from ansible_collections.kubeguard.hardening.plugins.module_utils._kubelet import check, specs

ARGUMENT_SPEC = {**ROLE_VARS_SPEC, **{concern: {"type": "dict"} for concern in specs.CONCERNS}}


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    run_module(module, lambda: check.run(validated(module.params, specs.CONCERNS), module.check_mode))


if __name__ == "__main__":
    main()
