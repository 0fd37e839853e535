# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: ``check_node`` (control_plane_plan): one node's CIS files and every
component it runs, checked in one call that writes nothing. control_plane.yml's
check play asks this of every node at once; only the nodes with something
pending then go through the serial play, one task per component."""

from __future__ import annotations

from ansible_collections.kubeguard.hardening.plugins.module_utils._common.concerns import only_in_check_mode, summary
from ansible_collections.kubeguard.hardening.plugins.module_utils._control_plane.apply import apply
from ansible_collections.kubeguard.hardening.plugins.module_utils._control_plane.cis import fix_files
from ansible_collections.kubeguard.hardening.plugins.module_utils._control_plane.gather import gather


def check_node(params, check_mode):
    """What control_plane_files and control_plane_component would do on this node, in
    the order the role runs them; nothing is written. ``pending`` names what would
    change: ``files`` and each component that would be rewritten or restarted, etcd
    also when it would wait for kube-apiserver (``deferred``)."""
    only_in_check_mode("control_plane_plan", check_mode)
    facts = params["facts"] or gather(params)
    checked = []
    if params["files"]:
        files = fix_files({"facts": facts}, check_mode=True)
        checked.append(("files", files, files["changed"]))
    for item in params["components"]:
        one = apply({**params, **item, "facts": facts}, check_mode=True)
        checked.append((item["component"], one, one["changed"] or bool(one.get("deferred"))))
    result = summary(checked)
    results = {name: one for name, one, _pending in checked}
    if params["files"]:
        result["files"] = results.pop("files")
    result["components"] = results
    return result
