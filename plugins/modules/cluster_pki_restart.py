#!/usr/bin/python
# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: cluster_pki_restart
short_description: Restart the components whose PKI files changed, one at a time, and roll back on failure
version_added: 0.1.0
description:
  - Restarts, in dependency order (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubelet) and one
    at a time, the systemd units of O(components) plus those of a pending restart left in O(backup_dir) by
    M(kubeguard.hardening.cluster_pki_install). A component without a systemd unit whose kubeadm static-pod manifest
    is in O(static_pod_dir) (when set) is restarted by the kubelet, by changing the manifest's
    C(kubeguard.io/pki-restarted-at) annotation (an atomic write), then waited for as a new process. Components with
    neither on the node are skipped.
  - A static-pod etcd member is restarted only when the other members keep the quorum without it (control_plane's
    check); otherwise the files are put back and the module fails naming the members down. After its restart it must
    answer /health with the healthcheck client certificate, and a quorum of the members must answer /health, before
    the next component.
  - After each restart it waits until the unit is active and one of the component's O(health_checks) URLs answers
    (200, or 401/403 or a client-certificate demand when the probe is not authenticated); a component without URLs
    must stay active for a few seconds.
  - If a component does not become healthy within O(timeout), every file of the pending restart is put back from
    its backup (files that did not exist are removed), the components restarted so far are restarted again, and the
    module fails naming the component. On success the pending restart and its backups are removed.
author: Kubeguard maintainers (@kubeguard)
extends_documentation_fragment:
  - kubeguard.hardening.role_vars
attributes:
  check_mode:
    support: full
    description: Reports the components it would restart and restarts nothing.
  diff_mode:
    support: none
    description: Nothing to diff.
  idempotent:
    support: none
    description: Restarts every time it is called with components; the role calls it only from a handler.
  safe_file_operations:
    support: full
    description: Restored files are written through a temporary file and renamed into place.
options:
  components:
    description: Components whose files changed (the C(components) result of the install module).
    type: list
    elements: str
    required: true
  services:
    description: systemd unit (without C(.service)) of each component.
    type: dict
    required: true
  health_checks:
    description: Health URLs of each component; the first that answers proves the component healthy.
    type: dict
    default: {}
  backup_dir:
    description: The backup directory given to M(kubeguard.hardening.cluster_pki_install). Empty means no rollback.
    type: path
    default: ""
  timeout:
    description: Seconds each component has to become healthy after its restart.
    type: int
    default: 120
  static_pod_dir:
    description: The kubelet's static-pod directory (kubeadm's C(/etc/kubernetes/manifests)); a component without a
      systemd unit is restarted through its manifest there. Empty (the default) restarts no static pod; the
      cluster_pki role sets it during a CA rotation only (C(cluster_pki_rotate_ca)), where every component must
      load the new bundles. Otherwise kubeadm's apiserver reloads its serving certificate and client CA files
      itself, and the control_plane role restarts a static pod whose manifest it changes.
    type: path
    default: ""
seealso:
  - module: kubeguard.hardening.cluster_pki_install
"""

EXAMPLES = r"""
- name: Restart the components whose files changed, one node at a time
  kubeguard.hardening.cluster_pki_restart:
    components: "{{ installed.components }}"
    services: {kube-apiserver: kube-apiserver, kubelet: kubelet}
    health_checks:
      kube-apiserver: ["https://127.0.0.1:6443/livez"]
      kubelet: ["http://127.0.0.1:10248/healthz"]
    backup_dir: /var/backups/kubeguard/cluster_pki
  throttle: 1
"""

RETURN = r"""
restarted:
  description: Components restarted (in check mode, that would be restarted), in order.
  returned: always
  type: list
  elements: str
  sample: [kube-apiserver, kube-scheduler]
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import ROLE_VARS_SPEC, run_module
from ansible_collections.kubeguard.hardening.plugins.module_utils._pki import _restart


def main():
    module = AnsibleModule(
        argument_spec={
            **ROLE_VARS_SPEC,
            "components": {"type": "list", "elements": "str", "required": True},
            "services": {"type": "dict", "required": True},
            "health_checks": {"type": "dict", "default": {}},
            "backup_dir": {"type": "path", "default": ""},
            "timeout": {"type": "int", "default": 120},
            "static_pod_dir": {"type": "path", "default": ""},
        },
        supports_check_mode=True,
    )
    run_module(module, _restart.run, module.params, check_mode=module.check_mode)


if __name__ == "__main__":
    main()
