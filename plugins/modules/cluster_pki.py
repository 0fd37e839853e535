#!/usr/bin/python
# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: cluster_pki
short_description: Create and maintain a whole kubeadm-compatible cluster PKI in one call
version_added: 0.1.0
description:
  - Creates, checks and renews every CA, certificate, key and kubeconfig of a Kubernetes cluster in kubeadm's
    layout and with kubeadm's certificate profiles, for all nodes at once, under O(output_dir).
  - Cluster-wide material lives in C(pki/) and the top of O(output_dir); per-node material in C(nodes/<name>/).
  - Kubelet serving certificates are signed by the cluster CA, so C(--kubelet-certificate-authority) can be enabled.
  - A certificate is (re)issued only when it is missing or unreadable, its key does not match, it is not signed by
    the current CA, its subject, SANs, EKU, key usage or key algorithm differ, or it expires within
    O(renew_before_days). Existing keys are reused unless the key itself is the problem.
  - CAs and the service-account key are created when absent and never replaced. A CA certificate without its key
    puts the leaves it signs in external-CA mode, they are only verified and reported.
  - Private keys are generated in a process pool, one process per CPU.
author: Kubeguard maintainers (@kubeguard)
requirements:
  - cryptography >= 42.0 (on the host where the module runs; keep in sync with _pki/_crypto.py MIN_CRYPTOGRAPHY_VERSION)
extends_documentation_fragment:
  - kubeguard.hardening.role_vars
  - kubeguard.hardening.store_vault
  - kubeguard.hardening.pki
attributes:
  check_mode:
    support: full
    description: Check mode predicts exactly the actions of a real run.
  diff_mode:
    support: full
    description: The diff shows certificate metadata (subject, SANs, EKU, not-after, fingerprint), never key material.
  idempotent:
    support: full
    description: A second run with the same options reports no change.
  safe_file_operations:
    support: full
    description: Every file is written to a temporary file in its directory and renamed into place.
