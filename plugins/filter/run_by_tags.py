# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: run_by_tags
author:
  - Kubeguard maintainers (@kubeguard)
short_description: The concerns whose tasks this run's --tags and --skip-tags would run
version_added: 0.2.0
description:
  - Takes a mapping of concern name to the tags of that concern's task, and returns the names of the concerns whose task
    Ansible would run under this run's C(--tags) and C(--skip-tags), in the mapping's order.
  - A check task that does the work of several tasks in one call (the C(*_plan) modules) uses it to check exactly the
    concerns the tasks it stands for would change, so C(--tags control_plane_etcd) checks etcd alone.
  - It applies Ansible's own rules, with the special tags C(all), C(tagged), C(always) and C(never).
options:
  _input:
    description: Concern name to the list of tags of its task.
    type: dict
    required: true
  run_tags:
    description: The run's C(ansible_run_tags).
    type: list
    elements: str
    required: true
  skip_tags:
    description: The run's C(ansible_skip_tags).
    type: list
    elements: str
    required: true
  enabled:
    description:
      - Each concern's toggle (its C(<role>_<concern>_enabled)), for every concern of the input. A concern toggled off
        is left out, as its task's C(when) would leave it out.
      - Values are read as Ansible booleans (C(true), C(yes), C("1")...).
      - Omitted, every concern counts as enabled.
    type: dict
"""

EXAMPLES = r"""
- name: Check the control-plane components this run's tags select, in one call
  kubeguard.hardening.control_plane_plan:
    components: "{{ components | selectattr('component', 'in', control_plane_checked) }}"
  vars:
    control_plane_check_tags:
      etcd: [control_plane, control_plane_etcd]
      kube-scheduler: [control_plane, control_plane_scheduler]
    control_plane_check_enabled:
      etcd: "{{ control_plane_etcd_enabled }}"
      kube-scheduler: "{{ control_plane_scheduler_enabled }}"
    control_plane_checked: >-
      {{ control_plane_check_tags
         | kubeguard.hardening.run_by_tags(ansible_run_tags, ansible_skip_tags, enabled=control_plane_check_enabled) }}
  check_mode: true
"""

RETURN = r"""
_value:
  description: The names of the concerns whose task would run, in the input's order.
  type: list
  elements: str
"""

from ansible.errors import AnsibleFilterError
from ansible.module_utils.parsing.convert_bool import boolean
from ansible_collections.kubeguard.hardening.plugins.module_utils._common.tags import run_by_tags
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError


def _filter(tags_by_concern, run_tags, skip_tags, enabled=None):
    if not isinstance(tags_by_concern, dict):
        raise AnsibleFilterError(
            f"run_by_tags expects a mapping of concern to tags, got {type(tags_by_concern).__name__}"
        )
    try:
        if isinstance(enabled, dict):
            enabled = {name: boolean(value, strict=True) for name, value in enabled.items()}
        return run_by_tags(tags_by_concern, run_tags, skip_tags, enabled)
    except (KubeguardError, TypeError) as exc:
        raise AnsibleFilterError(f"run_by_tags: {exc}") from None


class FilterModule:
    def filters(self):
        return {"run_by_tags": _filter}
