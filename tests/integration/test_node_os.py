"""node_os against the lab's real nodes, after site.yml (test_50) put the
firewall on and the rest of the lab stream ran through it: our nftables table
beside kube-proxy's and kube-router's, an nmap scan from a scratch container on
the lab network and from the control-plane node, the kubelet and DNS proofs,
the dead-man rollback after a failed proof, refusals with nothing applied, the
kernel settings a container node can and cannot take, and the audit rules.

Self-sufficient: on a lab without the firewall it runs node_os.yml first."""

import json
import os
import subprocess

import pytest
from ansible_collections.kubeguard.hardening.plugins.module_utils._node_os import audit
from conftest import CONTAINERS_CONF, LAB_ID, ansible_playbook

pytestmark = pytest.mark.lab

TABLE = "kubeguard_node_os"
RULES = "/etc/kubeguard/node-firewall.nft"
PORTS = "1-1024,2379,2380,6443,10248-10260,20244,30000-30010"
PREFIX = "kg-" if LAB_ID == 0 else f"kg{LAB_ID}-"
NETWORK = "kubeguard-lab" if LAB_ID == 0 else f"kubeguard-lab{LAB_ID}"


def podman(*argv, check=True):
    env = dict(os.environ, CONTAINERS_CONF=CONTAINERS_CONF)
    run = subprocess.run(["podman", *argv], capture_output=True, text=True, env=env, timeout=120, check=False)
    assert not check or run.returncode == 0, (argv, run.stderr)
    return run


def live(lab, host):
    return lab.podman_exec(host, "nft", "-s", "list", "table", "inet", TABLE).stdout


def ip(lab, role):
    return lab.hostvars[lab.groups[role][0]]["kubeguard_node_ip"]


@pytest.fixture(scope="module")
def firewalled(lab):
    if any(not live(lab, host) for host in lab.hosts):
        run, _ = ansible_playbook(lab.inventory, "node_os.yml")
        assert run.returncode == 0, (run.stdout[-3000:], run.stderr[-3000:])
    return lab


def nmap(pid, target, ports=PORTS):
    """Scan target from the network namespace of process pid; {port: state} of the ports that answered
    (open, or closed by a reset); dropped ports (filtered) are left out."""
    argv = ["nsenter", "-t", str(pid), "-n", "nmap", "-Pn", "-n", "-sS", "--max-retries", "1", "--min-rate", "2000",
            "-p", ports, "-oG", "-", target]  # fmt: skip
    run = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stderr
    line = next(line for line in run.stdout.splitlines() if "Ports:" in line)
    entries = line.split("Ports:", 1)[1].split("Ignored State:")[0].split(",")
    states = {int(e.split("/")[0]): e.split("/")[1] for e in (x.strip() for x in entries) if e}
    return {port: state for port, state in states.items() if state != "filtered"}


@pytest.fixture(scope="module")
def scanner(firewalled):
    """A scratch container on the lab network (no node, not the controller); nmap runs in its netns."""
    lab = firewalled
    name = f"{PREFIX}nodeos-scan"
    image = podman("inspect", "-f", "{{.ImageName}}", lab.hostvars[lab.groups["workers"][0]]["kubeguard_lab_container"])
    address = ip(lab, "workers").rsplit(".", 1)[0] + ".250"
    podman("rm", "-f", name, check=False)
    podman("run", "-d", "--name", name, "--network", NETWORK, "--ip", address, "--label", "io.kubeguard.scratch=1",
           image.stdout.strip(), "sleep", "600")  # fmt: skip
    pid = podman("inspect", "-f", "{{.State.Pid}}", name).stdout.strip()
    yield pid, address
    podman("rm", "-f", "-t", "0", name, check=False)


def test_our_table_sits_beside_kube_proxys_and_kube_routers(firewalled):
    for host in firewalled.hosts:
        tables = firewalled.podman_exec(host, "nft", "list", "tables").stdout
        assert f"table inet {TABLE}" in tables, host
        assert "table ip kube-proxy" in tables, (host, tables)
        assert "KUBE-ROUTER" in firewalled.podman_exec(host, "iptables-save").stdout, host


def test_a_worker_shows_only_ssh_and_a_refused_kubelet_to_a_stranger(firewalled, scanner):
    lab, (pid, _) = firewalled, scanner
    worker = ip(lab, "workers")
    # Something else listens on the node's address; only the firewall keeps it from the scan.
    listening = lab.podman_exec(lab.groups["workers"][0], "ss", "-Hltn").stdout
    others = {int(f.split()[3].rsplit(":", 1)[1]) for f in listening.splitlines() if "127.0.0." not in f.split()[3]}
    assert others - {22, 10250}, listening
    assert nmap(pid, worker) == {22: "open", 10250: "closed"}


def test_the_control_plane_node_reaches_the_kubelet(firewalled):
    lab = firewalled
    cp_pid = podman(
        "inspect", "-f", "{{.State.Pid}}", lab.hostvars[lab.groups["control_plane"][0]]["kubeguard_lab_container"]
    )
    assert nmap(cp_pid.stdout.strip(), ip(lab, "workers"), "10250") == {10250: "open"}


def test_a_stranger_sees_the_api_but_not_etcd_on_the_control_plane(firewalled, scanner):
    assert nmap(scanner[0], ip(firewalled, "control_plane"), "22,2379,2380,6443,10250,10257,10259") == {
        22: "open",
        6443: "open",
        10250: "closed",
    }


