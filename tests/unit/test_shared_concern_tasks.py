"""Tasks that do several concerns in one API call (rbac_baseline, network_policy). Tagged with every concern's
tags, --skip-tags on one concern would skip the others with it; so such a task is tagged always and its `when`
reads the concerns this run selects, through kubeguard.hardening.run_by_tags over the concerns' tags and their
toggles. Every other task of main.yml carries exactly one concern's tags."""

import re
from pathlib import Path

import pytest
import yaml

ROLES = Path(__file__).resolve().parents[2] / "roles"
SHARED = ("rbac_baseline", "network_policy")


def entries(role):
    """main.yml's tasks and imports, a block's children with the block's vars."""
    for task in yaml.safe_load((ROLES / role / "tasks/main.yml").read_text()):
        for child in task.get("block") or [task]:
            yield {**child, "vars": {**(task.get("vars") or {}), **(child.get("vars") or {})}}


@pytest.mark.parametrize("role", SHARED)
def test_a_task_of_several_concerns_is_tagged_always_and_selects_them(role):
    shared = 0
    for task in entries(role):
        selectors = [name for name, value in task["vars"].items() if "kubeguard.hardening.run_by_tags(" in str(value)]
        if task["tags"] == ["always"]:
            shared += 1
            assert any(name in str(task["when"]) for name in selectors), task["name"]
        else:
            assert task["tags"][0] == role and len(task["tags"]) == 2, task["name"]
    assert shared > 0


@pytest.mark.parametrize("role", SHARED)
def test_every_concern_has_its_own_tags_and_a_toggle_that_is_read(role):
    defaults = yaml.safe_load((ROLES / role / "defaults/main.yml").read_text())
    task_files = "".join(path.read_text() for path in (ROLES / role / "tasks").glob("*.yml"))
    for task in entries(role):
        for name, value in task["vars"].items():
            if not (name.endswith(("_tags", "_concern")) and isinstance(value, dict)):
                continue
            for concern, tags in value.items():
                assert tags == [role, f"{role}_{concern}"], concern
                assert f"{role}_{concern}_enabled" in defaults, concern
                assert f"{role}_{concern}_enabled" in task_files, f"{concern}'s toggle is not read"


@pytest.mark.parametrize("role", SHARED)
def test_the_selectors_read_each_concern_s_own_toggle(role):
    """Where run_by_tags gets the toggles (enabled=...), each concern of its tags maps to that concern's toggle."""
    checked = 0
    for task in entries(role):
        for value in task["vars"].values():
            found = re.search(
                r"(\w+) \| kubeguard\.hardening\.run_by_tags\([^)]*enabled=(\w+)\)", " ".join(str(value).split())
            )
            if not found:
                continue
            tags, toggles = task["vars"][found[1]], task["vars"][found[2]]
            assert list(toggles) == list(tags), found[2]
            for concern, toggle in toggles.items():
                assert toggle == f"{{{{ {role}_{concern}_enabled }}}}", (found[2], concern)
            checked += 1
    assert checked > 0
