#!/usr/bin/python
# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: cluster_ca_rotation
short_description: Rotate a cluster CA in recorded, resumable steps (the controller store's part)
version_added: 0.2.0
description:
  - The state machine of a CA rotation (docs/ca-rotation.md). Each step is recorded in C(rotation/state.json) under
    O(output_dir) before the next may begin; a run killed anywhere resumes at the first unrecorded step.
  - Steps, in order, C(generate) (the new CA in C(rotation/<ca>/)), C(trust) (bundles and kubeconfigs carry old and
    new), C(pods) (O(action=pods) lists the pods started before C(trust) that mount the root CA and, with
    O(restart_pods), restarts their Deployments, DaemonSets and StatefulSets once every namespace's
    C(kube-root-ca.crt) carries the new CA), C(reissue) (the new CA signs; the bundle's first certificate is the
    signing one), C(verify)
    (recorded only when no certificate in the store, the controller's kubeconfig or O(evidence) chains only to the
    old CA), C(remove) (the old CA leaves every bundle).
  - O(action=publish) (C(ca), steps C(trust), C(reissue) and C(remove)) puts the store's C(pki/ca.crt) bundle in
    the kubeconfigs the cluster publishes in ConfigMaps, through O(kubeconfig) (kubeadm's
    C(kube-public/cluster-info), read by C(kubeadm join), and C(kube-system/kube-proxy) when it embeds the CA); a
    kubeconfig that trusts neither CA is left alone, an absent ConfigMap skipped.
  - O(action=plan) writes nothing and returns the due steps and the files each would write; O(action=begin) refuses
    a step whose predecessors are not recorded and writes the store's part of it; O(action=record) records it.
    Installing on the nodes and restarting is the role's part (roles/cluster_pki/tasks/rotate.yml).
  - C(sa), the service-account signing key, goes through the same steps with C(pods) after C(reissue) (C(trust)
    lists both public keys in C(pki/sa.pub), C(reissue) makes C(pki/sa.key) the new key, C(pods) lists the pods
    started before C(reissue) that mount a projected service-account token, and the legacy token Secrets,
    C(remove) leaves the new public key only).
  - C(front-proxy-ca) goes through the steps of C(ca) on C(pki/front-proxy-ca.crt) (the API server's
    C(--requestheader-client-ca-file)); no kubeconfig embeds it and no pod reads it (C(pods) lists nothing); at
    C(reissue) the engine reissues C(pki/front-proxy-client.crt) (C(--proxy-client-cert-file)).
  - C(etcd-ca) goes through the same steps on C(pki/etcd/ca.crt) (etcd's C(--trusted-ca-file) and
    C(--peer-trusted-ca-file), the API server's C(--etcd-cafile)); at C(reissue) the engine reissues etcd's server,
    peer and healthcheck client certificates and the API server's etcd client certificate; etcd is restarted one
    member at a time, health-checked. C(pods) lists nothing.
author: Kubeguard maintainers (@kubeguard)
requirements:
  - cryptography >= 42.0 on the host where the module runs
extends_documentation_fragment:
  - kubeguard.hardening.role_vars
  - kubeguard.hardening.store_vault
attributes:
  check_mode:
    support: full
    description: Check mode reports the step and the files it would write; nothing is written.
  diff_mode:
    support: none
    description: The result lists the files each step writes; certificates and keys are never shown.
  idempotent:
    support: full
    description: A recorded step is skipped; a finished round asked again changes nothing.
options:
  output_dir:
    description: The controller store's PKI tree (the cluster_pki module's O(output_dir)).
    type: path
    required: true
  rotate:
    description: The CAs to rotate.
    type: list
    elements: str
    default: []
  round:
    description: Which rotation this is; a finished round is not run again, a higher one starts anew.
    type: int
    default: 1
  action:
    description: What to do.
    type: str
    choices: [plan, begin, rewrite, pods, publish, record]
    default: plan
  ca:
    description: The CA of O(action=begin) and O(action=record); one of O(rotate).
    type: str
  step:
    description: The step of O(action=begin) and O(action=record).
    type: str
    choices: [generate, trust, pods, reissue, verify, remove]
  contents:
    description:
      - For O(action=rewrite), kubeconfigs read on a node that the store does not manage (kube-proxy's, a network
        plugin's), base64, an empty string for an absent one. Those whose CA data holds the rotated CA are returned
        in RV(rewritten) as the step wants them (at C(reissue), a client certificate of the old CA is reissued by the
        new one, same key and subject).
    type: list
    elements: str
    default: []
  kubeconfig:
    description: For O(action=pods), the kubeconfig to reach the API with (the C(kubernetes) library is needed).
    type: path
  restart_pods:
    description: For O(action=pods), restart the controllers of the pods listed (during the C(pods) step only).
    type: bool
    default: false
  reissue_token_secrets:
    description:
      - For O(action=pods) of C(sa), re-sign the legacy token Secrets (type C(kubernetes.io/service-account-token))
        whose token the new key did not sign. The C(token) key is removed, then the run waits until the
        controller-manager has filled a new one signed by the new key (during the C(pods) step only).
    type: bool
    default: false
  evidence:
    description: For O(step=verify), the files read on the nodes, base64 (they may hold keys; never logged).
    type: list
    elements: str
    default: []
  evidence_sources:
    description: Where each file of O(evidence) was read, C(node:path), in the same order (named in the refusal).
    type: list
    elements: str
    default: []
  controller_kubeconfig:
    description: The controller's kubeconfig; its CA data follows the bundles and its client certificate is reissued.
    type: path
  key_algorithm:
    description: Key algorithm of the new CA (of the new service-account key for C(sa)).
    type: str
    default: RSA-2048
  ca_validity_days:
    description: Validity of the new CA.
    type: int
    default: 3650
  leaf_validity_days:
    description: Validity of the controller kubeconfig's reissued client certificate.
    type: int
    default: 365
  ca_renew_before_days:
    description: A CA that expires within this many days is reported in the module's warnings.
    type: int
    default: 90
"""

EXAMPLES = r"""
- name: Plan the CA rotation
  kubeguard.hardening.cluster_ca_rotation:
    output_dir: /srv/kubeguard/pki
    rotate: [ca]
  check_mode: true
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
plan:
  description: Per CA asked (O(action=plan)), the C(due) steps, the C(recorded) ones and the C(files) each would write.
  returned: when action is plan
  type: dict
expiry:
  description: Per CA of the tree, C(not_after) and C(days_left).
  returned: always
  type: dict
files:
  description: The files the step writes (O(action=begin), O(action=record)).
  returned: when action is begin or record
  type: list
  elements: str
rewritten:
  description: The kubeconfigs of O(contents) the step changes, C(index) in O(contents) and new base64 C(content).
  returned: when action is rewrite
  type: list
  elements: dict
pods:
  description: The pods started before C(trust) that mount the root CA, C(namespace), C(pod), and the C(kind) and
    C(name) of the controller restarted for them (C(kind) empty for a bare pod) (O(action=pods)).
  returned: when action is pods
  type: list
  elements: dict
restarted:
  description: The controllers restarted, C(Kind/namespace/name) (O(action=pods)).
  returned: when action is pods
  type: list
  elements: str
token_secrets:
  description: For C(sa), the Secrets of type C(kubernetes.io/service-account-token), C(namespace/name); their tokens
    are signed by the old key and refused after C(remove) (O(action=pods)).
  returned: when action is pods and ca is sa
  type: list
  elements: str
token_secrets_reissued:
  description: For C(sa), the legacy token Secrets re-signed with the new key (O(reissue_token_secrets)), or, in check
    mode, those that would be.
  returned: when action is pods and ca is sa
  type: list
  elements: str
published:
  description: The ConfigMaps (C(namespace/name)) whose kubeconfig got the bundle (in check mode, would get it).
  returned: when action is publish
  type: list
  elements: str
offenders:
  description: Certificates in use that chain only to the old CA (O(step=verify)).
  returned: when action is record
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.kubeguard.hardening.plugins.module_utils._common import vault
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import ROLE_VARS_SPEC, run_module
from ansible_collections.kubeguard.hardening.plugins.module_utils._pki import _rotate


def main():
    module = AnsibleModule(
        argument_spec={
            **ROLE_VARS_SPEC,
            **vault.ARGUMENT_SPEC,
            "output_dir": {"type": "path", "required": True},
            "rotate": {"type": "list", "elements": "str", "default": []},
            "round": {"type": "int", "default": 1},
            "action": {"type": "str", "choices": list(_rotate.ACTIONS), "default": "plan"},
            "ca": {"type": "str"},
            "step": {"type": "str", "choices": ["generate", "trust", "pods", "reissue", "verify", "remove"]},
            "contents": {"type": "list", "elements": "str", "default": [], "no_log": True},
            "kubeconfig": {"type": "path"},
            "restart_pods": {"type": "bool", "default": False},
            "reissue_token_secrets": {"type": "bool", "default": False},
            "evidence": {"type": "list", "elements": "str", "default": [], "no_log": True},
            "evidence_sources": {"type": "list", "elements": "str", "default": []},
            "controller_kubeconfig": {"type": "path"},
            "key_algorithm": {"type": "str", "default": "RSA-2048"},
            "ca_validity_days": {"type": "int", "default": 3650},
            "leaf_validity_days": {"type": "int", "default": 365},
            "ca_renew_before_days": {"type": "int", "default": 90},
        },
        supports_check_mode=True,
    )
    with vault.using(module.params.pop(vault.OPTION, None)):
        run_module(module, _rotate.run, module.params, check_mode=module.check_mode)


if __name__ == "__main__":
    main()
