# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the report as one self-contained HTML page (inline CSS and SVG, no script, no external asset).

Totals per section with a stacked bar each (before and after when the report
has a baseline), then the failures with evidence and remediation, then the
manual checks to review, then everything else, folded.
"""

from __future__ import annotations

from html import escape

COLORS = {"pass": "#2e7d32", "fail": "#c62828", "warn": "#f9a825", "not_applicable": "#9e9e9e"}
STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:75em;color:#222}
table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left;
vertical-align:top}th{background:#f3f3f3}.pass{color:#2e7d32}.fail{color:#c62828;font-weight:bold}
.warn{color:#a66b00}.not_applicable{color:#777}ul{margin:0;padding-left:1.2em}code{font-size:.9em}
details{margin:1em 0}summary{cursor:pointer;font-weight:bold}
"""


def _bar(totals, width=320, height=14, label=""):
    """One stacked bar of pass/fail/warn (n/a left out: it says nothing about compliance)."""
    counted = sum(totals.get(k, 0) for k in ("pass", "fail", "warn"))
    x, parts = 0.0, []
    for key in ("pass", "fail", "warn"):
        share = width * totals.get(key, 0) / counted if counted else 0
        if share:
            parts.append(
                f'<rect x="{x:.1f}" y="0" width="{share:.1f}" height="{height}" fill="{COLORS[key]}">'
                f"<title>{escape(label)}{key}: {totals.get(key, 0)}</title></rect>"
            )
        x += share
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="{escape(label)}pass {totals.get("pass", 0)}, fail {totals.get("fail", 0)}, '
        f'warn {totals.get("warn", 0)}"><rect width="{width}" height="{height}" fill="#eee"/>{"".join(parts)}</svg>'
    )


def _sections(doc):
    before = (doc.get("baseline") or {}).get("sections") or {}
    head = "<tr><th>section</th><th>pass</th><th>fail</th><th>warn</th><th>n/a</th><th>pass / fail / warn</th></tr>"
    rows = [head]
    for number, sec in doc["sections"].items():
        bars = _bar(sec, label="after: " if before else "")
        cells = "".join(f'<td class="{k}">{sec[k]}</td>' for k in ("pass", "fail", "warn", "not_applicable"))
        if number in before:
            old = before[number]
            cells = "".join(
                f'<td class="{k}">{old.get(k, 0)} &rarr; {sec[k]}</td>'
                for k in ("pass", "fail", "warn", "not_applicable")
            )
            bars = f"before {_bar(old, label='before: ')}<br>after&nbsp;&nbsp; {bars}"
        rows.append(f"<tr><td>{number} {escape(sec['title'])}</td>{cells}<td>{bars}</td></tr>")
    return "<table>" + "".join(rows) + "</table>"


def _rows(rows, changes):
    head = "<tr><th>ID</th><th>node</th><th>result</th><th>check</th><th>evidence</th><th>remediation</th></tr>"
    out = [head]
    for row in rows:
        key = (row["id"], row["node"])
        was = f"<br><small>was {escape(changes[key])}</small>" if key in changes else ""
        evidence = "".join(f"<li><code>{escape(e)}</code></li>" for e in row["evidence"])
        reason = f"<br><small>{escape(row['reason'])}</small>" if row["reason"] else ""
        kind = "automated" if row["automated"] else "manual"
        out.append(
            f'<tr id="{escape(row["id"])}-{escape(row["node"])}"><td>{escape(row["id"])}</td>'
            f"<td>{escape(row['node'])}</td>"
            f'<td class="{row["result"]}">{escape(row["result"])}{was}</td>'
            f"<td>{escape(row['title'])}<br><small>level {row['level']}, {kind}</small>{reason}</td>"
            f"<td><ul>{evidence}</ul></td><td>{escape(row['remediation'])}</td></tr>"
        )
    return "<table>" + "".join(out) + "</table>"


def render(doc):
    changes = {(c["id"], c["node"]): c["before"] for c in doc.get("changes") or []}
    results = doc["results"]
    failed = sorted(
        (r for r in results if r["result"] == "fail"), key=lambda r: (not r["automated"], r["section"], r["node"])
    )
    warned = [r for r in results if r["result"] == "warn"]
    rest = [r for r in results if r["result"] in ("pass", "not_applicable")]
    totals = doc["totals"]
    baseline = doc.get("baseline")
    compared = ""
    if baseline:
        old = baseline["totals"]
        compared = (
            f"<p>Compared with the report of {escape(baseline.get('generated_at', ''))}: "
            f"fail {old.get('fail', 0)} &rarr; {totals['fail']}, pass {old.get('pass', 0)} &rarr; {totals['pass']}, "
            f"{len(changes)} results changed.</p>"
        )
    title = f"{doc['benchmark']}: {doc['cluster']}"
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{STYLE}</style></head><body>'
        f"<h1>{escape(title)}</h1><p>Generated {escape(doc['generated_at'])} by kubeguard.hardening "
        f"(nodes: {escape(', '.join(doc['nodes']))}). "
        f'<span class="pass">{totals["pass"]} pass</span>, <span class="fail">{totals["fail"]} fail</span>, '
        f'<span class="warn">{totals["warn"]} warn</span>, '
        f'<span class="not_applicable">{totals["not_applicable"]} not applicable</span>.</p>'
        f"{compared}<h2>Totals per section</h2>{_sections(doc)}"
        f"<h2>Failures ({len(failed)}; automated first)</h2>{_rows(failed, changes) if failed else '<p>None.</p>'}"
        f"<h2>To review ({len(warned)}: manual, not decidable from the configuration)</h2>"
        f"{_rows(warned, changes) if warned else '<p>None.</p>'}"
        f"<details><summary>Passed and not applicable ({len(rest)})</summary>{_rows(rest, changes)}</details>"
        "</body></html>\n"
    )
