# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to the kubeguard.hardening collection (no stable API): the CIS
Kubernetes Benchmark v1.12 audit behind ``audit_node``, ``audit_cluster`` and
``audit_report``. Read-only: nothing here writes to a node or to the API.

- ``catalog``: every recommendation of sections 1-5 as data (ID, title,
  level, automated or manual, where it applies, the variable that fixes it);
- ``effective``: the values a component really runs with, read the way the
  apiserver and the kubelet read them (flags, structured config files,
  defaults);
- ``node_facts``: one gathering per node, reusing ``control_plane_facts`` and
  ``kubelet_facts`` (their ``gather``), plus the structured config files;
- ``node_checks`` / ``node_files``: the evaluators of sections 1-4;
- ``policies``: the evaluators of section 5 over one bulk read of the API
  (reusing ``_rbac.audit`` and ``_netpol.audit``);
- ``report``, ``junit``, ``html``: the JSON document, JUnit XML and the
  self-contained HTML page.
"""
