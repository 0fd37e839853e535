"""The load-balancer drain with your own tasks files (kubeguard_lb_drain_tasks): a run killed between the
drain and the undrain leaves a marker, and playbooks/lb_heal.yml (first in every playbook that can drain)
runs your undrain tasks for that node only, then drops the marker; a drain that completed leaves none.
Real ansible-playbook runs on the local connection, with tasks files that log each call. Needs no lab."""

import json
import os
import pathlib

from conftest import ansible_playbook

REPO = pathlib.Path(__file__).resolve().parents[2]


def setup(base):
    """Inventory, the user's drain and undrain tasks files (each logs its call), and the log they write."""
    log = base / "balancer.log"
    for action in ("drain", "ready"):
        task = {
            "name": f"Tell the balancer: {action}",
            "ansible.builtin.shell": f'echo "{action} {{{{ kubeguard_lb_drain_server }}}}" >> {log}',
            "changed_when": True,
        }
        (base / f"{action}.yml").write_text(json.dumps([task]))
    hosts = {name: {} for name in ("cp1", "cp2", "cp3")}
    inventory = {
        "all": {
            "vars": {
                "ansible_connection": "local",
                "ansible_python_interpreter": str(REPO / ".venv/bin/python"),
                "ansible_become": False,
                "kubeguard_lb_drain_enabled": True,
                "kubeguard_lb_drain_tasks": str(base / "drain.yml"),
                "kubeguard_lb_drain_undrain_tasks": str(base / "ready.yml"),
                "kubeguard_lb_drain_server": "{{ inventory_hostname }}",
                "kubeguard_lb_drain_marker_dir": str(base / "markers"),
            },
            "children": {"control_plane": {"hosts": hosts}, "etcd": {"hosts": hosts}},
        }
    }
    (base / "inventory.json").write_text(json.dumps(inventory))
    return base / "inventory.json", log


def drain_play(base, host, states):
    """A play that runs lb_drain for ``host`` with each of ``states`` in turn: ["drain"] alone is a run
    killed while that node was out of rotation (nothing after the drain ran)."""
    tasks = [
        {
            "name": f"lb_drain {state}",
            "ansible.builtin.include_role": {"name": "kubeguard.hardening.kubeguard", "tasks_from": "lb_drain"},
            "vars": {"kubeguard_lb_drain_state": state},
        }
        for state in states
    ]
    play = [{"name": "drain", "hosts": host, "gather_facts": False, "tasks": tasks}]
    path = base / f"drain-{host}-{'-'.join(states)}.yml"
    path.write_text(json.dumps(play))
    return path


def lines(log):
    return log.read_text().splitlines() if log.exists() else []


def test_a_killed_runs_drain_is_undone_by_your_undrain_tasks_on_the_next_run(tmp_path):
    inventory, log = setup(tmp_path)
    markers = tmp_path / "markers" / "tasks"
    # Before any drain: nothing to heal, no marker directory yet, and no warning about it.
    heal, recap = ansible_playbook(inventory, "lb_heal.yml")
    assert heal.returncode == 0 and "WARNING" not in heal.stdout + heal.stderr, heal.stdout[-3000:] + heal.stderr
    assert not log.exists() and all(stats["changed"] == 0 for stats in recap.values()), recap
    # A full drain and undrain around a restart: both tasks files ran, no marker is left.
    run, _unused = ansible_playbook(inventory, drain_play(tmp_path, "cp2", ["drain", "ready"]))
    assert run.returncode == 0, run.stdout[-3000:]
    assert lines(log) == ["drain cp2", "ready cp2"]
    assert not list(markers.iterdir())
    # Killed after cp1's drain: cp1 is marked, with mode 0600.
    run, _unused = ansible_playbook(inventory, drain_play(tmp_path, "cp1", ["drain"]))
    assert run.returncode == 0, run.stdout[-3000:]
    assert [p.name for p in markers.iterdir()] == ["cp1"]
    assert (markers / "cp1").stat().st_mode & 0o777 == 0o600
    assert lines(log)[2:] == ["drain cp1"]
    # Check mode lists the heal and changes nothing: your tasks are not run for real, the marker stays.
    check, recap = ansible_playbook(inventory, "lb_heal.yml", "--check")
    assert check.returncode == 0, check.stdout[-3000:]
    assert "your tasks, left drained by an interrupted run: ready cp1" in check.stdout
    assert lines(log)[3:] == [] and (markers / "cp1").exists()
    # The next run's heal: your undrain tasks for cp1 only, then its marker goes.
    heal, recap = ansible_playbook(inventory, "lb_heal.yml")
    assert heal.returncode == 0, heal.stdout[-3000:]
    assert lines(log)[3:] == ["ready cp1"]
    assert not list(markers.iterdir())
    assert recap["cp1"]["changed"] == 2 and recap["cp2"]["changed"] == recap["cp3"]["changed"] == 0, recap
    # Nothing left to heal: the rerun runs no tasks of yours and changes nothing.
    again, recap = ansible_playbook(inventory, "lb_heal.yml")
    assert again.returncode == 0, again.stdout[-3000:]
    assert lines(log)[4:] == [] and all(stats["changed"] == 0 for stats in recap.values()), recap


def test_without_a_drain_configured_the_heal_makes_no_call(tmp_path):
    inventory, log = setup(tmp_path)
    data = json.loads(inventory.read_text())
    data["all"]["vars"]["kubeguard_lb_drain_enabled"] = False
    inventory.write_text(json.dumps(data))
    heal, recap = ansible_playbook(inventory, "lb_heal.yml")
    assert heal.returncode == 0, heal.stdout[-3000:]
    assert all(stats["ok"] == 0 and stats["changed"] == 0 for stats in recap.values()), recap
    assert not log.exists() and not os.path.exists(tmp_path / "markers")


def test_a_relative_marker_dir_is_refused_naming_it_and_nothing_is_written(tmp_path):
    """A relative directory would be resolved from each playbook's directory: the drain's marker and the
    heal's look would not meet."""
    inventory, log = setup(tmp_path)
    data = json.loads(inventory.read_text())
    data["all"]["vars"]["kubeguard_lb_drain_marker_dir"] = "lb-markers"
    inventory.write_text(json.dumps(data))
    for playbook in (drain_play(tmp_path, "cp1", ["drain"]), "lb_heal.yml"):
        run, _unused = ansible_playbook(inventory, playbook)
        assert run.returncode != 0
        assert 'kubeguard_lb_drain_marker_dir: "lb-markers" is not an absolute path' in run.stdout, run.stdout[-2000:]
    assert not log.exists() and not list(tmp_path.rglob("lb-markers"))
