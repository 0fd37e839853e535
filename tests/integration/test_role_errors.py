"""A bad role variable, tried as a new user would: ansible-playbook runs the role (check mode, hosts on
the local connection, every directory in a temporary tree), the play fails, the message names the role
variable the user set - not the module option behind it - and nothing was written. Needs no lab."""

import json
import os
import pathlib
import re

import pytest
from conftest import ansible_playbook

REPO = pathlib.Path(__file__).resolve().parents[2]


def inventory(base):
    data = {
        "all": {
            "vars": {
                "ansible_connection": "local",
                "ansible_python_interpreter": str(REPO / ".venv/bin/python"),
                "ansible_become": False,
                "kubeguard_node_ip_check_enabled": False,  # hosts stand in for nodes: their addresses are not these
                "kubeguard_cluster_name": "kubeguard-lab",
                "kubeguard_control_plane_endpoint": "10.123.0.10:6443",
                "kubeguard_api_extra_sans": ["127.0.0.1", "localhost"],
                # never read: every refusal below comes before the first API request
                "kubeguard_kubeconfig": str(base / "admin.kubeconfig"),
                "kubeguard_pki_output_dir": str(base / "tree"),
                "cluster_pki_owner": os.getuid(),
                "cluster_pki_group": os.getgid(),
                "kubeguard_kubernetes_dir": str(base / "nodes/{{ inventory_hostname }}/etc/kubernetes"),
                "cluster_pki_kubelet_pki_dir": str(base / "nodes/{{ inventory_hostname }}/var/lib/kubelet/pki"),
                "cluster_pki_backup_dir": str(base / "backups/{{ inventory_hostname }}"),
            },
            "children": {
                "k8s_cluster": {"children": {"control_plane": {}, "workers": {}}},
                "control_plane": {"hosts": {"cp1": {"kubeguard_node_ip": "10.123.0.10"}}},
                "etcd": {"hosts": {"cp1": {}}},
                "workers": {"hosts": {"worker1": {"kubeguard_node_ip": "10.123.0.11"}}},
            },
        }
    }
    path = base / "inventory.json"
    path.write_text(json.dumps(data))
    return path


def files(base):
    return sorted(str(p.relative_to(base)) for p in base.rglob("*") if p.name not in ("inventory.json", "vars.json"))


BAD_CIDR_RULE = {
    "name": "bad-cidr",
    "namespaces": ["default"],
    "spec": {
        "podSelector": {},
        "policyTypes": ["Egress"],
        "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/33"}}]}],
    },
}


@pytest.mark.parametrize(
    "playbook,variables,named,detail",
    [
        ("cluster_pki.yml", {"cluster_pki_leaf_validity_days": 40000}, "cluster_pki_leaf_validity_days", "40000"),
        ("cluster_pki.yml", {"cluster_pki_service_cidr": "10.96.0.0/33"}, "cluster_pki_service_cidr", "10.96.0.0/33"),
        (
            "network_policy.yml",
            {"network_policy_custom_rules": [BAD_CIDR_RULE], "network_policy_baseline_enabled": False},
            "network_policy_custom_rules",
            "NetworkPolicy default/bad-cidr: spec.egress[0].to[0].ipBlock.cidr: '10.0.0.0/33' is not a CIDR",
        ),
    ],
    ids=["leaf_validity_days", "service_cidr", "custom_rules_cidr"],
)
def test_a_bad_role_variable_is_named_and_nothing_is_written(tmp_path, playbook, variables, named, detail):
    inventory(tmp_path)
    (tmp_path / "vars.json").write_text(json.dumps(variables))
    run, recap = ansible_playbook(tmp_path / "inventory.json", playbook, "--check", "-e", f"@{tmp_path / 'vars.json'}")
    out = run.stdout + run.stderr
    assert run.returncode != 0, out
    assert sum(host.get("failed", 0) for host in recap.values()) >= 1, out
    messages = re.findall(r"Module failed: (.+)$", out, re.M)  # ansible-core 2.19's one-line error
    assert any(m.startswith(f"{named}: ") and detail in m for m in messages), out
    assert "Traceback" not in out, out
    assert files(tmp_path) == [], "the refused run wrote files"
