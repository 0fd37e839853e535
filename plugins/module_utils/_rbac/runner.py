# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the ``rbac_audit`` entry point: read every role and binding once, report, optionally remediate.

Remediation deletes the bindings behind non-allowlisted findings of the checks
in ``remediate_checks`` (dry-run in check mode), after refusing any deletion
that would take away the caller's own access.
"""

from __future__ import annotations

from .._errors import KubeguardError
from .._k8s.runner import connect
from .._k8s.service import ApplyService
from . import audit

RBAC_V1 = "rbac.authorization.k8s.io/v1"
KINDS = {
    "cluster_roles": (RBAC_V1, "ClusterRole"),
    "roles": (RBAC_V1, "Role"),
    "cluster_role_bindings": (RBAC_V1, "ClusterRoleBinding"),
    "role_bindings": (RBAC_V1, "RoleBinding"),
    "service_accounts": ("v1", "ServiceAccount"),
}


def read_state(service):
    """Every RBAC object and service account of the cluster: one LIST per kind."""
    service.discover({api_version for api_version, _ in KINDS.values()})
    return {name: service.list(service.resource(*kind)) for name, kind in KINDS.items()}


def _grants_caller(finding, caller):
    """Would removing this finding's binding take access away from the caller? system:masters never loses any."""
    if "system:masters" in caller["groups"]:
        return False
    for subject in finding["subjects"]:
        if subject.get("kind") == "Group" and subject["name"] in caller["groups"]:
            return True
        if subject["user"] == caller["username"]:
            return True
    return False


def _validate(params):
    for option in ("checks", "remediate_checks"):
        unknown = sorted(set(params.get(option) or ()) - set(audit.CHECK_NAMES))
        if unknown:
            raise KubeguardError(option, f"unknown checks {unknown}; known: {list(audit.CHECK_NAMES)}")


def _key(ref):
    return ref["kind"], ref["namespace"], ref["name"]


def _remediate(params, check_mode, service, state, reported, caller):
    """Delete the bindings behind ``reported`` findings of the remediated checks; refuse to lock the caller out."""
    wanted = set(params.get("remediate_checks") or audit.CHECK_NAMES)
    checks = {}
    for finding in reported:
        if not finding["binding"] or finding["check"] not in wanted:
            continue
        if _grants_caller(finding, caller):
            binding = finding["binding"]
            raise KubeguardError(
                "allowed_bindings",
                f"remediation would delete {binding['kind']} {audit.binding_path({'metadata': binding})}, "
                f"which grants the caller ({caller['username']}, groups {caller['groups']}) its access; "
                "allowlist it or connect as someone else. Nothing was deleted.",
            )
        checks.setdefault(_key(finding["binding"]), set()).add(finding["check"])
    live = {_key(audit.ref(b)): b for b in state["cluster_role_bindings"] + state["role_bindings"]}
    removed = []
    for key in sorted(checks):
        kind = "cluster_role_bindings" if key[0] == "ClusterRoleBinding" else "role_bindings"
        service.delete(service.resource(*KINDS[kind]), live[key], check_mode)
        removed.append({"kind": key[0], "namespace": key[1], "name": key[2], "checks": sorted(checks[key])})
    return removed


def run(params, check_mode, service=None):
    _validate(params)
    service = service or ApplyService(connect(params))
    state = read_state(service)
    caller = service.whoami()
    findings = audit.audit(
        state,
        params.get("allowed_bindings") or (),
        params.get("allowed_subjects") or (),
        params.get("allowed_roles") or (),
        params.get("checks") or audit.CHECK_NAMES,
    )
    reported = [f for f in findings if not f["allowlisted"]]
    removed = _remediate(params, check_mode, service, state, reported, caller) if params.get("remediate") else []
    by_cis = {}
    for finding in reported:
        label = finding["cis"] or finding["check"]
        by_cis[label] = by_cis.get(label, 0) + 1
    return {
        "changed": bool(removed),
        "findings": reported,
        "summary": {"findings": len(reported), "allowlisted": len(findings) - len(reported), "by_cis": by_cis},
        "removed": removed,
        "caller": caller,
        "api_requests": {"total": service.client.requests, "discovery": service.client.discovery_requests},
        "diff": [
            {
                "before_header": f"{r['kind']} {audit.binding_path({'metadata': r})}",
                "after_header": "(absent)",
                "before": {"findings": r["checks"]},
                "after": {},
            }
            for r in removed
        ],
    }
