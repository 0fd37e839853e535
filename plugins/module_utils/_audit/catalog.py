# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: every recommendation of the CIS Kubernetes Benchmark v1.12, sections 1-5, as data.

One row per recommendation: (ID, level, automated?, scope, title, remediation).
``scope`` says where it is evaluated: on a node running kube-apiserver
(``apiserver``), kube-controller-manager (``controller_manager``),
kube-scheduler (``scheduler``), etcd (``etcd``), any control-plane component
(``control_plane``), a kubelet (``kubelet``), kube-proxy (``kube_proxy``), or
once for the cluster through the API (``cluster``). The remediation names the
variable of this collection that fixes it (its role sets it by default), or
says what the operator has to do where no role of ours covers it.
"""

from __future__ import annotations

from . import catalog_control_plane, catalog_policies, catalog_workers

SECTIONS = {
    "1": "Control Plane Components",
    "2": "etcd",
    "3": "Control Plane Configuration",
    "4": "Worker Nodes",
    "5": "Policies",
}

CHECKS = catalog_control_plane.CHECKS + catalog_workers.CHECKS + catalog_policies.CHECKS

BY_ID = {row[0]: row for row in CHECKS}
NODE_SCOPES = ("apiserver", "controller_manager", "scheduler", "etcd", "control_plane", "kubelet", "kube_proxy")


def section(check_id):
    return check_id.split(".", 1)[0]


def result(check_id, node, outcome, evidence, reason=""):
    """One result row: the catalog's fields plus the outcome. ``evidence`` is a list of short strings."""
    _unused, level, automated, scope, title, remediation = BY_ID[check_id]
    return {
        "id": check_id,
        "node": node,
        "result": outcome,
        "title": title,
        "section": section(check_id),
        "level": level,
        "automated": automated,
        "scope": scope,
        "evidence": [str(e) for e in evidence],
        "reason": reason,
        "remediation": remediation,
    }


def node_checks():
    return [row[0] for row in CHECKS if row[3] != "cluster"]


def cluster_checks():
    return [row[0] for row in CHECKS if row[3] == "cluster"]
