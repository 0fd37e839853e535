"""The example inventories of docs/inventories, read as a user's controller reads them: ansible-inventory parses
each one, the contract role validates every host of it in check mode (local connection: the hosts stand in for the
nodes, so the node-address check is off), the plays target the hosts the docs say (etcd-only hosts get SSH and the
PKI play) and the kubeguard_serial_* knobs give the batches Ansible runs. Needs no lab."""

import ipaddress
import json
import os
import re
import subprocess

import pytest
import yaml
from conftest import REPO, ansible_playbook

EXAMPLES = REPO / "docs" / "inventories"
NAMES = sorted(p.name for p in EXAMPLES.glob("*.yml"))
# Extra vars beat the inventory: every host runs on this controller, unprivileged.
LOCAL = {
    "ansible_connection": "local",
    "ansible_python_interpreter": str(REPO / ".venv/bin/python"),
    "ansible_become": False,
    "kubeguard_node_ip_check_enabled": False,  # hosts stand in for nodes: their addresses are not these
}
CONTRACT_PLAY = [
    {
        "name": "Validate the shared contract on every host",
        "hosts": "all",
        "gather_facts": False,
        "roles": [{"role": "kubeguard.hardening.kubeguard"}],
    }
]


def test_there_are_the_three_documented_examples():
    assert NAMES == ["external-etcd.yml", "hardway.yml", "kubeadm-ha.yml"]


