# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the entry points of ``network_policy_audit`` and ``network_policy_truth_table``.

Both read the cluster once (one LIST per kind) through ``module_utils/_k8s``;
the truth table can also be computed from pods, namespaces and policies given
as data, without a cluster.
"""

from __future__ import annotations

from .._errors import KubeguardError
from .._k8s.objects import validate_namespaces
from .._k8s.runner import connect
from .._k8s.service import ApplyService
from . import audit, truth_table, validate
from .policy import Pod

NETWORKING_V1 = "networking.k8s.io/v1"


def _active_namespaces(service):
    return {
        item["metadata"]["name"]: (item["metadata"].get("labels") or {})
        for item in service.list(service.resource("v1", "Namespace"))
        if (item.get("status") or {}).get("phase", "Active") == "Active"
    }


def coverage_report(namespaces, policies, exempt):
    """network_policy_audit's result for these namespaces and policies: {namespaces, uncovered, findings}."""
    report = audit.coverage(namespaces, policies, exempt or ())
    uncovered = [entry for entry in report if not entry["covered"]]
    return {"namespaces": report, "uncovered": [entry["namespace"] for entry in uncovered], "findings": uncovered}


def run_audit(params, check_mode, service=None):
    validate_namespaces(params.get("exempt_namespaces"), "exempt_namespaces", patterns=True)
    service = service or ApplyService(connect(params))
    service.discover({"v1", NETWORKING_V1})
    namespaces = _active_namespaces(service)
    policies = service.list(service.resource(NETWORKING_V1, "NetworkPolicy"))
    return {
        "changed": False,
        **coverage_report(namespaces, policies, params.get("exempt_namespaces")),
        "api_requests": {"total": service.client.requests, "discovery": service.client.discovery_requests},
    }


def pod_from_api(item):
    meta = item.get("metadata") or {}
    ports = [
        {"name": port.get("name"), "port": port.get("containerPort"), "protocol": port.get("protocol") or "TCP"}
        for container in (item.get("spec") or {}).get("containers") or []
        for port in container.get("ports") or []
    ]
    return Pod(
        meta.get("namespace"), meta.get("name"), meta.get("labels"), (item.get("status") or {}).get("podIP"), ports
    )


def pod_from_data(item):
    return Pod(item["namespace"], item["name"], item.get("labels"), item.get("ip"), item.get("ports"))


def run_truth_table(params, check_mode, service=None):
    validate_namespaces(params.get("namespaces"), "namespaces")
    wanted = set(params.get("namespaces") or ())
    if params.get("pods"):
        validate.pods(params["pods"], "pods")
        validate.policies(params.get("policies") or [], "policies")
        pods = [pod_from_data(item) for item in params["pods"]]
        namespace_labels = dict(params.get("namespace_labels") or {})
        for name, labels in namespace_labels.items():
            if not isinstance(labels, dict):
                raise KubeguardError("namespace_labels", f"{name}: must be a mapping of labels")
        policies = list(params.get("policies") or [])
        requests = {"total": 0, "discovery": 0}
    else:
        service = service or ApplyService(connect(params))
        service.discover({"v1", NETWORKING_V1})
        namespace_labels = _active_namespaces(service)
        pods = [
            pod_from_api(item)
            for item in service.list(service.resource("v1", "Pod"))
            if (item.get("status") or {}).get("phase") in (None, "Pending", "Running")
        ]
        policies = service.list(service.resource(NETWORKING_V1, "NetworkPolicy"))
        requests = {"total": service.client.requests, "discovery": service.client.discovery_requests}
    if wanted:
        pods = [pod for pod in pods if pod.namespace in wanted]
    for name in {pod.namespace for pod in pods}:
        namespace_labels.setdefault(name, {"kubernetes.io/metadata.name": name})
    table = truth_table.build(
        pods, policies, namespace_labels, params.get("ports") or [80], params.get("loopback_allowed", True)
    )
    return {"changed": False, **table, "api_requests": requests}
