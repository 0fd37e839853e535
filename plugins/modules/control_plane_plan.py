#!/usr/bin/python
# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: control_plane_plan
short_description: Check a node's control-plane files and every component in one call; writes nothing
version_added: 0.2.0
description:
  - What M(kubeguard.hardening.control_plane_files) and M(kubeguard.hardening.control_plane_component) would do on
    this node, for every component of O(components) in order, in one call. The same validation (an input a component
    would refuse fails here, naming the role variable), the same flags and files, the same throw-away
    kube-apiserver judging a candidate, the same etcd quorum check. Nothing is written or restarted.
  - 'Runs in check mode only (C(check_mode: true) on the task); elsewhere it fails and does nothing.'
  - The control_plane role calls it in control_plane.yml's check play, on every etcd and control-plane node at once;
    only the nodes with something RV(pending) go through the play that changes them, one batch at a time.
  - Errors name the role variable to fix (C(control_plane_<option>)).
author:
  - Kubeguard maintainers (@kubeguard)
extends_documentation_fragment:
  - kubeguard.hardening.role_vars
  - kubeguard.hardening.attributes.check_only
  - kubeguard.hardening.control_plane
options:
  facts:
    description:
      - The registered result of M(kubeguard.hardening.control_plane_facts) on this node. Without it the module
        gathers the same facts itself, in the same call.
    type: dict
  files:
    description: Also check the CIS 1.1.x modes and owners M(kubeguard.hardening.control_plane_files) would fix.
    type: bool
    default: true
  components:
    description:
      - The components to check, in the order they would be applied; each item takes the options
        M(kubeguard.hardening.control_plane_component) takes for one component.
    type: list
    elements: dict
    default: []
    suboptions:
      component:
        description: The component.
        type: str
        required: true
        choices: [etcd, kube-apiserver, kube-controller-manager, kube-scheduler]
      extra_flags:
        description: As O(kubeguard.hardening.control_plane_component#module:extra_flags).
        type: dict
        default: {}
      contributed_flags:
        description: As O(kubeguard.hardening.control_plane_component#module:contributed_flags).
        type: dict
        default: {}
      contributed_files:
        description:
          - As O(kubeguard.hardening.control_plane_component#module:contributed_files); C(no_log).
        type: dict
        default: {}
      defer_to_apiserver:
        description: As O(kubeguard.hardening.control_plane_component#module:defer_to_apiserver).
        type: bool
        default: false
"""

EXAMPLES = r"""
- name: Check the control-plane files and components of this node in one call
  kubeguard.hardening.control_plane_plan:
    node_name: cp1
    node_ip: 10.123.0.10
    components:
      - component: etcd
      - component: kube-apiserver
      - component: kube-controller-manager
      - component: kube-scheduler
  check_mode: true
  become: true
"""

RETURN = r"""
pending:
  description:
    - What would change, in order; C(files), and each component that would be rewritten or restarted (etcd also when it
      would wait for kube-apiserver).
  returned: success
  type: list
  elements: str
  sample: [files, kube-apiserver]
files:
  description: What M(kubeguard.hardening.control_plane_files) would return.
  returned: when O(files)
  type: dict
  sample: {"changed": false, "fixed": [], "created_etcd_user": false}
components:
  description: What M(kubeguard.hardening.control_plane_component) would return for each component, by name.
  returned: success
  type: dict
  sample: {"kube-scheduler": {"changed": false, "layout": "systemd"}}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.kubeguard.hardening.plugins.module_utils._control_plane import node
from ansible_collections.kubeguard.hardening.plugins.module_utils._control_plane.specs import (
    COMPONENT_OPTIONS,
    NODE_OPTIONS,
)
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import ROLE_VARS_SPEC, run_module

ARGUMENT_SPEC = {
    **NODE_OPTIONS,
    "facts": {"type": "dict"},
    "files": {"type": "bool", "default": True},
    "components": {"type": "list", "elements": "dict", "default": [], "options": COMPONENT_OPTIONS},
}


def main():
    module = AnsibleModule(argument_spec={**ROLE_VARS_SPEC, **ARGUMENT_SPEC}, supports_check_mode=True)
    run_module(module, node.check_node, module.params, module.check_mode)


if __name__ == "__main__":
    main()
