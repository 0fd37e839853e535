# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to the kubeguard.hardening collection: the one error type.

Every ``module_utils/_<area>`` entry point raises :class:`KubeguardError` for
bad input or a refusal, and every module renders it the same way through
:func:`run_module`. ``option`` is the module option the operator has to fix;
it always comes first in the message. A role passes the module the option
``role_vars`` (option -> role variable), and :func:`run_module` renames the
option to the role variable behind it, so an operator reads the name they set.
"""

from __future__ import annotations

# The module option through which a role names its variables (doc fragment kubeguard.hardening.role_vars).
ROLE_VARS = "role_vars"
ROLE_VARS_SPEC = {ROLE_VARS: {"type": "dict", "default": {}}}


class KubeguardError(Exception):
    """A refusal or bad input; ``option`` names what to fix."""

    def __init__(self, option, message):
        super().__init__(option, message)
        self.option = option
        self.message = message

    def describe(self):
        """The message without the option."""
        return self.message

    def __str__(self):
        return f"{self.option}: {self.describe()}" if self.option else self.describe()


def require_facts(facts, source, option="facts", **shape):
    """``facts`` is the registered result of the facts module ``source``: a dict whose keys in ``shape`` have
    those types. Modules that read another module's result refuse anything else before reading it."""
    if not isinstance(facts, dict) or any(not isinstance(facts.get(key), kind) for key, kind in shape.items()):
        raise KubeguardError(option, f"must be the registered result of kubeguard.hardening.{source}")
    return facts


def role_variable(option, role_vars):
    """The role variable behind ``option`` (``leaf_validity_days``, ``rules[2].cidr``), or ``option`` itself.

    The longest key of ``role_vars`` that is ``option`` or its head (followed by
    ``.`` or ``[``) is replaced by its variable; the rest of the path is kept.
    """
    option = option or ""
    best = ""
    for key in role_vars or {}:
        if (option == key or option.startswith((f"{key}.", f"{key}["))) and len(key) > len(best):
            best = key
    return f"{role_vars[best]}{option[len(best) :]}" if best else option


def run_module(module, entry_point, *args, **kwargs):
    """Call ``entry_point(*args, **kwargs)`` and end the module with its result.

    The entry point returns the result dict. A ``warnings`` list in it becomes
    module warnings; a ``diff`` is returned only when the run asked for one.
    A KubeguardError fails the module with the message and the option named,
    renamed to its role variable through the ``role_vars`` option.
    """
    role_vars = module.params.pop(ROLE_VARS, None) or {}
    try:
        result = entry_point(*args, **kwargs)
    except KubeguardError as exc:
        option = role_variable(exc.option, role_vars)
        module.fail_json(msg=f"{option}: {exc.describe()}" if option else exc.describe(), option=option)
    for warning in result.pop("warnings", None) or ():
        module.warn(warning)
    diff = result.pop("diff", None)
    if diff and module._diff:
        result["diff"] = diff
    module.exit_json(**result)
