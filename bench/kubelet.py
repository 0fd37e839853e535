#!/usr/bin/env python3
"""Benchmark of kubeguard.hardening.kubelet on the running lab (.lab/inventory.yml).

In one run it measures, on the lab's nodes (after site.yml has hardened them):
  (a) an idempotent rerun of playbooks/ssh_hardening.yml (the peer);
  (b) an idempotent rerun of playbooks/kubelet.yml (must change nothing);
and prints b/a. Then, for the NotReady figure, it runs kubelet.yml twice with
a changed field (kubelet_event_record_qps, then back), which restarts every
kubelet one node at a time, and prints per restart the seconds from the
restart until the new kubelet had reported the Node Ready with its pods
(the module's own measurement) and whether the Node's Ready condition was
ever seen other than True while it waited. Timing is reported, never asserted.

Usage: LAB_ID=N .venv/bin/python bench/kubelet.py [--repeat 3]
"""

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
STATE = pathlib.Path(os.environ.get("LAB_STATE", REPO / ".lab"))


def playbook(name, *extra, json_output=False):
    env = dict(
        os.environ,
        ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
        ANSIBLE_HOME=str(REPO / ".ansible"),
        CONTAINERS_CONF=str(REPO / "lab/containers.conf"),
    )
    if json_output:
        env["ANSIBLE_STDOUT_CALLBACK"] = "ansible.builtin.json"
    argv = [
        str(REPO / ".venv/bin/ansible-playbook"),
        "-i",
        str(STATE / "inventory.yml"),
        str(REPO / "playbooks" / name),
    ]
    start = time.monotonic()
    run = subprocess.run([*argv, *extra], capture_output=True, text=True, env=env, check=False)
    seconds = time.monotonic() - start
    if run.returncode != 0:
        sys.exit(f"{name} failed:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}")
    return seconds, run.stdout


def changed(stdout):
    return sum(int(part.split("=")[1]) for part in stdout.split() if part.startswith("changed="))


def restarts(stdout):
    """(host, seconds_until_ready, ready_false_seen) of every kubelet restart in a JSON-callback run."""
    found = []
    for play in json.loads(stdout)["plays"]:
        for task in play["tasks"]:
            for host, result in task["hosts"].items():
                if result.get("restarted") and "seconds_until_ready" in result:
                    found.append((host, result["seconds_until_ready"], result["ready_false_seen"]))
    return found


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    ssh, kubelet = [], []
    for _ in range(args.repeat):
        seconds, out = playbook("ssh_hardening.yml")
        assert changed(out) == 0, "ssh_hardening.yml rerun changed something: harden the lab with site.yml first"
        ssh.append(seconds)
        seconds, out = playbook("kubelet.yml")
        assert changed(out) == 0, "kubelet.yml rerun changed something: harden the lab with site.yml first"
        kubelet.append(seconds)
    a, b = statistics.median(ssh), statistics.median(kubelet)
    print(f"idempotent rerun on {STATE / 'inventory.yml'} (median of {args.repeat}):")
    print(f"  ssh_hardening.yml  {a:6.2f} s")
    print(f"  kubelet.yml        {b:6.2f} s   ratio kubelet/ssh_hardening = {b / a:.2f}")
    samples = []
    for qps in (49, 50):
        _, out = playbook(
            "kubelet.yml", "--tags", "kubelet_config", "-e", f"kubelet_event_record_qps={qps}", json_output=True
        )
        samples += restarts(out)
    print("kubelet restarts (one node at a time): seconds until the new kubelet reported Ready with its pods")
    for host, seconds, false_seen in samples:
        print(f"  {host:10s} {seconds:5.1f} s   Ready condition seen False/Unknown: {false_seen}")
    if samples:
        values = [s for _, s, _ in samples]
        print(f"  median {statistics.median(values):.1f} s, max {max(values):.1f} s over {len(values)} restarts")


if __name__ == "__main__":
    main()
