"""playbooks/site.yml on the kubeadm-ha lab under load: it passes, a second
run changes nothing and drains nothing, no write the API acknowledged during
the first run is lost (bench/availability.py's writer: one ConfigMap per 100 ms
through the load balancer), and no /readyz poll through the load balancer (every
200 ms) gets an answer but 200: the lab's inventory sets kubeguard_lb_drain_*, so
each control plane leaves HAProxy's rotation before its apiserver restarts and is
back UP before the next one (docs/control_plane.md, "Draining the load balancer
before each restart"). Client timeouts of the loaded machine are counted, not
asserted. The shop application's client saw no failed request to its Service,
and its pods are the same pods with no container restarted. Counts only; the
timings are reported by the bench, not asserted. The /readyz, GET
(/api/v1/namespaces/default) and write figures are printed (pytest -rA); a
failure names what the answers said (the checks a /readyz body lists as failed,
a write's Status message) and the task running at each failed request.
Marked `ha`: `LAB_ID=23 LAYOUT=kubeadm-ha pytest -q -m ha tests/integration/test_ha_site.py`."""

import json
import os
import re
import subprocess
import sys

import pytest
from conftest import CONTAINERS_CONF, LAB_ID, REPO, ansible_playbook
from kubeguard_test.kube import Kubectl

pytestmark = [pytest.mark.lab, pytest.mark.ha]

API_PORT = 16443 + 100 * LAB_ID
# The drain and undrain tasks' results (kubeguard.hardening.haproxy_server, delegated to the controller).
DRAINED = re.compile(
    r"^TASK \[kubeguard\.hardening\.kubeguard : Load balancer, HAProxy runtime API: drain (\S+)\]", re.M
)
UNDRAINED = re.compile(
    r"^TASK \[kubeguard\.hardening\.kubeguard : Load balancer, HAProxy runtime API: ready (\S+)\]", re.M
)


# profile_tasks' line under a task or handler banner ends with the time since the play began: "... 0:03:12.345 ***".
TASK_STARTED = re.compile(r"^(?:TASK|RUNNING HANDLER) \[(.+)\] \*+ *\n.*\)\s+(\d+):(\d\d):(\d\d\.\d+) \*", re.M)


def tasks_at(log, seconds):
    """{seconds into the run: the task then running} for each of ``seconds``, from profile_tasks' times
    (the bench starts the play, so the two clocks start within about a second of each other)."""
    started = [(int(h) * 3600 + int(m) * 60 + float(s), task) for task, h, m, s in TASK_STARTED.findall(log)]
    return {at: next((task for began, task in reversed(started) if began <= at), "?") for at in seconds}


def shop_pods(lab, binaries):
    """{pod: (uid, restarts)} of the shop namespace (web and its client), as the API reports them."""
    pods = Kubectl(binaries, lab.kubeconfig).get("-n", "shop", "pods")["items"]
    return {
        p["metadata"]["name"]: (p["metadata"]["uid"], sum(c["restartCount"] for c in p["status"]["containerStatuses"]))
        for p in pods
    }


def test_site_passes_under_load_loses_no_write_and_reruns_unchanged(lab, lab_binaries):
    env = dict(
        os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_FORCE_COLOR="0", CONTAINERS_CONF=CONTAINERS_CONF
    )
    # Each task's start time in the log, so a failed request can be matched to the task then running.
    env.update(ANSIBLE_CALLBACKS_ENABLED="ansible.posix.profile_tasks", PROFILE_TASKS_SORT_ORDER="none")
    bench = [sys.executable, str(REPO / "bench" / "availability.py"), "--json"]
    bench += [f"--url=https://127.0.0.1:{API_PORT}/readyz", f"--kubeconfig={lab.kubeconfig}", "--write-interval=0.1"]
    bench += [f"--get-url=https://127.0.0.1:{API_PORT}/api/v1/namespaces/default"]
    bench += [f"--kubectl={lab_binaries / 'kubectl'}", "--max-seconds=2400", "--"]
    site = [str(REPO / ".venv/bin/ansible-playbook"), "-i", str(lab.inventory), str(REPO / "playbooks" / "site.yml")]
    shop_before = shop_pods(lab, lab_binaries)
    run = subprocess.run(bench + site, capture_output=True, text=True, env=env, cwd=REPO, check=False, timeout=2700)
    # Kept with the lab, to match the figures' times against the tasks' (ANSIBLE_CALLBACKS_ENABLED=profile_tasks).
    (lab.state / "ha_site.log").write_text(run.stdout + run.stderr)
    assert run.returncode == 0, (run.stdout[-3000:], run.stderr[-3000:])
    figures = json.loads(run.stdout.strip().splitlines()[-1])
    recap = {
        m.group(1): {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(2))}
        for m in re.finditer(r"^(\S+)\s+:\s+(ok=.*)$", run.stdout, re.M)
    }
    assert set(recap) == set(lab.hosts)
    assert all(stats["failed"] == 0 and stats["unreachable"] == 0 for stats in recap.values())
    writes = figures["writes"]
    assert writes["acknowledged"] > 0 and writes["lost"] == [], (writes, tasks_at(run.stdout, writes["failures_at"]))
    # Every control plane was drained before its apiserver restarted, and put back.
    control_planes = {h for h in lab.hosts if h.startswith("cp")}
    assert set(re.findall(DRAINED, run.stdout)) == control_planes, run.stdout[-3000:]
    assert set(re.findall(UNDRAINED, run.stdout)) == control_planes
    # No poll got an answer other than 200, nor a refused or reset connection: no apiserver was sent
    # a request from its SIGTERM to its new /readyz (24-43 such 500s per run before the drain). The
    # 1 s client timeouts of a loaded 2-core machine (AIDE, ssh host keys) are counted, not asserted.
    failed = {kind: figures[kind] for kind in ("failure_kinds", "failure_reasons")}
    assert figures["requests"] > 0 and set(figures["failure_kinds"]) <= {"timeout"}, (
        failed,
        tasks_at(run.stdout, figures["failures_at"]),
    )
    # The user's application kept serving and was not restarted: the same pods, no container restart.
    assert figures["clients"]["shop"][0] > 0 and figures["clients"]["shop"][1] == 0, figures["clients"]
    assert shop_pods(lab, lab_binaries) == shop_before
    # Every role checks again: a fast rerun would skip them (docs/fast-rerun.md).
    second, second_recap = ansible_playbook(
        lab.inventory, "site.yml", "-e", "kubeguard_fast_rerun_enabled=false", timeout=1800
    )
    assert second.returncode == 0, (second.stdout[-3000:], second.stderr[-3000:])
    assert {host: stats["changed"] for host, stats in second_recap.items()} == dict.fromkeys(second_recap, 0)
    assert "Load balancer, HAProxy runtime API" not in second.stdout  # nothing restarts: nothing drained
    print(json.dumps(figures))  # the figures (pytest -rA shows them)
