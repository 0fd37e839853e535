"""run_by_tags against Ansible's own tag rules: every combination of a few
tags, special ones included, must select exactly what a real Task would."""

from __future__ import annotations

import itertools
import re

import pytest
from ansible.playbook.taggable import Taggable
from ansible_collections.kubeguard.hardening.plugins.filter.run_by_tags import FilterModule
from ansible_collections.kubeguard.hardening.plugins.module_utils._common.tags import run_by_tags, would_run
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError

TASK_TAGS = [[], ["etcd"], ["control_plane", "etcd"], ["always"], ["never", "etcd"], ["always", "etcd"]]
CLI_TAGS = [[], ["all"], ["tagged"], ["untagged"], ["etcd"], ["control_plane"], ["always"], ["never"], ["all", "never"]]


class _Tagged(Taggable):
    """Ansible's own evaluate_tags over a fixed tag list (no templating: the tags are literals)."""

    def __init__(self, tags):
        self._fixed = list(tags)
        self._loader = None

    @property
    def tags(self):
        return self._fixed

    def _get_all_taggable_objects(self):
        return []


def ansible_runs(tags, run_tags, skip_tags):
    return _Tagged(tags).evaluate_tags(run_tags, skip_tags, all_vars={})


@pytest.mark.parametrize(("tags", "run_tags", "skip_tags"), list(itertools.product(TASK_TAGS, CLI_TAGS, CLI_TAGS)))
def test_agrees_with_ansible(tags, run_tags, skip_tags):
    # ansible-playbook turns no --tags into ["all"]; both forms are compared.
    assert would_run(tags, run_tags, skip_tags) == ansible_runs(tags, run_tags, skip_tags)


def test_concerns_in_input_order():
    tags = {"files": ["cp", "cp_files"], "etcd": ["cp", "cp_etcd"], "scheduler": ["cp", "cp_scheduler"]}
    assert run_by_tags(tags, ["all"], []) == ["files", "etcd", "scheduler"]
    assert run_by_tags(tags, ["cp_etcd"], []) == ["etcd"]
    assert run_by_tags(tags, ["cp"], ["cp_files"]) == ["etcd", "scheduler"]
    assert run_by_tags(tags, ["other"], []) == []


def test_filter_refuses_a_list():
    from ansible.errors import AnsibleFilterError

    with pytest.raises(AnsibleFilterError, match="mapping"):
        FilterModule().filters()["run_by_tags"](["etcd"], ["all"], [])


def test_toggled_off_concerns_are_left_out():
    tags = {"files": ["cp", "cp_files"], "etcd": ["cp", "cp_etcd"], "scheduler": ["cp", "cp_scheduler"]}
    enabled = {"files": True, "etcd": False, "scheduler": True}
    assert run_by_tags(tags, ["all"], [], enabled) == ["files", "scheduler"]
    assert run_by_tags(tags, ["cp_etcd"], [], enabled) == []
    assert run_by_tags(tags, ["all"], ["cp_files"], enabled) == ["scheduler"]


@pytest.mark.parametrize(
    ("enabled", "message"),
    [
        ({"etcd": True}, "has no toggle for ['files']"),
        ({"etcd": True, "files": "yes"}, "the toggles of ['files'] are not booleans"),
        (["etcd"], "must map each concern to its toggle"),
    ],
)
def test_toggles_must_cover_every_concern_as_booleans(enabled, message):
    with pytest.raises(KubeguardError, match=re.escape(message)) as caught:
        run_by_tags({"files": ["cp_files"], "etcd": ["cp_etcd"]}, ["all"], [], enabled)
    assert caught.value.option == "enabled"


def test_filter_reads_toggles_as_ansible_booleans_and_names_a_bad_one():
    from ansible.errors import AnsibleFilterError

    run = FilterModule().filters()["run_by_tags"]
    tags = {"files": ["cp_files"], "etcd": ["cp_etcd"]}
    assert run(tags, ["all"], [], enabled={"files": "yes", "etcd": "False"}) == ["files"]
    assert run(tags, ["all"], [], enabled={"files": 1, "etcd": False}) == ["files"]
    with pytest.raises(AnsibleFilterError, match="run_by_tags"):
        run(tags, ["all"], [], enabled={"files": "maybe", "etcd": True})
    with pytest.raises(AnsibleFilterError, match="has no toggle for"):
        run(tags, ["all"], [], enabled={"files": True})