def inventory_list(path):
    run = subprocess.run(
        [str(REPO / ".venv/bin/ansible-inventory"), "-i", str(path), "--list"],
        capture_output=True,
        text=True,
        env=dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg")),
        cwd=REPO,
        check=False,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "WARNING" not in run.stderr, run.stderr
    return json.loads(run.stdout)


def members(listing, group):
    """Every host of a group, its children's included."""
    entry = listing.get(group) or {}
    hosts = set(entry.get("hosts") or [])
    for child in entry.get("children") or []:
        hosts |= members(listing, child)
    return hosts


def is_address(value):
    try:
        ipaddress.ip_address(str(value))
    except ValueError:
        return False
    return True


@pytest.mark.parametrize("name", NAMES)
def test_ansible_inventory_lists_the_groups_the_playbooks_target(name):
    listing = inventory_list(EXAMPLES / name)
    hostvars = listing["_meta"]["hostvars"]
    control_plane, etcd, workers = (members(listing, g) for g in ("control_plane", "etcd", "workers"))
    assert control_plane and etcd and workers
    assert members(listing, "k8s_cluster") == control_plane | workers
    for host, variables in hostvars.items():
        # The contract role would refuse it otherwise; the examples show the explicit form.
        assert is_address(variables.get("kubeguard_node_ip", variables.get("ansible_host"))), host
    top = hostvars[sorted(control_plane)[0]]
    assert re.match(r"^[a-z0-9.-]+:[0-9]+$", top["kubeguard_control_plane_endpoint"])
    if name == "kubeadm-ha.yml":
        assert len(control_plane) == 3 and etcd == control_plane and len(workers) >= 2
        # The load balancer, not one of the nodes.
        endpoint_host = top["kubeguard_control_plane_endpoint"].rsplit(":", 1)[0]
        assert endpoint_host not in {hostvars[h].get("ansible_host") for h in hostvars} | set(hostvars)
    elif name == "hardway.yml":
        assert len(control_plane) == 1 and etcd == control_plane
        assert all(not is_address(v["ansible_host"]) for v in hostvars.values()), "the hard way reaches hosts by name"
    else:
        assert len(etcd) == 3 and not etcd & members(listing, "k8s_cluster"), "external etcd hosts are no nodes"


def write(tmp_path, **files):
    for name, data in files.items():
        (tmp_path / name).write_text(json.dumps(data) if name.endswith(".json") else yaml.safe_dump(data))
    return tmp_path


def contract(tmp_path, inventory, *extra):
    write(tmp_path, **{"local.json": LOCAL, "contract.yml": CONTRACT_PLAY})
    return ansible_playbook(
        inventory, tmp_path / "contract.yml", "--check", "-e", f"@{tmp_path / 'local.json'}", *extra
    )


@pytest.mark.parametrize("name", NAMES)
def test_the_contract_role_accepts_every_host_of_the_example(tmp_path, name):
    run, recap = contract(tmp_path, EXAMPLES / name)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    assert set(recap) == set(inventory_list(EXAMPLES / name)["_meta"]["hostvars"]), out
    assert all(r["failed"] == 0 and r["unreachable"] == 0 and r["ok"] >= 5 for r in recap.values()), out


def test_a_host_reached_by_name_without_kubeguard_node_ip_is_refused_naming_it(tmp_path):
    data = yaml.safe_load((EXAMPLES / "hardway.yml").read_text())
    del data["all"]["children"]["workers"]["hosts"]["node-1"]["kubeguard_node_ip"]
    # An address as ansible_host is still a valid fallback; no address at all falls back to the inventory name.
    data["all"]["children"]["workers"]["hosts"]["node-2"] = {"ansible_host": "10.240.0.22"}
    data["all"]["children"]["workers"]["hosts"]["node-3"] = None
    write(tmp_path, **{"inventory.yml": data})
    run, recap = contract(tmp_path, tmp_path / "inventory.yml")
    out = run.stdout + run.stderr
    assert run.returncode != 0, out
    assert {h for h, r in recap.items() if r["failed"]} == {"node-1", "node-3"}, out
    assert (
        'kubeguard_node_ip: required for node-1: it is not set, and ansible_host ("node-1.kubernetes.local") '
        "is a name, not an address; set kubeguard_node_ip to the node's cluster-internal IP address"
    ) in out
    assert 'kubeguard_node_ip: required for node-3: it is not set, and the inventory name ("node-3")' in out
    assert "Traceback" not in out


def list_hosts(inventory, playbook, *extra):
    """{play pattern: hosts} from ansible-playbook --list-hosts."""
    run, _ = ansible_playbook(inventory, playbook, "--list-hosts", *extra)
    assert run.returncode == 0, run.stdout + run.stderr
    plays = {}
    for block in re.split(r"^\s+play #\d+ ", run.stdout, flags=re.M)[1:]:
        pattern = re.match(r"\(([^)]*)\)", block).group(1)
        plays[pattern] = sorted(re.findall(r"^ {6}(\S+)$", block, re.M))
    return plays


def all_pending(tmp_path, hosts, group="kubelet_pending"):
    """A second inventory that puts hosts in ``group``, as kubelet.yml's (ssh_hardening.yml's) check play does for
    the nodes with a change pending (it groups nobody in --check, so the change plays are seen through this)."""
    write(tmp_path, **{"pending.yml": {"all": {"children": {group: {"hosts": dict.fromkeys(hosts)}}}}})
    return ("-i", str(tmp_path / "pending.yml"))


def test_etcd_only_hosts_get_ssh_their_pki_play_and_etcd_but_no_kubelet(tmp_path):
    inventory = EXAMPLES / "external-etcd.yml"
    etcd = ["etcd1", "etcd2", "etcd3"]
    nodes = ["cp1", "cp2", "worker1", "worker2"]
    # ssh_hardening.yml checks every node and etcd-only host, and changes those its check play found pending.
    assert list_hosts(inventory, "ssh_hardening.yml") == {"k8s_cluster:etcd": sorted(etcd + nodes),
                                                         "ssh_hardening_pending": []}  # fmt: skip
    # cluster_pki.yml first puts back what a killed run left drained at the load balancer (lb_heal.yml), then
    # builds the PKI for every node and etcd-only host.
    assert list_hosts(inventory, "cluster_pki.yml") == {
        "etcd:control_plane": sorted([*etcd, "cp1", "cp2"]),
        "k8s_cluster:etcd": sorted(etcd + nodes),
    }
    # control_plane.yml checks etcd and the control plane everywhere at once, and changes only what it found pending.
    assert list_hosts(inventory, "control_plane.yml") == {
        "etcd:control_plane": sorted([*etcd, "cp1", "cp2"]),
        "control_plane_pending": [],
    }
    assert list_hosts(
        inventory, "control_plane.yml", *all_pending(tmp_path, [*etcd, "cp1"], "control_plane_pending")
    ) == {
        "etcd:control_plane": sorted([*etcd, "cp1", "cp2"]),
        "control_plane_pending": sorted([*etcd, "cp1"]),
    }
    # kubelet.yml checks the nodes (k8s_cluster) and changes only those its check play put in kubelet_pending.
    assert list_hosts(inventory, "kubelet.yml") == {
        "k8s_cluster": nodes,
        "kubelet_pending:&control_plane": [],
        "kubelet_pending:!control_plane": [],
    }
    # Every node with a change pending: control planes and workers go to their own change play.
    assert list_hosts(inventory, "kubelet.yml", *all_pending(tmp_path, nodes)) == {
        "k8s_cluster": nodes,
        "kubelet_pending:&control_plane": ["cp1", "cp2"],
        "kubelet_pending:!control_plane": ["worker1", "worker2"],
    }


def batches(stdout):
    """[(play name, [hosts of one batch])] in run order: a batch is the hosts that ran its PLAY's tasks."""
    found = []
    for block in re.split(r"^PLAY \[", stdout, flags=re.M)[1:]:
        name = block.split("]", 1)[0]
        if name == "":
            continue
        hosts = sorted(set(re.findall(r"^(?:ok|changed|skipping): \[([^\]]+)\]", block, re.M)))
        if hosts:
            found.append((name, hosts))
    return found


def run_batches(tmp_path, playbook, knobs, *extra):
    write(tmp_path, **{"local.json": LOCAL, "knobs.json": knobs})
    # Only the always-tagged tasks (argument specs, the contract's validation) run: enough to see the batches.
    return ansible_playbook(
        EXAMPLES / "kubeadm-ha.yml",
        playbook,
        "--check",
        "--tags",
        "kubeguard_batches_only",
        "-e",
        f"@{tmp_path / 'local.json'}",
        "-e",
        f"@{tmp_path / 'knobs.json'}",
        *extra,
    )


HA_NODES = ["cp1", "cp2", "cp3", "worker1", "worker2", "worker3"]


@pytest.mark.parametrize(
    "knobs,expected",
    [
        ({}, [["cp1"], ["cp2"], ["cp3"], ["worker1"], ["worker2"], ["worker3"]]),
        ({"kubeguard_serial_workers": 2}, [["cp1"], ["cp2"], ["cp3"], ["worker1", "worker2"], ["worker3"]]),
        (
            {"kubeguard_serial_workers": "100%", "kubeguard_serial_control_plane": [1, "100%"]},
            [["cp1"], ["cp2", "cp3"], ["worker1", "worker2", "worker3"]],
        ),
    ],
    ids=["defaults_one_at_a_time", "workers_by_two", "canary_then_all"],
)
def test_the_serial_knobs_set_the_kubelet_batches(tmp_path, knobs, expected):
    run, _ = run_batches(tmp_path, "kubelet.yml", knobs, *all_pending(tmp_path, HA_NODES))
    assert run.returncode == 0, run.stdout + run.stderr
    found = batches(run.stdout)
    # Every node is checked at once; only the change plays go in batches.
    assert found[0][1] == HA_NODES, run.stdout
    assert change_batches(found) == expected, run.stdout


def test_control_planes_are_checked_at_once_and_changed_in_batches(tmp_path):
    control_planes = ["cp1", "cp2", "cp3"]
    pending = all_pending(tmp_path, control_planes, "control_plane_pending")
    run, _ = run_batches(tmp_path, "control_plane.yml", {}, *pending)
    assert run.returncode == 0, run.stdout + run.stderr
    found = [(name, hosts) for name, hosts in batches(run.stdout) if "control plane" in name]
    assert found[0] == (
        "Check etcd and the control plane on every node at once (check mode, nothing written)",
        control_planes,
    )
    assert change_batches(found) == [["cp1"], ["cp2"], ["cp3"]], run.stdout
    run, _ = run_batches(tmp_path, "control_plane.yml", {"kubeguard_serial_control_plane": [1, "100%"]}, *pending)
    assert change_batches(batches(run.stdout)) == [["cp1"], ["cp2", "cp3"]], run.stdout
    # No node pending (a rerun with nothing to do): nothing goes serial.
    run, _ = run_batches(tmp_path, "control_plane.yml", {})
    assert run.returncode == 0 and change_batches(batches(run.stdout)) == [], run.stdout


def change_batches(found):
    """The batches of a playbook's change plays (the nodes with a change pending)."""
    return [hosts for name, hosts in found if "with a change pending, in batches of" in name]


# The role's own tasks (sshd facts on this machine) are skipped; its argument-spec validation still runs.
SSH_ONLY_ARGSPEC = ("--skip-tags", "ssh_hardening")


def ssh_batches(run):
    """The batches of ssh_hardening.yml's change play (the nodes with a change pending)."""
    return [len(hosts) for name, hosts in batches(run.stdout) if name.startswith("Harden SSH on the nodes")]


def test_ssh_checks_every_node_at_once_then_changes_a_canary_node_first(tmp_path):
    pending = all_pending(tmp_path, HA_NODES, "ssh_hardening_pending")
    run, _ = run_batches(tmp_path, "ssh_hardening.yml", {}, *SSH_ONLY_ARGSPEC, *pending)
    assert run.returncode == 0, run.stdout + run.stderr
    assert batches(run.stdout)[0] == ("Check SSH on every cluster node at once (check mode, nothing written)", HA_NODES)
    sizes = ssh_batches(run)
    assert sizes[0] == 1 and sum(sizes) == 6, run.stdout
    run, _ = run_batches(
        tmp_path, "ssh_hardening.yml", {"kubeguard_serial_ssh": [1, "50%"]}, *SSH_ONLY_ARGSPEC, *pending
    )
    assert ssh_batches(run) == [1, 3, 2], run.stdout
    # No node pending (a rerun with nothing to do): nothing goes serial.
    run, _ = run_batches(tmp_path, "ssh_hardening.yml", {}, *SSH_ONLY_ARGSPEC)
    assert run.returncode == 0 and ssh_batches(run) == [], run.stdout
    # A setting that fails on every node is refused by the check play on every node, before any node is changed.
    run, recap = run_batches(tmp_path, "ssh_hardening.yml", {"ssh_hardening_max_auth_tries": "many"}, *SSH_ONLY_ARGSPEC)
    assert run.returncode != 0, run.stdout + run.stderr
    assert sorted(recap) == HA_NODES and all(counts["failed"] == 1 for counts in recap.values()), run.stdout
    assert ssh_batches(run) == [], run.stdout


@pytest.mark.parametrize(
    "playbook,knobs,named",
    [
        ("control_plane.yml", {"kubeguard_serial_control_plane": 0}, "kubeguard_serial_control_plane: 0"),
        ("kubelet.yml", {"kubeguard_serial_workers": "ten"}, "kubeguard_serial_workers: 'ten'"),
        ("ssh_hardening.yml", {"kubeguard_serial_ssh": [1, "150%"]}, "kubeguard_serial_ssh: [1, '150%']"),
    ],
    ids=["zero", "word", "percent_over_100"],
)
def test_a_bad_batch_size_is_refused_naming_the_variable(tmp_path, playbook, knobs, named):
    run, recap = run_batches(tmp_path, playbook, knobs, *SSH_ONLY_ARGSPEC)
    out = run.stdout + run.stderr
    assert run.returncode != 0, out
    assert f"{named} is not a batch size" in out, out
    assert "Traceback" not in out, out
    assert not any(r.get("changed") for r in recap.values()), out


def test_a_batch_size_set_in_the_inventory_is_refused_not_ignored(tmp_path):
    data = yaml.safe_load((EXAMPLES / "kubeadm-ha.yml").read_text())
    data["all"]["vars"]["kubeguard_serial_workers"] = 2
    write(tmp_path, **{"inventory.yml": data, "local.json": LOCAL})
    pending = all_pending(tmp_path, HA_NODES)
    common = ("--check", "--tags", "kubeguard_batches_only", "-e", f"@{tmp_path / 'local.json'}", *pending)
    run, recap = ansible_playbook(tmp_path / "inventory.yml", "kubelet.yml", *common)
    out = run.stdout + run.stderr
    assert run.returncode != 0, out
    assert (
        "kubeguard_serial_workers: 2 (for worker1) is ignored: plays read it before the inventory and used [1]; "
        "give it as an extra var instead (-e kubeguard_serial_workers=...)"
    ) in out
    # Refused at the first worker of the change play, before any other worker gets there; the check play (check
    # mode, in parallel) and the control planes passed.
    assert [h for h, r in recap.items() if r["failed"]] == ["worker1"], out
    assert change_batches(batches(run.stdout))[-1] == ["worker1"], out
    # The same value as an extra var is what the play uses: accepted.
    run, _ = ansible_playbook(
        tmp_path / "inventory.yml", "kubelet.yml", *common, "-e", '{"kubeguard_serial_workers": 2}'
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert change_batches(batches(run.stdout))[-2:] == [["worker1", "worker2"], ["worker3"]], run.stdout
