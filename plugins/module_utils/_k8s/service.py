# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the API requests of the bulk apply, one method per verb.

Server-side apply with a field manager, dry-run for check mode, deletes with a
precondition, and bulk reads: one LIST per resource type instead of one GET per
object.
"""

from __future__ import annotations

from .client import FIELD_MANAGER, ApiError
from .objects import identity

PAGE = 500


class ApplyService:
    """What the runner may ask of the API server; tests replace it with a fake."""

    def __init__(self, client, field_manager=FIELD_MANAGER, force_conflicts=True):
        self.client = client
        self.field_manager = field_manager
        self.force_conflicts = force_conflicts

    def resource(self, api_version, kind, option="objects"):
        return self.client.resource(api_version, kind, option)

    def discover(self, api_versions):
        self.client.discover(api_versions)

    def list(self, resource, namespace=None, label_selector=None):
        """Every object of ``resource`` (in ``namespace``, or everywhere), paged, with apiVersion and kind set."""
        items, token = [], None
        while True:
            query = {"limit": PAGE}
            if token:
                query["continue"] = token
            if label_selector:
                query["labelSelector"] = label_selector
            page = self.client.request("GET", resource.path(namespace), query)
            for item in page.get("items") or []:
                item.setdefault("apiVersion", resource.api_version)
                item.setdefault("kind", resource.kind)
                items.append(item)
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return items

    def get(self, resource, namespace, name):
        try:
            return self.client.request("GET", resource.path(namespace, name))
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def existing(self, wanted):
        """The current state of ``wanted`` ({key: resource}) as {key: object}, absent keys left out.

        One LIST per resource type (namespaced when all its objects share one
        namespace); per-object GETs only when the caller may not LIST.
        """
        by_resource = {}
        for key, resource in wanted.items():
            by_resource.setdefault((resource.api_version, resource.kind), (resource, []))[1].append(key)
        found = {}
        for resource, keys in by_resource.values():
            namespaces = {key[2] for key in keys}
            scope = next(iter(namespaces)) if resource.namespaced and len(namespaces) == 1 else None
            try:
                listed = {identity(item): item for item in self.list(resource, scope)}
            except ApiError as exc:
                if exc.status != 403:
                    raise
                listed = {}
                for key in keys:
                    item = self.get(resource, key[2], key[3])
                    if item is not None:
                        item.setdefault("apiVersion", resource.api_version)
                        item.setdefault("kind", resource.kind)
                        listed[key] = item
            found.update((key, listed[key]) for key in keys if key in listed)
        return found

    def apply(self, resource, obj, dry_run):
        """Server-side apply of ``obj``; with ``dry_run`` the server validates and answers without persisting."""
        key = identity(obj)
        query = {"fieldManager": self.field_manager}
        if self.force_conflicts:
            query["force"] = "true"
        if dry_run:
            query["dryRun"] = "All"
        return self.client.request(
            "PATCH", resource.path(key[2], key[3]), query, obj, content_type="application/apply-patch+yaml"
        )

    def replace(self, resource, obj, dry_run):
        """PUT ``obj`` as read (its resourceVersion makes a concurrent change fail with 409, not be lost)."""
        key = identity(obj)
        body = dict(obj, metadata={k: v for k, v in obj["metadata"].items() if k != "managedFields"})
        query = {"fieldManager": self.field_manager}
        if dry_run:
            query["dryRun"] = "All"
        return self.client.request("PUT", resource.path(key[2], key[3]), query, body)

    def delete(self, resource, before, dry_run):
        """Delete ``before`` if it is still the version we read (precondition on its uid and resourceVersion)."""
        key = identity(before)
        meta = before.get("metadata") or {}
        # with a body, the API server reads every option from it and ignores the query string
        body = {
            "apiVersion": "v1",
            "kind": "DeleteOptions",
            "preconditions": {"uid": meta.get("uid"), "resourceVersion": meta.get("resourceVersion")},
        }
        if dry_run:
            body["dryRun"] = ["All"]
        try:
            self.client.request("DELETE", resource.path(key[2], key[3]), None, body)
        except ApiError as exc:
            if exc.status != 404:
                raise

    def whoami(self):
        """The caller as the API server authenticates it (SelfSubjectReview): {username, groups}."""
        review = self.client.request(
            "POST",
            "/apis/authentication.k8s.io/v1/selfsubjectreviews",
            body={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
        )
        info = (review.get("status") or {}).get("userInfo") or {}
        return {"username": info.get("username", ""), "groups": list(info.get("groups") or [])}
