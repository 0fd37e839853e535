# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to the kubeguard.hardening collection: the entry point of ``node_os_plan``.
The firewall, kernel, audit, login and packages checks of a node in one module
call: a rerun with nothing to do pays one round trip per node for them, not five. Each
concern is planned by the same code as its own module, in check mode, so the
plan and the apply can never disagree; nothing is written."""

from __future__ import annotations

from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError, role_variable
from ansible_collections.kubeguard.hardening.plugins.module_utils._node_os import audit, kernel, login, nft, packages


def _firewall(params, node):
    return nft.apply(params, True, node)


def _kernel(params, _node):
    return kernel.run(params, True)


def _audit(params, node):
    return audit.run(params, True, node)


def _login(params, _node):
    return login.run(params, True)


def _packages(params, _node):
    return packages.plan(params)


CHECKS = {"firewall": _firewall, "kernel": _kernel, "audit": _audit, "login": _login, "packages": _packages}


def run(concerns, node, role_vars=None):
    """``concerns``: {concern: its module's validated options}. Returns {concern: its module's check-mode
    result, without the diff}. A refusal names ``<concern>.<option>`` (``kernel.sysctls``) through
    ``role_vars``, the role's map, or the concern's own option when the map has no entry for it."""
    result = {"changed": False, "warnings": []}
    for concern, options in concerns.items():
        params = {key: value for key, value in options.items() if key != "role_vars"}
        try:
            checked = CHECKS[concern](params, node)
        except KubeguardError as exc:
            path = f"{concern}.{exc.option}" if exc.option else concern
            named = role_variable(path, role_vars)
            raise KubeguardError(exc.option if named == path else named, exc.describe()) from exc
        checked.pop("diff", None)
        result["warnings"].extend(checked.pop("warnings", None) or ())
        checked["changed"] = False  # a plan writes nothing
        result[concern] = checked
    return result
