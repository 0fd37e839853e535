#!/usr/bin/python
# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: rbac_audit
short_description: Audit RBAC against CIS Kubernetes Benchmark 5.1.1-5.1.13, and optionally remove risky bindings
version_added: 0.1.0
description:
  - Reads every ClusterRole, Role, ClusterRoleBinding, RoleBinding and ServiceAccount once (one LIST each) and reports
    findings with their CIS ID and the effective subjects (users, groups, service accounts) that hold the permission.
  - "Checks: 5.1.1 cluster-admin bindings, 5.1.2 secret readers, 5.1.3 wildcards, 5.1.4 pod creators, 5.1.5 bindings of
    default service accounts, 5.1.6 token mounting (C(default) service accounts that do not set
    C(automountServiceAccountToken=false), and every running pod whose token is mounted as the kubelet decides it: the
    pod's field, else its service account's, else mounted), 5.1.7 system:masters bindings,
    5.1.8 bind/escalate/impersonate, 5.1.9 persistent-volume creation, 5.1.10 nodes/proxy, 5.1.11 CSR approval,
    5.1.12 admission webhook configuration, 5.1.13 service-account token creation, and grants to anonymous or
    unauthenticated requests beyond upstream's system:public-info-viewer."
  - Read-only by default. With O(remediate=true) it takes the offending subjects of non-allowlisted findings of
    O(remediate_checks) out of their bindings, with a server-side dry-run in check mode. A binding keeps its other
    subjects (an anonymous subject next to a real group loses only its own entry) and is deleted only when none remain;
    a binding to a risky role offends through every subject, so it is deleted. It refuses, changing nothing, when this
    would take away the caller's own access.
author: Kubeguard maintainers (@kubeguard)
extends_documentation_fragment:
  - kubeguard.hardening.role_vars
  - kubeguard.hardening.k8s_api
attributes:
  check_mode:
    support: full
    description: Deletions are server-side dry-runs.
  diff_mode:
    support: full
    description: One entry per binding removed.
  idempotent:
    support: full
    description: A second remediation finds nothing left to remove.
options:
  checks:
    description: Checks to run (all by default). Names as in RV(findings[].check).
    type: list
    elements: str
    default: []
  allowed_bindings:
    description:
      - Bindings whose findings are accepted, as C(name) (ClusterRoleBinding) or C(namespace/name) (RoleBinding); shell
        patterns allowed. Grants to anonymous requests are reported whatever this list says.
    type: list
    elements: str
    default: ["system:*", "*/system:*", "cluster-admin", "kubeadm:*", "*/kubeadm:*"]
  allowed_subjects:
    description:
      - Subjects (C(system:serviceaccount:ns:name) for service accounts) whose bindings are accepted when every
        subject matches.
    type: list
    elements: str
    default: []
  allowed_roles:
    description: Names (patterns) of unbound roles whose wildcards are accepted.
    type: list
    elements: str
    default: ["system:*", "cluster-admin"]
  automount_exempt_namespaces:
    description: Namespaces (names or shell patterns) left out of the 5.1.6 token checks, for example C(kube-system).
    type: list
    elements: str
    default: []
  kubeadm_discovery:
    description:
      - Accept kubeadm's grant for C(kubeadm join) token discovery, RoleBinding and Role
        C(kube-public/kubeadm:bootstrap-signer-clusterinfo) giving system:anonymous C(get) on the cluster-info
        ConfigMap (the cluster CA and API endpoint; no secret), as an allowlisted C(anonymous_access) finding that
        remediation keeps. Only that exact grant; a Role of that name allowing anything more is still a finding.
    type: bool
    default: false
  remediate:
    description: Remove the offending subjects of non-allowlisted findings of O(remediate_checks) from their bindings,
      deleting a binding left without subjects.
    type: bool
    default: false
  remediate_checks:
    description: Checks whose bindings O(remediate) deletes (all by default).
    type: list
    elements: str
    default: []
  remediate_before:
    description:
      - Checks to remediate before the audit, as an earlier call with O(checks) and O(remediate_checks) set to them
        and O(remediate) would (same allowlists), with one read of the cluster for both. The audit then sees the
        bindings as that leaves them (in check mode, as the dry-run leaves them, unchanged). What it removes is
        RV(removed_before).
      - Both steps' refusals come before the first change.
    type: list
    elements: str
    default: []
    version_added: 0.3.0
