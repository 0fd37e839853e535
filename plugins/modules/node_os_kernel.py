#!/usr/bin/python
# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: node_os_kernel
short_description: Kernel settings compatible with Kubernetes, and the unused kernel module blacklist
version_added: 0.2.0
description:
  - Writes each wanted sysctl into C(/proc/sys) when it differs, and persists the applicable ones in
    I(sysctl_file). A name the kernel does not have is refused before anything is written (a C(net.bridge.*)
    name is reported not applicable while C(br_netfilter) is not loaded).
  - On a container node, global settings (C(kernel.*), C(fs.*), C(vm.*), C(net.core.*)) belong to the host's
    kernel - they are reported in C(not_applicable) with the reason and never written, nor persisted.
  - Blacklists the unused modules in I(modprobe_file) (C(install <module> /bin/false) and C(blacklist)), except
    those in I(modules_in_use) and those loaded right now, which are reported in C(modules.kept) with the reason.
author: Kubeguard maintainers (@kubeguard)
extends_documentation_fragment:
  - kubeguard.hardening.role_vars
options:
  sysctls:
    description:
      - Wanted values by sysctl name; a name the kernel does not have is refused.
      - A value a Kubernetes node cannot run with is refused before anything is written, in this option and in
        O(sysctls_optional) - V(net.ipv4.ip_forward) and V(net.bridge.bridge-nf-call-iptables)/V(ip6tables) other than
        1, and the kubelet's protectKernelDefaults settings (V(vm.overcommit_memory), V(kernel.panic), ...) other than
        the kubelet's values.
    type: dict
    required: true
  sysctls_optional:
    description:
      - Wanted values of a curated table; a name the kernel was built without is reported not applicable instead of
        refused. I(sysctls) wins where both name a setting.
    type: dict
    default: {}
  modules_blacklist:
    description: Kernel modules to keep from loading.
    type: list
    elements: str
    default: []
  modules_in_use:
    description: Modules of I(modules_blacklist) the cluster uses.
    type: list
    elements: str
    default: []
  core_dumps_restricted:
    description:
      - Restrict core dumps (CIS Debian 12 1.5.3) - systemd-coredump C(Storage=none) and C(ProcessSizeMax=0), a hard and
        soft core limit of 0 in C(/etc/security/limits.d) and C(ulimit -c 0) in C(/etc/profile.d).
    type: bool
    default: true
  sysctl_file:
    description: The persisted settings.
    type: path
    default: /etc/sysctl.d/60-kubeguard-node-os.conf
  modprobe_file:
    description: The module blacklist.
    type: path
    default: /etc/modprobe.d/60-kubeguard-node-os.conf
  header:
    description: Comment lines at the top of both files.
    type: str
    default: Managed by kubeguard.hardening node_os.
attributes:
  check_mode:
    description: Can run in check mode and report what would change without changing the node.
    support: full
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
- name: Restrict kernel pointers, keep forwarding for pods
  kubeguard.hardening.node_os_kernel:
    sysctls:
      kernel.kptr_restrict: 2
      net.ipv4.ip_forward: 1
    modules_blacklist: [cramfs, dccp]
  become: true
"""

RETURN = r"""
applied:
  description: Settings written into /proc/sys by this run (or that would be, in check mode).
  returned: success
  type: dict
  sample: {net.ipv4.conf.all.send_redirects: "0"}
not_applicable:
  description: Settings left alone, each with C(name), C(value), C(current) and C(reason).
  returned: success
  type: list
  elements: dict
container:
  description: Whether the node is a container sharing its host's kernel.
  returned: success
  type: bool
modules:
  description: C(blacklisted) module names and C(kept) ones with the reason.
  returned: success
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import run_module
from ansible_collections.kubeguard.hardening.plugins.module_utils._node_os import kernel, specs

ARGUMENT_SPEC = specs.KERNEL


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    run_module(module, kernel.run, module.params, module.check_mode)


if __name__ == "__main__":
    main()
