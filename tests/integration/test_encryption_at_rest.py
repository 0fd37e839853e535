"""Encryption at rest on the lab, against the real etcd and kube-apiserver:
every Secret carries the key's prefix in etcd (read with etcdctl and the
apiserver's etcd client certificate) and reads back byte-identical; a rotation
with 200 Secrets, killed at every step boundary in turn, converges; a provider
switch is a rotation; a missing key store stops the run with nothing changed
on the nodes; adopt takes the nodes' keys back; check mode predicts with key
names only; a rerun changes nothing and restarts nothing."""

import base64
import json
import os
import re
import shutil
import signal
import subprocess
import time

import pytest
from ansible_collections.kubeguard.hardening.plugins.module_utils._k8s import runner
from conftest import CONTAINERS_CONF, REPO, ansible_playbook

pytestmark = pytest.mark.lab

PLAYBOOK = "encryption_at_rest.yml"
NAMESPACES = [f"enc-test-{i}" for i in range(4)]
CONFIG = "/etc/kubernetes/kubeguard/encryption-config.yaml"


class Enc:
    def __init__(self, lab, binaries):
        self.lab = lab
        self.kubectl_bin = str(binaries / "kubectl")
        self.cp = lab.groups["control_plane"][0]
        store_dir = lab.vars.get("kubeguard_pki_output_dir", "").replace("$LAB_STATE", str(lab.state))
        self.store = os.path.join(store_dir, "encryption-keys.json")
        self.state = os.path.join(store_dir, "encryption-state.json")

    def kubectl(self, *args, stdin=None):
        run = subprocess.run(
            [self.kubectl_bin, f"--kubeconfig={self.lab.kubeconfig}", "--request-timeout=30s", *args],
            input=stdin,
            capture_output=True,
            text=True,
            check=False,
        )
        assert run.returncode == 0, run.stderr
        return run.stdout

    def apiserver_flags(self):
        pid = self.lab.podman_exec(self.cp, "pgrep", "-o", "-f", "^[^ ]*kube-apiserver ").stdout.split()[0]
        argv = self.lab.podman_exec(self.cp, "cat", f"/proc/{pid}/cmdline").stdout.split("\0")
        flags = {a[2:].split("=", 1)[0]: a.split("=", 1)[1] for a in argv if a.startswith("--") and "=" in a}
        return pid, flags

    def etcd_values(self, prefix="/registry/secrets/"):
        """{etcd key: raw value} read with etcdctl on the node, with the apiserver's etcd client certificate."""
        _, flags = self.apiserver_flags()
        run = self.lab.podman_exec(
            self.cp,
            "etcdctl",
            f"--endpoints={flags['etcd-servers'].split(',')[0]}",
            f"--cacert={flags['etcd-cafile']}",
            f"--cert={flags['etcd-certfile']}",
            f"--key={flags['etcd-keyfile']}",
            "get",
            "--prefix",
            prefix,
            "-w",
            "json",
        )
        assert run.returncode == 0, run.stderr
        kvs = json.loads(run.stdout).get("kvs") or []
        return {base64.b64decode(kv["key"]).decode(): base64.b64decode(kv["value"]) for kv in kvs}

    def secrets(self):
        items = json.loads(self.kubectl("get", "secrets", "-A", "-o", "json"))["items"]
        return {(s["metadata"]["namespace"], s["metadata"]["name"]): s.get("data") or {} for s in items}

    def node_config(self):
        run = self.lab.podman_exec(self.cp, "cat", CONFIG)
        return run.stdout if run.returncode == 0 else ""

    def playbook(self, *extra):
        return ansible_playbook(self.lab.inventory, PLAYBOOK, *extra)

    def recorded(self):
        with open(self.state) as handle:
            return json.load(handle)

    def assert_every_secret_encrypted(self, prefix, expected=None):
        values = self.etcd_values()
        wrong = {key: value[:40] for key, value in values.items() if not value.startswith(prefix.encode())}
        assert values and not wrong, wrong
        if expected is not None:
            assert self.secrets() == expected


def same_inventory(enc):
    """Extra vars naming the current key's generation and provider: a run with them has nothing to do
    (after site.yml they are the defaults; on a lab these tests already rotated, they are not)."""
    generation, provider = re.match(r"gen(\d+)-(\w+)$", enc.recorded()["current"]).groups()
    return ("-e", f"encryption_at_rest_key_generation={generation}", "-e", f"encryption_at_rest_provider={provider}")


def store_secrets(enc):
    with open(enc.store) as handle:
        return [key["secret"] for key in json.load(handle)["keys"].values()]


@pytest.fixture(scope="module")
def enc(lab, lab_binaries):
    enc = Enc(lab, lab_binaries)
    # Standalone, the lab is not encrypted yet, so this Secret predates the first run; after site.yml
    # (test_50) it is written encrypted (the loopback test proves the plain-text migration there).
    before = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "before-hardening", "namespace": "default"}}
    enc.kubectl("apply", "-f", "-", stdin=json.dumps(dict(before, data={"k": base64.b64encode(b"v1").decode()})))
    if not os.path.exists(enc.state):
        run, _ = enc.playbook()
        assert run.returncode == 0, run.stdout[-3000:]
    return enc


@pytest.fixture(scope="module")
def two_hundred(enc):
    """200 Secrets in 4 namespaces, created in one request, and every Secret's data as the API returns it."""
    items = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}} for ns in NAMESPACES]
    items += [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": f"s{i:03}", "namespace": NAMESPACES[i % 4]},
            "data": {
                "token": base64.b64encode(os.urandom(48)).decode(),
                "n": base64.b64encode(str(i).encode()).decode(),
            },
        }
        for i in range(200)
    ]
    # the collection's own bulk apply, in-process: one discovery, 8 requests in flight
    result = runner.run({"kubeconfig": str(enc.lab.kubeconfig), "objects": items, "workers": 8}, check_mode=False)
    assert result["summary"]["failed"] == 0, result.get("msg")
    return enc.secrets()


