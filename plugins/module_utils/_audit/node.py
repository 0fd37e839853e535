# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the ``audit_node`` entry point: gather once, evaluate every node check of sections 1-4.

Read-only in both modes: it opens, stats and parses files and runs the
binaries' ``--version``/``--help`` (through the facts modules' gathering),
and never writes. Every check of the catalog that is not cluster-wide gets a
row: its outcome here, or not_applicable with the reason.
"""

from __future__ import annotations

from . import catalog, node_checks, node_facts, node_files, node_kubelet

SCOPE_COMPONENT = {
    "apiserver": "kube-apiserver",
    "controller_manager": "kube-controller-manager",
    "scheduler": "kube-scheduler",
    "etcd": "etcd",
}


def _read_bytes(path):
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError:
        return None


def _absent(scope, facts):
    """Why a scope does not apply on this node, or None when it does."""
    components = facts["control_plane"]["components"]
    if scope in SCOPE_COMPONENT:
        return None if SCOPE_COMPONENT[scope] in components else f"no {SCOPE_COMPONENT[scope]} on this node"
    if scope == "control_plane":
        return None if components else "no control-plane component on this node"
    if scope == "kubelet":
        return None if facts["kubelet"].get("kubelet") else "no kubelet on this node"
    if scope == "kube_proxy":
        return None if facts["kubelet"].get("kube_proxy") else "no kube-proxy on this node"
    return "evaluated once for the cluster"


def evaluate(facts, node):
    """One result row per node check of the catalog."""
    kubelet = node_kubelet.settings(facts) if facts["kubelet"].get("kubelet") else None
    found = {}
    if facts["control_plane"]["components"]:
        found.update(node_files.control_plane(facts))
        found.update(node_checks.control_plane(facts, _read_bytes))
    if kubelet is not None:
        found.update(node_files.kubelet(facts, kubelet))
        found.update(node_kubelet.checks(facts, kubelet))
    found.update(node_kubelet.kube_proxy(facts, node_facts.load))
    rows = []
    for check_id in catalog.node_checks():
        scope = catalog.BY_ID[check_id][3]
        absent = _absent(scope, facts)
        if absent:
            rows.append(catalog.result(check_id, node, "not_applicable", [], absent))
        elif check_id in found:
            outcome, evidence = found[check_id]
            reason = "manual: not decidable from the node, review the evidence" if outcome == "warn" else ""
            rows.append(catalog.result(check_id, node, outcome, evidence, reason))
        else:
            rows.append(catalog.result(check_id, node, "warn", [], "not evaluated on this node"))
    return rows


def run(params, check_mode=False):
    facts = node_facts.gather(params)
    rows = evaluate(facts, params.get("node") or "")
    components = facts["control_plane"]["components"]
    return {
        "changed": False,
        "results": rows,
        "node": {
            "name": params.get("node") or "",
            "layout": facts["control_plane"]["layout"],
            "components": sorted(components) + [n for n in ("kubelet", "kube_proxy") if facts["kubelet"].get(n)],
            "versions": {name: (c.get("binary") or {}).get("version", "") for name, c in components.items()},
        },
    }
