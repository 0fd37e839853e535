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
            "node_os_kernel_sysctls_extra: kernel.kubeguard_no_such: this kernel has",
        ),
        (
            {"node_os_kernel_sysctls_extra": {"net.ipv4.ip_forward": 0}},
            "node_os_kernel_sysctls_extra: net.ipv4.ip_forward = 0 would break the node",
        ),
        (
            {"node_os_kernel_modules_blacklist": ["cramfs", "br_netfilter"]},
            "node_os_kernel_modules_blacklist: br_netfilter: the node's container runtime",
        ),
    ],
)
def test_bad_input_is_refused_with_nothing_applied(firewalled, extra, words):
    lab = firewalled
    host = lab.groups["workers"][0]
    files = f"sha256sum {RULES} /etc/sysctl.d/60-kubeguard-node-os.conf /etc/modprobe.d/60-kubeguard-node-os.conf"
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


# ---- packages (from the lab's local apt repository, lab/bin/build-apt-repo)

PACKAGES = ["unattended-upgrades", "apt-listchanges", "needrestart", "debsums", "libpam-tmpdir", "libpam-pwquality",
            "aide-common", "aide", "acct"]  # fmt: skip


def exec_long(lab, host, *argv, timeout=600):
    env = dict(os.environ, CONTAINERS_CONF=CONTAINERS_CONF)
    container = lab.hostvars[host]["kubeguard_lab_container"]
    return subprocess.run(["podman", "exec", container, *argv], capture_output=True, text=True, env=env,
                          timeout=timeout, check=False)  # fmt: skip


@pytest.fixture(scope="module")
def packaged(firewalled):
    lab = firewalled
    status = lab.podman_exec(lab.hosts[0], "dpkg-query", "-W", "-f=${db:Status-Status} ", *PACKAGES).stdout
    if status.split() != ["installed"] * len(PACKAGES):
        run, _ = ansible_playbook(lab.inventory, "node_os.yml", "--tags", "node_os_packages")
        assert run.returncode == 0, (run.stdout[-3000:], run.stderr[-3000:])
    return lab


def test_the_security_packages_are_installed_from_the_local_repository(packaged):
    for host in packaged.hosts:
        status = packaged.podman_exec(host, "dpkg-query", "-W", "-f=${Package} ${db:Status-Status}\n", *PACKAGES)
        assert sorted(status.stdout.splitlines()) == sorted(f"{name} installed" for name in PACKAGES), (host, status)
        pam = packaged.podman_exec(host, "cat", "/etc/pam.d/common-password", "/etc/pam.d/common-session").stdout
        assert "pam_pwquality.so" in pam and "pam_tmpdir.so" in pam
        assert packaged.podman_exec(host, "test", "-f", "/var/log/account/pacct").returncode == 0


def test_unattended_upgrades_runs_and_never_touches_the_runtime(packaged):
    host = packaged.groups["workers"][0]
    periodic = packaged.podman_exec(host, "apt-config", "dump", "APT::Periodic", "Unattended-Upgrade")
    assert 'APT::Periodic::Unattended-Upgrade "1";' in periodic.stdout, periodic.stdout
    run = exec_long(packaged, host, "unattended-upgrade", "--dry-run", "--debug")
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    blocked = next(line for line in (run.stdout + run.stderr).splitlines() if "Initial blacklist" in line)
    assert "containerd" in blocked and "kubelet" in blocked, blocked


def test_needrestart_lists_and_restarts_nothing(packaged):
    host = packaged.groups["workers"][0]
    pids = "systemctl show -p MainPID --value containerd kubelet"
    before = packaged.podman_exec(host, "sh", "-c", pids).stdout
    run = exec_long(packaged, host, "needrestart", "-b")
    assert run.returncode == 0, run.stderr
    assert "NEEDRESTART-VER" in run.stdout
    assert packaged.podman_exec(host, "sh", "-c", pids).stdout == before


def test_aide_reports_a_new_file_and_ignores_the_clusters_churn(packaged):
    host = packaged.groups["workers"][-1]
    probe = "/etc/kubeguard-aide-probe"
    packaged.podman_exec(host, "sh", "-c", f"echo probe > {probe}")
    try:
        run = exec_long(packaged, host, "aide", "--config", "/etc/aide/aide.conf", "--check")
    finally:
        packaged.podman_exec(host, "rm", "-f", probe)
    # AIDE's exit code is a bit mask of what differs (1 added, 2 removed, 4 changed); 14+ are errors.
    assert 1 <= run.returncode < 14 and run.returncode & 1, (run.returncode, run.stdout[-2000:], run.stderr[-2000:])
    assert probe in run.stdout
    for churn in ("/var/lib/containerd", "/var/lib/kubelet", "/var/log/pods", "/opt/kubeguard"):
        assert churn not in run.stdout, churn


def test_a_rerun_of_the_packages_concern_installs_nothing(packaged):
    dpkg = {host: packaged.podman_exec(host, "sha256sum", "/var/lib/dpkg/status").stdout for host in packaged.hosts}
    run, recap = ansible_playbook(packaged.inventory, "node_os.yml", "--tags", "node_os_packages", timeout=600)
    assert run.returncode == 0, run.stdout[-3000:]
    assert all(recap[host]["changed"] == 0 for host in packaged.hosts), run.stdout[-3000:]
    assert {
        host: packaged.podman_exec(host, "sha256sum", "/var/lib/dpkg/status").stdout for host in packaged.hosts
    } == dpkg


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (
            {"node_os_packages_install": ["acct", "kubeguard-no-such-package"]},
            "node_os_packages_install: not available from this node's apt sources: kubeguard-no-such-package",
        ),
        # libpam-pwquality needs libpwquality1: removing the library would take the PAM module with it.
        (
            {"node_os_packages_install": [], "node_os_packages_remove": ["libpwquality1"]},
            "node_os_packages_remove: removing libpwquality1 would also remove libpam-pwquality",
        ),
    ],
)
def test_bad_package_lists_are_refused_with_nothing_done(packaged, extra, words):
    host = packaged.groups["workers"][0]
    before = packaged.podman_exec(host, "sha256sum", "/var/lib/dpkg/status").stdout
    run, _ = ansible_playbook(packaged.inventory, "node_os.yml", "--limit", host, "--tags", "node_os_packages",
                              "-e", json.dumps(extra), timeout=300)  # fmt: skip
    assert run.returncode != 0
    assert words in " ".join(run.stdout.split()), run.stdout[-3000:]
    assert packaged.podman_exec(host, "sha256sum", "/var/lib/dpkg/status").stdout == before


def test_lynis_scores_the_debian_12_worker_80_or_more_after_site_yml(packaged):
    """Issue #21's yardstick (docs/node_os.md, bench/lynis.sh): Lynis 3.0.8 on the Debian 12 worker."""
    lab = packaged
    host = next(h for h in lab.groups["workers"] if lab.hostvars[h]["kubeguard_lab_container"].endswith("worker2"))
    sshd = lab.podman_exec(host, "sshd", "-T").stdout
    if "permitrootlogin no" not in sshd:
        pytest.skip("site.yml has not hardened this lab (test_50_site.py runs it); the index counts every role")
    run = exec_long(lab, host, "lynis", "audit", "system", "--quick", "--no-colors", timeout=900)
    assert run.returncode == 0, run.stderr[-2000:]
    report = lab.podman_exec(host, "cat", "/var/log/lynis-report.dat").stdout
    index = int(next(line.split("=", 1)[1] for line in report.splitlines() if line.startswith("hardening_index=")))
    assert index >= 80, [line for line in report.splitlines() if line.startswith("suggestion[]=")]
