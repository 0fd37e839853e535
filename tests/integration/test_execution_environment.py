"""The execution environment (docs/awx.md): `make ee` builds the image from the
repository's files with no registry, and the collection's site.yml, run from
inside it with ansible-navigator as AWX/AAP would run it, repairs a weakened
node, converges, and a second run changes nothing."""

import os
import re
import subprocess

import pytest
import yaml
from conftest import CONTAINERS_CONF, LAB_STATE, REPO

pytestmark = pytest.mark.lab

PLAYBOOK = "kubeguard.hardening.site"
# What the test does to one node before the first run through the EE: sshd
# takes the first value of a keyword, so these lines, put before everything
# the role wrote, let passwords in again.
WEAKENING = ("PasswordAuthentication yes", "AuthenticationMethods any")


def _env(**extra):
    return dict(os.environ, CONTAINERS_CONF=CONTAINERS_CONF, LAB_STATE=str(LAB_STATE), **extra)


@pytest.fixture(scope="module")
def ee_image():
    """The EE image of this checkout: lab/bin/build-ee builds it (cached by its recipe and the collection's content)."""
    run = subprocess.run(
        [str(REPO / "lab" / "bin" / "build-ee")], capture_output=True, text=True, env=_env(), timeout=3600, check=False
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return run.stdout.strip().splitlines()[-1]


def podman_run(image, *argv):
    return subprocess.run(
        ["podman", "run", "--rm", "--network=none", image, *argv],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=120,
        check=False,
    )


def ee_run(image, playbook):
    """lab/bin/ee-run: the playbook through ansible-navigator in the EE; the process and its PLAY RECAP."""
    run = subprocess.run(
        [str(REPO / "lab" / "bin" / "ee-run"), playbook],
        capture_output=True,
        text=True,
        env=_env(EE_IMAGE=image),
        cwd=REPO,
        timeout=1800,
        check=False,
    )
    # ansible-runner's event markers (escape sequences) precede some lines, never a recap line.
    recap = {
        m.group(1): {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(2))}
        for m in re.finditer(r"^(\S+)\s+:\s+(ok=.*)$", run.stdout, re.M)
    }
    return run, recap


def test_the_image_carries_the_collection_and_its_requirements(ee_image):
    version = yaml.safe_load((REPO / "galaxy.yml").read_text())["version"]
    listed = podman_run(ee_image, "ansible-galaxy", "collection", "list", "kubeguard.hardening")
    assert listed.returncode == 0, listed.stderr
    assert re.search(rf"^kubeguard\.hardening\s+{re.escape(version)}\s*$", listed.stdout, re.M), listed.stdout
    # The versions the lab's EE pins; the collection's meta/ee-requirements.txt brought them in.
    pins = dict(
        line.lower().split("==")
        for line in (REPO / "lab" / "ee" / "constraints.txt").read_text().splitlines()
        if "==" in line
    )
    probe = podman_run(
        ee_image,
        "python3",
        "-c",
        "import ansible, cryptography, kubernetes, yaml; "
        "print(ansible.__version__, cryptography.__version__, kubernetes.__version__, yaml.__version__)",
    )
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.split() == [pins["ansible-core"], pins["cryptography"], pins["kubernetes"], pins["pyyaml"]]
    ssh = podman_run(ee_image, "ssh", "-V")
    assert ssh.returncode == 0 and "OpenSSH" in ssh.stderr, ssh.stderr


@pytest.fixture(scope="module")
def weakened(lab, request):
    """One node's sshd takes password logins again, proven by a real password login."""
    host = lab.groups["workers"][0]
    config = "/etc/ssh/sshd_config"
    # Whatever happens below: the lab stays hardened for the tests after this file.
    restore = "; ".join(f"/^{line}$/d" for line in WEAKENING)
    request.addfinalizer(
        lambda: lab.podman_exec(host, "sh", "-c", f"sed -i '{restore}' {config} && systemctl reload ssh")
    )
    insert = "\\n".join(WEAKENING)
    weaken = lab.podman_exec(host, "sh", "-c", f"sed -i '1i {insert}' {config} && sshd -t && systemctl reload ssh")
    assert weaken.returncode == 0, weaken.stderr
    login = lab.ssh(host, "true", user="operator", password="operator")
    assert login.returncode == 0, login.stderr
    return host


@pytest.fixture(scope="module")
def runs(lab, ee_image, weakened):
    first = ee_run(ee_image, PLAYBOOK)
    second = ee_run(ee_image, PLAYBOOK)
    return first, second


def test_site_converges_through_the_ee(lab, runs, weakened):
    run, recap = runs[0]
    assert run.returncode == 0, (run.stdout[-4000:], run.stderr[-2000:])
    assert set(recap) == set(lab.hosts)
    assert all(stats["failed"] == 0 and stats["unreachable"] == 0 for stats in recap.values()), recap
    assert recap[weakened]["changed"] > 0, recap


def test_second_run_through_the_ee_changes_nothing(runs):
    run, recap = runs[1]
    assert run.returncode == 0, (run.stdout[-4000:], run.stderr[-2000:])
    assert recap and {host: stats["changed"] for host, stats in recap.items()} == dict.fromkeys(recap, 0)


def test_the_weakened_node_refuses_passwords_again(lab, runs, weakened):
    refused = lab.ssh(weakened, "true", user="operator", password="operator")
    assert refused.returncode != 0 and "Permission denied" in refused.stderr, refused.stderr
    key = lab.ssh(weakened, "sudo -n id -u")
    assert (key.returncode, key.stdout.strip()) == (0, "0"), key.stderr
