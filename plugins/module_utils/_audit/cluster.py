# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the ``audit_cluster`` entry point: one bulk read of the API, every section 5 check.

One discovery, then one LIST per kind (RBAC objects, service accounts and
pods through ``_rbac.runner.read_state``; namespaces, NetworkPolicies,
services and admission policy objects here). Read-only in both modes.
"""

from __future__ import annotations

from .._k8s.client import ApiError
from .._k8s.objects import validate_namespaces
from .._k8s.runner import connect
from .._k8s.service import ApplyService
from .._rbac import runner as rbac_runner
from . import catalog, policies

NETWORKING_V1 = "networking.k8s.io/v1"
ADMISSION_V1 = "admissionregistration.k8s.io/v1"
ADMISSION_KINDS = ("ValidatingAdmissionPolicyBinding", "ValidatingWebhookConfiguration")


def read(service):
    service.discover({"v1", NETWORKING_V1, ADMISSION_V1, rbac_runner.RBAC_V1})
    state = rbac_runner.read_state(service)
    state["namespaces"] = service.list(service.resource("v1", "Namespace"))
    state["network_policies"] = service.list(service.resource(NETWORKING_V1, "NetworkPolicy"))
    state["services"] = service.list(service.resource("v1", "Service"))
    state["admission"] = []
    for kind in ADMISSION_KINDS:
        try:
            items = service.list(service.resource(ADMISSION_V1, kind))
        except ApiError as exc:  # served but forbidden to this caller: evidence, not an error
            state["admission"].append((kind, f"(not readable: HTTP {exc.status})"))
            continue
        names = [(i.get("metadata") or {}).get("name", "") for i in items]
        state["admission"] += [(kind, n) for n in names if not n.startswith(("system:", "kube-"))]
    return state


def evaluate(state, exempt, allowed_bindings=policies.ALLOWED_BINDINGS, allowed_subjects=()):
    namespaces = {
        (n.get("metadata") or {}).get("name"): ((n.get("metadata") or {}).get("labels") or {})
        for n in state["namespaces"]
        if (n.get("status") or {}).get("phase", "Active") == "Active"
    }
    found = {}
    found.update(policies.rbac(state, exempt, allowed_bindings, allowed_subjects))
    found.update(policies.pods(state.get("pods") or [], exempt))
    found.update(
        policies.namespaces_checks(
            namespaces,
            state["network_policies"],
            state["services"],
            state.get("pods") or [],
            state["admission"],
            exempt,
        )
    )
    rows = []
    for check_id in catalog.cluster_checks():
        outcome, evidence = found.get(check_id, ("warn", ["not evaluated"]))
        reason = "manual: not decidable through the API, review the evidence" if outcome == "warn" else ""
        rows.append(catalog.result(check_id, "cluster", outcome, evidence, reason))
    return rows


def run(params, check_mode=False, service=None):
    validate_namespaces(params.get("exempt_namespaces"), "exempt_namespaces", patterns=True)
    service = service or ApplyService(connect(params))
    state = read(service)
    exempt = tuple(params.get("exempt_namespaces") or ())
    rows = evaluate(
        state,
        exempt,
        tuple(params.get("allowed_bindings") or policies.ALLOWED_BINDINGS),
        tuple(params.get("allowed_subjects") or ()),
    )
    return {
        "changed": False,
        "results": rows,
        "api_requests": {"total": service.client.requests, "discovery": service.client.discovery_requests},
    }
