#!/usr/bin/python
# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: fast_rerun
short_description: Compare a site.yml run with the last converged one, or record this run as converged
version_added: 0.2.0
description:
  - The controller half of site.yml's fast rerun (docs/fast-rerun.md); runs as an action plugin on the controller.
  - C(check) digests this run's inputs (every host's kubeguard variables - those named after a role of the collection,
    templated - and its groups, the collection's own files and the ansible-core version, and the metadata of
    O(controller_paths)), takes each node's C(kubeguard_fast_rerun_node) result
    (M(kubeguard.hardening.node_fingerprint)) and O(api) (M(kubeguard.hardening.api_fingerprint)), and compares them
    with O(stamp). It returns C(converged) and, when false, every reason. When anything differs the record is
    removed, outside check mode, before the run changes anything, so a run killed half-way leaves none.
  - C(record) writes O(stamp) (0600, atomically) from this run's fingerprints, the inputs of O(check) and
    O(controller_paths) as the run leaves them, unless a node of O(check) has no fingerprint now (it failed or left
    the run). It expires after O(max_age_hours), or at O(renew_by) when earlier.
  - C(forget) removes the record outside check mode. The control plane's load-balancer drain does so before a node
    leaves the rotation, so that the next site.yml checks every role and puts the node back.
  - The record is the tool's own cache, like a fact cache, so no state reports a change.
author: Kubeguard maintainers (@kubeguard)
extends_documentation_fragment:
  - kubeguard.hardening.role_vars
attributes:
  check_mode:
    support: full
    description: C(check) compares and removes nothing; C(record) and C(forget) write nothing.
  diff_mode:
    support: none
    description: The record holds digests only.
  idempotent:
    support: full
    description: Never reports a change.
  safe_file_operations:
    support: full
    description: The record is written to a temporary file in its directory and renamed into place.
options:
  state:
    description: C(check), C(record) or C(forget).
    type: str
    choices: [check, record, forget]
    required: true
  stamp:
    description: The record on the controller.
    type: path
    required: true
  api:
    description: The registered result of M(kubeguard.hardening.api_fingerprint) (a failed one counts as a difference).
    type: dict
  controller_paths:
    description:
      - Controller paths whose every entry (lstat metadata) is an input of the run.
      - C(record) digests them again, as this run leaves them (a run may write the store; the first creates it).
    type: list
    elements: path
  check:
    description: The registered result of this run's C(check). C(record) only.
    type: dict
  max_age_hours:
    description:
      - Hours the record is trusted.
      - C(check) refuses a value that is not positive, before the run changes anything.
    type: int
    default: 24
  renew_by:
    description: Epoch seconds after which the record is not trusted (the first certificate's renewal). C(record) only.
    type: float
"""

EXAMPLES = r"""
- name: Compare with the last converged run
  kubeguard.hardening.fast_rerun:
    state: check
    stamp: "{{ kubeguard_fast_rerun_stamp }}"
    api: "{{ kubeguard_fast_rerun_api }}"
    controller_paths: ["{{ kubeguard_pki_output_dir }}"]
  run_once: true
  register: kubeguard_fast_rerun
"""

RETURN = r"""
converged:
  description: Nothing moved since the recorded converged run. C(check) only.
  returned: state is check
  type: bool
reasons:
  description: Why this run is not a rerun of the recorded one. C(check) only.
  returned: state is check
  type: list
  elements: str
  sample: ["worker1: tree:/etc", "API: api:namespaces"]
inputs:
  description: The digest of each input of this run. C(check) only.
  returned: state is check
  type: dict
nodes:
  description: The nodes of the play. C(check) only.
  returned: state is check
  type: list
  elements: str
forgot:
  description: A record was there and was removed. C(check) (when anything differs) and C(forget) only.
  returned: state is check or forget
  type: bool
recorded:
  description: The record was written (in check mode, would be). C(record) only.
  returned: state is record
  type: bool
valid_until:
  description: Epoch seconds until which the record is trusted. C(record) only.
  returned: when recorded
  type: float
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import ROLE_VARS_SPEC


def main():
    module = AnsibleModule(
        argument_spec={
            **ROLE_VARS_SPEC,
            "state": {"type": "str", "choices": ["check", "record", "forget"], "required": True},
            "stamp": {"type": "path", "required": True},
            "api": {"type": "dict"},
            "controller_paths": {"type": "list", "elements": "path"},
            "check": {"type": "dict"},
            "max_age_hours": {"type": "int", "default": 24},
            "renew_by": {"type": "float"},
        },
        supports_check_mode=True,
    )
    module.fail_json(msg="kubeguard.hardening.fast_rerun runs as an action plugin on the controller")


if __name__ == "__main__":
    main()
