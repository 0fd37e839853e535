#!/usr/bin/python
# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: kubelet_kube_proxy_daemonset
short_description: Bind the metrics of a kube-proxy DaemonSet (kubeadm) to loopback through its ConfigMap (CIS 4.3.1)
version_added: 0.2.0
description:
  - Where kube-proxy runs as a DaemonSet (kubeadm's C(kube-system/kube-proxy)), sets C(metricsBindAddress) in the
    C(config.conf) key of its ConfigMap (that line only), rolls the DaemonSet through its own rolling update (one
    node at a time by default) and waits until every pod runs the new template and is available.
  - If the roll-out does not finish within O(restart_timeout), the previous ConfigMap is put back, the DaemonSet is
    rolled again and the module fails naming O(restart_timeout).
  - An empty or missing C(metricsBindAddress) counts as kube-proxy's default, C(127.0.0.1:10249).
  - Without the DaemonSet (kube-proxy as a host service, or no kube-proxy) nothing is done; a DaemonSet without the
    ConfigMap is reported with a warning.
author:
  - Kubeguard maintainers (@kubeguard)
extends_documentation_fragment:
  - kubeguard.hardening.role_vars
  - kubeguard.hardening.k8s_api
options:
  metrics_bind_address:
    description: A loopback C(address:port).
    type: str
    default: 127.0.0.1:10249
  namespace:
    description: The namespace of the DaemonSet and of its ConfigMap.
    type: str
    default: kube-system
  name:
    description: The name of the DaemonSet and of its ConfigMap.
    type: str
    default: kube-proxy
  restart_timeout:
    description: Seconds to wait for the DaemonSet's roll-out.
    type: int
    default: 300
attributes:
  check_mode:
    support: full
    description: Computes the change and writes and rolls nothing.
  diff_mode:
    support: full
    description: The effective C(metricsBindAddress) before and after.
  idempotent:
    support: full
    description: A second call with the same input changes and rolls nothing.
"""

EXAMPLES = r"""
- name: Bind kubeadm's kube-proxy metrics to loopback
  kubeguard.hardening.kubelet_kube_proxy_daemonset:
    kubeconfig: /etc/kubernetes/admin.conf
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
metrics_bind_address:
  description: The address kube-proxy serves its metrics on.
  returned: when the ConfigMap is found
  type: str
  sample: 127.0.0.1:10249
restarted:
  description: Whether the DaemonSet was rolled.
  returned: when it was
  type: bool
"""

from ansible_collections.kubeguard.hardening.plugins.module_utils._k8s import ansible as k8s_ansible
from ansible_collections.kubeguard.hardening.plugins.module_utils._kubelet import proxy_daemonset


def main():
    k8s_ansible.main(
        dict(
            metrics_bind_address={"type": "str", "default": "127.0.0.1:10249"},
            namespace={"type": "str", "default": "kube-system"},
            name={"type": "str", "default": "kube-proxy"},
            restart_timeout={"type": "int", "default": 300},
        ),
        proxy_daemonset.run,
    )


if __name__ == "__main__":
    main()
