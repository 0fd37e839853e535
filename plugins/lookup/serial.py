# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: serial
author:
  - Kubeguard maintainers (@kubeguard)
short_description: A play's batch size (serial) from a kubeguard_serial_* knob, validated
version_added: 0.2.0
description:
  - Returns the batches of one kubeguard_serial_* variable (kubeguard_serial_control_plane, kubeguard_serial_workers,
    kubeguard_serial_ssh) as a list for the play keyword C(serial), after checking it. A bad value fails the play before
    its first batch, with a message that names the variable.
  - Ansible templates C(serial) once per play, before any host is chosen, so only extra vars (C(-e)), play vars and the
    defaults of the play's roles are visible then, not the inventory. Without one of those, the value is the default of
    the kubeguard role (roles/kubeguard/defaults/main.yml).
  - Called from a task (the kubeguard role validates every knob on every host), it also refuses a value that differs
    from the one a play of the same run used, which is what a value set in the inventory does.
options:
  _terms:
    description:
      - The name of the variable, one of kubeguard_serial_control_plane, kubeguard_serial_workers,
        kubeguard_serial_ssh.
    required: true
    type: list
    elements: str
"""

EXAMPLES = r"""
- name: Harden the workers' kubelets, kubeguard_serial_workers at a time
  hosts: workers
  serial: "{{ query('kubeguard.hardening.serial', 'kubeguard_serial_workers') }}"
  max_fail_percentage: 0
  roles:
    - role: kubeguard.hardening.kubelet
"""

RETURN = r"""
_raw:
  description:
    - The batch sizes, each a whole number of hosts or a percentage string (C(20%)); one entry means every batch has
      that size, several mean growing batches (the last one repeats), as the play keyword C(serial) reads a list.
  type: list
  elements: raw
"""

import pathlib
import re

import yaml
from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

KNOBS = ("kubeguard_serial_control_plane", "kubeguard_serial_workers", "kubeguard_serial_ssh")
_DEFAULTS = pathlib.Path(__file__).resolve().parents[2] / "roles" / "kubeguard" / "defaults" / "main.yml"
_PERCENT = re.compile(r"^([1-9][0-9]?|100)%$")
_COUNT = re.compile(r"^[1-9][0-9]*$")
# What each knob gave the play keyword serial in this run. Ansible templates serial
# once per play in the main process, before the inventory; a task's call (in a
# worker forked after that) sees the inventory's value. A difference means a value
# set in the inventory was ignored: refuse it rather than run other batches than asked.
PLAYED = {}


def batches(name, value):
    """The validated batch list of one knob; raises ValueError naming the variable."""
    if name not in KNOBS:
        raise ValueError(f"{name!r} is not a batch-size variable; use one of {', '.join(KNOBS)}")
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    found = []
    for item in items:
        if isinstance(item, int) and not isinstance(item, bool) and item >= 1:
            found.append(item)
        elif isinstance(item, str) and _COUNT.match(item.strip()):
            found.append(int(item))
        elif isinstance(item, str) and _PERCENT.match(item.strip()):
            found.append(item.strip())
        else:
            found = []
            break
    if not found:
        raise ValueError(
            f"{name}: {value!r} is not a batch size: give a number of hosts (1 or more), "
            "a percentage from 1% to 100%, or a list of them (growing batches, e.g. [1, '20%'])"
        )
    return found


def defaults():
    return yaml.safe_load(_DEFAULTS.read_text()) or {}


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        if len(terms) != 1:
            raise AnsibleLookupError(f"serial: give exactly one variable name, one of {', '.join(KNOBS)}")
        name = str(terms[0])
        variables = variables or {}
        # Extra vars, play vars or the play's role defaults; else the contract role's default.
        value = self._templar.template(variables[name]) if name in variables else defaults().get(name)
        try:
            found = batches(name, value)
        except ValueError as exc:
            raise AnsibleLookupError(str(exc)) from None
        host = variables.get("inventory_hostname")
        if host is None:  # the play keyword
            PLAYED[name] = found
        elif PLAYED.get(name, found) != found:
            raise AnsibleLookupError(
                f"{name}: {value!r} (for {host}) is ignored: plays read it before the inventory and used "
                f"{PLAYED[name]!r}; give it as an extra var instead (-e {name}=...)"
            )
        return found
