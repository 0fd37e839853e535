#!/usr/bin/python
# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: node_os_firewall
short_description: A node firewall in its own nftables table, built from the node's Kubernetes role
version_added: 0.2.0
description:
  - Renders one nftables table (C(inet kubeguard_node_os)) with an input and a forward chain, both
    policy drop with a counted final drop, from the node's roles (control plane, etcd, worker).
  - Control plane - the API port from I(api_sources) (plus every node and the pod CIDRs); 10257 and 10259
    only from localhost. etcd - 2379 from the etcd members, the control-plane nodes and I(etcd_client_sources),
    2380 from the etcd members. Every node - 10250 from the control-plane nodes and I(kubelet_sources), SSH from
    I(admin_networks), the CNI's ports from the nodes, I(extra_ports), NodePorts when I(nodeports_enabled).
    Forwarding only to and from the pod and Service CIDRs.
  - Refuses, with nothing applied, admin networks that do not contain the address the controller connects
    from (read from the SSH connection's environment), CIDRs that do not parse and ports out of range.
  - On a change, validates the file with C(nft -c), arms a systemd timer that restores the previous table
    and file after I(rollback_timeout) seconds, writes the file atomically and loads it with one C(nft -f)
    transaction that names only this table. The caller proves access and disarms the timer.
  - Errors name the C(node_os) role variable to fix.
author: Kubeguard maintainers (@kubeguard)
extends_documentation_fragment:
  - kubeguard.hardening.role_vars
options:
  roles:
    description: The node's Kubernetes roles.
    type: list
    elements: str
    choices: [control_plane, etcd, worker]
    required: true
  control_plane_ips:
    description: The control-plane nodes' addresses.
    type: list
    elements: str
    default: []
  etcd_ips:
    description: The etcd members' addresses.
    type: list
    elements: str
    default: []
  node_ips:
    description: Every node's address.
    type: list
    elements: str
    default: []
  admin_networks:
    description: Networks SSH is allowed from. Empty means only the address the controller connects from.
    type: list
    elements: str
    default: []
  ssh_ports:
    description: The SSH ports (a port or a C(first-last) range each).
    type: list
    elements: str
    default: ["22"]
  lockout_check:
    description: Refuse admin networks and SSH ports that would cut the controller's own SSH connection.
    type: bool
    default: true
  api_sources:
    description: Networks allowed to reach the API port on control-plane nodes; a C(/0) means anywhere.
    type: list
    elements: str
    default: ["0.0.0.0/0", "::/0"]
  api_port:
    description: The kube-apiserver port.
    type: str
    default: "6443"
  etcd_client_sources:
    description: Extra networks allowed to etcd's client port.
    type: list
    elements: str
    default: []
  kubelet_sources:
    description: Extra networks allowed to the kubelet's port 10250.
    type: list
    elements: str
    default: []
  reject_sources:
    description: Networks whose packets to a closed port are refused (TCP reset, ICMP port unreachable) instead of
      dropped in silence - the operator's own hosts.
    type: list
    elements: str
    default: []
  pod_cidrs:
    description: The cluster's pod CIDRs.
    type: list
    elements: str
    required: true
  service_cidrs:
    description: The cluster's Service CIDRs.
    type: list
    elements: str
    required: true
  cni:
    description: The CNI in use, which decides the node-to-node data-plane ports.
    type: str
    default: bridge
    choices: [bridge, flannel, calico, cilium, kube-router]
  nodeports_enabled:
    description: Open the NodePort range (TCP and UDP) from I(nodeport_sources).
    type: bool
    default: false
  nodeport_range:
    description: The NodePort range.
    type: str
    default: 30000-32767
  nodeport_sources:
    description: Networks allowed to NodePorts.
    type: list
    elements: str
    default: ["0.0.0.0/0", "::/0"]
  extra_ports:
    description: Extra open ports, each a dict with C(port), optional C(proto) (tcp, udp), C(sources), C(name).
    type: list
    elements: dict
    default: []
  path:
    description: The ruleset file, loaded at boot by C(kubeguard-node-firewall.service).
    type: path
    default: /etc/kubeguard/node-firewall.nft
  header:
    description: Comment lines at the top of the file.
    type: str
    default: Managed by kubeguard.hardening node_os.
  rollback_timeout:
    description: Seconds until the armed timer restores the previous firewall; 0 arms none.
    type: int
    default: 120
  state_dir:
    description: Where the previous table, file and the rollback script are kept.
    type: path
    default: /var/lib/kubeguard/node_os
  boot_unit:
    description:
      - The content the unit that loads I(path) at boot should have. When set, the result's C(boot_unit_pending)
        says whether I(boot_unit_path) differs from it or the unit is not enabled; the unit itself is never
        written by this module (the role installs it only when pending, so a rerun makes no round trip for it).
    type: str
  boot_unit_path:
    description: The boot unit's file; its name is the unit C(systemctl is-enabled) is asked about.
    type: path
    default: /etc/systemd/system/kubeguard-node-firewall.service
attributes:
  check_mode:
    description: Can run in check mode and report what would change without changing the node.
    support: full
    details: The candidate is still validated with C(nft -c).
  diff_mode:
    description: Returns details on what changed (or would change) in diff mode.
    support: full
  idempotent:
    description: A second run with the same options changes nothing.
    support: full
  safe_file_operations:
    description: Writes files atomically with their final mode.
    support: full
"""

EXAMPLES = r"""
- name: Firewall a worker
  kubeguard.hardening.node_os_firewall:
    roles: [worker]
    control_plane_ips: [10.0.0.10]
    node_ips: [10.0.0.10, 10.0.0.11]
    admin_networks: [192.0.2.0/24]
    pod_cidrs: [10.244.0.0/16]
    service_cidrs: [10.96.0.0/12]
  become: true
"""

RETURN = r"""
ports:
  description: What is open to whom.
  returned: success
  type: list
  elements: dict
  sample: [{name: SSH from the admin networks, proto: tcp, ports: ["22"], sources: [192.0.2.0/24]}]
connection:
  description: The controller's address and the node's port of the SSH connection, as the node sees them.
  returned: success
  type: dict
  sample: {addr: 10.140.0.1, lport: "22", uid: 1000}
drifted:
  description: The file was current but the live table was not (missing or edited).
  returned: success
  type: bool
rollback:
  description: The armed rollback timer (C(armed), C(unit), C(script), C(timeout)).
  returned: success
  type: dict
boot_unit_pending:
  description: I(boot_unit_path) differs from I(boot_unit), or the unit is not enabled.
  returned: when I(boot_unit) is set
  type: bool
  sample: false
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import run_module
from ansible_collections.kubeguard.hardening.plugins.module_utils._node_os import nft, specs

ARGUMENT_SPEC = specs.FIREWALL


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    run_module(module, nft.apply, module.params, module.check_mode, module)


if __name__ == "__main__":
    main()
