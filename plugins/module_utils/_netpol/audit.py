# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: CIS 5.3.2 coverage: which namespaces are not default-deny in both directions.

A namespace is covered when it has NetworkPolicies and every pod in it is
isolated for ingress and for egress, that is, some policy with an empty
``podSelector`` lists each direction in its (defaulted) policy types. Allow
rules may be added on top; isolation is what makes them the only way in or out.
"""

from __future__ import annotations

from .._k8s.objects import namespace_selected
from .policy import policy_types


def _selects_every_pod(policy):
    selector = (policy.get("spec") or {}).get("podSelector") or {}
    return not selector.get("matchLabels") and not selector.get("matchExpressions")


def coverage(namespaces, policies, exempt=()):
    """[{namespace, policies, isolated_ingress, isolated_egress, covered, cis}] for every non-exempt namespace."""
    by_namespace = {}
    for policy in policies:
        by_namespace.setdefault((policy.get("metadata") or {}).get("namespace"), []).append(policy)
    report = []
    for name in sorted(namespaces):
        if not namespace_selected(name, exempt):
            continue
        own = by_namespace.get(name, [])
        isolating = [policy_types(p) for p in own if _selects_every_pod(p)]
        ingress = any("Ingress" in types for types in isolating)
        egress = any("Egress" in types for types in isolating)
        report.append(
            {
                "namespace": name,
                "cis": "5.3.2",
                "policies": sorted((p.get("metadata") or {}).get("name") for p in own),
                "isolated_ingress": ingress,
                "isolated_egress": egress,
                "covered": bool(own) and ingress and egress,
            }
        )
    return report
