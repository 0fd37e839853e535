#!/usr/bin/python
# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: network_policy_flows
short_description: Read a node's live flows from its conntrack table
version_added: 0.2.0
description:
  - Runs C(conntrack -L) for IPv4 and IPv6 (Debian package C(conntrack)), or reads C(/proc/net/nf_conntrack) when the
    tool is missing, in one call, and returns the flows the destination answered, aggregated over source ports.
  - The destination is the reply's source, so a connection to a ClusterIP Service (DNAT by kube-proxy) shows the pod
    that answered and its port; the Service address is kept in C(via).
  - Entries without a reply (C([UNREPLIED])) and TCP entries that never got past the handshake or were reset are left
    out; TIME_WAIT entries count (a client opening a short connection every second is mostly seen there).
  - Needs root (CAP_NET_ADMIN). Read-only. M(kubeguard.hardening.network_policy_live_flows) judges the flows.
author: Kubeguard maintainers (@kubeguard)
extends_documentation_fragment:
  - kubeguard.hardening.role_vars
  - kubeguard.hardening.attributes.read_only
options: {}
"""

EXAMPLES = r"""
- name: Read every node's live flows
  kubeguard.hardening.network_policy_flows:
  become: true
  delegate_to: "{{ item }}"
  loop: "{{ groups['k8s_cluster'] }}"
  run_once: true
  register: netpol_flows
"""

RETURN = r"""
source:
  description: Where the entries came from.
  returned: always
  type: str
  sample: conntrack -L
entries:
  description: Conntrack entries read.
  returned: always
  type: int
  sample: 212
flows:
  description: Live flows, one per protocol, source, destination and destination port.
  returned: always
  type: list
  elements: dict
  sample:
    - {protocol: TCP, source: 10.244.1.5, destination: 10.244.2.7, port: 8080, via: ["10.96.12.40:80"], entries: 97}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import ROLE_VARS_SPEC, run_module
from ansible_collections.kubeguard.hardening.plugins.module_utils._netpol import flows


def main():
    module = AnsibleModule(argument_spec=dict(ROLE_VARS_SPEC), supports_check_mode=True)
    run_module(module, flows.run, module.params, check_mode=module.check_mode)


if __name__ == "__main__":
    main()
