# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the options of the concerns a ``<role>_plan`` module checks in one call,
each validated with the argument spec of the module that applies it, so the plan and
the apply take the same input and refuse the same mistakes."""

from __future__ import annotations

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError


def validated(given, specs):
    """{concern: its validated options} for each concern of ``specs`` (name: argument spec)
    that ``given`` (name: options, None when not checked) holds."""
    concerns = {}
    for concern, spec in specs.items():
        if given.get(concern) is None:
            continue
        checked = ArgumentSpecValidator(spec).validate(given[concern])
        if checked.error_messages:
            raise KubeguardError(concern, "; ".join(checked.error_messages))
        concerns[concern] = checked.validated_parameters
    return concerns


def only_in_check_mode(module, check_mode):
    """A ``<role>_plan`` that reports what would change runs in check mode only."""
    if not check_mode:
        raise KubeguardError("", f"{module} only checks: run it in check mode (check_mode: true)")


def summary(checked):
    """``checked``: [(name, its check-mode result, whether it is pending)], in order. The
    plan's ``changed``, ``pending`` (the names), the diffs of what would change and the
    warnings, each once; the results give up their own diff and warnings."""
    pending, diffs, warnings = [], [], []
    for name, result, is_pending in checked:
        warnings += result.pop("warnings", None) or []
        diff = result.pop("diff", None)
        if is_pending:
            pending.append(name)
        if diff and result.get("changed"):
            diffs.append(diff)
    plan = {"changed": bool(pending), "pending": pending}
    if diffs:
        plan["diff"] = diffs
    if warnings:
        plan["warnings"] = list(dict.fromkeys(warnings))
    return plan
