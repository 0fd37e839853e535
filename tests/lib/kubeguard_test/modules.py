"""The collection's modules as data: names, argument specs, and a main() run with given parameters."""

from __future__ import annotations

import contextlib
import functools
import importlib
import pathlib
from unittest import mock

from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

ROOT = pathlib.Path(__file__).resolve().parents[3]
NAMES = sorted(p.stem for p in (ROOT / "plugins/modules").glob("*.py") if not p.stem.startswith("_"))


class _Captured(Exception):
    def __init__(self, kwargs):
        super().__init__()
        self.kwargs = kwargs


def module(name):
    return importlib.import_module(f"ansible_collections.kubeguard.hardening.plugins.modules.{name}")


@functools.cache
def argument_spec(name):
    """The argument spec main() gives AnsibleModule (the shared options included)."""

    def capture(*args, **kwargs):
        raise _Captured(kwargs)

    target = module(name)
    # the API modules build theirs in module_utils/_k8s/ansible.py, the others in the module
    try:
        with contextlib.ExitStack() as stack:
            stack.enter_context(mock.patch.object(basic, "AnsibleModule", capture))
            if hasattr(target, "AnsibleModule"):
                stack.enter_context(mock.patch.object(target, "AnsibleModule", capture))
            target.main()
    except _Captured as captured:
        return captured.kwargs["argument_spec"]
    raise AssertionError(f"{name}: main() built no AnsibleModule")


class Exited(Exception):
    """main() ended through exit_json or fail_json."""

    def __init__(self, failed, result):
        super().__init__(result.get("msg"))
        self.failed = failed
        self.result = result


def run(name, params, check_mode=True):
    """Run the module's main() in this process as Ansible would; returns Exited (failed or not)."""
    args = dict(params, _ansible_check_mode=check_mode, _ansible_diff=True)

    def exit_json(self, **kwargs):
        raise Exited(False, kwargs)

    def fail_json(self, msg, **kwargs):
        raise Exited(True, dict(kwargs, msg=msg))

    with (
        patch_module_args(args),
        mock.patch.object(basic.AnsibleModule, "exit_json", exit_json),
        mock.patch.object(basic.AnsibleModule, "fail_json", fail_json),
    ):
        try:
            module(name).main()
        except Exited as ended:
            return ended
    raise AssertionError(f"{name}: main() returned without exit_json or fail_json")
