# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the API half of site.yml's fast rerun (docs/fast-rerun.md).

One list per kind that rbac_baseline, network_policy and the kubelet's API
binding read or write, reduced to a digest of every object's namespace, name,
uid and resourceVersion: any write to any of them (an edit, a deletion, a new
namespace that needs its default-deny policy, a new binding to anonymous)
moves the digest. Metadata only (PartialObjectMetadataList), so a large
cluster's lists stay small.
"""

from __future__ import annotations

import hashlib

from .client import Client

# (group/version, plural): what the API roles of site.yml compare against.
KINDS = (
    ("v1", "namespaces"),
    ("v1", "serviceaccounts"),
    ("networking.k8s.io/v1", "networkpolicies"),
    ("rbac.authorization.k8s.io/v1", "clusterroles"),
    ("rbac.authorization.k8s.io/v1", "clusterrolebindings"),
    ("rbac.authorization.k8s.io/v1", "roles"),
    ("rbac.authorization.k8s.io/v1", "rolebindings"),
)
METADATA_ONLY = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"


def digest(items):
    """The digest of a list's objects, whatever order the API server listed them in."""
    lines = sorted(
        "\0".join(
            str(meta.get(key, ""))
            for meta in [item.get("metadata", {})]
            for key in ("namespace", "name", "uid", "resourceVersion")
        )
        for item in items
    )
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def run(params, check_mode):
    client = Client.from_kubeconfig(params["kubeconfig"], params.get("context"), params["request_timeout"])
    found = {}
    for api_version, plural in KINDS:
        base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        listing = client.request("GET", f"{base}/{plural}", accept=METADATA_ONLY)
        found[f"api:{plural}"] = digest(listing.get("items") or [])
    return {"changed": False, "fingerprint": found, "requests": client.requests}
