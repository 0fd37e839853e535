# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the decision loop of ``k8s_bulk_apply``: read once, apply in parallel, report.

``run(params, check_mode, service=None)`` is the Ansible-free entry point. It
validates every manifest before the first request, discovers the resource
types once, reads the current objects with one LIST per type, then applies (or
deletes) cluster-scoped objects before namespaced ones, several at a time.
``changed`` compares the objects without their noise fields, so a rerun that
changes nothing reports changed=false.

With ``prune`` the call owns a set of objects: those carrying ``prune_labels``
that its field manager applied. Any of them no longer listed is deleted (after
the applies, so a renamed object never leaves a gap); check mode dry-runs it.
"""

from __future__ import annotations

import copy
from concurrent.futures import ThreadPoolExecutor

from .._errors import KubeguardError
from . import objects as objs
from .client import ApiError, Client
from .service import ApplyService

ACTIONS = ("created", "updated", "unchanged", "deleted", "pruned", "absent", "failed")


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


def validate_inputs(params):
    """The manifests, templates and namespace options of one call, without a request."""
    objs.validate(params.get("objects") or [], "objects")
    objs.validate_templates(params.get("namespace_objects") or [], "namespace_objects")
    objs.validate_namespaces(params.get("namespaces"), "namespaces")
    objs.validate_namespaces(params.get("exclude_namespaces"), "exclude_namespaces", patterns=True)


def prune_kinds(params):
    """The (apiVersion, kind) pairs ``prune`` looks at: those of the objects plus ``prune_kinds``; validated."""
    if not params.get("prune"):
        return []
    labels = params.get("prune_labels") or {}
    if not labels or not all(isinstance(v, str) and v for v in labels.values()):
        raise KubeguardError("prune_labels", "prune needs labels (name: non-empty value) that mark the objects it owns")
    if (params.get("state") or "present") != "present":
        raise KubeguardError("prune", "prune works with state=present only")
    kinds = []
    for option in ("objects", "namespace_objects"):
        for index, obj in enumerate(params.get(option) or []):
            carried = ((obj.get("metadata") or {}).get("labels")) or {}
            if any(carried.get(key) != value for key, value in labels.items()):
                raise KubeguardError(
                    option, f"item {index} lacks the prune_labels {labels}; prune could never remove it later"
                )
            kinds.append((obj["apiVersion"], obj["kind"]))
    for index, entry in enumerate(params.get("prune_kinds") or []):
        if not isinstance(entry, dict) or not entry.get("apiVersion") or not entry.get("kind"):
            raise KubeguardError("prune_kinds", f"item {index} needs apiVersion and kind")
        kinds.append((entry["apiVersion"], entry["kind"]))
    return sorted(set(kinds))


def owned(obj, field_manager):
    """Did ``field_manager`` apply this object (server-side apply)? Only such objects are ever pruned."""
    return any(
        entry.get("manager") == field_manager and entry.get("operation") == "Apply"
        for entry in (obj.get("metadata") or {}).get("managedFields") or []
    )


def prune_candidates(params, service, kinds, planned):
    """Objects with the prune labels, applied by our field manager, that the call no longer lists."""
    selector = ",".join(f"{key}={value}" for key, value in sorted((params.get("prune_labels") or {}).items()))
    wanted = {key for key, _unused, _unused in planned}
    manager = params.get("field_manager") or "kubeguard"
    found = []
    for api_version, kind in kinds:
        resource = service.resource(api_version, kind, "prune_kinds")
        for item in service.list(resource, None, label_selector=selector):
            key = objs.identity(item)
            if key not in wanted and owned(item, manager):
                found.append((key, resource, item))
    return sorted(found, key=lambda entry: entry[0])


def plan(params, service, created=()):
    """Validate, expand and resolve every object: [(key, resource, object)] plus the namespaces covered.

    ``created``: Namespace manifests an earlier object set of the same call creates (their namespaces get the
    templates too, as they would in a later call)."""
    listed = copy.deepcopy(params.get("objects") or [])
    templates = params.get("namespace_objects") or []
    validate_inputs(params)
    pruned_kinds = prune_kinds(params)
    api_versions = {obj["apiVersion"] for obj in [*listed, *templates]} | {k[0] for k in pruned_kinds}
    service.discover(api_versions | {"v1"} if templates else api_versions)
    namespaces = target_namespaces(service, params, [*created, *listed]) if templates else []
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
    objs.validate([obj for _unused, _unused, obj in planned], "objects")
    return planned, namespaces, pruned_kinds


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


def execute(service, params, check_mode, planned, state, pending=()):
    """Apply (or delete) ``planned`` and prune what its owner no longer lists: (results, diffs, failures, summary).

    ``pending``: namespaces an earlier object set of the call creates (check mode predicts objects there)."""
    existing = service.existing({key: resource for key, resource, _unused in planned}) if planned else {}
    pruned_kinds = prune_kinds(params)
    stale = prune_candidates(params, service, pruned_kinds, planned) if pruned_kinds else []
    pending_namespaces = set(pending) | {
        key[3] for key, _unused, _unused in planned if key[1] == "Namespace" and key[0] == "v1" and key not in existing
    }
    # cluster-scoped first when creating (namespaces, cluster roles), last when deleting
    waves = [[p for p in planned if not p[1].namespaced], [p for p in planned if p[1].namespaced]]
    if state == "absent":
        waves.reverse()
    # what is no longer listed goes last: namespaced objects before cluster-scoped ones
    waves += [[p for p in stale if p[1].namespaced], [p for p in stale if not p[1].namespaced]]
    stale_keys = {key for key, _unused, _unused in stale}
    existing.update((key, obj) for key, _unused, obj in stale)
    outcomes = {}
    workers = max(1, int(params.get("workers") or 4))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for wave in waves:
            futures = {
                key: pool.submit(
                    _act,
                    service,
                    "absent" if key in stale_keys else state,
                    check_mode,
                    key,
                    resource,
                    obj,
                    existing.get(key),
                    pending_namespaces,
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
    for key, _unused, _unused in [*planned, *stale]:
        action, after, error = outcomes[key]
        if key in stale_keys and action == "deleted":
            action = "pruned"
        summary[action] += 1
        entry = {"apiVersion": key[0], "kind": key[1], "namespace": key[2], "name": key[3], "action": action}
        if error:
            entry["error"] = error
            failures.append(f"{objs.describe(key)}: {error}")
        results.append(entry)
        if action in ("created", "updated", "deleted", "pruned"):
            diffs.append(objs.diff(key, existing.get(key), after))
    return results, diffs, failures, summary


def make_service(params):
    """The service of a call: its kubeconfig, field manager and conflict policy."""
    return ApplyService(
        connect(params), params.get("field_manager") or "kubeguard", params.get("force_conflicts", True)
    )


def report(service, results, summary, namespaces, diffs, failures, total):
    """The result of a call (or of one set), failed when an object failed."""
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
        result["msg"] = f"{len(failures)} of {total} objects failed: " + "; ".join(failures[:10])
    return result


def run(params, check_mode, service=None):
    state = params.get("state") or "present"
    # malformed input is refused before the kubeconfig is even read (plan() validates again, cheaply)
    validate_inputs(params)
    service = service or make_service(params)
    planned, namespaces, _unused = plan(params, service)
    results, diffs, failures, summary = execute(service, params, check_mode, planned, state)
    total = len(results)
    return report(service, results, summary, namespaces, diffs, failures, total)
