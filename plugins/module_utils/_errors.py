# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to the kubeguard.hardening collection: the one error type.

Every ``module_utils/_<area>`` entry point raises :class:`KubeguardError` for
bad input or a refusal, and every module renders it the same way through
:func:`run_module`. ``option`` is the module option (or, in a role, the role
variable) the operator has to fix; it always comes first in the message.
"""

from __future__ import annotations


class KubeguardError(Exception):
    """A refusal or bad input; ``option`` names what to fix."""

    def __init__(self, option, message):
        super().__init__(option, message)
        self.option = option
        self.message = message

    def __str__(self):
        return f"{self.option}: {self.message}" if self.option else self.message


def run_module(module, entry_point, *args, **kwargs):
    """Call ``entry_point(*args, **kwargs)`` and end the module with its result.

    The entry point returns the result dict. A ``warnings`` list in it becomes
    module warnings; a ``diff`` is returned only when the run asked for one.
    A KubeguardError fails the module with the message and the option named.
    """
    try:
        result = entry_point(*args, **kwargs)
    except KubeguardError as exc:
        module.fail_json(msg=str(exc), option=exc.option)
    for warning in result.pop("warnings", None) or ():
        module.warn(warning)
    diff = result.pop("diff", None)
    if diff and module._diff:
        result["diff"] = diff
    module.exit_json(**result)
