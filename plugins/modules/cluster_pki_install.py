#!/usr/bin/python
# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: cluster_pki_install
short_description: Install one node's share of the cluster PKI in a single call
version_added: 0.1.0
description:
  - The node side of the C(kubeguard.hardening.cluster_pki) role. Takes the node's entries of the
    C(distribution) returned by M(kubeguard.hardening.cluster_pki) and their contents, and makes the node match;
    missing or different files are written atomically, modes and owners are fixed, and the directories from each
    root down to the files are created (0755; the etcd key directory 0700).
  - One module call per node instead of one round trip per file.
  - Never returns or diffs file contents.
author: Kubeguard maintainers (@kubeguard)
extends_documentation_fragment:
  - kubeguard.hardening.role_vars
  - kubeguard.hardening.pki.node_dirs
attributes:
  check_mode:
    support: full
    description: Computes the same changes and writes nothing.
  diff_mode:
    support: full
    description: Lists the files and directories that change and why; never their contents.
  idempotent:
    support: full
    description: A second call with the same input reports no change.
  safe_file_operations:
    support: full
    description: Files are written through a temporary file in the target directory and renamed into place.
options:
  files:
    description:
      - The node's entries of the C(distribution) result of M(kubeguard.hardening.cluster_pki). Each entry has
        C(root) (C(kubernetes) for O(kubernetes_dir) or C(kubelet) for O(kubelet_pki_dir)), C(dest) (a path relative
        to that root, without C(..)), C(mode) (octal string such as C("0600")) and optionally C(components) (the
        services reading the file). Other keys of a distribution entry are ignored.
      - A node agent's entry (root C(/), C(dest) its absolute path without the leading C(/)) carries C(agent) and
        C(unit); it is installed only when the systemd unit C(unit) exists on the node (kubeadm's kube-proxy is a
        DaemonSet and has none), and its directory is created when absent, never changed.
    type: list
    elements: dict
    required: true
  contents:
    description: The content of each entry of O(files), in the same order.
    type: list
    elements: str
    required: true
  owner:
    description: Owner (name or numeric ID) of every file and directory written.
    type: str
    default: root
  group:
    description: Group (name or numeric ID) of every file and directory written.
    type: str
    default: root
  planned:
    description:
      - Check mode only. Entries (same shape as O(files)) of files the PKI tree does not hold yet because the
        generating run was a check-mode run; they are reported as changes without being read.
    type: list
    elements: dict
    default: []
  replace_ca:
    description:
      - Replace a CA certificate (an entry with C(ca=true)) that differs from the one on the node. By default the
        module fails instead, before writing anything, because every certificate the old CA signed stops being trusted.
    type: bool
    default: false
  backup_dir:
    description:
      - Where the previous content of every replaced file is kept, with a C(pending-restart.json) manifest listing
        them and the components to restart, until M(kubeguard.hardening.cluster_pki_restart) has restarted them
        healthily (or restored the files). While the manifest exists the module reports its components as changed,
        so a play killed before the restart still restarts them on rerun. Empty disables backups.
    type: path
    default: ""
seealso:
  - module: kubeguard.hardening.cluster_pki
"""

EXAMPLES = r"""
- name: Install the node's certificates, keys and kubeconfigs
  kubeguard.hardening.cluster_pki_install:
    files: "{{ node_files }}"
    contents: "{{ query('ansible.builtin.file', *(node_files | map(attribute='src')), rstrip=false) }}"
  vars:
    node_files: "{{ pki.distribution[inventory_hostname] }}"
  no_log: true
"""

RETURN = r"""
changed_files:
  description: Files that were (in check mode, would be) written or had their mode or owner fixed, with the reason.
  returned: always
  type: list
  elements: dict
  sample: [{path: /etc/kubernetes/pki/apiserver.crt, reason: content}]
components:
  description: The services reading any changed file, to restart.
  returned: always
  type: list
  elements: str
  sample: [kube-apiserver]
agents_skipped:
  description: Node agents of O(files) whose systemd unit does not exist on this node; nothing of theirs is installed.
  returned: always
  type: list
  elements: str
  sample: [kube-proxy]
pending_restart:
  description: Whether components wait for a restart (this run's changes or a restart left over by an earlier run).
  returned: always
  type: bool
  sample: true
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import run_module
from ansible_collections.kubeguard.hardening.plugins.module_utils._pki import _install, _specs


def main():
    module = AnsibleModule(
        argument_spec=_specs.INSTALL,
        supports_check_mode=True,
    )
    run_module(module, _install.run, module.params, check_mode=module.check_mode)


if __name__ == "__main__":
    main()
