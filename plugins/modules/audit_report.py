#!/usr/bin/python
# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: audit_report
short_description: Write the CIS audit report (JSON, JUnit XML, HTML and a summary table) on the controller
version_added: 0.2.0
description:
  - Assembles the results of M(kubeguard.hardening.audit_node) (every node) and
    M(kubeguard.hardening.audit_cluster) into one document per cluster and writes C(report.json), C(report.xml)
    (JUnit, one test case per check per node), C(report.html) (one self-contained page) and C(summary.txt) into
    O(dest). docs/audit.md describes the JSON shape; docs/audit-report.schema.json is its JSON Schema.
  - With O(baseline) (an earlier C(report.json)) the report shows before and after.
  - Runs where the report goes, normally the controller (C(delegate_to=localhost)).
author:
  - Kubeguard maintainers (@kubeguard)
attributes:
  check_mode:
    support: full
    description: Computes everything and writes nothing; the audit playbook runs it with check_mode=false, since
      the report is the point of a dry run.
  diff_mode:
    support: none
    description: A report is not diffed.
  idempotent:
    support: none
    description: Every report carries the time it was generated.
  safe_file_operations:
    support: full
    description: Each file is written to a temporary file in O(dest) and renamed.
options:
  dest:
    description: Directory the report files go to (created when missing).
    type: path
    required: true
  cluster_name:
    description: The cluster's name in the report.
    type: str
    default: cluster
  nodes:
    description: "Per inventory name, the result of M(kubeguard.hardening.audit_node) (at least its C(results))."
    type: dict
    required: true
  cluster:
    description: The C(results) of M(kubeguard.hardening.audit_cluster); empty to leave section 5 out.
    type: list
    elements: dict
    default: []
  baseline:
    description: An earlier C(report.json) of this audit, to show before and after.
    type: path
seealso:
  - module: kubeguard.hardening.audit_node
  - module: kubeguard.hardening.audit_cluster
"""

EXAMPLES = r"""
- name: Write the report
  kubeguard.hardening.audit_report:
    dest: /tmp/audit
    cluster_name: prod
    nodes: "{{ dict(ansible_play_hosts | zip(ansible_play_hosts | map('extract', hostvars, 'audit_node_result'))) }}"
    cluster: "{{ audit_cluster_result.results }}"
  delegate_to: localhost
  run_once: true
  check_mode: false
"""

RETURN = r"""
files:
  description: The files written.
  returned: success
  type: list
  elements: str
  sample: [/tmp/audit/report.json, /tmp/audit/report.xml, /tmp/audit/report.html, /tmp/audit/summary.txt]
totals:
  description: Results per outcome.
  returned: success
  type: dict
  sample: {pass: 180, fail: 12, warn: 30, not_applicable: 100}
sections:
  description: Results per outcome for each of sections 1-5.
  returned: success
  type: dict
  sample: {"1": {title: Control Plane Components, pass: 55, fail: 3, warn: 2, not_applicable: 120}}
table:
  description: The short pass/fail/warn table per section, one line each.
  returned: success
  type: list
  elements: str
automated_failures:
  description: The automated checks that fail, as C(ID@node).
  returned: success
  type: list
  elements: str
  sample: ["1.2.15@cp1"]
changes:
  description: How many results differ from O(baseline).
  returned: success
  type: int
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.kubeguard.hardening.plugins.module_utils._audit import report
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import run_module


def main():
    module = AnsibleModule(
        argument_spec={
            "dest": {"type": "path", "required": True},
            "cluster_name": {"type": "str", "default": "cluster"},
            "nodes": {"type": "dict", "required": True},
            "cluster": {"type": "list", "elements": "dict", "default": []},
            "baseline": {"type": "path"},
        },
        supports_check_mode=True,
    )
    run_module(module, report.run, module.params, module.check_mode)


if __name__ == "__main__":
    main()