options:
  output_dir:
    description: Directory holding the cluster PKI tree on the host where the module runs. Created with mode 0700.
    type: path
    required: true
  cluster_name:
    description: Cluster name used in the kubeconfigs.
    type: str
    default: kubernetes
  control_plane_nodes:
    description: Control-plane nodes. The first IP of each node is its advertise address.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Node name (lowercase DNS-1123).
        type: str
        required: true
      ips:
        description: Node IP addresses, the advertise address first.
        type: list
        elements: str
        required: true
      dns_names:
        description: Extra DNS names of the node (added to its apiserver, etcd and kubelet serving certificates).
        type: list
        elements: str
        default: []
      etcd:
        description: Whether the node is a (stacked) etcd member and gets etcd server and peer certificates.
        type: bool
        default: true
  worker_nodes:
    description: Worker nodes.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Node name (lowercase DNS-1123).
        type: str
        required: true
      ips:
        description: Node IP addresses.
        type: list
        elements: str
        required: true
      dns_names:
        description: Extra DNS names of the node (added to its kubelet serving certificate).
        type: list
        elements: str
        default: []
  etcd_nodes:
    description:
      - External etcd members, hosts that run etcd but no control plane. Each gets the etcd CA certificate, its own
        etcd server and peer certificates and the etcd health-check client, and no kubelet material.
      - Stacked members are control-plane nodes with O(control_plane_nodes[].etcd=true) instead.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Node name (lowercase DNS-1123).
        type: str
        required: true
      ips:
        description: Node IP addresses, the peer and client address first.
        type: list
        elements: str
        required: true
      dns_names:
        description: Extra DNS names of the node (added to its etcd server and peer certificates).
        type: list
        elements: str
        default: []
  service_cidr:
    description: Service network; its first IP goes into the apiserver SANs.
    type: str
    default: 10.96.0.0/12
  dns_domain:
    description: Cluster DNS domain.
    type: str
    default: cluster.local
  control_plane_endpoint:
    description:
      - C(host[:port]) of the API server used by admin.conf, super-admin.conf and the workers' kubelet.conf.
      - Defaults to the first control-plane node's advertise address and O(api_port).
    type: str
  api_port:
    description: Port the API server binds on each control-plane node (used by the node-local kubeconfigs).
    type: int
    default: 6443
  extra_sans:
    description: Extra DNS names or IP addresses for the apiserver certificates.
    type: list
    elements: str
    default: []
  key_algorithm:
    description: Algorithm of every new key.
    type: str
    default: RSA-2048
    choices: [RSA-2048, RSA-3072, RSA-4096, ECDSA-P256, ECDSA-P384]
  ca_validity_days:
    description: Validity of new CAs.
    type: int
    default: 3650
  leaf_validity_days:
    description: Validity of new leaf certificates (capped at the CA's not-after). Must not exceed O(ca_validity_days).
    type: int
    default: 365
  node_agents:
    description:
      - Node agents that talk to the API server with a client certificate (kube-proxy of a hand-built cluster, a
        CNI or policy agent run from a systemd unit). Each node that runs a kubelet gets, per agent, its own
        kubeconfig with embedded data signed by the cluster CA (C(nodes/<name>/node-agents/<agent>.conf) in the tree),
        renewed like the kubelet's. The C(distribution) entries carry C(agent) and C(unit); the node side installs
        them only where that unit exists.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: The agent's name (lowercase DNS-1123 label), also the component the restart knows it by.
        type: str
        required: true
      common_name:
        description: The certificate's CN, the API user (C(system:kube-proxy)).
        type: str
        required: true
      organizations:
        description: The certificate's O values, the API groups.
        type: list
        elements: str
        default: []
      kubeconfig:
        description: Absolute path of the kubeconfig the agent's unit reads on the nodes.
        type: str
        required: true
      unit:
        description: The agent's systemd service, without C(.service).
        type: str
        required: true
      health_checks:
        description: Health URLs of the agent on the node (used by the role's restart).
        type: list
        elements: str
        default: []
  workers:
    description: Processes used for key generation; V(0) means one per CPU.
    type: int
    default: 0
seealso:
  - module: kubeguard.hardening.cluster_pki_info
"""

EXAMPLES = r"""
- name: Create or renew the cluster PKI on the controller
  kubeguard.hardening.cluster_pki:
    output_dir: /srv/pki/prod
    cluster_name: prod
    control_plane_nodes:
      - name: cp1
        ips: [10.0.0.10]
    worker_nodes:
      - name: worker1
        ips: [10.0.0.21]
    control_plane_endpoint: api.prod.example.com:6443
    extra_sans: [127.0.0.1]
  delegate_to: localhost
  run_once: true
  register: cluster_pki_result

- name: Use ECDSA keys and short-lived leaves
  kubeguard.hardening.cluster_pki:
    output_dir: /srv/pki/lab
    control_plane_nodes:
      - name: cp1
        ips: [192.168.1.10]
    key_algorithm: ECDSA-P256
    leaf_validity_days: 90
    renew_before_days: 20
"""

RETURN = r"""
certificates:
  description: Every certificate, kubeconfig and the service-account key, with the action taken and why.
  returned: always
  type: list
  elements: dict
  sample:
    - path: pki/ca.crt
      node: ""
      kind: ca
      action: ok
      not_after: "2036-11-25T04:10:00Z"
      subject: CN=kubernetes
      fingerprint: "SHA256:5f1c..."
    - path: nodes/cp1/pki/apiserver.crt
      node: cp1
      kind: leaf
      action: "reissued: SAN drift"
      not_after: "2027-11-27T04:10:00Z"
      subject: CN=kube-apiserver
      fingerprint: "SHA256:9a3e..."
summary:
  description: Number of entries per action (C(created), C(renewed), C(reissued), C(ok), external-CA states).
  returned: always
  type: dict
  sample: {"ok": 30, "renewed": 2}
changed_files:
  description: Files (relative to O(output_dir)) that were or, in check mode, would be written.
  returned: always
  type: list
  elements: str
  sample: [nodes/cp1/pki/apiserver.crt, nodes/cp1/pki/apiserver.key]
distribution:
  description:
    - Per node name, the files that node needs and where they go. C(root) is C(kubernetes) (/etc/kubernetes) or
      C(kubelet) (/var/lib/kubelet/pki). C(components) are the services that read the file. C(pending) is true when this
      run writes (in check mode, would write) the file. CA certificates carry C(ca=true) (the node side refuses to
      replace a different CA); kubeconfigs carry C(server) and C(server_option), the option that URL comes from (the
      node side checks a changed server before repointing). Node agents' kubeconfigs (O(node_agents)) have C(root) C(/)
      (C(dest) is their absolute path without the leading C(/)) and carry C(agent) and C(unit).
    - Who receives what is declared once, in the layout table of the collection's PKI model.
    - CA keys go to control-plane nodes only (the etcd CA key to etcd members only), etcd keys to etcd members only,
      and each node gets only its own kubelet credentials.
  returned: always
  type: dict
  sample:
    worker1:
      - src: /srv/pki/prod/pki/ca.crt
        root: kubernetes
        dest: pki/ca.crt
        mode: "0644"
        secret: false
        components: [kube-apiserver, kube-controller-manager, kube-scheduler, kubelet]
        pending: false
        ca: true
      - src: /srv/pki/prod/nodes/worker1/kubelet.conf
        root: kubernetes
        dest: kubelet.conf
        mode: "0600"
        secret: true
        components: [kubelet]
        pending: false
        server: "https://api.example.test:6443"
        server_option: control_plane_endpoint
modes_fixed:
  description: Existing files whose mode was (in check mode, would be) reset to 0600 (keys, kubeconfigs) or 0644.
  returned: always
  type: list
  elements: str
  sample: [pki/ca.key]
renew_by:
  description: When (epoch seconds) the first certificate of the tree enters its renewal window
    (O(renew_before_days) before it expires); null for an empty tree. site.yml's fast rerun expires then.
  returned: always
  type: float
  sample: 1861920000.0
external_ca:
  description: CAs present without their key; the leaves they sign are only verified (see their C(action)).
  returned: always
  type: list
  elements: str
  sample: [pki/etcd/ca]
ca_certificate:
  description: PEM of the cluster CA certificate (C(pki/ca.crt)); empty when it does not exist yet (check mode).
  returned: always
  type: str
  sample: "-----BEGIN CERTIFICATE-----\n..."
output_dir:
  description: Absolute path of the PKI tree.
  returned: always
  type: str
  sample: /srv/pki/prod
"""

import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

try:
    from ansible_collections.kubeguard.hardening.plugins.module_utils._pki import _engine
    from ansible_collections.kubeguard.hardening.plugins.module_utils._pki._crypto import MIN_CRYPTOGRAPHY_VERSION
except ImportError:
    CRYPTOGRAPHY_ERROR = traceback.format_exc()
    MIN_CRYPTOGRAPHY_VERSION = "42.0"
else:
    CRYPTOGRAPHY_ERROR = None

from ansible_collections.kubeguard.hardening.plugins.module_utils._common import vault
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import ROLE_VARS_SPEC, run_module
from ansible_collections.kubeguard.hardening.plugins.module_utils._pki._model import ALGORITHMS

NODE_OPTIONS = {
    "name": {"type": "str", "required": True},
    "ips": {"type": "list", "elements": "str", "required": True},
    "dns_names": {"type": "list", "elements": "str", "default": []},
}

AGENT_OPTIONS = {
    "name": {"type": "str", "required": True},
    "common_name": {"type": "str", "required": True},
    "organizations": {"type": "list", "elements": "str", "default": []},
    "kubeconfig": {"type": "str", "required": True},
    "unit": {"type": "str", "required": True},
    "health_checks": {"type": "list", "elements": "str", "default": []},
}


def argument_spec():
    return {
        "output_dir": {"type": "path", "required": True},
        "cluster_name": {"type": "str", "default": "kubernetes"},
        "control_plane_nodes": {
            "type": "list",
            "elements": "dict",
            "required": True,
            "options": dict(NODE_OPTIONS, etcd={"type": "bool", "default": True}),
        },
        "worker_nodes": {"type": "list", "elements": "dict", "default": [], "options": NODE_OPTIONS},
        "etcd_nodes": {"type": "list", "elements": "dict", "default": [], "options": NODE_OPTIONS},
        "service_cidr": {"type": "str", "default": "10.96.0.0/12"},
        "dns_domain": {"type": "str", "default": "cluster.local"},
        "control_plane_endpoint": {"type": "str"},
        "api_port": {"type": "int", "default": 6443},
        "extra_sans": {"type": "list", "elements": "str", "default": []},
        "key_algorithm": {
            "type": "str",
            "default": "RSA-2048",
            "choices": list(ALGORITHMS),
        },
        "ca_validity_days": {"type": "int", "default": 3650},
        "leaf_validity_days": {"type": "int", "default": 365},
        "renew_before_days": {"type": "int", "default": 30},
        "node_agents": {"type": "list", "elements": "dict", "default": [], "options": AGENT_OPTIONS},
        "workers": {"type": "int", "default": 0},
    }


def main():
    module = AnsibleModule(
        argument_spec={**ROLE_VARS_SPEC, **vault.ARGUMENT_SPEC, **argument_spec()}, supports_check_mode=True
    )
    if CRYPTOGRAPHY_ERROR:
        module.fail_json(
            msg=missing_required_lib(f"cryptography >= {MIN_CRYPTOGRAPHY_VERSION}"), exception=CRYPTOGRAPHY_ERROR
        )
    with vault.using(module.params.pop(vault.OPTION, None)):
        run_module(module, _engine.run, module.params, check_mode=module.check_mode)


if __name__ == "__main__":
    main()
