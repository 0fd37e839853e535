"""The kubeguard_serial_* knobs: every form the play keyword serial reads is accepted as Ansible reads it, every
other value is refused naming the variable, and the defaults the lookup falls back to are the contract role's."""

import pathlib

import pytest
import yaml
from ansible.errors import AnsibleLookupError
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar
from ansible_collections.kubeguard.hardening.plugins.lookup.serial import KNOBS, LookupModule, batches

DEFAULTS = pathlib.Path(__file__).resolve().parents[4] / "roles/kubeguard/defaults/main.yml"


@pytest.mark.parametrize(
    "value,expected",
    [
        (1, [1]),
        (30, [30]),
        ("5", [5]),
        ("20%", ["20%"]),
        ("100%", ["100%"]),
        ([1, "25%"], [1, "25%"]),
        ([1, 5, "50%"], [1, 5, "50%"]),
    ],
)
def test_accepted_forms(value, expected):
    assert batches("kubeguard_serial_workers", value) == expected


@pytest.mark.parametrize(
    "value", [0, -1, "0", "abc", "0%", "101%", "12.5%", True, None, [], [1, "200%"], {"a": 1}, 1.5]
)
def test_refused_values_name_the_variable(value):
    with pytest.raises(ValueError) as err:
        batches("kubeguard_serial_control_plane", value)
    assert str(err.value).startswith(f"kubeguard_serial_control_plane: {value!r} is not a batch size")


def test_an_unknown_name_is_refused():
    with pytest.raises(ValueError, match="kubeguard_serial_nodes"):
        batches("kubeguard_serial_nodes", 1)


def test_every_knob_has_a_valid_default_in_the_contract_role():
    defaults = yaml.safe_load(DEFAULTS.read_text())
    assert sorted(n for n in defaults if n.startswith("kubeguard_serial_")) == sorted(KNOBS)
    assert defaults["kubeguard_serial_control_plane"] == 1, "control planes change one at a time by default"
    for name in KNOBS:
        assert batches(name, defaults[name])


def lookup(variables):
    return LookupModule(loader=DataLoader(), templar=Templar(loader=DataLoader(), variables=variables))


def test_run_prefers_the_play_value_and_falls_back_to_the_role_default():
    assert lookup({}).run(["kubeguard_serial_ssh"], variables={}) == [1, "25%"]
    assert lookup({}).run(["kubeguard_serial_workers"], variables={"kubeguard_serial_workers": "10%"}) == ["10%"]
    with pytest.raises(AnsibleLookupError, match=r"^kubeguard_serial_workers: 'ten' is not a batch size"):
        lookup({}).run(["kubeguard_serial_workers"], variables={"kubeguard_serial_workers": "ten"})


def test_a_task_value_other_than_the_plays_is_refused_as_ignored(monkeypatch):
    monkeypatch.setattr("ansible_collections.kubeguard.hardening.plugins.lookup.serial.PLAYED", {})
    # The play keyword: no host yet, the extra var or the default.
    assert lookup({}).run(["kubeguard_serial_workers"], variables={}) == [1]
    # A task of the same run: the same value passes, an inventory value that the play could not see does not.
    task = {"inventory_hostname": "worker1"}
    assert lookup({}).run(["kubeguard_serial_workers"], variables={**task, "kubeguard_serial_workers": 1}) == [1]
    ignored = r"^kubeguard_serial_workers: '10%' \(for worker1\) is ignored: .*\(-e kubeguard_serial_workers="
    with pytest.raises(AnsibleLookupError, match=ignored):
        lookup({}).run(["kubeguard_serial_workers"], variables={**task, "kubeguard_serial_workers": "10%"})
    # A knob no play has used yet is only checked for its form.
    assert lookup({}).run(["kubeguard_serial_ssh"], variables={**task, "kubeguard_serial_ssh": 3}) == [3]
