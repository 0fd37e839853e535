# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the decision loop of ``k8s_bulk_apply``: read once, apply in parallel, report.

``run(params, check_mode, service=None)`` is the Ansible-free entry point. It
validates every manifest before the first request, discovers the resource
types once, reads the current objects with one LIST per type, then applies (or
deletes) cluster-scoped objects before namespaced ones, several at a time.
``changed`` compares the objects without their noise fields, so a rerun that
changes nothing reports changed=false.
"""

from __future__ import annotations

import copy
from concurrent.futures import ThreadPoolExecutor

from .._errors import KubeguardError
from . import objects as objs
from .client import ApiError, Client
from .service import ApplyService

ACTIONS = ("created", "updated", "unchanged", "deleted", "absent", "failed")


def connect(params):
    """A Client from the module's kubeconfig/context options."""
    return Client.from_kubeconfig(params.get("kubeconfig"), params.get("context"), params.get("request_timeout") or 30)


def target_namespaces(service, params, listed_objects):
    """Namespaces the templates go to: the live Active ones plus those created by this call, minus exclusions."""
    if params.get("namespaces"):
        names = list(params["namespaces"])
    else:
        resource = service.resource("v1", "Namespace")
        names = [
            item["metadata"]["name"]
            for item in service.list(resource)
            if (item.get("status") or {}).get("phase", "Active") == "Active"
        ]
        if params.get("state", "present") == "present":
            names += [
                o["metadata"]["name"] for o in listed_objects if o["kind"] == "Namespace" and o["apiVersion"] == "v1"
            ]
    excluded = params.get("exclude_namespaces") or []
    return sorted({name for name in names if objs.namespace_selected(name, excluded)})


def plan(params, service):
    """Validate, expand and resolve every object: [(key, resource, object)] plus the namespaces covered."""
    listed = copy.deepcopy(params.get("objects") or [])
    templates = params.get("namespace_objects") or []
    objs.validate(listed, "objects")
    objs.validate_templates(templates, "namespace_objects")
    api_versions = {obj["apiVersion"] for obj in [*listed, *templates]}
    service.discover(api_versions | {"v1"} if templates else api_versions)
    namespaces = target_namespaces(service, params, listed) if templates else []
    planned = []
    for option, items in (("objects", listed), ("namespace_objects", objs.expand(templates, namespaces))):
        for obj in items:
            resource = service.resource(obj["apiVersion"], obj["kind"], option)
            meta = obj["metadata"]
            if resource.namespaced and not meta.get("namespace"):
                raise KubeguardError(
                    option, f"{obj['kind']} {meta['name']} is namespaced but has no metadata.namespace"
                )
            if not resource.namespaced:
                meta.pop("namespace", None)
            planned.append((objs.identity(obj), resource, obj))
    objs.validate([obj for _, _, obj in planned], "objects")
    return planned, namespaces


def _act(service, state, check_mode, key, resource, obj, before, pending_namespaces):
    """One object: returns (action, after)."""
    if state == "absent":
        if before is None:
            return "absent", None
        service.delete(resource, before, check_mode)
        return "deleted", None
    if check_mode and key[2] in pending_namespaces:
        return "created", obj  # its namespace does not exist yet, so a dry-run would fail; predict instead
    after = service.apply(resource, obj, check_mode)
    if before is None:
        return "created", after
    return ("updated" if objs.changed(before, after) else "unchanged"), after


def run(params, check_mode, service=None):
    state = params.get("state") or "present"
    service = service or ApplyService(
        connect(params), params.get("field_manager") or "kubeguard", params.get("force_conflicts", True)
    )
    planned, namespaces = plan(params, service)
    existing = service.existing({key: resource for key, resource, _ in planned})
    pending_namespaces = {
        key[3] for key, _, _ in planned if key[1] == "Namespace" and key[0] == "v1" and key not in existing
    }
    # cluster-scoped first when creating (namespaces, cluster roles), last when deleting
    waves = [[p for p in planned if not p[1].namespaced], [p for p in planned if p[1].namespaced]]
    if state == "absent":
        waves.reverse()
    outcomes = {}
    workers = max(1, int(params.get("workers") or 4))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for wave in waves:
            futures = {
                key: pool.submit(
                    _act, service, state, check_mode, key, resource, obj, existing.get(key), pending_namespaces
                )
                for key, resource, obj in wave
            }
            for key, future in futures.items():
                try:
                    outcomes[key] = (*future.result(), None)
                except ApiError as exc:
                    outcomes[key] = ("failed", None, str(exc))
    results, diffs, failures = [], [], []
    summary = dict.fromkeys(ACTIONS, 0)
    for key, _, _ in planned:
        action, after, error = outcomes[key]
        summary[action] += 1
        entry = {"apiVersion": key[0], "kind": key[1], "namespace": key[2], "name": key[3], "action": action}
        if error:
            entry["error"] = error
            failures.append(f"{objs.describe(key)}: {error}")
        results.append(entry)
        if action in ("created", "updated", "deleted"):
            diffs.append(objs.diff(key, existing.get(key), after))
    result = {
        "changed": bool(diffs),
        "results": results,
        "summary": summary,
        "namespaces": namespaces,
        "api_requests": {"total": service.client.requests, "discovery": service.client.discovery_requests},
        "diff": diffs,
    }
    if failures:
        result["failed"] = True
        result["msg"] = f"{len(failures)} of {len(planned)} objects failed: " + "; ".join(failures[:10])
    return result
