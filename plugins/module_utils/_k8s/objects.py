# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the pure object logic of the bulk apply, with no I/O.

Validating manifests, expanding per-namespace templates, stripping the fields
the server owns (noise), deciding whether anything really changed and building
a diff that never shows Secret values.
"""

from __future__ import annotations

import copy
import fnmatch
import re

from .._common import names
from .._errors import KubeguardError
from .._netpol import validate as netpol

# Metadata the server writes on every object; never part of "did it change".
NOISE_METADATA = ("managedFields", "resourceVersion", "generation", "uid", "creationTimestamp", "selfLink")
HIDDEN = "<hidden>"


def identity(obj):
    """(apiVersion, kind, namespace, name): how results and the existing-object index name an object."""
    meta = obj.get("metadata") or {}
    return obj["apiVersion"], obj["kind"], meta.get("namespace") or "", meta["name"]


def describe(key):
    _api_version, kind, namespace, name = key
    return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"


def validate(objects, option):
    """Every manifest names its apiVersion, kind and metadata.name; nothing is sent otherwise."""
    seen = set()
    for index, obj in enumerate(objects):
        where = f"item {index}"
        if not isinstance(obj, dict):
            raise KubeguardError(option, f"{where} is a {type(obj).__name__}, not a Kubernetes object (dict)")
        for field in ("apiVersion", "kind"):
            if not isinstance(obj.get(field), str) or not obj[field]:
                raise KubeguardError(option, f"{where} has no {field}")
        meta = obj.get("metadata")
        if not isinstance(meta, dict) or not isinstance(meta.get("name"), str) or not meta["name"]:
            raise KubeguardError(option, f"{where} ({obj['kind']}) has no metadata.name")
        if obj["apiVersion"] == "networking.k8s.io/v1" and obj["kind"] == "NetworkPolicy":
            # refused here, not by the API server after the first requests (HTTP 422)
            netpol.spec(
                obj.get("spec") or {}, option, f"NetworkPolicy {describe(identity(obj)).split(' ', 1)[1]}: spec"
            )
        key = identity(obj)
        if key in seen:
            raise KubeguardError(option, f"{describe(key)} is listed twice")
        seen.add(key)


# A namespace name (DNS-1123 label), and a shell pattern of one: a list or dict that Ansible's argument spec turned
# into a string ("['x']") is neither, so it is refused instead of matching nothing and exempting nothing.
NAMESPACE_PATTERN = re.compile(r"[-a-z0-9*?]{1,63}")


def validate_namespaces(values, option, patterns=False):
    """Each of ``values`` is a namespace name, or with ``patterns`` a name with ``*`` and ``?`` in it."""
    for index, value in enumerate(values or ()):
        pattern = patterns and isinstance(value, str) and set("*?") & set(value)
        if not (NAMESPACE_PATTERN.fullmatch(value) if pattern else names.is_label(value)):
            wanted = "a namespace name or a pattern of one with * and ?" if patterns else "a namespace name"
            raise KubeguardError(option, f"item {index}: {value!r} is not {wanted} ({names.LABEL_HINT})")


def namespace_selected(name, excluded):
    """False when ``name`` matches one of the ``excluded`` names or shell patterns (``kube-*``)."""
    return not any(fnmatch.fnmatchcase(name, pattern) for pattern in excluded)


def validate_templates(templates, option):
    """Like validate(); a template must leave metadata.namespace to the expansion."""
    validate(templates, option)
    for index, template in enumerate(templates):
        if template["metadata"].get("namespace"):
            raise KubeguardError(
                option, f"item {index} sets metadata.namespace; templates get every selected namespace"
            )


def expand(templates, namespaces):
    """One copy of every template in every namespace, ``metadata.namespace`` set."""
    out = []
    for namespace in namespaces:
        for template in templates:
            obj = copy.deepcopy(template)
            obj.setdefault("metadata", {})["namespace"] = namespace
            out.append(obj)
    return out


def strip(obj):
    """A copy without status and the server's bookkeeping metadata; None stays None."""
    if obj is None:
        return None
    out = {key: copy.deepcopy(value) for key, value in obj.items() if key != "status"}
    meta = out.get("metadata")
    if isinstance(meta, dict):
        out["metadata"] = {key: value for key, value in meta.items() if key not in NOISE_METADATA}
    return out


def changed(before, after):
    """True when the object differs outside the noise fields (or appears or disappears)."""
    return strip(before) != strip(after)


def _mask_secret(obj, other):
    """Secret values replaced by a marker; the marker says whether the value differs from ``other``'s."""
    if obj is None or obj.get("kind") != "Secret":
        return obj
    for field in ("data", "stringData"):
        values = obj.get(field)
        if isinstance(values, dict):
            theirs = ((other or {}).get(field) or {}) if isinstance(other, dict) else {}
            obj[field] = {
                key: HIDDEN if theirs.get(key) == value else f"{HIDDEN} (differs)" for key, value in values.items()
            }
    return obj


def diff(key, before, after):
    """An Ansible diff entry for one object, noise stripped and Secret values hidden."""
    return {
        "before_header": describe(key) if before is not None else "(absent)",
        "after_header": describe(key) if after is not None else "(absent)",
        "before": _mask_secret(strip(before), strip(after)) or {},
        "after": _mask_secret(strip(after), strip(before)) or {},
    }
