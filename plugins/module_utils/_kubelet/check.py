# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: ``run`` (kubelet_plan): the kubelet's configuration, its CIS files and
kube-proxy's metrics address checked in one call that writes nothing. kubelet.yml's
check play asks this of every node at once; only the nodes with something pending
then go through the change plays, where each concern has its own task."""

from __future__ import annotations

from ansible_collections.kubeguard.hardening.plugins.module_utils._common.concerns import only_in_check_mode, summary
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError, role_variable
from ansible_collections.kubeguard.hardening.plugins.module_utils._kubelet.apply import apply_config, apply_kube_proxy
from ansible_collections.kubeguard.hardening.plugins.module_utils._kubelet.cis import fix_files

CHECKS = {"config": apply_config, "files": fix_files, "kube_proxy": apply_kube_proxy}


def run(concerns, check_mode):
    """``concerns``: {concern: the validated options of its module, with its ``role_vars``}.
    Each concern's check-mode result comes back under its name, with ``pending`` (the
    concerns that would change). A refusal names the role variable through the concern's
    own ``role_vars``, as its module would."""
    only_in_check_mode("kubelet_plan", check_mode)
    checked = []
    for concern, options in concerns.items():
        params = {key: value for key, value in options.items() if key != "role_vars"}
        try:
            result = CHECKS[concern](params, True)
        except KubeguardError as exc:
            raise KubeguardError(role_variable(exc.option, options.get("role_vars")), exc.describe()) from exc
        checked.append((concern, result, result["changed"]))
    return {**summary(checked), **{name: result for name, result, _pending in checked}}
