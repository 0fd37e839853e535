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
author: kubeguard maintainers
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
    type: list
    elements: dict
    required: true
  contents:
    description: The content of each entry of O(files), in the same order.
    type: list
    elements: str
    required: true
  kubernetes_dir:
    description: Directory of the C(kubernetes) root.
    type: path
    default: /etc/kubernetes
  kubelet_pki_dir:
    description: Directory of the C(kubelet) root.
    type: path
    default: /var/lib/kubelet/pki
  owner:
    description: Owner (name or numeric ID) of every file and directory written.
    type: str
    default: root
  group:
    description: Group (name or numeric ID) of every file and directory written.
    type: str
    default: root
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
"""

import grp
import pwd

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.kubeguard.hardening.plugins.module_utils._pki import _install
from ansible_collections.kubeguard.hardening.plugins.module_utils._pki._model import PkiError


def main():
    module = AnsibleModule(
        argument_spec={
            "files": {"type": "list", "elements": "dict", "required": True},
            "contents": {"type": "list", "elements": "str", "required": True, "no_log": True},
            "kubernetes_dir": {"type": "path", "default": "/etc/kubernetes"},
            "kubelet_pki_dir": {"type": "path", "default": "/var/lib/kubelet/pki"},
            "owner": {"type": "str", "default": "root"},
            "group": {"type": "str", "default": "root"},
        },
        supports_check_mode=True,
    )
    p = module.params
    roots = {"kubernetes": p["kubernetes_dir"], "kubelet": p["kubelet_pki_dir"]}
    try:
        # Names or numeric IDs, as ansible.builtin.file accepts them.
        uid = int(p["owner"]) if p["owner"].isdigit() else pwd.getpwnam(p["owner"]).pw_uid
        gid = int(p["group"]) if p["group"].isdigit() else grp.getgrnam(p["group"]).gr_gid
    except KeyError as exc:
        module.fail_json(msg=f"owner/group: unknown user or group {exc}", option="owner")
    try:
        directories, files = _install.plan(roots, p["files"], p["contents"], uid, gid)
        if not module.check_mode:
            _install.apply(directories, files, uid, gid)
    except PkiError as exc:
        module.fail_json(msg=str(exc), option=exc.option)
    except OSError as exc:
        module.fail_json(
            msg=f"kubernetes_dir/kubelet_pki_dir: cannot install {exc.filename}: {exc.strerror}",
            option="kubernetes_dir",
        )
    changed_files = [{"path": f["path"], "reason": f["reason"]} for f in files]
    result = {
        "changed": bool(directories or files),
        "changed_files": changed_files,
        "components": sorted({c for f in files for c in f["components"]}),
    }
    if module._diff:
        result["diff"] = {
            "before": "".join(f"{d}/\n" for d, _ in directories) + "".join(f"{f['path']}\n" for f in files),
            "after": "".join(f"{d}/ ({m:04o})\n" for d, m in directories)
            + "".join(f"{f['path']} ({f['mode']:04o}, {f['reason']})\n" for f in files),
        }
    module.exit_json(**result)


if __name__ == "__main__":
    main()
