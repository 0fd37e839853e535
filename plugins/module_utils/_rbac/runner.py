# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the ``rbac_audit`` entry point: read every role and binding once, report, optionally remediate.

With ``remediate_before`` the call first does what an earlier call with
those checks and ``remediate`` would (the role's anonymous-access cleanup), then
audits the bindings as that leaves them: one read of the cluster for both.

Remediation takes the offending subjects of non-allowlisted findings of the
checks in ``remediate_checks`` out of their bindings (dry-run in check mode):
the binding keeps its other subjects, and is deleted only when none remain.
A binding to a risky role offends through every subject, so it goes; an
anonymous subject next to a legitimate group only loses its own entry. It
refuses, changing nothing, when that would take away the caller's own access.
"""

from __future__ import annotations

from .._errors import KubeguardError
from .._k8s.objects import validate_namespaces
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
    "pods": ("v1", "Pod"),
}


def read_state(service, checks=audit.CHECK_NAMES):
    """Every RBAC object and service account of the cluster: one LIST per kind; pods only for their check."""
    kinds = {name: kind for name, kind in KINDS.items() if name != "pods" or "pod_service_account_token" in checks}
    service.discover({api_version for api_version, _unused in kinds.values()})
    return {name: service.list(service.resource(*kind)) for name, kind in kinds.items()}


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
    for option in ("checks", "remediate_checks", "remediate_before"):
        unknown = sorted(set(params.get(option) or ()) - set(audit.CHECK_NAMES))
        if unknown:
            raise KubeguardError(option, f"unknown checks {unknown}; known: {list(audit.CHECK_NAMES)}")
    validate_namespaces(params.get("automount_exempt_namespaces"), "automount_exempt_namespaces", patterns=True)


def _key(ref):
    return ref["kind"], ref["namespace"], ref["name"]


def _subject_key(subject):
    return subject.get("kind"), subject.get("name"), subject.get("namespace") or ""


def _plan_removals(checks, reported, caller):
    """{binding key: {checks, subjects}}: the offending subjects of ``reported`` findings of ``checks`` (all when
    empty). Refuses, before anything is changed, when the caller's own access would go."""
    wanted = set(checks or audit.CHECK_NAMES)
    plans = {}
    for finding in reported:
        if not finding["binding"] or finding["check"] not in wanted:
            continue
        if _grants_caller(finding, caller):
            binding = finding["binding"]
            raise KubeguardError(
                "allowed_bindings",
                f"remediation would remove {binding['kind']} {audit.binding_path({'metadata': binding})} "
                f"(or its subjects), which grants the caller ({caller['username']}, groups {caller['groups']}) its "
                "access; allowlist it or connect as someone else. Nothing was changed.",
            )
        entry = plans.setdefault(_key(finding["binding"]), {"checks": set(), "subjects": set()})
        entry["checks"].add(finding["check"])
        entry["subjects"].update(_subject_key(s) for s in finding["subjects"])
    return plans


def _bindings(state):
    return {_key(audit.ref(b)): b for b in state["cluster_role_bindings"] + state["role_bindings"]}


def _without(state, plans):
    """``state`` as it is once ``plans`` are carried out: their subjects gone, bindings left with none deleted."""
    out = dict(state)
    for kind in ("cluster_role_bindings", "role_bindings"):
        kept = []
        for binding in state[kind]:
            plan = plans.get(_key(audit.ref(binding)))
            if plan is None:
                kept.append(binding)
                continue
            subjects = [s for s in binding.get("subjects") or [] if _subject_key(s) not in plan["subjects"]]
            if subjects:
                kept.append(dict(binding, subjects=subjects))
        out[kind] = kept
    return out


def _remove(check_mode, service, state, plans, written=None):
    """Carry out ``plans`` on the live bindings of ``state`` (dry-run in check mode): the removed entries.
    ``written`` collects the bindings as the server stored them (a later step replaces those, not stale ones; in
    check mode nothing was stored, and a later step starts from the read, as a later call would)."""
    live = {**_bindings(state), **(written if written is not None else {})}
    removed = []
    for key in sorted(plans):
        kind = "cluster_role_bindings" if key[0] == "ClusterRoleBinding" else "role_bindings"
        resource = service.resource(*KINDS[kind])
        binding = live[key]
        subjects = binding.get("subjects") or []
        offending = plans[key]["subjects"]
        keep = [s for s in subjects if _subject_key(s) not in offending]
        if keep:
            stored = service.replace(resource, dict(binding, subjects=keep), check_mode)
            if written is not None and not check_mode and isinstance(stored, dict):
                written[key] = stored
        else:
            service.delete(resource, binding, check_mode)
        removed.append(
            {
                "kind": key[0],
                "namespace": key[1],
                "name": key[2],
                "checks": sorted(plans[key]["checks"]),
                "action": "subjects_removed" if keep else "deleted",
                "subjects_removed": [audit.subject_name(s) for s in subjects if _subject_key(s) in offending],
                "subjects_kept": [audit.subject_name(s) for s in keep],
            }
        )
    return removed


def _findings(params, state, checks):
    return audit.audit(
        state,
        params.get("allowed_bindings") or (),
        params.get("allowed_subjects") or (),
        params.get("allowed_roles") or (),
        checks or audit.CHECK_NAMES,
        params.get("automount_exempt_namespaces") or (),
        params.get("kubeadm_discovery", False),
    )


def _diff(removed):
    return [
        {
            "before_header": f"{r['kind']} {audit.binding_path({'metadata': r})}",
            "after_header": "(absent)"
            if r["action"] == "deleted"
            else f"{r['kind']} {audit.binding_path({'metadata': r})}",
            "before": {"findings": r["checks"], "subjects": r["subjects_removed"] + r["subjects_kept"]},
            "after": {"subjects": r["subjects_kept"]} if r["subjects_kept"] else {},
        }
        for r in removed
    ]


def run(params, check_mode, service=None):
    _validate(params)
    service = service or ApplyService(connect(params))
    checks = params.get("checks") or audit.CHECK_NAMES
    first = params.get("remediate_before") or []
    state = read_state(service, sorted(set(checks) | set(first)))
    caller = service.whoami()
    # remediate_before: what a call with checks=remediate_before and remediate=true, made first, would remove;
    # the audit then sees the bindings as that call leaves them (unchanged in check mode, as a dry-run leaves them)
    before_plans = (
        _plan_removals(first, [f for f in _findings(params, state, first) if not f["allowlisted"]], caller)
        if first
        else {}
    )
    audited = state if check_mode or not before_plans else _without(state, before_plans)
    findings = _findings(params, audited, checks)
    reported = [f for f in findings if not f["allowlisted"]]
    plans = _plan_removals(params.get("remediate_checks"), reported, caller) if params.get("remediate") else {}
    # both refusals come before the first write
    written = {}
    removed_before = _remove(check_mode, service, state, before_plans, written) if before_plans else []
    removed = _remove(check_mode, service, audited, plans, written) if plans else []
    by_cis = {}
    for finding in reported:
        label = finding["cis"] or finding["check"]
        by_cis[label] = by_cis.get(label, 0) + 1
    return {
        "changed": bool(removed or removed_before),
        "findings": reported,
        "summary": {"findings": len(reported), "allowlisted": len(findings) - len(reported), "by_cis": by_cis},
        "removed": removed,
        "removed_before": removed_before,
        "caller": caller,
        "api_requests": {"total": service.client.requests, "discovery": service.client.discovery_requests},
        "diff": _diff(removed_before) + _diff(removed),
    }
