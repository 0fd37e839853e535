# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the report as JUnit XML: one test suite per node (and ``cluster``), one test case per check.

fail -> <failure>, not_applicable -> <skipped>, warn -> a passing case whose
<system-out> says "warn" (CI systems would otherwise hide manual checks or fail
the build on them); evidence and remediation go in <system-out>.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET


def _suite(name, rows):
    suite = ET.Element(
        "testsuite",
        name=f"CIS {name}",
        tests=str(len(rows)),
        failures=str(sum(r["result"] == "fail" for r in rows)),
        errors="0",
        skipped=str(sum(r["result"] == "not_applicable" for r in rows)),
    )
    for row in rows:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"cis.{name}.section{row['section']}",
            name=f"{row['id']} {row['title']}",
        )
        detail = "\n".join(
            [
                f"result: {row['result']}",
                *(f"evidence: {e}" for e in row["evidence"]),
                *([f"reason: {row['reason']}"] if row["reason"] else []),
                f"remediation: {row['remediation']}",
            ]
        )
        if row["result"] == "fail":
            failure = ET.SubElement(case, "failure", message=(row["evidence"] or [row["title"]])[0], type="fail")
            failure.text = detail
        elif row["result"] == "not_applicable":
            ET.SubElement(case, "skipped", message=row["reason"] or "not applicable")
        ET.SubElement(case, "system-out").text = detail
    return suite


def render(doc):
    nodes = sorted({r["node"] for r in doc["results"]}, key=lambda n: (n == "cluster", n))
    root = ET.Element(
        "testsuites",
        name=f"{doc['benchmark']} {doc['cluster']}",
        tests=str(len(doc["results"])),
        failures=str(doc["totals"]["fail"]),
    )
    for node in nodes:
        root.append(_suite(node, [r for r in doc["results"] if r["node"] == node]))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
