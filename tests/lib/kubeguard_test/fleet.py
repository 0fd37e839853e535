"""A fleet of lightweight nodes for scale runs: N containers of the lab's node
images (Debian 12 and 13 alternating) running systemd and sshd, published on
127.0.0.1, with an Ansible inventory of their own. No kubelet runs on them, so
they take the node-side plays whose health proof is an SSH login
(ssh_hardening.yml, node_os.yml with its firewall concern off).

Used by bench/scale.py (3, 10 and 30 nodes) and by the five-node smoke test in
tests/integration/test_scale_smoke.py, so the benchmark's code path cannot rot.
"""

import json
import os
import pathlib
import re
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

REPO = pathlib.Path(__file__).resolve().parents[3]
CONTAINERS_CONF = REPO / "lab" / "containers.conf"


def _env():
    return dict(os.environ, CONTAINERS_CONF=os.environ.get("CONTAINERS_CONF", str(CONTAINERS_CONF)))


def _podman(*args, check=True):
    run = subprocess.run(["podman", *args], capture_output=True, text=True, env=_env(), check=False)
    if check and run.returncode != 0:
        raise RuntimeError(f"podman {' '.join(args[:3])} failed: {run.stderr.strip()}")
    return run


def _lab_bin(name, *args):
    run = subprocess.run(
        [str(REPO / "lab" / "bin" / name), *args], capture_output=True, text=True, env=_env(), check=False
    )
    if run.returncode != 0:
        raise RuntimeError(f"lab/bin/{name} failed: {run.stderr[-2000:]}")
    return run.stdout


def node_images():
    """[(image, apt repository)]: the lab's node images, one per release, each with the local apt
    repository node_os installs its packages from (lab/bin/build-images and build-apt-repo, as lab-up)."""
    images = _lab_bin("build-images").split()
    repos = dict(line.split() for line in _lab_bin("build-apt-repo", *images).splitlines())
    return [(image, repos[image.rsplit(":", 1)[1].split("-", 1)[0]]) for image in images]