seealso:
  - module: kubeguard.hardening.k8s_bulk_apply
"""

EXAMPLES = r"""
- name: Report risky RBAC
  kubeguard.hardening.rbac_audit:
    kubeconfig: /etc/kubernetes/admin.conf
  register: rbac_findings
  delegate_to: localhost
  run_once: true

- name: Remove cluster-admin and nodes/proxy grants that are not allowlisted
  kubeguard.hardening.rbac_audit:
    kubeconfig: /etc/kubernetes/admin.conf
    remediate: true
    remediate_checks: [cluster_admin, nodes_proxy, wildcards]
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
findings:
  description: Non-allowlisted findings.
  returned: always
  type: list
  elements: dict
  contains:
    cis:
      description: The CIS Kubernetes Benchmark ID.
      type: str
    check:
      description: The name of the check, as O(checks) takes it.
      type: str
  sample:
    - cis: "5.1.1"
      check: cluster_admin
      title: bound to cluster-admin
      role: {kind: ClusterRole, namespace: "", name: cluster-admin}
      binding: {kind: ClusterRoleBinding, namespace: "", name: oops}
      subjects: [{kind: Group, name: contractors, user: contractors}]
      allowlisted: false
    - cis: "5.1.6"
      check: pod_service_account_token
      title: pod mounts a service account token
      role: null
      binding: null
      subjects: [{kind: ServiceAccount, name: default, namespace: team-a, user: "system:serviceaccount:team-a:default"}]
      pod: {namespace: team-a, name: web-0}
      decided_by: default
      allowlisted: false
summary:
  description: Counts of findings, allowlisted findings and findings per CIS ID.
  returned: always
  type: dict
  sample: {findings: 3, allowlisted: 40, by_cis: {"5.1.1": 1, "5.1.3": 2}}
removed:
  description: Bindings deleted or stripped of subjects (or, in check mode, that would be).
  returned: always
  type: list
  elements: dict
  sample:
    - {kind: ClusterRoleBinding, namespace: "", name: oops, checks: [cluster_admin], action: deleted,
       subjects_removed: [contractors], subjects_kept: []}
    - {kind: ClusterRoleBinding, namespace: "", name: readers, checks: [anonymous_access], action: subjects_removed,
       subjects_removed: ["system:anonymous"], subjects_kept: [ops]}
removed_before:
  description: What O(remediate_before) removed (or, in check mode, would), in the shape of RV(removed).
  returned: always
  type: list
  elements: dict
  version_added: 0.3.0
  sample:
    - {kind: ClusterRoleBinding, namespace: "", name: readers, checks: [anonymous_access], action: subjects_removed,
       subjects_removed: ["system:anonymous"], subjects_kept: [ops]}
caller:
  description: Who the API server says the module connected as.
  returned: always
  type: dict
  sample: {username: kubernetes-admin, groups: ["kubeadm:cluster-admins", "system:authenticated"]}
api_requests:
  description: Requests sent to the API server, and how many were discovery.
  returned: always
  type: dict
  sample: {total: 8, discovery: 2}
"""

from ansible_collections.kubeguard.hardening.plugins.module_utils._k8s import ansible as k8s_ansible
from ansible_collections.kubeguard.hardening.plugins.module_utils._rbac import runner


def main():
    k8s_ansible.main(
        dict(
            checks={"type": "list", "elements": "str", "default": []},
            allowed_bindings={
                "type": "list",
                "elements": "str",
                "default": ["system:*", "*/system:*", "cluster-admin", "kubeadm:*", "*/kubeadm:*"],
            },
            allowed_subjects={"type": "list", "elements": "str", "default": []},
            allowed_roles={"type": "list", "elements": "str", "default": ["system:*", "cluster-admin"]},
            automount_exempt_namespaces={"type": "list", "elements": "str", "default": []},
            kubeadm_discovery={"type": "bool", "default": False},
            remediate={"type": "bool", "default": False},
            remediate_checks={"type": "list", "elements": "str", "default": []},
            remediate_before={"type": "list", "elements": "str", "default": []},
        ),
        runner.run,
    )


if __name__ == "__main__":
    main()
