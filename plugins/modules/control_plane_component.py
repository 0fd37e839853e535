#!/usr/bin/python
# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: control_plane_component
short_description: Harden one control-plane component, restart it safely and roll back on failure
version_added: 0.2.0
description:
  - Computes the CIS v1.12 flags of one component (etcd, kube-apiserver, kube-controller-manager or
    kube-scheduler) on top of its current flags, keeping every flag it does not own and removing the
    ones CIS forbids.
  - systemd layout, one drop-in per unit (C(<unit>.service.d/50-kubeguard.conf)) that replaces
    C(ExecStart). kubeadm layout, the static-pod manifest edited structurally (only the container's
    command, the volumes this module adds and a config-hash annotation change) and validated as a Pod
    before it is written.
  - Before anything is written, refuses bad input naming the role variable (unknown cipher suite,
    admission plugin or flag, AlwaysAllow, negative audit limits) and checks every referenced file
    exists, each certificate matches its key and chains to its CA, and the serving SANs cover the
    addresses (the service IP of I(service_cidr) for kube-apiserver).
  - A kube-apiserver candidate (its command line or a file it reads would change; check mode too) is then
    judged by the installed binary itself, a throw-away instance on loopback with an unreachable etcd and the candidate
    files in a private directory (0.2-2 s on the lab); what it refuses (a CEL claim rule, an authorizer's
    matchCondition, an unknown API version) fails the task naming the role variable, nothing written.
  - Then writes (atomically; drop-ins and manifests 0600, the audit policy and admission configuration 0644),
    restarts the component (systemd) or lets the kubelet recreate the pod, and waits for the new process to be
    healthy (etcd C(/health) with the healthcheck client certificate, kube-apiserver C(/readyz) with a client
    certificate, controller-manager and scheduler C(/healthz) on 127.0.0.1). When health does not come back
    within I(health_timeout), the previous files are restored, the component restarted, and the module fails
    naming the check.
  - The previous files are kept in I(state_dir) until health is proven, so a run killed mid-way rolls
    back to the last good configuration, and a rerun restarts a component whose running flags differ
    from its configuration.
  - etcd moving from plain HTTP to TLS first updates its registered peer URL (C(member update)), so
    members of an N-member cluster can be migrated one at a time.
  - A kube-apiserver running without C(--shutdown-watch-termination-grace-period) would hold its open watches
    until killed (systemd 90 s, the kubelet 30 s) while the API is down; once it stopped listening it gets that
    flag's drain plus 2 s, then SIGKILL.
  - Errors name the role variable to fix (C(control_plane_<option>)).
author:
  - Kubeguard maintainers (@kubeguard)
extends_documentation_fragment:
  - kubeguard.hardening.role_vars
  - kubeguard.hardening.control_plane
options:
  component:
    description: The component to harden.
    type: str
    required: true
    choices: [etcd, kube-apiserver, kube-controller-manager, kube-scheduler]
  facts:
    description: The registered result of M(kubeguard.hardening.control_plane_facts) on this node.
    type: dict
    required: true
  extra_flags:
    description: Flags set last, overriding everything; names are checked against the binary.
    type: dict
    default: {}
  contributed_flags:
    description:
      - kube-apiserver flags another role of this collection adds (api_access, encryption_at_rest); a null value removes
        the flag. Names are checked against the binary.
      - While the apiserver runs with C(--authentication-config), C(--anonymous-auth) is left to that file; with
        C(--authorization-config), C(--authorization-mode) is.
    type: dict
    default: {}
  contributed_files:
    description:
      - Files written with those flags in the same transaction, C(path => content), each under O(config_dir), mode
        0600. They may hold tokens or keys, so the option is C(no_log) and the diff shows only their paths.
    type: dict
    default: {}
  defer_to_apiserver:
    description:
      - etcd only. When etcd's change keeps its client side (client URLs, serving certificate and key, client CA,
        client-certificate rule), apply nothing and return RV(deferred), so that the caller hardens kube-apiserver
        first (its C(--etcd-servers) then list every member) and applies etcd after it. kubeadm points a stacked
        node's apiserver at its own member alone, and that member's restart would fail the apiserver's C(/readyz)
        behind the API load balancer.
      - A change that moves the client side (plain HTTP to TLS, a new client CA) is applied at once, before the
        apiserver follows it.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    description: Validates and computes the flags; writes and restarts nothing.
  diff_mode:
    support: full
    description: The diff lists the flags before and after, never file contents or key material.
  idempotent:
    support: full
    description: A second call with the same input changes and restarts nothing.
  safe_file_operations:
    support: full
    description: Files are written through a temporary file in the target directory and renamed into place.
"""

EXAMPLES = r"""
- name: Harden kube-scheduler
  kubeguard.hardening.control_plane_component:
    component: kube-scheduler
    facts: "{{ control_plane_facts_result }}"
    node_name: cp1
    node_ip: 10.123.0.10
  become: true
"""

RETURN = r"""
changed_files:
  description: Files written (check mode, that would be written).
  returned: changed
  type: list
  elements: str
  sample: [/etc/systemd/system/kube-scheduler.service.d/50-kubeguard.conf]
flag_changes:
  description: The flag changes against the running process, one line each.
  returned: changed
  type: list
  elements: str
  sample: ["+ --profiling=false", "~ --bind-address: 0.0.0.0 -> 127.0.0.1"]
restarted:
  description: Whether the component was restarted.
  returned: changed
  type: bool
  sample: true
restart_seconds:
  description: Seconds from writing to proven health.
  returned: when restarted
  type: float
  sample: 7.1
preflight_seconds:
  description:
    - Seconds a throw-away kube-apiserver (the installed binary, loopback, unreachable etcd, a private directory)
      took to accept the candidate command line and files before anything was written; a refusal fails the task
      naming the role variable. Null when the node has no kube-apiserver binary to ask.
  returned: kube-apiserver, when its command line or a file it reads would change (check mode too)
  type: float
  sample: 2.4
old_process_killed_after_drain_seconds:
  description:
    - kube-apiserver only. The old process had no C(--shutdown-watch-termination-grace-period), so once it stopped
      listening it was given that drain plus 2 s and then killed; the seconds it had.
  returned: when such a process was killed
  type: float
  sample: 7.0
user:
  description: The user etcd runs as after this run (C(etcd) or C(root)).
  returned: component is etcd
  type: str
  sample: etcd
data_dir_entries_chowned:
  description: Entries of etcd's data and WAL directories given to the C(etcd) user before its restart.
  returned: component is etcd
  type: int
  sample: 12
deferred:
  description:
    - etcd with O(defer_to_apiserver) only. The change was validated but not applied, for the caller to apply after
      kube-apiserver.
  returned: when deferred
  type: bool
  sample: true
layout:
  description: C(systemd) or C(static-pod).
  returned: changed
  type: str
  sample: systemd
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.kubeguard.hardening.plugins.module_utils._control_plane import node
from ansible_collections.kubeguard.hardening.plugins.module_utils._control_plane.specs import (
    COMPONENT_OPTIONS,
    NODE_OPTIONS,
)
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import ROLE_VARS_SPEC, run_module

ARGUMENT_SPEC = {
    **NODE_OPTIONS,
    **COMPONENT_OPTIONS,
    "facts": {"type": "dict", "required": True},
}


def main():
    module = AnsibleModule(argument_spec={**ROLE_VARS_SPEC, **ARGUMENT_SPEC}, supports_check_mode=True)
    run_module(module, node.apply, module.params, module.check_mode)


if __name__ == "__main__":
    main()
