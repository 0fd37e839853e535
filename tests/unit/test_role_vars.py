"""Every module call of a role tells the module which role variables its options come from (``role_vars``),
so a refusal names the variable the operator sets; and run_module() applies that map once for every module."""

import functools
import glob
import pathlib
import re

import pytest
import yaml
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import (
    KubeguardError,
    role_variable,
    run_module,
)
from kubeguard_test import modules

ROOT = pathlib.Path(__file__).resolve().parents[2]
SIMPLE = re.compile(r"^\{\{\s*([a-z_][a-z0-9_]*)(?:\s+or\s+omit)?\s*\}\}$")
# Options a module names with the role's variable itself (control_plane_component: the component's
# control_plane_<component>_extra_flags, set per task inside the role's module_defaults block).
NATIVE = {("control_plane_component", "extra_flags"), ("control_plane_component", "contributed_flags")}
NATIVE |= {("control_plane_component", "contributed_files")}
# A switch no input can make the module refuse: no error ever names it.
NATIVE |= {("control_plane_component", "defer_to_apiserver")}


def load(path):
    return yaml.safe_load(pathlib.Path(path).read_text())


@functools.cache
def declared():
    names = set()
    for spec in glob.glob(str(ROOT / "roles/*/meta/argument_specs.yml")):
        for entry in (load(spec)["argument_specs"] or {}).values():
            names |= set(entry.get("options") or {})
    return names


def calls():
    """(file, module, args, role_vars in force) for every kubeguard.hardening module call in roles/."""
    found = []

    def walk(node, defaults):
        if isinstance(node, list):
            for item in node:
                walk(item, defaults)
        elif isinstance(node, dict):
            here = dict(defaults)
            for module, args in (node.get("module_defaults") or {}).items():
                here[module] = (args or {}).get("role_vars") or {}
            for key, value in node.items():
                if key.startswith("kubeguard.hardening.") and isinstance(value, dict):
                    name = key.split(".")[-1]
                    in_force = value.get("role_vars", here.get(key) if key in here else None)
                    found.append((file, name, value, in_force))
                if key in ("block", "rescue", "always"):
                    walk(value, here)

    for file in sorted(glob.glob(str(ROOT / "roles/*/tasks/*.yml")) + glob.glob(str(ROOT / "roles/*/handlers/*.yml"))):
        walk(load(file) or [], {})
        # module_defaults themselves
        for task in load(file) or []:
            for key, value in (task.get("module_defaults") or {}).items():
                found.append((file, key.split(".")[-1], value, value.get("role_vars")))
    return found


CALLS = calls()


def test_every_role_calls_modules():
    assert len(CALLS) > 30


@pytest.mark.parametrize("file,module,args,role_vars", CALLS, ids=[f"{c[0].split('roles/')[1]}:{c[1]}" for c in CALLS])
def test_role_vars_name_every_role_variable_passed(file, module, args, role_vars):
    names = declared()
    options = set(modules.argument_spec(module))
    assert "role_vars" in options, f"{module} lacks the kubeguard.hardening.role_vars fragment"
    role_vars = role_vars or {}
    for option, variable in role_vars.items():
        assert option.split(".")[0].split("[")[0] in options, f"role_vars: {option} is not an option of {module}"
        assert variable in names, f"role_vars: {variable} is not a declared role variable"
    for option, value in args.items():
        match = SIMPLE.match(str(value).strip()) if isinstance(value, str) else None
        if match and match.group(1) in names and (module, option) not in NATIVE:
            assert role_vars.get(option) == match.group(1), f"{option} comes from {match.group(1)}: map it in role_vars"


@pytest.mark.parametrize(
    "option,expected",
    [
        ("leaf_validity_days", "cluster_pki_leaf_validity_days"),
        ("service_cidr", "cluster_pki_service_cidr"),
        ("objects", "network_policy_custom_rules"),
        ("objects[3]", "network_policy_custom_rules[3]"),
        ("flags.tls_cipher_suites[0]", "control_plane_tls_cipher_suites[0]"),
        ("flags.other", "control_plane_flags.other"),
        ("flagship", "flagship"),
        ("control_plane_health_timeout", "control_plane_health_timeout"),
        ("", ""),
    ],
)
def test_role_variable_replaces_the_longest_head(option, expected):
    role_vars = {
        "leaf_validity_days": "cluster_pki_leaf_validity_days",
        "service_cidr": "cluster_pki_service_cidr",
        "objects": "network_policy_custom_rules",
        "flags": "control_plane_flags",
        "flags.tls_cipher_suites": "control_plane_tls_cipher_suites",
    }
    assert role_variable(option, role_vars) == expected


class Ended(Exception):
    pass


class FakeModule:
    _diff = False

    def __init__(self, params):
        self.params = params
        self.failed = None

    def fail_json(self, **kwargs):
        self.failed = kwargs
        raise Ended

    def exit_json(self, **kwargs):
        raise AssertionError(f"exit_json({kwargs})")

    def warn(self, text):
        pass


def test_run_module_names_the_role_variable_and_hides_role_vars_from_the_entry_point():
    seen = {}

    def entry(params):
        seen.update(params)
        raise KubeguardError("leaf_validity_days", "at most 36500 days")

    module = FakeModule(
        {"leaf_validity_days": 40000, "role_vars": {"leaf_validity_days": "cluster_pki_leaf_validity_days"}}
    )
    with pytest.raises(Ended):
        run_module(module, entry, module.params)
    assert "role_vars" not in seen
    assert module.failed == {
        "msg": "cluster_pki_leaf_validity_days: at most 36500 days",
        "option": "cluster_pki_leaf_validity_days",
    }


def test_run_module_without_role_vars_names_the_module_option():
    def entry(params):
        raise KubeguardError("leaf_validity_days", "at most 36500 days")

    module = FakeModule({"leaf_validity_days": 40000, "role_vars": {}})
    with pytest.raises(Ended):
        run_module(module, entry, module.params)
    assert module.failed["msg"] == "leaf_validity_days: at most 36500 days"
