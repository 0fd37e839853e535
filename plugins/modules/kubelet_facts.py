#!/usr/bin/python
# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: kubelet_facts
short_description: Gather everything the kubelet hardening needs from a node in one call
version_added: 0.2.0
description:
  - Finds the kubelet and kube-proxy on the node - the running process (C(/proc/<pid>/cmdline)), the systemd unit
    and its drop-ins, the C(Environment=) and C(EnvironmentFile=) values the command line expands (kubeadm's
    C(/var/lib/kubelet/kubeadm-flags.env), C(/etc/default/kubelet)), and where each configured flag is written.
  - Returns the kubelet's C(--config) file path (from the running process, else the unit) and its text, the
    C(--kubeconfig) path, the binary's version, the TLS cipher suites its C(--help) lists and whether it reloads
    its serving certificate from disk (C(ReloadKubeletServerCertificateFile)).
  - Returns the sysctls C(protectKernelDefaults) checks and whether the node is a container (whose global
    sysctls are its host's).
  - Read-only; needs root (use become).
author:
  - Kubeguard maintainers (@kubeguard)
extends_documentation_fragment:
  - kubeguard.hardening.role_vars
  - kubeguard.hardening.attributes.read_only
options: {}
"""

EXAMPLES = r"""
- name: Gather the kubelet facts
  kubeguard.hardening.kubelet_facts:
  become: true
  register: kubelet_facts
"""

RETURN = r"""
kubelet:
  description: The kubelet, or null when none is found.
  returned: success
  type: dict
  sample:
    running: true
    pid: 812
    flags: {"config": /var/lib/kubelet/config.yaml, "kubeconfig": /etc/kubernetes/kubelet.conf}
    running_flags: {"config": /var/lib/kubelet/config.yaml, "kubeconfig": /etc/kubernetes/kubelet.conf}
    flag_sources:
      config: unit
      container-runtime-endpoint: /var/lib/kubelet/kubeadm-flags.env:KUBELET_KUBEADM_ARGS
    config_path: /var/lib/kubelet/config.yaml
    config_text: "apiVersion: kubelet.config.k8s.io/v1beta1\n..."
    kubeconfig: /etc/kubernetes/kubelet.conf
    binary: {"path": /usr/local/bin/kubelet, "version": Kubernetes v1.34.4, "reloads_serving_cert": true}
kube_proxy:
  description: kube-proxy's process, unit and flags, or null when it does not run here.
  returned: success
  type: dict
sysctls:
  description: The live sysctls protectKernelDefaults checks, and whether the node is a container.
  returned: success
  type: dict
  sample: {"values": {"vm.overcommit_memory": "1"}, "in_container": false}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import ROLE_VARS_SPEC, run_module
from ansible_collections.kubeguard.hardening.plugins.module_utils._kubelet import node


def main():
    module = AnsibleModule(
        argument_spec={
            **ROLE_VARS_SPEC,
        },
        supports_check_mode=True,
    )
    # Outside check mode the gather keeps the binaries' answers for the next call (module_utils/_node/binaries.py).
    run_module(module, node.gather, module.params, keep_answers=not module.check_mode)


if __name__ == "__main__":
    main()
