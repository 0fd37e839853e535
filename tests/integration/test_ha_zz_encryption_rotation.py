"""Encryption-key rotation across the three apiservers of the kubeadm-ha lab,
with the secondary step, SIGKILLed once in the middle (as soon as the
secondary step is recorded) and converged by a rerun: every Secret reads back
unchanged and is stored under the new key in etcd, and the old key is gone
from every apiserver's config. A client polls /readyz through the load
balancer and writes a ConfigMap per 100 ms the whole time: no acknowledged
write is lost (counts; the figures are printed, not asserted).
Runs in make test-ha-upgrade, on the lab test_ha_site.py hardened."""

import json
import os
import re
import subprocess
import sys

import pytest
from conftest import CONTAINERS_CONF, LAB_ID, REPO
from test_encryption_at_rest import CONFIG, Enc, run_until

pytestmark = [pytest.mark.lab, pytest.mark.ha, pytest.mark.ha_upgrade]

API_PORT = 16443 + 100 * LAB_ID


def apiserver_configs(enc):
    """{control plane: its encryption config} read on every node."""
    configs = {}
    for host in enc.lab.groups["control_plane"]:
        run = enc.lab.podman_exec(host, "cat", CONFIG)
        assert run.returncode == 0, (host, run.stderr)
        configs[host] = run.stdout
    return configs


def start_probe(enc, binaries):
    """bench/availability.py around a command that ends when its stdin closes: polls /readyz and an API
    read through the load balancer every 200 ms and writes a ConfigMap every 100 ms until then."""
    env = dict(os.environ, CONTAINERS_CONF=CONTAINERS_CONF)
    bench = [sys.executable, str(REPO / "bench" / "availability.py"), "--json", "--write-interval=0.1"]
    bench += [f"--url=https://127.0.0.1:{API_PORT}/readyz", f"--kubeconfig={enc.lab.kubeconfig}"]
    bench += [f"--get-url=https://127.0.0.1:{API_PORT}/api/v1/namespaces/default"]
    bench += [f"--kubectl={binaries / 'kubectl'}", "--max-seconds=1800", "--", "sh", "-c", "cat >/dev/null"]
    return subprocess.Popen(bench, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=REPO)


def stop_probe(probe):
    out, _ = probe.communicate(input="", timeout=600)
    assert probe.returncode == 0, out[-2000:]
    return json.loads(out.strip().splitlines()[-1])


def assert_lb_kept_serving(figures):
    """Through the load balancer: no poll or GET failed other than by a client timeout, and no write was lost."""
    assert figures["requests"] > 0 and set(figures["failure_kinds"]) <= {"timeout"}, figures
    assert set(figures["get"]["failure_kinds"]) <= {"timeout"}, figures["get"]
    assert figures["writes"]["acknowledged"] > 0 and figures["writes"]["lost"] == [], figures["writes"]


def test_rotation_killed_after_the_secondary_step_converges_on_every_apiserver(lab, lab_binaries):
    enc = Enc(lab, lab_binaries)
    assert os.path.exists(enc.state), "site.yml has not run on this lab (test_ha_site.py runs it first)"
    old = enc.recorded()["current"]
    generation, provider = re.match(r"gen(\d+)-(\w+)$", old).groups()
    new = f"gen{int(generation) + 1}-{provider}"
    extra = ("-e", f"encryption_at_rest_key_generation={int(generation) + 1}")
    extra += ("-e", f"encryption_at_rest_provider={provider}")
    before = enc.secrets()
    probe = start_probe(enc, lab_binaries)
    try:
        done = run_until(enc, "secondary", *extra)
        assert done[-1] == "secondary"
        # Killed with the new key added beside the old one: every apiserver still reads the old key.
        configs = apiserver_configs(enc)
        assert all(old in config and new in config for config in configs.values()), configs
        run, _ = enc.playbook(*extra)
        assert run.returncode == 0, run.stdout[-3000:]
    finally:
        figures = stop_probe(probe)
    print(json.dumps(figures))  # the figures (pytest -rA shows them)
    assert figures["writes"]["acknowledged"] > 0 and figures["writes"]["lost"] == [], figures["writes"]
    state = enc.recorded()
    assert state["current"] == new and state["transition"] is None
    enc.assert_every_secret_encrypted(f"k8s:enc:{provider}:v1:{new}:", before)
    configs = apiserver_configs(enc)
    assert all(new in config and old not in config for config in configs.values()), configs
