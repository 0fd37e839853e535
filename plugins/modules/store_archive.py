#!/usr/bin/python
# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: store_archive
short_description: Back up the controller store into one ansible-vault encrypted archive, or restore it byte-identical
version_added: 0.2.0
description:
  - The controller store (the cluster PKI tree of C(kubeguard_pki_output_dir), which by default also holds the
    encryption at rest key store and the static token store) lives on the controller. This packs the whole directory
    into one tar encrypted with ansible-vault, or puts it back, byte for byte, with the files' modes and times.
  - The archive is always encrypted, with the store's vault secret (C(kubeguard_store_vault_password_file) or
    C(kubeguard_store_vault_id), docs/controller-store.md); without one the task is refused.
  - Runs on the controller as an action plugin; nothing is sent to any host.
  - A backup of a store whose archive already holds exactly the same tree reports no change.
  - A restore writes only missing or different files. It refuses, before writing anything, to overwrite a file whose
    content differs from the archive's unless O(force) is true.
author: Kubeguard maintainers (@kubeguard)
attributes:
  check_mode:
    support: full
    description: Reports what a real run would write; writes nothing.
  diff_mode:
    support: none
    description: The files are secrets; the result lists their names only.
  idempotent:
    support: full
    description: A second backup or restore of the same tree reports no change.
  safe_file_operations:
    support: full
    description: Every file is written to a temporary file in its directory and renamed into place.
options:
  state:
    description: C(backup) writes O(archive) from O(path); C(restore) writes O(path) from O(archive).
    type: str
    choices: [backup, restore]
    required: true
  path:
    description: The store directory on the controller.
    type: path
    required: true
  archive:
    description: The encrypted archive on the controller (mode 0600).
    type: path
    required: true
  force:
    description: On restore, overwrite store files whose content differs from the archive's.
    type: bool
    default: false
seealso:
  - module: kubeguard.hardening.cluster_pki
"""

EXAMPLES = r"""
- name: Back up the store
  kubeguard.hardening.store_archive:
    state: backup
    path: ~/.kubeguard/pki/prod
    archive: /srv/backup/kubeguard-store-prod.tar.vault

- name: Restore it
  kubeguard.hardening.store_archive:
    state: restore
    path: ~/.kubeguard/pki/prod
    archive: /srv/backup/kubeguard-store-prod.tar.vault
"""

RETURN = r"""
archive:
  description: The archive written or compared (backup).
  returned: state is backup
  type: str
files:
  description: How many files the archive holds.
  returned: always
  type: int
sha256:
  description: SHA-256 of the (unencrypted) tar written, to compare backups without opening them.
  returned: state is backup and changed
  type: str
restored:
  description: Files (and directories, ending in C(/)) written or, in check mode, to be written (restore).
  returned: state is restore
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule


def main():
    module = AnsibleModule(
        argument_spec={
            "state": {"type": "str", "choices": ["backup", "restore"], "required": True},
            "path": {"type": "path", "required": True},
            "archive": {"type": "path", "required": True},
            "force": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )
    module.fail_json(msg="kubeguard.hardening.store_archive runs as an action plugin on the controller")


if __name__ == "__main__":
    main()
