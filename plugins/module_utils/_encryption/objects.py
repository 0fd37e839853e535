# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the encrypted resources as the API server serves them, and the bulk rewrite.

``resolve`` checks every configured resource against one discovery (the core
list, the group list, then only the groups named). ``rewrite`` reads every
object of those resources with paged LISTs and replaces each unchanged (PUT),
several at a time, through the ``_k8s`` client and service: the apiserver
re-encrypts each with the current primary key. A 409 means someone wrote the
object meanwhile, which encrypted it too; a 404 means it is gone. Both count
as done.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from .._errors import KubeguardError
from .._k8s.client import ApiError, Client, Resource
from .._k8s.service import ApplyService

OPTION = "encryption_at_rest_resources"
# Core resources whose etcd key is not /registry/<plural>/ (k8s.io/kubernetes pkg/registry).
CORE_ETCD = {"services": "services/specs", "endpoints": "services/endpoints", "nodes": "minions"}


def etcd_prefix(resource, group, prefix="/registry"):
    """Where the apiserver stores ``resource`` of ``group`` in etcd: built-in groups drop the group, CRDs keep it."""
    prefix = prefix.rstrip("/")
    if not group:
        return f"{prefix}/{CORE_ETCD.get(resource, resource)}/"
    if "." not in group or group.endswith(".k8s.io"):
        return f"{prefix}/{resource}/"
    return f"{prefix}/{group}/{resource}/"


def _served(client, path):
    listing = client.request("GET", path)
    return {item["name"]: item for item in listing.get("resources", []) if "/" not in item["name"]}


def resolve(client, resources):
    """{name: Resource} of every configured resource, or a KubeguardError naming the one not served."""
    client.discovery_requests += 1
    core = _served(client, "/api/v1")
    groups = None
    resolved, missing = {}, []
    for name in resources:
        plural, _unused, group = name.partition(".")
        if not group:
            item, version = core.get(plural), "v1"
        else:
            if groups is None:
                client.discovery_requests += 1
                groups = {g["name"]: g for g in client.request("GET", "/apis").get("groups", [])}
            info = groups.get(group)
            item = None
            if info:
                version = info["preferredVersion"]["groupVersion"]
                client.discovery_requests += 1
                item = _served(client, f"/apis/{version}").get(plural)
        if item is None or "list" not in item.get("verbs", []) or "update" not in item.get("verbs", []):
            missing.append(name)
            continue
        resolved[name] = Resource(version, item["name"], item["kind"], item["namespaced"])
        resolved[name].group = group
    if missing:
        raise KubeguardError(
            OPTION,
            f"the API server does not serve {', '.join(missing)} as a listable, updatable resource "
            "(use the plural, with the group for non-core resources: configmaps, widgets.example.com)",
        )
    return resolved


def connect(params):
    return Client.from_kubeconfig(params.get("kubeconfig"), params.get("context"), params.get("request_timeout") or 30)


def _replace(service, resource, obj):
    meta = obj.get("metadata") or {}
    try:
        service.client.request("PUT", resource.path(meta.get("namespace"), meta["name"]), body=obj)
        return "replaced"
    except ApiError as exc:
        if exc.status == 409:
            return "conflict"  # written meanwhile: already re-encrypted by that write
        if exc.status == 404:
            return "gone"
        raise


def run(params, check_mode=False, client=None):
    client = client or connect(params)
    resolved = resolve(client, params["resources"])
    result = {
        "changed": False,
        "resources": {
            name: {
                "apiVersion": r.api_version,
                "plural": r.plural,
                "kind": r.kind,
                "namespaced": r.namespaced,
                "etcd_prefix": etcd_prefix(r.plural, r.group, params.get("etcd_prefix") or "/registry"),
            }
            for name, r in resolved.items()
        },
    }
    if params.get("action", "validate") == "validate":
        result["api_requests"] = {"total": client.requests, "discovery": client.discovery_requests}
        return result
    service = ApplyService(client)
    started = time.monotonic()
    counts = {}
    failures = []
    with ThreadPoolExecutor(max_workers=max(1, int(params.get("workers") or 8))) as pool:
        for name, resource in resolved.items():
            items = service.list(resource)
            tally = dict.fromkeys(("listed", "replaced", "conflict", "gone"), 0)
            tally["listed"] = len(items)
            if check_mode:
                counts[name] = tally
                continue
            futures = [(obj, pool.submit(_replace, service, resource, obj)) for obj in items]
            for obj, future in futures:
                try:
                    tally[future.result()] += 1
                except ApiError as exc:
                    meta = obj.get("metadata") or {}
                    failures.append(f"{name} {meta.get('namespace', '')}/{meta.get('name')}: {exc}")
            counts[name] = tally
    seconds = time.monotonic() - started
    written = sum(c["replaced"] for c in counts.values())
    result.update(
        changed=written > 0 or (check_mode and any(c["listed"] for c in counts.values())),
        counts=counts,
        seconds=round(seconds, 3),
        objects_per_second=round(written / seconds, 1) if seconds > 0 and written else 0.0,
        api_requests={"total": client.requests, "discovery": client.discovery_requests},
    )
    if failures:
        result["failed"] = True
        result["msg"] = f"{len(failures)} objects could not be rewritten: " + "; ".join(failures[:10])
    return result
