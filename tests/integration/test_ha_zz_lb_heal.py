"""A play killed while a control plane is out of the API load balancer's rotation
converges on rerun (issue 23), on the kubeadm-ha lab.

- control_plane.yml restarts the apiservers with a flag they do not run yet;
  as soon as HAProxy's runtime API reports cp1 drained, ansible-playbook's
  whole process group is killed (SIGKILL: a lost controller, no `always`
  undrain). cp1 stays drained, and its drain marker is on the controller
  (kubeguard_lb_drain_host: localhost, kubeguard_lb_drain_marker_dir).
- The drain removed site.yml's fast-rerun record first (docs/fast-rerun.md).
- A rerun with nothing to change (a tag no task carries, so only the
  `always` tasks run: the heal and the facts) puts cp1 back: HAProxy's
  runtime API reports all three servers UP and in rotation, no marker left.
- An operator's drain (set by hand on the runtime API, no marker) survives
  the next rerun untouched.
- An operator's drain of cp3 outlives a run that restarts every apiserver:
  cp3's apiserver restarts with the others but its server stays drained.
- A marked server whose apiserver hangs (SIGSTOP: HAProxy's /readyz check
  fails) is not put back: the rerun fails naming it, the server stays
  drained and marked; once the apiserver runs again the next rerun heals it.
Marked `ha_upgrade` (make test-ha-upgrade; not in make test-ha):
`LAB_ID=22 LAB_STATE=$PWD/.lab-ha LAYOUT=kubeadm-ha pytest -q -m ha tests/integration/test_ha_zz_lb_heal.py`."""

import json
import os
import signal
import subprocess
import tempfile
import urllib.parse
from pathlib import Path

import pytest
from ansible_collections.kubeguard.hardening.plugins.module_utils._lb import haproxy
from conftest import REPO, ansible_playbook, playbook_command
from kubeguard_test.waiting import wait_for
from test_ha_zz_kubeadm_ops import on, running_apiserver_flags

pytestmark = [pytest.mark.lab, pytest.mark.ha, pytest.mark.ha_upgrade]

BACKEND = "apiservers"
HEAL_TASK = "Put back in the load balancer's rotation every server an interrupted run left drained"
# A rerun that finds nothing to change: no task has this tag, so only the `always` tasks run.
NOTHING = ("--tags", "kubeguard_nothing_else")


def runtime_api(lab):
    return lab.vars["kubeguard_lb_drain_haproxy_runtime_api"]


def lb_state(lab):
    """{server: (srv_op_state, srv_admin_state)} from HAProxy's runtime API (`show servers state`)."""
    found = haproxy.servers(runtime_api(lab), BACKEND)
    return {name: (server["op_state"], server["admin_state"]) for name, server in found.items()}


UP_READY = (2, 0)  # SRV_ST_RUNNING, no admin flag
DRAINED = 0x08  # SRV_ADMF_FDRAIN


def marker(lab, server):
    root = Path(os.path.expanduser("~/.local/state/kubeguard/lb-drained"))
    return root / urllib.parse.quote(runtime_api(lab), safe="") / BACKEND / server


def heal_result(stdout):
    """The heal task's result in the play's output (`changed: [cp1 -> localhost] => {...}`)."""
    tail = stdout.split(HEAL_TASK, 1)[1].split("\n", 1)[1]
    return tail.split("\nTASK ", 1)[0]


def apiserver_flag_change(host, values):
    """(value, ansible-playbook arguments) that restart every apiserver: the first of values not running on host."""
    running = " ".join(running_apiserver_flags(host))
    value = next(v for v in values if f"--max-requests-inflight={v}" not in running)
    flags = {"control_plane_apiserver_extra_flags": {"max-requests-inflight": value}}
    return value, ("--tags", "control_plane_apiserver", "-e", json.dumps(flags))


