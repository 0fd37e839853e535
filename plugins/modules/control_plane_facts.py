#!/usr/bin/python
# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: control_plane_facts
short_description: Gather everything the control-plane hardening needs from a node in one call
version_added: 0.2.0
description:
  - Finds etcd, kube-apiserver, kube-controller-manager and kube-scheduler on the node and how each
    runs, detecting the layout (a systemd unit, or a kubeadm static-pod manifest under
    I(kubernetes_dir)/manifests) instead of asking for it.
  - Returns each component's configured flags (the unit's effective C(ExecStart) or the manifest's
    command), the flags of the running process (C(/proc/<pid>/cmdline)), the binary's version and the
    flags, admission plugins and TLS cipher suites its C(--help) advertises.
  - Returns the mode and owner of every file the CIS 1.1.x checks look at, with the mode and owner
    each must have.
  - Read-only; needs root (use become).
author:
  - Kubeguard maintainers (@kubeguard)
extends_documentation_fragment:
  - kubeguard.hardening.role_vars
  - kubeguard.hardening.attributes.read_only
options:
  kubernetes_dir:
    description: Kubernetes configuration directory (kubeconfigs, C(pki/), C(manifests/)).
    type: path
    default: /etc/kubernetes
"""

EXAMPLES = r"""
- name: Gather the control-plane facts
  kubeguard.hardening.control_plane_facts:
  become: true
  register: control_plane_facts_result
"""

RETURN = r"""
layout:
  description: How the components run on this node (C(systemd), C(static-pod), C(mixed) or C(none)).
  returned: success
  type: str
  sample: systemd
components:
  description:
    Per component found, its layout, configuration source, configured and running flags, the user it runs as, and
    its binary.
  returned: success
  type: dict
  sample:
    etcd:
      layout: systemd
      source: /etc/systemd/system/etcd.service.d/50-kubeguard.conf
      unit_file: /etc/systemd/system/etcd.service
      argv: [/usr/local/bin/etcd, --data-dir=/var/lib/etcd]
      flags: {"data-dir": /var/lib/etcd}
      running: true
      pid: 412
      user: etcd
      running_flags: {"data-dir": /var/lib/etcd}
      binary: {"path": /usr/local/bin/etcd, "version": "etcd Version: 3.6.5", "help_flags": [data-dir]}
files:
  description: The files CIS 1.1.x looks at, with their mode and owner and the ones they must have.
  returned: success
  type: list
  elements: dict
  sample: [{"path": /etc/kubernetes/admin.conf, "mode": "0600", "owner": root, "group": root,
            "want_mode": "0600", "want_owner": root, "cis": "CIS 1.1.13", "compliant": true}]
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.kubeguard.hardening.plugins.module_utils._control_plane import node
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import ROLE_VARS_SPEC, run_module


def main():
    module = AnsibleModule(
        argument_spec={**ROLE_VARS_SPEC, "kubernetes_dir": {"type": "path", "default": "/etc/kubernetes"}},
        supports_check_mode=True,
    )
    # Outside check mode the gather keeps the binaries' answers for the next call (module_utils/_node/binaries.py).
    run_module(module, node.gather, module.params, keep_answers=not module.check_mode)


if __name__ == "__main__":
    main()
