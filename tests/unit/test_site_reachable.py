"""site.yml checks that every etcd and control-plane node answers before any
change (playbooks/control_plane_reachable.yml): a play over every node, so
that any_errors_fatal stops them all, pinging only the quorum's nodes, and
tagged always so that a --tags run checks too. The lab proves the stop:
tests/integration/test_ha_zz_kubeadm_ops.py (cp3 stopped)."""

import pathlib

import yaml

PLAYBOOKS = pathlib.Path(__file__).resolve().parents[2] / "playbooks"


def test_site_checks_reachability_first():
    imports = [play["ansible.builtin.import_playbook"] for play in yaml.safe_load((PLAYBOOKS / "site.yml").read_text())]
    assert imports[0] == "control_plane_reachable.yml"


def test_the_check_stops_every_node_and_runs_under_any_tags():
    (play,) = yaml.safe_load((PLAYBOOKS / "control_plane_reachable.yml").read_text())
    assert play["any_errors_fatal"] is True
    # Every node site.yml touches is in the play, or a worker would go on alone.
    assert play["hosts"] == "k8s_cluster:etcd"
    (task,) = play["tasks"]
    assert "ansible.builtin.ping" in task and task["tags"] == ["always"]
    assert "groups['etcd']" in task["when"] and "groups['control_plane']" in task["when"]