def test_first_run_encrypted_every_secret(enc):
    state = enc.recorded()
    assert state["transition"] is None
    current = state["current"]
    provider = current.split("-", 1)[1]  # aescbc after site.yml; the last rotation's on a reused lab
    enc.assert_every_secret_encrypted(f"k8s:enc:{provider}:v1:{current}:")
    # migrated from identity, which is gone again
    assert "identity" not in enc.node_config() and current in enc.node_config()
    assert base64.b64decode(enc.secrets()[("default", "before-hardening")]["k"]) == b"v1"


def test_rerun_changes_nothing_and_restarts_nothing(enc):
    pid, _ = enc.apiserver_flags()
    run, recap = enc.playbook(*same_inventory(enc))
    assert run.returncode == 0, run.stdout[-3000:]
    assert {h: s["changed"] for h, s in recap.items()} == dict.fromkeys(recap, 0)
    assert enc.apiserver_flags()[0] == pid


def test_check_mode_predicts_with_key_names_only(enc):
    with open(enc.state) as handle:
        before = handle.read()
    generation, provider = re.match(r"gen(\d+)-(\w+)$", enc.recorded()["current"]).groups()
    generation = int(generation) + 1
    run, _ = enc.playbook(
        "--check",
        "--diff",
        "-e",
        f"encryption_at_rest_key_generation={generation}",
        "-e",
        f"encryption_at_rest_provider={provider}",
    )
    assert run.returncode == 0, run.stdout[-3000:]
    assert f"{provider}:gen{generation}-{provider}" in run.stdout
    for secret in store_secrets(enc):
        assert secret not in run.stdout and secret not in run.stderr
    with open(enc.state) as handle:
        assert handle.read() == before


def run_until(enc, boundary, *extra):
    """Run the play and SIGKILL it as soon as the controller records ``boundary``."""
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), CONTAINERS_CONF=CONTAINERS_CONF)
    proc = subprocess.Popen(
        [
            str(REPO / ".venv/bin/ansible-playbook"),
            "-i",
            str(enc.lab.inventory),
            str(REPO / "playbooks" / PLAYBOOK),
            *list(extra),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        cwd=REPO,
        start_new_session=True,
    )
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline:
            transition = enc.recorded().get("transition") or {}
            if boundary in transition.get("done", []):
                os.killpg(proc.pid, signal.SIGKILL)
                return transition["done"]
            assert proc.poll() is None, f"the play ended before recording {boundary}"
            time.sleep(0.1)
        raise AssertionError(f"{boundary} not recorded in 300 s")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_rotation_to_a_new_provider_killed_at_every_step_boundary_converges(enc, two_hundred):
    """A new generation and a provider switch (aescbc -> secretbox after site.yml) in one rotation, with 200
    Secrets in 4 namespaces; the play is SIGKILLed as soon as each step is recorded, then rerun until it converges."""
    old = enc.recorded()["current"]
    generation, old_provider = re.match(r"gen(\d+)-(\w+)$", old).groups()
    generation = int(generation) + 1
    provider = "aescbc" if old_provider == "secretbox" else "secretbox"
    new = f"gen{generation}-{provider}"
    extra = ("-e", f"encryption_at_rest_key_generation={generation}", "-e", f"encryption_at_rest_provider={provider}")
    # one apiserver skips the secondary step (upstream allows it); every other boundary is killed
    boundaries = ["primary", "rewrite", "verify"]
    if len(enc.lab.groups["control_plane"]) > 1:
        boundaries.insert(0, "secondary")
    seen = []
    for boundary in boundaries:
        done = run_until(enc, boundary, *extra)
        seen.append(done[-1])
        # a killed run never leaves the old key out while anything may need it
        assert old in enc.node_config()
    assert seen == boundaries
    run, _ = enc.playbook(*extra)
    assert run.returncode == 0, run.stdout[-3000:]
    state = enc.recorded()
    assert state["current"] == new and state["transition"] is None
    enc.assert_every_secret_encrypted(f"k8s:enc:{provider}:v1:{new}:", two_hundred)
    config = enc.node_config()
    assert new in config and old not in config and "identity" not in config and f'"{old_provider}"' not in config


def test_missing_key_store_is_refused_and_nothing_changes(enc):
    pid, _ = enc.apiserver_flags()
    config = enc.node_config()
    current = enc.recorded()["current"]
    same = same_inventory(enc)  # nothing is due once the store is back
    aside = enc.store + ".aside"
    shutil.move(enc.store, aside)
    try:
        run, _ = enc.playbook(*same)
        assert run.returncode != 0
        text = run.stdout + run.stderr
        assert "does not exist, but the apiserver configuration on the nodes holds" in text, text[-3000:]
        assert "encryption_at_rest_adopt" in text
        assert not os.path.exists(enc.store)
        assert enc.node_config() == config and enc.apiserver_flags()[0] == pid
        # adopt takes the nodes' keys back into the store: byte-identical to what was lost
        run, _ = enc.playbook(*same, "-e", "encryption_at_rest_adopt=true")
        assert run.returncode == 0, run.stdout[-3000:]
        with open(enc.store) as handle, open(aside) as original:
            adopted, lost = json.load(handle)["keys"], json.load(original)["keys"]
        assert adopted[current]["secret"] == lost[current]["secret"]
        for secret in store_secrets(enc):
            assert secret not in run.stdout
        assert enc.node_config() == config and enc.apiserver_flags()[0] == pid
    finally:
        # the original store holds the retired keys too (etcd backups may need them)
        shutil.move(aside, enc.store)