def test_every_node_proves_its_kubelet_lease_and_cluster_dns(firewalled):
    args = "node_name={{ inventory_hostname }} dns_server=10.96.0.10 timeout=60"
    argv = [".venv/bin/ansible", "k8s_cluster", "-i", str(firewalled.inventory), "-b", "-o",
            "-m", "kubeguard.hardening.node_os_probe", "-a", args]  # fmt: skip
    env = dict(os.environ, ANSIBLE_CONFIG="ansible.cfg")
    run = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False, env=env)
    assert run.returncode == 0, run.stdout[-2000:]
    assert run.stdout.count('"ready": true') == len(firewalled.hosts), run.stdout
    assert run.stdout.count('"answers":') == len(firewalled.hosts), run.stdout


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        ({"node_os_firewall_admin_networks": ["192.0.2.0/24"]}, "node_os_firewall_admin_networks: refusing a lockout"),
        ({"node_os_firewall_pod_cidrs": ["10.244.0.0/33"]}, "node_os_firewall_pod_cidrs: '10.244.0.0/33' is not an IP"),
        ({"node_os_firewall_extra_ports": [{"port": 70000}]}, "node_os_firewall_extra_ports[0].port: 70000: ports run"),
        (
            {"node_os_kernel_sysctls_extra": {"kernel.kubeguard_no_such": 1}},
            "kernel.kubeguard_no_such: this kernel has",
        ),
    ],
)
def test_bad_input_is_refused_with_nothing_applied(firewalled, extra, words):
    lab = firewalled
    host = lab.groups["workers"][0]
    files = f"sha256sum {RULES} /etc/sysctl.d/60-kubeguard-node-os.conf"
    before = (live(lab, host), lab.podman_exec(host, "sh", "-c", files).stdout)
    run, _ = ansible_playbook(lab.inventory, "node_os.yml", "--limit", host, "-e", json.dumps(extra), timeout=300)
    assert run.returncode != 0
    assert words in run.stdout, run.stdout[-3000:]
    assert (live(lab, host), lab.podman_exec(host, "sh", "-c", files).stdout) == before


def test_a_failed_kubelet_proof_rolls_the_firewall_back(firewalled):
    lab = firewalled
    host = lab.groups["workers"][-1]
    lab.podman_exec(
        host,
        "sh",
        "-c",
        "printf 'clusters:\\n- cluster:\\n    server: https://127.0.0.1:1\\n' > /tmp/kg-unreachable.conf",
    )
    rules = f"sha256sum {RULES}"
    before = (live(lab, host), lab.podman_exec(host, "sh", "-c", rules).stdout)
    extra = {
        "node_os_firewall_extra_ports": [{"port": 9999, "name": "rollback proof"}],
        "node_os_firewall_probe_kubeconfig": "/tmp/kg-unreachable.conf",
        "node_os_firewall_probe_timeout": 5,
    }
    tags = ("--limit", host, "--tags", "node_os_firewall")
    run, _ = ansible_playbook(lab.inventory, "node_os.yml", *tags, "-e", json.dumps(extra), timeout=300)
    assert run.returncode != 0
    assert "was rolled back" in run.stdout, run.stdout[-3000:]
    assert "9999" not in live(lab, host)
    assert (live(lab, host), lab.podman_exec(host, "sh", "-c", rules).stdout) == before
    assert (
        "restored the previous node firewall"
        in lab.podman_exec(host, "cat", "/var/lib/kubeguard/node_os/rollback.log").stdout
    )
    # The next run re-proves and converges (the rollback dropped the recorded digest).
    again, recap = ansible_playbook(lab.inventory, "node_os.yml", *tags, timeout=300)
    assert again.returncode == 0 and recap[host]["changed"] > 0, again.stdout[-3000:]


def test_kernel_settings_in_the_nodes_netns_and_the_hosts_left_alone(firewalled):
    lab = firewalled
    host = lab.groups["workers"][0]
    read = lambda name: lab.podman_exec(host, "cat", "/proc/sys/" + name.replace(".", "/")).stdout.strip()  # noqa: E731
    assert read("net.ipv4.ip_forward") == "1"
    assert read("net.ipv4.conf.all.send_redirects") == "0"
    assert read("net.ipv4.conf.all.accept_redirects") == "0"
    text = lab.podman_exec(host, "cat", "/etc/sysctl.d/60-kubeguard-node-os.conf").stdout
    assert "# not applicable: kernel.kptr_restrict = 2 (global kernel setting" in text
    assert "\nkernel." not in text and "\nfs." not in text  # never written into the host at the node's boot


def test_audit_rules_are_on_disk_and_the_kernel_refuses_a_container(firewalled):
    lab = firewalled
    host = lab.groups["control_plane"][0]
    rules = lab.podman_exec(host, "cat", "/etc/audit/rules.d/60-kubeguard-node-os.rules").stdout
    watched = {audit.parse_rule(line)["path"] for line in rules.splitlines() if line.startswith("-w")}
    assert {
        "/etc/kubernetes",
        "/etc/kubernetes/pki",
        "/var/lib/etcd",
        "/etc/ssh/sshd_config",
        "/etc/sudoers",
    } <= watched
    status = lab.podman_exec(host, "auditctl", "-s")
    assert status.returncode != 0 and "Operation not permitted" in status.stderr, status
