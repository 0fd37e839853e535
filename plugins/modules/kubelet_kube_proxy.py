#!/usr/bin/python
# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: kubelet_kube_proxy
short_description: Bind kube-proxy's metrics to loopback (CIS 4.3.1)
version_added: 0.2.0
description:
  - When kube-proxy runs on the node with a C(--config) file, sets C(metricsBindAddress) in it (kube-proxy ignores
    its flags then); when it runs from a systemd unit without one, writes a drop-in whose command line sets
    C(--metrics-bind-address). Either way sets O(metrics_bind_address), restarts kube-proxy and waits until it
    serves C(/metrics) there; restores the previous file if it does not.
  - Also installs the unit drop-in C(80-kubeguard-nftables-guard.conf). Its C(ExecStartPre) deletes, before each start
    of kube-proxy, a kube-proxy nftables table that holds an empty endpoint chain, because kube-proxy's nftables mode
    (Kubernetes 1.33 and later) keeps the endpoint chains it finds at start, so a chain its previous process had just
    emptied would stay empty, and its Service unreachable from the node, until the next full sync. When only the guard
    is missing it is installed with a C(daemon-reload) and no restart.
  - Skips nodes without kube-proxy; warns when kube-proxy runs without a unit (a DaemonSet's ConfigMap is the
    place to set C(metricsBindAddress)).
author:
  - Kubeguard maintainers (@kubeguard)
extends_documentation_fragment:
  - kubeguard.hardening.role_vars
options:
  facts:
    description: The registered result of M(kubeguard.hardening.kubelet_facts) on this node.
    type: dict
    required: true
  metrics_bind_address:
    description: A loopback C(address:port).
    type: str
    default: 127.0.0.1:10249
  state_dir:
    description: Where the unit's previous state is kept until kube-proxy is back.
    type: path
    default: /var/backups/kubeguard/kubelet
  restart_timeout:
    description: Seconds to wait for kube-proxy to serve its metrics after the restart.
    type: int
    default: 60
attributes:
  check_mode:
    support: full
    description: Computes the change and writes and restarts nothing.
  diff_mode:
    support: full
    description: The config file or drop-in before and after.
  idempotent:
    support: full
    description: A second call with the same input changes and restarts nothing.
  safe_file_operations:
    support: full
    description: Files are written through a temporary file in the target directory and renamed into place.
"""

EXAMPLES = r"""
- name: Bind kube-proxy's metrics to loopback
  kubeguard.hardening.kubelet_kube_proxy:
    facts: "{{ kubelet_facts }}"
  become: true
"""

RETURN = r"""
metrics_bind_address:
  description: The address kube-proxy serves its metrics on.
  returned: when kube-proxy runs from a unit
  type: str
  sample: 127.0.0.1:10249
restarted:
  description: Whether kube-proxy was restarted.
  returned: when it was
  type: bool
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import run_module
from ansible_collections.kubeguard.hardening.plugins.module_utils._kubelet import node, specs


def main():
    module = AnsibleModule(argument_spec=specs.KUBE_PROXY, supports_check_mode=True)
    run_module(module, node.apply_kube_proxy, module.params, module.check_mode)


if __name__ == "__main__":
    main()