def test_a_play_killed_while_a_server_is_drained_is_healed_by_a_rerun_and_an_operators_drain_is_not(lab):
    assert lb_state(lab) == {"cp1": UP_READY, "cp2": UP_READY, "cp3": UP_READY}
    assert not marker(lab, "cp1").exists()
    # A fast-rerun record (docs/fast-rerun.md): the drain removes it before cp1 leaves the rotation, so the
    # next site.yml checks every role and heals cp1 instead of skipping to the audit.
    record = Path(lab.vars["kubeguard_pki_output_dir"] + ".fast-rerun.json")
    record.write_text(json.dumps({"version": 1}))
    _value, change = apiserver_flag_change("cp1", ("401", "402", "403"))
    argv, env = playbook_command(lab.inventory, "control_plane.yml", *change)
    with tempfile.TemporaryFile("w+") as out:
        play = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, text=True, env=env, cwd=REPO, start_new_session=True
        )
        try:
            wait_for(
                lambda: lb_state(lab)["cp1"][1] & DRAINED != 0 or play.poll() is not None,
                600,
                "cp1 drained by the play",
                interval=0.1,
            )
            assert play.poll() is None, "the play ended before draining cp1"
        finally:
            if play.poll() is None:
                os.killpg(play.pid, signal.SIGKILL)  # the whole group: a lost controller, nothing runs after
            play.wait(timeout=60)
        out.seek(0)
        log = out.read()
    # Killed between drain and ready: cp1 stays out of rotation, and the marker says we did it.
    assert lb_state(lab)["cp1"][1] & DRAINED, log[-3000:]
    assert marker(lab, "cp1").exists(), log[-3000:]
    assert json.loads(marker(lab, "cp1").read_text())["backend"] == BACKEND
    assert not record.exists(), log[-3000:]

    # The rerun finds nothing else to do, yet puts cp1 back and waits for HAProxy to report it UP.
    run, recap = ansible_playbook(lab.inventory, "control_plane.yml", *NOTHING, "-v", timeout=900)
    assert run.returncode == 0, run.stdout[-3000:]
    healed = heal_result(run.stdout)
    assert healed.startswith("changed:") and "healed:\n    - cp1\n" in healed, healed
    assert lb_state(lab) == {"cp1": UP_READY, "cp2": UP_READY, "cp3": UP_READY}
    assert not marker(lab, "cp1").exists()
    assert sum(r["changed"] for r in recap.values()) == 1, recap  # the heal, nothing else

    # An operator's drain carries no marker: the next rerun leaves it alone.
    assert haproxy.command(runtime_api(lab), f"set server {BACKEND}/cp3 state drain").strip() == ""
    try:
        run, recap = ansible_playbook(lab.inventory, "control_plane.yml", *NOTHING, "-v", timeout=900)
        assert run.returncode == 0, run.stdout[-3000:]
        assert heal_result(run.stdout).startswith("ok:"), heal_result(run.stdout)
        assert lb_state(lab)["cp3"] == (2, DRAINED) and not marker(lab, "cp3").exists()
        assert sum(r["changed"] for r in recap.values()) == 0, recap
    finally:
        haproxy.command(runtime_api(lab), f"set server {BACKEND}/cp3 state ready")
    wait_for(lambda: lb_state(lab) == {"cp1": UP_READY, "cp2": UP_READY, "cp3": UP_READY}, 120, "all three UP")


def test_a_marked_server_whose_apiserver_is_down_stays_drained_and_the_rerun_names_it(lab):
    # A killed run's drain of cp2 (the module's own drain: the marker is written), then cp2's apiserver hangs.
    params = {
        "runtime_api": runtime_api(lab),
        "backend": BACKEND,
        "server": "cp2",
        "state": "drain",
        "wait": True,
        "timeout": 60,
        "marker_dir": haproxy.DEFAULT_MARKER_DIR,
    }
    assert haproxy.run(params, check_mode=False)["changed"] and marker(lab, "cp2").exists()
    assert on("cp2", "pkill", "-STOP", "-x", "kube-apiserver").returncode == 0
    try:
        wait_for(lambda: lb_state(lab)["cp2"] == (0, DRAINED), 120, "HAProxy's check failing on cp2")
        short = ("-e", "kubeguard_lb_drain_timeout=10")
        run, _ = ansible_playbook(lab.inventory, "control_plane.yml", *NOTHING, *short, timeout=900)
        assert run.returncode != 0, run.stdout[-3000:]
        assert "kubeguard_lb_drain_server: apiservers/cp2 left drained by an interrupted kubeguard run" in run.stdout
        assert "reports it DOWN (waited 10 s)" in run.stdout, run.stdout[-3000:]
        # Still out of rotation, still ours: the next run tries again.
        assert lb_state(lab)["cp2"][1] & DRAINED and marker(lab, "cp2").exists()
    finally:
        on("cp2", "pkill", "-CONT", "-x", "kube-apiserver")
    # Repaired: the next run puts it back (waiting for HAProxy's check to pass again first).
    run, _ = ansible_playbook(lab.inventory, "control_plane.yml", *NOTHING, "-v", timeout=900)
    assert run.returncode == 0, run.stdout[-3000:]
    assert "healed:\n    - cp2\n" in heal_result(run.stdout), heal_result(run.stdout)
    assert lb_state(lab) == {"cp1": UP_READY, "cp2": UP_READY, "cp3": UP_READY}
    assert not marker(lab, "cp2").exists()


def test_an_operators_drain_outlives_the_apiserver_restart_it_straddles(lab):
    """The operator drains cp3 (no marker); control_plane.yml then restarts every apiserver with a new
    flag. cp1 and cp2 are drained and put back as usual; cp3 restarts too but stays drained."""
    assert haproxy.command(runtime_api(lab), f"set server {BACKEND}/cp3 state drain").strip() == ""
    try:
        value, change = apiserver_flag_change("cp3", ("411", "412", "413"))
        run, _ = ansible_playbook(lab.inventory, "control_plane.yml", *change, timeout=1800)
        assert run.returncode == 0, run.stdout[-3000:]
        assert "apiservers/cp3 is DRAIN (UP) without kubeguard's drain marker: left drained" in run.stderr
        assert all(f"--max-requests-inflight={value}" in running_apiserver_flags(h) for h in ("cp1", "cp2", "cp3"))
        assert lb_state(lab) == {"cp1": UP_READY, "cp2": UP_READY, "cp3": (2, DRAINED)}
        assert not any(marker(lab, h).exists() for h in ("cp1", "cp2", "cp3"))
    finally:
        haproxy.command(runtime_api(lab), f"set server {BACKEND}/cp3 state ready")
    wait_for(lambda: lb_state(lab) == {"cp1": UP_READY, "cp2": UP_READY, "cp3": UP_READY}, 120, "all three UP")
