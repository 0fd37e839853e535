#!/usr/bin/python
# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: encryption_at_rest_state
short_description: The key store and the resumable rotation state machine of encryption at rest
version_added: 0.2.0
description:
  - Runs on the controller, next to the key store. Keys are 32 random bytes from the OS CSPRNG, stored base64 in
    O(key_store) (mode 0600, directory 0700); the state file O(state_file) holds no secret.
  - O(action=plan) compares the key store with what every node's apiserver holds (O(nodes), from
    encryption_at_rest_facts). A missing key store, or a node key that the store lacks or holds differently, stops with
    an error naming both sides; no replacement key is ever generated. O(adopt=true) takes the nodes' keys into the
    store. It then starts a transition when one is due (a new O(generation) or O(provider), a drifted node, a newly
    encrypted resource) and returns the steps still to do, in order C(secondary), C(primary), C(rewrite), C(verify),
    C(remove).
  - With O(kubeconfig), O(action=plan) first checks every resource of O(resources) against what the API server serves,
    in one discovery (as M(kubeguard.hardening.encryption_at_rest_objects) with O(action=validate)), and refuses one it
    does not serve before anything is planned or written. Without it, no API request is made.
  - O(action=begin) returns the EncryptionConfiguration of O(step), only when every earlier step is recorded.
  - O(action=record) records O(step); C(verify) only with O(evidence) from encryption_at_rest_etcd proving that no
    value still needs a retiring key, so C(remove) never comes before that proof.
author: Kubeguard maintainers (@kubeguard)
extends_documentation_fragment:
  - kubeguard.hardening.role_vars
  - kubeguard.hardening.store_vault
attributes:
  check_mode:
    support: full
    description: C(plan) predicts the steps and the providers without writing the key store or the state.
  diff_mode:
    support: full
    description: Providers and key names per node, before and after; never key bytes.
  idempotent:
    support: full
    description: Nothing due, nothing written, changed=false.
  safe_file_operations:
    support: full
    description: Atomic writes, mode 0600; the key store is written before the state that names its keys.
options:
  action:
    description: What to do.
    type: str
    choices: [plan, begin, record]
    default: plan
  key_store:
    description: The key store file on the controller.
    type: path
    required: true
  state_file:
    description: The rotation state file on the controller.
    type: path
    required: true
  provider:
    description: Provider of the primary key.
    type: str
    choices: [aescbc, aesgcm, secretbox]
    default: aescbc
  generation:
    description: Generation of the primary key; raising it rotates.
    type: int
    default: 1
  resources:
    description: Resources to encrypt (plural, with the group for non-core resources).
    type: list
    elements: str
    default: [secrets]
  nodes:
    description: Per control-plane host, the C(encryption) result of encryption_at_rest_facts.
    type: dict
    default: {}
  adopt:
    description: Take keys that the nodes hold and the store lacks (or holds differently) into the store.
    type: bool
    default: false
  step:
    description: The step to begin or record (O(action=begin) or O(action=record)).
    type: str
    choices: [secondary, primary, rewrite, verify, remove]
  evidence:
    description: The result of encryption_at_rest_etcd, to record C(verify).
    type: dict
  kubeconfig:
    description:
      - With O(action=plan), the API server to check O(resources) against, as a kubeconfig path or a kubeconfig dict
        (read as M(kubeguard.hardening.k8s_bulk_apply) reads it; an inline one's secrets are never logged).
      - Omitted, O(resources) are not checked against an API server.
    type: raw
  context:
    description: Context of O(kubeconfig) to use; its current context when omitted.
    type: str
  request_timeout:
    description: Seconds to wait for each API request.
    type: int
    default: 30
"""

EXAMPLES = r"""
- name: Plan the rotation
  kubeguard.hardening.encryption_at_rest_state:
    key_store: ~/.kubeguard/pki/lab/encryption-keys.json
    state_file: ~/.kubeguard/pki/lab/encryption-state.json
    generation: 2
    nodes: "{{ dict(groups.control_plane | zip(groups.control_plane | map('extract', hostvars, 'facts_result')
      | map(attribute='encryption'))) }}"
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
steps:
  description: The steps still due, in order (C(plan)); empty when nothing is due.
  returned: action=plan
  type: list
  elements: str
  sample: [secondary, primary, rewrite, verify, remove]
target:
  description: The key every object ends up encrypted with.
  returned: action=plan
  type: str
  sample: gen2-aescbc
retiring:
  description: The slots (key names or identity) the transition removes.
  returned: action=plan
  type: list
  elements: str
  sample: [gen1-aescbc]
providers:
  description: C(plan) the provider and key names each step configures; C(begin) those of O(step).
  returned: when a transition is due
  type: raw
  sample: {primary: ["aescbc:gen2-aescbc", "aescbc:gen1-aescbc"]}
target_prefix:
  description: The prefix etcd values carry once encrypted with the target.
  returned: when a transition is due
  type: str
  sample: "k8s:enc:aescbc:v1:gen2-aescbc:"
config:
  description: The EncryptionConfiguration text of O(step) (key bytes included; register it in a C(no_log) task).
  returned: action=begin
  type: str
served:
  description: With O(kubeconfig), where each resource lives (apiVersion, plural, kind, namespaced, etcd_prefix).
  returned: action=plan with kubeconfig
  type: dict
  sample: {secrets: {apiVersion: v1, plural: secrets, kind: Secret, namespaced: true, etcd_prefix: /registry/secrets}}
done:
  description: The steps recorded.
  returned: action=record
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.kubeguard.hardening.plugins.module_utils._common import vault
from ansible_collections.kubeguard.hardening.plugins.module_utils._encryption import machine
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import ROLE_VARS_SPEC, run_module
from ansible_collections.kubeguard.hardening.plugins.module_utils._k8s.ansible import CONNECTION_ARGS, prepare


def main():
    module = AnsibleModule(
        argument_spec={
            **ROLE_VARS_SPEC,
            **vault.ARGUMENT_SPEC,
            "action": {"type": "str", "choices": ["plan", "begin", "record"], "default": "plan"},
            "key_store": {"type": "path", "required": True},
            "state_file": {"type": "path", "required": True},
            "provider": {"type": "str", "choices": ["aescbc", "aesgcm", "secretbox"], "default": "aescbc"},
            "generation": {"type": "int", "default": 1},
            "resources": {"type": "list", "elements": "str", "default": ["secrets"]},
            "nodes": {"type": "dict", "default": {}},
            "adopt": {"type": "bool", "default": False},
            "step": {"type": "str", "choices": list(machine.STEPS)},
            "evidence": {"type": "dict"},
            **CONNECTION_ARGS,
        },
        required_if=[("action", "begin", ["step"]), ("action", "record", ["step"])],
        supports_check_mode=True,
    )

    def run(params, check_mode):
        prepare(module)  # inside run_module, so a bad kubeconfig is named like every other error
        return machine.run(params, check_mode)

    with vault.using(module.params.pop(vault.OPTION, None)):
        run_module(module, run, module.params, module.check_mode)


if __name__ == "__main__":
    main()
