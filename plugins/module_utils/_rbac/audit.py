# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the CIS 5.1 checks as pure functions over RBAC objects.

A check is a predicate over one policy rule. A role that has a matching rule,
and every binding that grants that role, make a finding; the finding lists the
binding's subjects (users, groups, service accounts): who really holds the
permission. Wildcard roles are reported even when nothing binds them.
"""

from __future__ import annotations

import fnmatch

RBAC = "rbac.authorization.k8s.io"
WRITE = ("create", "update", "patch", "delete", "deletecollection")


def _has(values, wanted):
    values = values or []
    return "*" in values or any(w in values for w in wanted)


def grants(rule, verbs, groups, resources):
    """True when ``rule`` allows one of ``verbs`` on one of ``resources`` ("pods", "nodes/proxy") in ``groups``."""
    if rule.get("nonResourceURLs"):
        return False
    if not _has(rule.get("verbs"), verbs) or not _has(rule.get("apiGroups"), groups):
        return False
    listed = rule.get("resources") or []
    for resource in resources:
        sub = resource.partition("/")[2]
        if resource in listed or "*" in listed or (sub and f"*/{sub}" in listed):
            return True
    return False


def _wildcard(rule):
    return any("*" in (rule.get(field) or []) for field in ("verbs", "apiGroups", "resources", "nonResourceURLs"))


# (cis id, check name, title, rule predicate)
CHECKS = (
    ("5.1.1", "cluster_admin", "bound to cluster-admin", None),
    ("5.1.2", "secrets_access", "can read secrets", lambda r: grants(r, ("get", "list", "watch"), ("",), ("secrets",))),
    ("5.1.3", "wildcards", "uses wildcards in a role", _wildcard),
    ("5.1.4", "pod_creation", "can create pods", lambda r: grants(r, ("create",), ("",), ("pods",))),
    ("5.1.5", "default_service_account_bound", "grants permissions to a default service account", None),
    ("5.1.6", "default_service_account_token", "default service account automounts its token", None),
    ("5.1.6", "pod_service_account_token", "pod mounts a service account token", None),
    ("5.1.7", "system_masters", "binds the system:masters group", None),
    (
        "5.1.8",
        "bind_impersonate_escalate",
        "can bind or escalate roles, or impersonate",
        lambda r: (
            grants(r, ("bind", "escalate"), (RBAC,), ("roles", "clusterroles"))
            or grants(
                r,
                ("impersonate",),
                ("", "authentication.k8s.io"),
                ("users", "groups", "serviceaccounts", "uids", "userextras/*"),
            )
        ),
    ),
    (
        "5.1.9",
        "persistent_volume_creation",
        "can create persistent volumes",
        lambda r: grants(r, ("create",), ("",), ("persistentvolumes",)),
    ),
    (
        "5.1.10",
        "nodes_proxy",
        "can use nodes/proxy",
        lambda r: grants(r, ("get", "create", "*"), ("",), ("nodes/proxy",)),
    ),
    (
        "5.1.11",
        "csr_approval",
        "can approve certificate signing requests",
        lambda r: (
            grants(r, ("update", "patch"), ("certificates.k8s.io",), ("certificatesigningrequests/approval",))
            or grants(r, ("approve",), ("certificates.k8s.io",), ("signers",))
        ),
    ),
    (
        "5.1.12",
        "webhook_configuration",
        "can change admission webhook configurations",
        lambda r: grants(
            r,
            WRITE,
            ("admissionregistration.k8s.io",),
            ("validatingwebhookconfigurations", "mutatingwebhookconfigurations"),
        ),
    ),
    (
        "5.1.13",
        "service_account_token_creation",
        "can create service account tokens",
        lambda r: grants(r, ("create",), ("",), ("serviceaccounts/token",)),
    ),
    (None, "anonymous_access", "grants permissions to anonymous or unauthenticated requests", None),
)
CHECK_NAMES = tuple(check[1] for check in CHECKS)
ANONYMOUS = {("User", "system:anonymous"), ("Group", "system:unauthenticated")}
# What upstream itself grants to anonymous requests; everything else is a finding.
ANONYMOUS_UPSTREAM = ("system:public-info-viewer",)
# kubeadm's grant for token discovery (kubeadm join): RoleBinding and Role of this name in
# kube-public, get on the cluster-info ConfigMap only (the cluster CA and endpoint, no secret).
KUBEADM_CLUSTER_INFO = ("kube-public", "kubeadm:bootstrap-signer-clusterinfo")
KUBEADM_CLUSTER_INFO_RULE = {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["cluster-info"]}


def kubeadm_discovery_grant(binding, role):
    """True for kubeadm's own cluster-info grant only: the right name, kind and namespace, and a
    Role whose every rule allows get (nothing more) on the cluster-info ConfigMap."""
    meta, role_ref = binding.get("metadata") or {}, binding.get("roleRef") or {}
    if (meta.get("namespace"), meta.get("name")) != KUBEADM_CLUSTER_INFO:
        return False
    if binding.get("kind", "RoleBinding") != "RoleBinding" or role_ref.get("kind") != "Role":
        return False
    if role_ref.get("name") != KUBEADM_CLUSTER_INFO[1] or role is None:
        return False
    rules = role.get("rules") or []
    return bool(rules) and all(
        (rule.get("verbs") or []) == ["get"]
        and not rule.get("nonResourceURLs")
        and all((rule.get(key) or []) == value for key, value in KUBEADM_CLUSTER_INFO_RULE.items())
        for rule in rules
    )


def subject_name(subject):
    if subject.get("kind") == "ServiceAccount":
        return f"system:serviceaccount:{subject.get('namespace', '')}:{subject.get('name')}"
    return subject.get("name")


def ref(obj):
    meta = obj.get("metadata") or {}
    return {"kind": obj.get("kind"), "namespace": meta.get("namespace", ""), "name": meta.get("name")}


def binding_path(binding):
    meta = binding.get("metadata") or {}
    return f"{meta['namespace']}/{meta['name']}" if meta.get("namespace") else meta["name"]


def allowlisted(binding, allowed_bindings, allowed_subjects):
    """A binding is allowlisted by its path (``name`` or ``namespace/name``, shell patterns), or when
    every one of its subjects is."""
    path = binding_path(binding)
    if any(fnmatch.fnmatchcase(path, pattern) for pattern in allowed_bindings):
        return True
    subjects = binding.get("subjects") or []
    return bool(subjects) and all(
        any(fnmatch.fnmatchcase(subject_name(s), pattern) for pattern in allowed_subjects) for s in subjects
    )


def _role_of(binding, cluster_roles, roles):
    role_ref = binding.get("roleRef") or {}
    if role_ref.get("kind") == "ClusterRole":
        return cluster_roles.get(role_ref.get("name"))
    return roles.get(((binding.get("metadata") or {}).get("namespace"), role_ref.get("name")))


def _finding(cis, check, title, role, binding, subjects, is_allowed):
    return {
        "cis": cis,
        "check": check,
        "title": title,
        "role": ref(role) if role else None,
        "binding": ref(binding) if binding else None,
        "subjects": [{**s, "user": subject_name(s)} for s in subjects],
        "allowlisted": is_allowed,
    }


def automount(pod, accounts):
    """(mounts a token?, decided by "pod" | "serviceaccount" | "default") as the kubelet decides it: the pod's
    field wins, else its service account's, else the token is mounted."""
    spec = pod.get("spec") or {}
    if spec.get("automountServiceAccountToken") is not None:
        return bool(spec["automountServiceAccountToken"]), "pod"
    namespace = (pod.get("metadata") or {}).get("namespace")
    account = accounts.get((namespace, spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"))
    if account is not None and account.get("automountServiceAccountToken") is not None:
        return bool(account["automountServiceAccountToken"]), "serviceaccount"
    return True, "default"


def _token_findings(state, wanted, allowed_subjects, exempt):
    """CIS 5.1.6: default service accounts that leave token mounting on, and every running pod that mounts one."""
    findings = []
    accounts = {
        ((a.get("metadata") or {}).get("namespace"), (a.get("metadata") or {}).get("name")): a
        for a in state.get("service_accounts") or []
    }
    if "default_service_account_token" in wanted:
        for (namespace, name), account in sorted(accounts.items()):
            if name != "default" or account.get("automountServiceAccountToken") is False:
                continue
            if any(fnmatch.fnmatchcase(namespace or "", pattern) for pattern in exempt):
                continue
            subject = {"kind": "ServiceAccount", "name": "default", "namespace": namespace}
            findings.append(
                _finding(
                    "5.1.6",
                    "default_service_account_token",
                    "default service account automounts its token",
                    None,
                    None,
                    [subject],
                    False,
                )
            )
    if "pod_service_account_token" in wanted:
        for pod in state.get("pods") or []:
            meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
            namespace = meta.get("namespace") or ""
            if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                continue
            if any(fnmatch.fnmatchcase(namespace, pattern) for pattern in exempt):
                continue
            mounts, decided_by = automount(pod, accounts)
            if not mounts:
                continue
            account = spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
            subject = {"kind": "ServiceAccount", "name": account, "namespace": namespace}
            is_allowed = any(fnmatch.fnmatchcase(subject_name(subject), p) for p in allowed_subjects)
            finding = _finding(
                "5.1.6",
                "pod_service_account_token",
                "pod mounts a service account token",
                None,
                None,
                [subject],
                is_allowed,
            )
            finding["pod"] = {"namespace": namespace, "name": meta.get("name")}
            finding["decided_by"] = decided_by
            findings.append(finding)
    return findings


def audit(
    state,
    allowed_bindings=(),
    allowed_subjects=(),
    allowed_roles=(),
    checks=CHECK_NAMES,
    automount_exempt=(),
    kubeadm_discovery=False,
):
    """Findings for ``state`` = {cluster_roles, roles, cluster_role_bindings, role_bindings, service_accounts,
    pods}; ``automount_exempt`` namespaces (patterns) are left out of the 5.1.6 token checks. With
    ``kubeadm_discovery``, kubeadm's cluster-info grant to anonymous is an allowlisted finding (kept)."""
    cluster_roles = {(r.get("metadata") or {}).get("name"): r for r in state.get("cluster_roles") or []}
    roles = {
        ((r.get("metadata") or {}).get("namespace"), (r.get("metadata") or {}).get("name")): r
        for r in state.get("roles") or []
    }
    bindings = list(state.get("cluster_role_bindings") or []) + list(state.get("role_bindings") or [])
    wanted = set(checks)
    findings = []
    bound_roles = set()
    for binding in bindings:
        role = _role_of(binding, cluster_roles, roles)
        subjects = binding.get("subjects") or []
        is_allowed = allowlisted(binding, allowed_bindings, allowed_subjects)
        rules = (role or {}).get("rules") or []
        if role is not None:
            bound_roles.add(id(role))
        for cis, check, title, predicate in CHECKS:
            if check not in wanted:
                continue
            hit = False
            who = subjects
            if check == "cluster_admin":
                hit = (binding.get("roleRef") or {}).get("name") == "cluster-admin" and binding.get("roleRef", {}).get(
                    "kind"
                ) == "ClusterRole"
            elif check == "default_service_account_bound":
                who = [s for s in subjects if s.get("kind") == "ServiceAccount" and s.get("name") == "default"]
                hit = bool(who) and bool(rules)
            elif check == "system_masters":
                who = [s for s in subjects if s.get("kind") == "Group" and s.get("name") == "system:masters"]
                hit = bool(who)
            elif check == "anonymous_access":
                who = [s for s in subjects if (s.get("kind"), s.get("name")) in ANONYMOUS]
                hit = bool(who) and (binding.get("roleRef") or {}).get("name") not in ANONYMOUS_UPSTREAM
                # Only upstream's own grant and, if asked, kubeadm's exact discovery grant are
                # accepted, whatever the allowlist says.
                is_allowed_here = bool(kubeadm_discovery) and kubeadm_discovery_grant(binding, role)
                if hit:
                    findings.append(_finding(cis, check, title, role, binding, who, is_allowed_here))
                continue
            elif predicate is not None:
                hit = any(predicate(rule) for rule in rules)
            if hit:
                findings.append(_finding(cis, check, title, role, binding, who, is_allowed))
    if "wildcards" in wanted:
        for role in [*cluster_roles.values(), *roles.values()]:
            if id(role) in bound_roles or not any(_wildcard(rule) for rule in role.get("rules") or []):
                continue
            is_allowed = any(
                fnmatch.fnmatchcase((role.get("metadata") or {}).get("name", ""), p) for p in allowed_roles
            )
            findings.append(
                _finding("5.1.3", "wildcards", "uses wildcards in a role (unbound)", role, None, [], is_allowed)
            )
    findings += _token_findings(state, wanted, allowed_subjects, automount_exempt)
    return findings
