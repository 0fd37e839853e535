# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: ``run`` (cluster_pki_node_plan): a node's side of the cluster_pki role checked
in one call that writes nothing. The endpoint proof (``_endpoint``), what the install of
the node's files and of its node agents' kubeconfigs would do (``_install`` in check mode)
and the expiry report (``_info``), each with its own module's code. The role asks this of
every node at once before anything is written; only the nodes with something pending
then run the install tasks."""

from __future__ import annotations

import functools

from ansible_collections.kubeguard.hardening.plugins.module_utils._common.concerns import only_in_check_mode, summary
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import (
    ROLE_VARS,
    KubeguardError,
    role_variable,
)
from ansible_collections.kubeguard.hardening.plugins.module_utils._pki import _endpoint, _info, _install
from ansible_collections.kubeguard.hardening.plugins.module_utils._pki._specs import CONCERNS

# The concerns whose task writes: pending when their check-mode result changed.
WRITES = ("distribute", "node_agents")


def require_dicts(params):
    """Refuse a concern given as anything but its module's options (a dict); never returns."""
    for concern in CONCERNS:
        if params.get(concern) is not None and not isinstance(params[concern], dict):
            kind = type(params[concern]).__name__
            raise KubeguardError(concern, f"must be a dict of the concern module's options, not {kind}")
    raise KubeguardError("", "the options are not dicts of the concerns' module options")


def run(concerns, check_mode, loaded=_install.unit_loaded):
    """``concerns``: {concern: the validated options of its module, with its ``role_vars``}.

    Each concern's check-mode result comes back under its name, with ``pending`` (the
    concerns whose task has to run). The endpoint proof comes first and its refusal fails
    the call, naming the role variable, as cluster_pki_endpoint would. Any other concern's
    refusal does not: that concern is pending with its ``error``, so its own task runs
    and refuses in its place, as it would without the plan."""
    only_in_check_mode("cluster_pki_node_plan", check_mode)
    install = functools.partial(_install.run, loaded=loaded)
    checks = {"endpoint": _endpoint.run, "distribute": install, "node_agents": install, "report": _info.run}
    checked = []
    for concern in CONCERNS:
        options = concerns.get(concern)
        if options is None:
            continue
        params = {key: value for key, value in options.items() if key != ROLE_VARS}
        try:
            result = checks[concern](params, True)
        except KubeguardError as exc:
            error = KubeguardError(role_variable(exc.option, options.get(ROLE_VARS)), exc.describe())
            if concern == "endpoint":
                raise error from exc
            result = {"changed": False, "error": str(error)}
        pending = "error" in result or (concern in WRITES and result["changed"])
        checked.append((concern, result, pending))
    return {**summary(checked), **{name: result for name, result, _pending in checked}}
