#!/usr/bin/python
# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: kubelet_config
short_description: Write the hardened KubeletConfiguration, take duplicating flags off, restart and wait for Ready
version_added: 0.2.0
description:
  - Sets every field CIS 4.2.x asks for in the kubelet's C(--config) file (kubelet.config.k8s.io/v1beta1),
    keeping the fields it does not own, and removes the command-line flags that duplicate those fields wherever
    they are written (the unit, a unit's C(Environment=), kubeadm's C(kubeadm-flags.env)), so the file is the
    source of truth.
  - Before anything is written, refuses bad input naming the role variable - an unknown cipher suite, a
    C(readOnlyPort) outside 0-65535, a zero idle timeout, a serving certificate that does not chain to the
    client CA or lacks the node's IP, C(--hostname-override) without the documented exception.
  - Sets the sysctls C(protectKernelDefaults) expects first; on a container node (whose kernel is its host's) it
    changes no sysctl and turns the setting on only when the values already match.
  - Restarts the kubelet only when something changed, waits until the new process is healthy, the Node reports
    Ready after the restart and every pod that ran on it still runs (asked with the kubelet's own credentials),
    and restores the previous files and restarts it again if not.
author:
  - Kubeguard maintainers (@kubeguard)
extends_documentation_fragment:
  - kubeguard.hardening.role_vars
options:
  facts:
    description: The registered result of M(kubeguard.hardening.kubelet_facts) on this node.
    type: dict
    required: true
  current_config:
    description: The current config file, parsed (the role parses C(facts.kubelet.config_text) on the controller).
    type: dict
    default: {}
  node_name:
    description: The Node's name.
    type: str
    required: true
  node_ip:
    description: The node IP the serving certificate must name.
    type: str
    required: true
  client_ca_file:
    description: The cluster CA the kubelet verifies client certificates with (CIS 4.2.3).
    type: path
    required: true
  tls_cert_file:
    description: The serving certificate issued by cluster_pki (CIS 4.2.9).
    type: path
    required: true
  tls_private_key_file:
    description: Its key.
    type: path
    required: true
  read_only_port:
    description: C(readOnlyPort); 0 disables it (CIS 4.2.4).
    type: raw
    default: 0
  streaming_connection_idle_timeout:
    description: A Go duration, not 0 (CIS 4.2.5).
    type: str
    default: 5m
  event_record_qps:
    description: C(eventRecordQPS) (CIS 4.2.8).
    type: raw
    default: 50
  pod_pids_limit:
    description: C(podPidsLimit) (CIS 4.2.13).
    type: raw
    default: 4096
  tls_cipher_suites:
    description: C(tlsCipherSuites) (CIS 4.2.12); each must be one the kubelet knows.
    type: list
    elements: str
    required: true
  tls_min_version:
    description: C(tlsMinVersion).
    type: str
    default: VersionTLS12
  seccomp_default:
    description: C(seccompDefault) (CIS 4.2.14).
    type: bool
    default: true
  protect_kernel_defaults:
    description: Turn C(protectKernelDefaults) on where the node's sysctls allow it.
    type: bool
    default: true
  hostname_override_allowed:
    description: Accept C(--hostname-override) (the documented exception to CIS 4.2.7).
    type: bool
    default: false
  extra_config:
    description: Further top-level fields to set in the file.
    type: dict
    default: {}
  restart_timeout:
    description: Seconds to wait for the Node to be Ready with its pods after the restart.
    type: int
    default: 120
  state_dir:
    description: Where the previous files are kept until the kubelet is Ready again.
    type: path
    default: /var/backups/kubeguard/kubelet
attributes:
  check_mode:
    support: full
    description: Validates and computes the change; writes, sets and restarts nothing.
  diff_mode:
    support: full
    description: The config file before and after, and the flags removed.
  idempotent:
    support: full
    description: A second call with the same input changes and restarts nothing.
  safe_file_operations:
    support: full
    description: Files are written through a temporary file in the target directory and renamed into place.
"""

EXAMPLES = r"""
- name: Harden the kubelet
  kubeguard.hardening.kubelet_config:
    facts: "{{ kubelet_facts }}"
    current_config: "{{ kubelet_facts.kubelet.config_text | from_yaml }}"
    node_name: worker1
    node_ip: 10.123.0.11
    client_ca_file: /etc/kubernetes/pki/ca.crt
    tls_cert_file: /var/lib/kubelet/pki/kubelet.crt
    tls_private_key_file: /var/lib/kubelet/pki/kubelet.key
    tls_cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]
  become: true
"""

RETURN = r"""
config_path:
  description: The kubelet config file.
  returned: when a kubelet runs
  type: str
  sample: /var/lib/kubelet/config.yaml
changed_files:
  description: Files written (or in check mode to be written).
  returned: when a kubelet runs
  type: list
  elements: str
removed_flags:
  description: Flags taken off the command line because they duplicate a config field.
  returned: when a kubelet runs
  type: list
  elements: str
config_changes:
  description: The fields changed, as C(path old -> new).
  returned: when a kubelet runs
  type: list
  elements: str
protect_kernel_defaults:
  description: Whether C(protectKernelDefaults) is on.
  returned: when a kubelet runs
  type: bool
restarted:
  description: Whether the kubelet was restarted.
  returned: when a kubelet runs
  type: bool
seconds_until_ready:
  description: Seconds from the restart until the new kubelet had reported the Node Ready with its pods.
  returned: when restarted
  type: float
ready_false_seen:
  description: Whether the Node's Ready condition was seen other than True while waiting.
  returned: when restarted
  type: bool
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import run_module
from ansible_collections.kubeguard.hardening.plugins.module_utils._kubelet import node, specs


def main():
    module = AnsibleModule(argument_spec=specs.CONFIG, supports_check_mode=True)
    run_module(module, node.apply_config, module.params, module.check_mode)


if __name__ == "__main__":
    main()
