# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the ``audit_report`` entry point: one JSON document per cluster, JUnit XML, one HTML page
and the short pass/fail/warn table, written on the controller (docs/audit.md has the shape).

With a baseline (an earlier report.json), the document carries the earlier
totals and every check whose outcome changed, and the page shows both.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone

from .._errors import KubeguardError
from .._node.files import atomic_write
from . import catalog, html, junit

FORMAT = "kubeguard.hardening/cis-audit/v1"
BENCHMARK = "CIS Kubernetes Benchmark v1.12"
OUTCOMES = ("pass", "fail", "warn", "not_applicable")
SCHEMA = "https://github.com/kubeguard/hardening/blob/main/docs/audit-report.schema.json"


def counts(rows):
    out = dict.fromkeys(OUTCOMES, 0)
    for row in rows:
        out[row["result"]] += 1
    return out


def sections(rows):
    return {
        number: {"title": title, **counts([r for r in rows if r["section"] == number])}
        for number, title in catalog.SECTIONS.items()
    }


def document(cluster_name, nodes, cluster_rows, generated_at=None, baseline=None):
    rows = [row for name in sorted(nodes) for row in nodes[name]["results"]] + list(cluster_rows or [])
    doc = {
        "$schema": SCHEMA,
        "format": FORMAT,
        "benchmark": BENCHMARK,
        "cluster": cluster_name,
        "generated_at": generated_at or datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "totals": counts(rows),
        "sections": sections(rows),
        "nodes": {
            name: {**nodes[name].get("node", {}), "totals": counts(nodes[name]["results"])} for name in sorted(nodes)
        },
        "results": rows,
    }
    if baseline:
        before = {(r["id"], r["node"]): r["result"] for r in baseline.get("results") or []}
        doc["baseline"] = {
            "generated_at": baseline.get("generated_at", ""),
            "totals": baseline.get("totals") or counts(baseline.get("results") or []),
            "sections": baseline.get("sections") or sections(baseline.get("results") or []),
        }
        doc["changes"] = [
            {"id": r["id"], "node": r["node"], "before": before[(r["id"], r["node"])], "after": r["result"]}
            for r in rows
            if (r["id"], r["node"]) in before and before[(r["id"], r["node"])] != r["result"]
        ]
    return doc


def automated_failures(doc):
    return [r for r in doc["results"] if r["result"] == "fail" and r["automated"]]


def table(doc):
    """The short table printed at the end of site.yml and make demo."""
    lines = [f"{BENCHMARK}, cluster {doc['cluster']} ({doc['generated_at']})"]
    lines.append(f"{'section':<34} {'pass':>5} {'fail':>5} {'warn':>5} {'n/a':>5}")
    for number, sec in doc["sections"].items():
        label = f"{number} {sec['title']}"
        lines.append(f"{label:<34} {sec['pass']:>5} {sec['fail']:>5} {sec['warn']:>5} {sec['not_applicable']:>5}")
    totals = doc["totals"]
    lines.append(
        f"{'total':<34} {totals['pass']:>5} {totals['fail']:>5} {totals['warn']:>5} {totals['not_applicable']:>5}"
    )
    failing = automated_failures(doc)
    lines.append(
        f"automated checks failing: {len(failing)}"
        + (": " + ", ".join(sorted({f"{r['id']}@{r['node']}" for r in failing})[:12]) if failing else "")
    )
    return lines


def _load_baseline(path):
    if not path:
        return None
    try:
        with open(path) as handle:
            data = json.load(handle)
    except (OSError, ValueError) as exc:
        raise KubeguardError("baseline", f"cannot read the earlier report {path}: {exc}") from None
    if data.get("format") != FORMAT:
        raise KubeguardError("baseline", f"{path} is not a report of this audit (format {data.get('format')!r})")
    return data


def _validate(params):
    if not params.get("dest"):
        raise KubeguardError("dest", "needs the report directory")
    for name, node in (params.get("nodes") or {}).items():
        if not isinstance(node, dict) or not isinstance(node.get("results"), list):
            raise KubeguardError("nodes", f"{name}: not an audit_node result (no results list)")


def run(params, check_mode=False):
    _validate(params)
    baseline = _load_baseline(params.get("baseline"))
    doc = document(
        params.get("cluster_name") or "cluster", params.get("nodes") or {}, params.get("cluster"), baseline=baseline
    )
    dest = params["dest"]
    outputs = {
        "report.json": json.dumps(doc, indent=2, sort_keys=False) + "\n",
        "report.xml": junit.render(doc),
        "report.html": html.render(doc),
        "summary.txt": "\n".join(table(doc)) + "\n",
    }
    if not check_mode:
        os.makedirs(dest, mode=0o755, exist_ok=True)
        for name, text in outputs.items():
            atomic_write(os.path.join(dest, name), text.encode(), 0o644)
    return {
        "changed": not check_mode,
        "files": [os.path.join(dest, name) for name in outputs],
        "totals": doc["totals"],
        "sections": doc["sections"],
        "table": table(doc),
        "automated_failures": [f"{r['id']}@{r['node']}" for r in automated_failures(doc)],
        "changes": len(doc.get("changes") or []),
    }
