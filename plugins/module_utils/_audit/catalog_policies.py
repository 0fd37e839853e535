# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the CIS v1.12 recommendations of section 5 (policies); rows as described in ``catalog``."""

from __future__ import annotations

RBAC = "rbac_baseline_audit_remediate (role rbac_baseline) or a narrower binding"
PSA = "a Pod Security Admission label (pod-security.kubernetes.io/enforce) or a policy engine on the namespace"

CHECKS = (
    # 5.1 RBAC and service accounts
    ("5.1.1", 1, False, "cluster", "cluster-admin is only used where required", RBAC),
    ("5.1.2", 1, False, "cluster", "Access to secrets is minimized", RBAC),
    ("5.1.3", 1, False, "cluster", "Wildcard use in Roles and ClusterRoles is minimized", RBAC),
    ("5.1.4", 1, False, "cluster", "Access to create pods is minimized", RBAC),
    (
        "5.1.5",
        1,
        False,
        "cluster",
        "Default service accounts are not actively used",
        "rbac_baseline_service_accounts_enabled (role rbac_baseline)",
    ),
    (
        "5.1.6",
        1,
        False,
        "cluster",
        "Service account tokens are only mounted where necessary",
        "rbac_baseline_service_accounts_enabled (role rbac_baseline); automountServiceAccountToken: false on pods",
    ),
    ("5.1.7", 1, False, "cluster", "Use of the system:masters group is avoided", RBAC),
    ("5.1.8", 1, False, "cluster", "Bind, impersonate and escalate permissions are limited", RBAC),
    ("5.1.9", 1, False, "cluster", "Access to create persistent volumes is minimized", RBAC),
    ("5.1.10", 1, False, "cluster", "Access to the proxy sub-resource of nodes is minimized", RBAC),
    ("5.1.11", 1, False, "cluster", "Access to the approval sub-resource of CSRs is minimized", RBAC),
    ("5.1.12", 1, False, "cluster", "Access to webhook configuration objects is minimized", RBAC),
    ("5.1.13", 1, False, "cluster", "Access to service account token creation is minimized", RBAC),
    # 5.2 Pod Security Standards
    ("5.2.1", 1, False, "cluster", "At least one active policy control mechanism is in place", PSA),
    ("5.2.2", 1, False, "cluster", "Admission of privileged containers is minimized", PSA),
    ("5.2.3", 1, False, "cluster", "Admission of containers sharing the host PID namespace is minimized", PSA),
    ("5.2.4", 1, False, "cluster", "Admission of containers sharing the host IPC namespace is minimized", PSA),
    ("5.2.5", 1, False, "cluster", "Admission of containers sharing the host network namespace is minimized", PSA),
    ("5.2.6", 1, False, "cluster", "Admission of containers with allowPrivilegeEscalation is minimized", PSA),
    ("5.2.7", 2, False, "cluster", "Admission of root containers is minimized", PSA),
    ("5.2.8", 1, False, "cluster", "Admission of containers with the NET_RAW capability is minimized", PSA),
    ("5.2.9", 2, False, "cluster", "Admission of containers with capabilities assigned is minimized", PSA),
    ("5.2.10", 1, False, "cluster", "Admission of Windows HostProcess containers is minimized", PSA),
    ("5.2.11", 1, False, "cluster", "Admission of HostPath volumes is minimized", PSA),
    ("5.2.12", 1, False, "cluster", "Admission of containers which use HostPorts is minimized", PSA),
    # 5.3 Network policies and CNI
    (
        "5.3.1",
        1,
        False,
        "cluster",
        "The CNI in use supports NetworkPolicies",
        "a CNI or policy agent that enforces NetworkPolicy (the lab runs kube-router)",
    ),
    (
        "5.3.2",
        2,
        False,
        "cluster",
        "All namespaces have NetworkPolicies defined",
        "network_policy_baseline_enabled (role network_policy)",
    ),
    # 5.4 Secrets management
    (
        "5.4.1",
        2,
        False,
        "cluster",
        "Secrets are used as files rather than environment variables",
        "mount Secrets as volumes instead of env/envFrom",
    ),
    ("5.4.2", 2, False, "cluster", "External secret storage is considered", "an external secret store (a choice)"),
    # 5.5 Extensible admission control
    (
        "5.5.1",
        2,
        False,
        "cluster",
        "Image provenance is configured (ImagePolicyWebhook)",
        "control_plane_admission_plugins with ImagePolicyWebhook and its configuration",
    ),
    # 5.6 General policies
    (
        "5.6.1",
        1,
        False,
        "cluster",
        "Administrative boundaries between resources use namespaces",
        "namespaces per team or application",
    ),
    (
        "5.6.2",
        2,
        False,
        "cluster",
        "The seccomp profile is RuntimeDefault in pod definitions",
        "securityContext.seccompProfile.type: RuntimeDefault, or kubelet_seccomp_default (role kubelet)",
    ),
    (
        "5.6.3",
        2,
        False,
        "cluster",
        "SecurityContext is applied to pods and containers",
        "securityContext on every pod and container",
    ),
    ("5.6.4", 2, False, "cluster", "The default namespace is not used", "move workloads out of the default namespace"),
)
