"""cluster_pki checks each node's side in one cluster_pki_node_plan call (generate.yml), before
anything is written anywhere: the endpoint proof, and each node concern this run's toggles and
tags select. Its install and report tasks then run only where the plan found something pending.
A writing task that the plan does not check with the same options would be skipped with its
change never made; a concern checked under other tags or toggles than its task's would decide
for a task that does not run. This proves every node concern's task is covered by the plan with
its own options, tags and toggle, and that the proof still comes first."""

import pathlib

import yaml

REPO = pathlib.Path(__file__).resolve().parents[2]
TASKS = REPO / "roles/cluster_pki/tasks"
PLAN = "kubeguard.hardening.cluster_pki_node_plan"
# The node concerns: their task file and the module of their (one) node call.
CONCERNS = {
    "distribute": ("distribute.yml", "kubeguard.hardening.cluster_pki_install"),
    "node_agents": ("node_agents.yml", "kubeguard.hardening.cluster_pki_install"),
    "report": ("report.yml", "kubeguard.hardening.cluster_pki_info"),
}
# Tasks that read or decide only: they change nothing on the node.
READ_ONLY = {"ansible.builtin.slurp", "ansible.builtin.set_fact"}


def load(name):
    return yaml.safe_load((TASKS / name).read_text())


def module(task):
    return next(key for key in task if "." in key and key.startswith(("ansible.", "kubeguard.")))


def plan_task():
    (task,) = [task for task in load("generate.yml") if PLAN in task]
    return task


def imports():
    return {
        task["ansible.builtin.import_tasks"]: task
        for task in load("main.yml")
        if "ansible.builtin.import_tasks" in task
    }


def test_every_node_task_is_checked_by_the_plan_with_its_own_options():
    plan = plan_task()
    missed = []
    for concern, (name, writer) in CONCERNS.items():
        for task in load(name):
            if module(task) in READ_ONLY:
                continue
            checked = plan["vars"].get(f"cluster_pki_check_{concern}")
            passed = f"cluster_pki_check_{concern}" in plan[PLAN].get(concern, "")
            selected = f"'{concern}' in cluster_pki_checked" in plan[PLAN].get(concern, "")
            if module(task) != writer or task[writer] != checked or not passed or not selected:
                missed.append(f"{name}: {task['name']}")
    assert missed == [], missed


def test_the_install_and_report_tasks_run_where_the_plan_found_their_concern_pending_or_did_not_check_it():
    for concern, (name, _writer) in CONCERNS.items():
        for task in load(name):
            if module(task) == "ansible.builtin.set_fact":
                # the report the plan read, kept where the report task did not ask again
                assert task["ansible.builtin.set_fact"] == {
                    "cluster_pki_report_result": "{{ cluster_pki_node_plan_result.report }}"
                }
                assert task["when"] == "cluster_pki_report_result is skipped"
                continue
            when = " ".join(task["when"]) if isinstance(task["when"], list) else task["when"]
            assert f"cluster_pki_node_plan_result.{concern} is not defined or " in when, task["name"]
            assert f"'{concern}' in cluster_pki_node_plan_result.pending" in when, task["name"]
    (report,) = [task for task in load("report.yml") if "kubeguard.hardening.cluster_pki_info" in task]
    # asked again wherever an install ran after the plan read it
    assert "cluster_pki_node_plan_result.pending | length > 0" in report["when"]
    assert report["register"] == "cluster_pki_report_result"


def test_the_plan_checks_a_concern_under_its_task_s_tags_and_toggle():
    tasks = imports()
    check_vars = tasks["generate.yml"]["vars"]
    assert check_vars["cluster_pki_check_tags"] == {
        concern: tasks[name]["tags"] for concern, (name, _w) in CONCERNS.items()
    }
    for concern, (name, _writer) in CONCERNS.items():
        toggles = tasks[name]["when"] if isinstance(tasks[name]["when"], list) else [tasks[name]["when"]]
        own = [t for t in toggles if t != "cluster_pki_generate_enabled"]
        assert own == [f"cluster_pki_{concern}_enabled"]
        assert check_vars["cluster_pki_check_toggles"][concern] == f"{{{{ cluster_pki_{concern}_enabled }}}}"
    assert "cluster_pki_check_tags | kubeguard.hardening.run_by_tags(ansible_run_tags, ansible_skip_tags, " in " ".join(
        check_vars["cluster_pki_checked"].split()
    )
    assert "enabled=cluster_pki_check_toggles)" in check_vars["cluster_pki_checked"]
    # the plan runs wherever a writing concern's task runs: generate.yml is tagged always and runs when this
    # run's tags select generate or a concern that installs its tree (--skip-tags on one skips only that one)
    generate = tasks["generate.yml"]
    assert generate["tags"] == ["always"]
    assert generate["when"] == [
        "cluster_pki_generate_enabled",
        "cluster_pki_generate_tags | kubeguard.hardening.run_by_tags(ansible_run_tags, ansible_skip_tags) | length > 0",
    ]
    assert check_vars["cluster_pki_generate_tags"]["generate"] == ["cluster_pki", "cluster_pki_generate"]
    for concern in ("distribute", "node_agents"):
        assert check_vars["cluster_pki_generate_tags"][concern] == tasks[CONCERNS[concern][0]]["tags"]
        assert "cluster_pki_generate_enabled" in tasks[CONCERNS[concern][0]]["when"]


def test_the_plan_proves_the_endpoints_on_every_node_before_anything_is_written():
    tasks = load("generate.yml")
    plan = plan_task()
    assert plan["any_errors_fatal"] is True and plan["check_mode"] is True
    assert plan["changed_when"] is False and "notify" not in plan
    assert plan["register"] == "cluster_pki_node_plan_result"
    # the proof is always asked, also in a CA rotation's reissue (rotate_apply.yml), where the rest is not
    assert "files" in plan[PLAN]["endpoint"] and "when" not in plan
    before = tasks[: tasks.index(plan)]
    assert [module(task) for task in before] == [
        "kubeguard.hardening.cluster_pki",  # the controller-side plan, in check mode
        "ansible.builtin.slurp",
        "ansible.builtin.slurp",
    ]
    assert before[0]["check_mode"] is True
    # the separate proof is gone: one call per node
    every = [task for path in sorted(TASKS.glob("*.yml")) for task in yaml.safe_load(path.read_text()) or []]
    assert not [task for task in every if "kubeguard.hardening.cluster_pki_endpoint" in task]
