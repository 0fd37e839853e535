# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the section 5 evaluators over one bulk read of the API (pure functions).

RBAC (5.1) reuses ``_rbac.audit`` and NetworkPolicy coverage (5.3.2) reuses
``_netpol.audit``. Pod checks (5.2, 5.4.1, 5.6.x) look at every pod that is not
finished, outside the exempt (system) namespaces. Evidence names objects,
never a value: a pod's environment may hold a literal secret.
"""

from __future__ import annotations

import fnmatch

from .._netpol import audit as netpol_audit
from .._rbac import audit as rbac_audit
from .node_files import short

# rbac_audit's check names -> the CIS recommendation they decide.
RBAC_CHECKS = {
    "cluster_admin": "5.1.1",
    "secrets_access": "5.1.2",
    "wildcards": "5.1.3",
    "pod_creation": "5.1.4",
    "default_service_account_bound": "5.1.5",
    "default_service_account_token": "5.1.5",
    "pod_service_account_token": "5.1.6",
    "system_masters": "5.1.7",
    "bind_impersonate_escalate": "5.1.8",
    "persistent_volume_creation": "5.1.9",
    "nodes_proxy": "5.1.10",
    "csr_approval": "5.1.11",
    "webhook_configuration": "5.1.12",
    "service_account_token_creation": "5.1.13",
}
ALLOWED_BINDINGS = (
    "system:*",
    "*/system:*",
    "cluster-admin",
    "kubeadm:*",
    "*/kubeadm:*",
    "kubeguard:*",
    "*/kubeguard:*",
)
ALLOWED_ROLES = ("system:*", "cluster-admin")
PSA_ENFORCE = "pod-security.kubernetes.io/enforce"


def _name(obj):
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace')}/{meta.get('name')}" if meta.get("namespace") else meta.get("name", "")


def _ref(ref):
    return (
        f"{ref.get('kind')} {ref['namespace']}/{ref['name']}"
        if ref.get("namespace")
        else f"{ref.get('kind')} {ref['name']}"
    )


def _finding_line(finding):
    """``Pod ns/name: title``, ``ClusterRoleBinding name -> role: subjects`` or ``subjects: title``."""
    subjects = ", ".join(s["user"] for s in finding.get("subjects") or [])
    if finding.get("pod"):
        return f"Pod {finding['pod']['namespace']}/{finding['pod']['name']}: {finding['title']}"
    if finding.get("binding"):
        role = (finding.get("role") or {}).get("name")
        return f"{_ref(finding['binding'])}" + (f" -> {role}" if role else "") + (f": {subjects}" if subjects else "")
    if finding.get("role"):
        return f"{_ref(finding['role'])}: {finding['title']}"
    return f"{subjects}: {finding['title']}"


def rbac(state, exempt, allowed_bindings=ALLOWED_BINDINGS, allowed_subjects=()):
    findings = rbac_audit.audit(
        state, allowed_bindings, allowed_subjects, ALLOWED_ROLES, tuple(RBAC_CHECKS), automount_exempt=exempt
    )
    by_id = {}
    for finding in findings:
        if not finding["allowlisted"]:
            by_id.setdefault(RBAC_CHECKS[finding["check"]], []).append(_finding_line(finding))
    allowed = sum(1 for f in findings if f["allowlisted"])
    out = {}
    for check_id in sorted(set(RBAC_CHECKS.values())):
        lines = by_id.get(check_id)
        if lines:
            out[check_id] = ("fail", short(sorted(set(lines)), 10))
        else:
            out[check_id] = ("pass", [f"no finding outside the allowlist ({allowed} allowlisted findings in all)"])
    return out


def _containers(spec):
    return [
        *(spec.get("initContainers") or []),
        *(spec.get("containers") or []),
        *(spec.get("ephemeralContainers") or []),
    ]


def _effective(pod_sc, sc, key):
    return sc.get(key) if sc.get(key) is not None else pod_sc.get(key)


def pod_findings(pod):
    """{check id: reason} for one pod."""
    spec = pod.get("spec") or {}
    pod_sc = spec.get("securityContext") or {}
    hits = {}
    if spec.get("hostPID"):
        hits["5.2.3"] = "hostPID"
    if spec.get("hostIPC"):
        hits["5.2.4"] = "hostIPC"
    if spec.get("hostNetwork"):
        hits["5.2.5"] = "hostNetwork"
    if any("hostPath" in (v or {}) for v in spec.get("volumes") or []):
        hits["5.2.11"] = "hostPath volume"
    if (pod_sc.get("windowsOptions") or {}).get("hostProcess"):
        hits["5.2.10"] = "hostProcess"
    seccomp_pod = (pod_sc.get("seccompProfile") or {}).get("type") in ("RuntimeDefault", "Localhost")
    bare = not pod_sc
    for container in _containers(spec):
        sc = container.get("securityContext") or {}
        name = container.get("name")
        bare = bare and not sc
        if sc.get("privileged"):
            hits["5.2.2"] = f"{name}: privileged"
        if sc.get("allowPrivilegeEscalation") is True:
            hits["5.2.6"] = f"{name}: allowPrivilegeEscalation"
        user = _effective(pod_sc, sc, "runAsUser")
        if not _effective(pod_sc, sc, "runAsNonRoot") and not (isinstance(user, int) and user > 0):
            hits["5.2.7"] = f"{name}: may run as root"
        caps = sc.get("capabilities") or {}
        added, dropped = set(caps.get("add") or []), set(caps.get("drop") or [])
        if {"NET_RAW", "ALL"} & added or not {"NET_RAW", "ALL"} & dropped:
            hits["5.2.8"] = f"{name}: NET_RAW not dropped"
        if added:
            hits["5.2.9"] = f"{name}: adds {', '.join(sorted(added))}"
        if (sc.get("windowsOptions") or {}).get("hostProcess"):
            hits["5.2.10"] = f"{name}: hostProcess"
        if any(p.get("hostPort") for p in container.get("ports") or []):
            hits["5.2.12"] = f"{name}: hostPort"
        env_secret = any(((e.get("valueFrom") or {}).get("secretKeyRef")) for e in container.get("env") or [])
        if env_secret or any(e.get("secretRef") for e in container.get("envFrom") or []):
            hits["5.4.1"] = f"{name}: Secret in environment"
        if not seccomp_pod and (sc.get("seccompProfile") or {}).get("type") not in ("RuntimeDefault", "Localhost"):
            hits["5.6.2"] = f"{name}: no RuntimeDefault seccomp profile"
    if bare:
        hits["5.6.3"] = "no securityContext"
    return hits


POD_CHECKS = ("5.2.2", "5.2.3", "5.2.4", "5.2.5", "5.2.6", "5.2.7", "5.2.8", "5.2.9", "5.2.10", "5.2.11", "5.2.12")


def pods(items, exempt):
    active = [
        p
        for p in items
        if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
        and not any(fnmatch.fnmatchcase((p.get("metadata") or {}).get("namespace", ""), e) for e in exempt)
    ]
    found = {}
    for pod in active:
        for check_id, reason in pod_findings(pod).items():
            found.setdefault(check_id, []).append(f"Pod {_name(pod)}: {reason}")
    out = {}
    for check_id in (*POD_CHECKS, "5.4.1", "5.6.2", "5.6.3"):
        if found.get(check_id):
            out[check_id] = ("fail", short(found[check_id], 10))
        else:
            out[check_id] = ("pass", [f"none of {len(active)} pods outside {', '.join(exempt)}"])
    return out


def namespaces_checks(namespaces, policies, services, pods_, admission, exempt):
    """5.2.1, 5.3.x, 5.4.2, 5.5.1, 5.6.1, 5.6.4."""
    out = {}
    user = [n for n in namespaces if not any(fnmatch.fnmatchcase(n, e) for e in exempt)]
    unlabelled = [n for n in user if namespaces[n].get(PSA_ENFORCE) in (None, "privileged")]
    engines = [f"{kind} {name}" for kind, name in admission]
    if not unlabelled:
        out["5.2.1"] = ("pass", [f"every namespace outside {', '.join(exempt)} has {PSA_ENFORCE}"])
    elif engines:
        out["5.2.1"] = ("warn", short([*engines, *(f"namespace {n}: no {PSA_ENFORCE}" for n in unlabelled)], 10))
    else:
        out["5.2.1"] = ("fail", short([f"namespace {n}: no {PSA_ENFORCE} label" for n in unlabelled], 10))
    coverage = netpol_audit.coverage(namespaces, policies, exempt)
    uncovered = [c for c in coverage if not c["covered"]]
    out["5.3.1"] = (
        "warn",
        [f"{len(policies)} NetworkPolicies in the API; whether the CNI enforces them takes a traffic test"],
    )
    if uncovered:
        lines = [
            f"namespace {c['namespace']}: "
            + (f"policies {', '.join(c['policies'])}, " if c["policies"] else "no NetworkPolicy, ")
            + f"ingress {'isolated' if c['isolated_ingress'] else 'open'}, "
            + f"egress {'isolated' if c['isolated_egress'] else 'open'}"
            for c in uncovered
        ]
        out["5.3.2"] = ("fail", short(lines, 10))
    else:
        out["5.3.2"] = ("pass", [f"{len(coverage)} namespaces default-deny in both directions"])
    out["5.4.2"] = ("warn", ["whether secrets belong in an external store is a design decision"])
    out["5.5.1"] = ("warn", ["ImagePolicyWebhook is an apiserver admission plugin: see the 1.2.x evidence"])
    out["5.6.1"] = ("warn", [f"{len(namespaces)} namespaces: " + ", ".join(short(sorted(namespaces), 12))])
    in_default = [f"Pod default/{(p.get('metadata') or {}).get('name')}" for p in pods_ if _ns(p) == "default"]
    in_default += [
        f"Service default/{(s.get('metadata') or {}).get('name')}"
        for s in services
        if _ns(s) == "default" and (s.get("metadata") or {}).get("name") != "kubernetes"
    ]
    out["5.6.4"] = ("fail", short(in_default, 10)) if in_default else ("pass", ["no pods or services in default"])
    return out


def _ns(obj):
    return (obj.get("metadata") or {}).get("namespace")
