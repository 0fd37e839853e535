"""Fixtures shared by the integration tests: the running lab and the
upstream binaries it is built from."""

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
LAB_STATE = Path(os.environ.get("LAB_STATE", REPO / ".lab"))
CONTAINERS_CONF = str(REPO / "lab" / "containers.conf")
# Which lab instance the tests drive (lab/lib/common.sh: LAB_ID shifts names,
# addresses and ports; instance 0 keeps the historical label).
LAB_ID = int(os.environ.get("LAB_ID", "0"))
LAB_LABEL = "io.kubeguard.lab=1" if LAB_ID == 0 else f"io.kubeguard.lab=instance-{LAB_ID}"


def lab_layout():
    """LAYOUT from the environment, else the running lab's (its inventory records it)."""
    if os.environ.get("LAYOUT"):
        return os.environ["LAYOUT"]
    try:
        return yaml.safe_load((LAB_STATE / "inventory.yml").read_text())["all"]["vars"]["kubeguard_lab_layout"]
    except (OSError, KeyError, TypeError, yaml.YAMLError):
        return "hardway"


def pytest_collection_modifyitems(config, items):
    """Tests marked `ha` prove the kubeadm-ha layout's shape: they run only
    against that layout, never in the default lab stream of another one."""
    if lab_layout() == "kubeadm-ha":
        return
    deselected = [item for item in items if item.get_closest_marker("ha")]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if not item.get_closest_marker("ha")]


@pytest.fixture(scope="session")
def lab_binaries():
    """Directory holding etcd, etcdctl, kube-apiserver, kubeadm, kubectl, ..."""
    out = subprocess.check_output([str(REPO / "lab" / "bin" / "build-binaries")], text=True)
    return Path(out.strip().splitlines()[-1])


def playbook_command(inventory, playbook, *extra):
    """(argv, env) of ansible-playbook running a playbook of this repository (Popen it to kill it midway)."""
    env = dict(
        os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_FORCE_COLOR="0", CONTAINERS_CONF=CONTAINERS_CONF
    )
    argv = [str(REPO / ".venv/bin/ansible-playbook"), "-i", str(inventory), str(REPO / "playbooks" / playbook)]
    return [*argv, *extra], env


def ansible_playbook(inventory, playbook, *extra, timeout=900):
    """Run a playbook of this repository; returns the process and its PLAY RECAP
    as {host: {"ok": n, "changed": n, ...}}."""
    argv, env = playbook_command(inventory, playbook, *extra)
    run = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        check=False,
        timeout=timeout,
    )
    recap = {
        m.group(1): {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(2))}
        for m in re.finditer(r"^(\S+)\s+:\s+(ok=.*)$", run.stdout, re.M)
    }
    return run, recap


class Lab:
    """The running lab, as its inventory describes it."""

    def __init__(self, state):
        self.state = state
        self.inventory = state / "inventory.yml"
        self.kubeconfig = state / "admin.kubeconfig"
        self.key = state / "id_ed25519"
        inventory = yaml.safe_load(self.inventory.read_text())["all"]
        self.vars = inventory.get("vars", {})
        children = inventory["children"]
        self.groups = {name: sorted((group or {}).get("hosts") or {}) for name, group in children.items()}
        self.hostvars = {}
        for group in children.values():
            self.hostvars.update((group or {}).get("hosts") or {})
        self.groups["k8s_cluster"] = sorted(self.hostvars)

    @property
    def hosts(self):
        return list(self.hostvars)

    def ssh(self, host, command, user="operator", password=None, timeout=30):
        """A real SSH login from this host to a lab node: key auth, or password auth when given."""
        opts = [
            "-p",
            str(self.hostvars[host]["ansible_port"]),
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "ConnectTimeout=10",
            "-o",
            "LogLevel=ERROR",
        ]
        if password is None:
            argv = ["ssh", *opts, "-i", str(self.key), "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes"]
        else:
            argv = [
                "sshpass",
                "-e",
                "ssh",
                *opts,
                "-o",
                "PubkeyAuthentication=no",
                "-o",
                "PreferredAuthentications=password,keyboard-interactive",
            ]
        env = dict(os.environ, SSHPASS=password or "")
        return subprocess.run(
            [*argv, f"{user}@127.0.0.1", command], capture_output=True, text=True, env=env, timeout=timeout, check=False
        )

    def podman_exec(self, host, *argv):
        """Run argv inside the node container of host."""
        env = dict(os.environ, CONTAINERS_CONF=CONTAINERS_CONF)
        return subprocess.run(
            ["podman", "exec", self.hostvars[host]["kubeguard_lab_container"], *argv],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )


@pytest.fixture(scope="session")
def lab():
    """The running lab; `make integration` brings it up fresh before pytest."""
    if not (LAB_STATE / ".ready").exists():
        pytest.fail(f"the lab is not up ({LAB_STATE}/.ready missing): run `make lab` first")
    return Lab(LAB_STATE)


def lab_up(**env):
    return subprocess.run(
        [str(REPO / "lab" / "bin" / "lab-up")],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=900,
        check=False,
    )


@pytest.fixture(scope="module")
def kubeadm_lab():
    """A kubeadm lab brought up afresh for one test module (it replaces the stream's lab)."""
    result = lab_up(LAYOUT="kubeadm", LAB_FRESH="1")
    assert result.returncode == 0, result.stderr[-2000:]
    return Lab(LAB_STATE)
