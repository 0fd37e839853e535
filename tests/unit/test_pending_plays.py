"""The playbooks that check every node at once and change only the nodes with a change pending
(ssh_hardening.yml, kubelet.yml) pick those nodes from the results the role's tasks register. A writing
task whose result the pick play does not read would leave its node out of the change play: its change
would never be made. Every task that can change something must register a result that the pick reads.
control_plane.yml's and kubelet.yml's check plays ask one call per node instead (control_plane_plan,
kubelet_plan): every writing task of the role must be one of the concerns that call checks, with the same
options and the same tags."""

import pathlib

import pytest
import yaml

REPO = pathlib.Path(__file__).resolve().parents[2]
# Tasks that only read, check, report or decide: they change nothing on the node.
READ_ONLY = {
    "ansible.builtin.assert",
    "ansible.builtin.debug",
    "ansible.builtin.fail",
    "ansible.builtin.set_fact",
    "ansible.builtin.import_tasks",
    "ansible.builtin.include_tasks",
    "ansible.builtin.wait_for_connection",
    "ansible.builtin.meta",
}
# The facts, the checks and the apply step (reload and proof after a change the pick already saw).
NOT_A_CONCERN = {"facts.yml", "apply.yml", "main.yml", "host_certificate_check.yml"}


def tasks(path):
    for task in yaml.safe_load(path.read_text()) or []:
        yield from tasks_in(task)


def tasks_in(task):
    for key in ("block", "rescue", "always"):
        for inner in task.get(key, []):
            yield from tasks_in(inner)
    if not any(key in task for key in ("block", "rescue", "always")):
        yield task


def module(task):
    return next(key for key in task if "." in key and key.startswith(("ansible.", "kubeguard.")))


def writing_tasks(role):
    for path in sorted((REPO / "roles" / role / "tasks").glob("*.yml")):
        if path.name in NOT_A_CONCERN:
            continue
        for task in tasks(path):
            if module(task) in READ_ONLY or task.get("changed_when") is False or task.get("check_mode") is False:
                continue
            yield path.name, task


def pick_condition(playbook):
    plays = yaml.safe_load((REPO / "playbooks" / playbook).read_text())
    (pick,) = [play for play in plays if play["name"].startswith("Pick the nodes")]
    (task,) = pick["tasks"]
    return " ".join(str(c) for c in task["when"])


@pytest.mark.parametrize("role,playbook", [("ssh_hardening", "ssh_hardening.yml"), ("kubelet", "kubelet.yml")])
def test_every_writing_task_is_read_by_the_pick_play(role, playbook):
    condition = pick_condition(playbook)
    missed = [
        f"{name}: {task['name']} ({task.get('register', 'registers nothing')})"
        for name, task in writing_tasks(role)
        if task.get("register") is None or f"{task['register']} |" not in condition
    ]
    assert missed == [], missed


def assert_selects_by_tags(task, checked, tags, toggles):
    """A task doing several concerns is tagged always and picks its concerns in its when, through run_by_tags
    over the concern tasks' tags and toggles: tagged with all of them, --skip-tags on one would skip every concern."""
    assert task["tags"] == ["always"], task["name"]
    assert f"{checked} | length > 0" in task["when"], task["name"]
    selector = " ".join(task["vars"][checked].split())
    assert (
        f"{tags} | kubeguard.hardening.run_by_tags(ansible_run_tags, ansible_skip_tags, enabled={toggles})" in selector
    )
    assert list(task["vars"][toggles]) == list(task["vars"][tags]), "a toggle for each concern, in the same order"


def test_the_control_plane_check_covers_every_writing_task_with_its_options_and_tags():
    role_tasks = list(tasks(REPO / "roles/control_plane/tasks/main.yml"))
    (check,) = [task for task in role_tasks if module(task) == "kubeguard.hardening.control_plane_plan"]
    checked = check["vars"]["control_plane_check_components"]
    concern_tags = check["vars"]["control_plane_check_tags"]
    assert_selects_by_tags(check, "control_plane_checked", "control_plane_check_tags", "control_plane_check_toggles")
    assert "control_plane_files_enabled" in check["kubeguard.hardening.control_plane_plan"]["files"]
    missed = []
    for task in role_tasks:
        if module(task) in READ_ONLY or module(task) == "kubeguard.hardening.control_plane_facts" or task is check:
            continue
        if task.get("ansible.builtin.include_role", {}).get("tasks_from") == "lb_drain":
            continue  # the load balancer's drain, around a restart the check saw
        if module(task) == "kubeguard.hardening.control_plane_files":
            concern, covered = "files", True
        else:
            args = task[module(task)]
            concern = args["component"]
            # etcd after kube-apiserver: the check reports etcd's deferred change as pending.
            covered = args in checked or (concern == "etcd" and "deferred" in str(task["when"]))
        if not covered or sorted(task["tags"]) != sorted(concern_tags[concern]):
            missed.append(task["name"])
    assert missed == [], missed


def test_the_kubelet_check_covers_every_node_task_with_its_options_and_tags():
    role_tasks = list(tasks(REPO / "roles/kubelet/tasks/main.yml"))
    (check,) = [task for task in role_tasks if module(task) == "kubeguard.hardening.kubelet_plan"]
    missed = []
    for task in role_tasks:
        if module(task) in READ_ONLY or task is check or module(task) == "kubeguard.hardening.kubelet_facts":
            continue
        concern = module(task).removeprefix("kubeguard.hardening.kubelet_")
        checked = check["vars"].get(f"kubelet_check_{concern}")
        passed = f"kubelet_check_{concern}" in check["kubeguard.hardening.kubelet_plan"].get(concern, "")
        tags = check["vars"]["kubelet_check_tags"].get(concern)
        same_tags = task["tags"] == tags == ["kubelet", f"kubelet_{concern}"]
        if checked != task[module(task)] or not passed or not same_tags:
            missed.append(task["name"])
    assert missed == [], missed
    assert_selects_by_tags(check, "kubelet_checked", "kubelet_check_tags", "kubelet_check_toggles")