class Fleet:
    """``size`` nodes named ``<name>-nodeNN`` on network ``kubeguard-<name>`` (``subnet``, a /24),
    sshd of node i on 127.0.0.1:``port_base + i``; ``state`` holds the key and the inventory;
    ``inventory_vars`` are added to the inventory's ``all.vars``."""

    def __init__(self, name, size, state, subnet, port_base, inventory_vars=None):
        if not re.fullmatch(r"[a-z][a-z0-9-]{0,15}", name):
            raise ValueError(f"fleet name {name!r}: lowercase letters, digits and dashes")
        if not 1 <= size <= 200:
            raise ValueError(f"fleet size {size}: 1 to 200 nodes fit in a /24")
        self.name, self.size, self.state = name, size, pathlib.Path(state)
        self.network = f"kubeguard-{name}"
        self.prefix = subnet.rsplit(".", 1)[0]
        self.subnet = subnet
        self.port_base = port_base
        self.label = f"io.kubeguard.fleet={name}"
        self.inventory = self.state / "inventory.yml"
        self.key = self.state / "id_ed25519"
        self.inventory_vars = dict(inventory_vars or {})

    def nodes(self):
        """(inventory name, container name, node IP, SSH port) of every node."""
        return [
            (f"node{i:02d}", f"kg{self.name}-node{i:02d}", f"{self.prefix}.{10 + i}", self.port_base + i)
            for i in range(1, self.size + 1)
        ]

    def up(self):
        """Creates the fleet from scratch (an earlier one of this name is removed first); returns its seconds."""
        started = time.monotonic()
        self.down()
        self.state.mkdir(parents=True, exist_ok=True)
        self.state.chmod(0o700)
        for stale in (self.key, self.key.with_suffix(".pub")):
            stale.unlink(missing_ok=True)
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"kubeguard-{self.name}", "-f", str(self.key)],
            check=True,
        )
        images = node_images()
        _podman("network", "create", "--subnet", self.subnet, "--label", self.label, self.network)
        pubkey = self.key.with_suffix(".pub").read_text().strip()

        def start(index_node):
            index, (_, container, ip, port) = index_node
            image, apt_repo = images[index % len(images)]
            # The lab's node container mode (docs/lab.md): systemd as a plain init,
            # privileged so that node_os may set the node's own sysctls.
            _podman(
                "run", "-d", "--name", container, "--hostname", container, "--network", self.network,
                "--ip", ip, "-p", f"127.0.0.1:{port}:22", "--privileged", "--cgroupns=private",
                "--systemd=false", "-e", "container=podman", "--stop-signal=SIGRTMIN+3",
                "--tmpfs", "/run", "--tmpfs", "/run/lock", "--tmpfs", "/tmp", "--label", self.label,
                "-v", f"{apt_repo}:/opt/kubeguard/apt:ro", image, "/sbin/init",
            )  # fmt: skip
            _podman("exec", container, "timeout", "90", "systemctl", "is-system-running", "--wait", check=False)
            script = (
                "install -d -m 0700 -o operator -g operator /home/operator/.ssh && "
                f"echo '{pubkey}' > /home/operator/.ssh/authorized_keys && "
                "chown operator:operator /home/operator/.ssh/authorized_keys && "
                "chmod 0600 /home/operator/.ssh/authorized_keys && "
                # The only apt source the fleet can reach, as on the lab's nodes.
                "echo 'deb [trusted=yes] file:/opt/kubeguard/apt ./' > /etc/apt/sources.list"
            )
            _podman("exec", container, "sh", "-c", script)

        # Few at a time: every start runs a systemd boot on the same two cores.
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(start, enumerate(self.nodes())))
            # Up means an operator's login works on every node, not a started container.
            list(pool.map(self.wait_for_login, self.nodes()))
        self.inventory.write_text(self._inventory())
        return time.monotonic() - started

    def ssh(self, port, *command, timeout=60):
        """The operator's key login on one node (as Ansible makes it), running ``command``."""
        return subprocess.run(
            ["ssh", "-i", str(self.key), "-p", str(port), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
             "-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=10", "operator@127.0.0.1", *command],
            capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip

    def wait_for_login(self, node, seconds=180):
        name, _container, _ip, port = node
        deadline = time.monotonic() + seconds
        while True:
            login = self.ssh(port, "true")
            if login.returncode == 0:
                return
            if time.monotonic() > deadline:
                why = login.stderr.strip()
                raise RuntimeError(f"{name}: no SSH login on 127.0.0.1:{port} after {seconds} s: {why}")
            time.sleep(2)

    def _inventory(self):
        hosts = "\n".join(
            f"            {name}: {{ansible_host: 127.0.0.1, ansible_port: {port}, kubeguard_node_ip: {ip}}}"
            for name, _, ip, port in self.nodes()
        )
        gateway = f"{self.prefix}.1"
        extra = "".join(f"    {key}: {json.dumps(value)}\n" for key, value in self.inventory_vars.items())
        return f"""# Written by kubeguard_test.fleet: {self.size} sshd-only nodes, no Kubernetes.
all:
  vars:
    ansible_user: operator
    ansible_become: true
    ansible_ssh_private_key_file: {self.key}
    kubeguard_cluster_name: kubeguard-{self.name}
    kubeguard_control_plane_endpoint: "{self.prefix}.10:6443"
    # No kubelet answers the firewall's health proof here; the other concerns run.
    node_os_firewall_enabled: false
    node_os_packages_aide_exclude_extra: [/opt/kubeguard]
    node_os_firewall_admin_networks: [{self.subnet}]
    node_os_firewall_kubelet_sources: [{gateway}]
{extra}  children:
    k8s_cluster:
      children:
        workers:
          hosts:
{hosts}
"""

    def down(self):
        """Removes the fleet's containers and network (nothing else is labelled with its name)."""
        listed = _podman("ps", "-aq", "--filter", f"label={self.label}", check=False).stdout.split()
        if listed:
            _podman("rm", "-f", "-t", "2", *listed, check=False)
        _podman("network", "rm", "-f", self.network, check=False)
