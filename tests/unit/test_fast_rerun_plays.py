"""site.yml's fast rerun (docs/fast-rerun.md) in the playbooks: the check comes right after the reachability
check and runs under any tags; every play between it and the audit leaves out kubeguard_converged (a play that
forgot would run on every fast rerun, or worse, a new role's check would be skipped only in part); the record
comes last before the audit and only for a whole run. The action plugin's inputs leave out its own results."""

import pathlib

import pytest
import yaml
from ansible.errors import AnsibleError
from ansible_collections.kubeguard.hardening.plugins.action import fast_rerun

PLAYBOOKS = pathlib.Path(__file__).resolve().parents[2] / "playbooks"
UNLESS_CONVERGED = "{{ ':!kubeguard_converged' if 'kubeguard_converged' in groups else '' }}"


def plays(name):
    """The plays of a playbook, its imports expanded, as (file, play)."""
    found = []
    for play in yaml.safe_load((PLAYBOOKS / name).read_text()):
        if "ansible.builtin.import_playbook" in play:
            found += plays(play["ansible.builtin.import_playbook"])
        else:
            found.append((name, play))
    return found


def test_the_check_follows_the_reachability_check_and_the_record_precedes_the_audit():
    files = [file for file, _ in plays("site.yml")]
    assert files[:2] == ["control_plane_reachable.yml", "fast_rerun_check.yml"]
    assert files[-3:] == ["fast_rerun_record.yml", "audit.yml", "audit.yml"]


def test_every_play_between_the_check_and_the_audit_leaves_out_the_converged_nodes():
    between = plays("site.yml")[2:-2]
    assert len(between) > 10
    for file, play in between:
        hosts = play["hosts"]
        # A *_pending group exists only when a gated check play found something to do.
        assert hosts.endswith(UNLESS_CONVERGED) or hosts.split(":")[0].endswith("_pending"), (file, play["name"])


def test_the_check_runs_under_any_tags_and_the_record_only_for_a_whole_run():
    ((_, check),) = plays("fast_rerun_check.yml")
    assert check["hosts"] == "k8s_cluster:etcd" and check["tasks"][0]["tags"] == ["always"]
    ((_, record),) = plays("fast_rerun_record.yml")
    conditions = record["tasks"][0]["when"]
    assert "not ansible_check_mode" in conditions
    assert "ansible_run_tags | list == ['all'] and ansible_skip_tags | length == 0" in conditions


class View(dict):
    def __init__(self, templated):
        super().__init__()
        self.templated = templated

    def __getitem__(self, name):
        value = self.templated[name]
        if isinstance(value, Exception):
            raise value
        return value


def test_the_inputs_are_the_role_variables_templated_without_this_runs_results():
    raw = {
        "kubeguard_node_ip": "{{ ip }}",
        "node_os_firewall_pod_cidrs": ["10.244.0.0/16"],
        "kubelet_broken": "{{ undefined }}",
        "kubeguard_fast_rerun_node": {"fingerprint": {}},
        "kubeguard_fast_rerun_api": {"fingerprint": {}},
        "unrelated": 1,
        "group_names": ["workers", "k8s_cluster"],
    }
    templated = {
        "kubeguard_node_ip": "10.0.0.5",
        "node_os_firewall_pod_cidrs": ["10.244.0.0/16"],
        "kubelet_broken": AnsibleError("undefined"),
    }

    class Vars:
        def raw_get(self, host):
            return raw

        def __getitem__(self, host):
            return View(templated)

    found = fast_rerun.host_inputs(Vars(), "worker1")
    assert found == {
        "group_names": ["k8s_cluster", "workers"],
        "kubeguard_node_ip": "10.0.0.5",
        "node_os_firewall_pod_cidrs": ["10.244.0.0/16"],
        "kubelet_broken": "'{{ undefined }}'",
    }


@pytest.mark.parametrize("role", ["ssh_hardening", "node_os", "cluster_pki", "kubeguard", "network_policy"])
def test_every_role_names_its_variables_as_inputs(role):
    assert f"{role}_" in fast_rerun.PREFIXES


def test_a_node_leaves_the_load_balancer_only_after_the_record_is_gone():
    """A run killed while a node is drained may have written nothing the fingerprint sees: the record goes
    first, so the next site.yml checks every role and its lb_heal puts the node back."""
    tasks = yaml.safe_load((PLAYBOOKS.parent / "roles/kubeguard/tasks/lb_drain.yml").read_text())
    names = [task["name"] for task in tasks]
    forget = next(i for i, task in enumerate(tasks) if "kubeguard.hardening.fast_rerun" in task)
    assert tasks[forget]["kubeguard.hardening.fast_rerun"]["state"] == "forget"
    assert tasks[forget]["when"] == "kubeguard_lb_drain_state == 'drain'"
    first_drain = next(i for i, name in enumerate(names) if name.startswith("Load balancer,"))
    assert forget < first_drain
