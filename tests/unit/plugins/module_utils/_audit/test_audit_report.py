"""The report formats, read back by real consumers: jsonschema for the JSON, junitparser for the JUnit XML,
the standard library's HTML parser for the page (the headless-browser proof is in the lab tests)."""

import json
from html.parser import HTMLParser
from pathlib import Path

import jsonschema
import pytest
from ansible_collections.kubeguard.hardening.plugins.module_utils._audit import catalog, report
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError
from junitparser import Failure, JUnitXml, Skipped

SCHEMA = json.loads((Path(__file__).resolve().parents[5] / "docs" / "audit-report.schema.json").read_text())


def rows(node, outcomes):
    return [catalog.result(i, node, o, [f"evidence of {i}"], "r" if o == "not_applicable" else "") for i, o in outcomes]


NODES = {
    "cp1": {"results": rows("cp1", [("1.2.6", "fail"), ("1.2.7", "pass"), ("4.2.4", "warn")]), "node": {"name": "cp1"}},
    "worker1": {"results": rows("worker1", [("1.2.6", "not_applicable"), ("4.2.4", "fail")])},
}
CLUSTER = rows("cluster", [("5.3.2", "fail"), ("5.1.1", "pass")])


def write(tmp_path, **extra):
    params = {"dest": str(tmp_path), "cluster_name": "lab", "nodes": NODES, "cluster": CLUSTER, **extra}
    return report.run(params)


def test_json_validates_against_its_schema_and_every_result_has_the_five_keys(tmp_path):
    result = write(tmp_path)
    doc = json.loads((tmp_path / "report.json").read_text())
    jsonschema.validate(doc, SCHEMA)
    assert len(doc["results"]) == 7
    for row in doc["results"]:
        assert {"id", "node", "result", "evidence", "remediation"} <= set(row)
    assert doc["totals"] == {"pass": 2, "fail": 3, "warn": 1, "not_applicable": 1}
    assert result["automated_failures"] == ["1.2.6@cp1"]


def test_schema_rejects_an_unknown_outcome(tmp_path):
    write(tmp_path)
    doc = json.loads((tmp_path / "report.json").read_text())
    doc["results"][0]["result"] = "error"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, SCHEMA)


def test_junit_has_one_case_per_check_per_node(tmp_path):
    write(tmp_path)
    xml = JUnitXml.fromfile(str(tmp_path / "report.xml"))
    cases = {(suite.name, case.name): case for suite in xml for case in suite}
    assert len(cases) == 7
    failing = cases[("CIS cp1", "1.2.6 Authorization does not include AlwaysAllow")]
    assert any(isinstance(r, Failure) for r in failing.result)
    skipped = cases[("CIS worker1", "1.2.6 Authorization does not include AlwaysAllow")]
    assert any(isinstance(r, Skipped) for r in skipped.result)
    assert cases[("CIS cp1", "1.2.7 Authorization includes Node")].is_passed


class _Text(HTMLParser):
    def __init__(self):
        super().__init__()
        self.text, self.tags = [], set()

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        assert tag not in ("script", "link", "img", "iframe")  # self-contained, nothing fetched

    def handle_data(self, data):
        self.text.append(data)


def test_html_lists_failures_first_and_shows_before_and_after(tmp_path):
    write(tmp_path / "before")
    result = write(tmp_path / "after", baseline=str(tmp_path / "before" / "report.json"))
    assert result["changes"] == 0
    page = (tmp_path / "after" / "report.html").read_text()
    parser = _Text()
    parser.feed(page)
    text = " ".join(parser.text)
    assert "svg" in parser.tags
    assert text.index("Failures") < text.index("To review") < text.index("Passed and not applicable")
    assert "before" in text and "Compared with the report of" in text


def test_a_baseline_that_is_not_a_report_is_refused(tmp_path):
    (tmp_path / "other.json").write_text("{}")
    with pytest.raises(KubeguardError, match=r"^baseline: "):
        write(tmp_path, baseline=str(tmp_path / "other.json"))
    assert not (tmp_path / "report.json").exists()


def test_the_summary_table_has_a_line_per_section():
    doc = report.document("lab", NODES, CLUSTER, generated_at="2026-01-01T00:00:00Z")
    lines = report.table(doc)
    assert any(line.startswith("1 Control Plane Components") for line in lines)
    assert lines[-1] == "automated checks failing: 1: 1.2.6@cp1"
