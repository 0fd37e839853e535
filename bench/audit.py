#!/usr/bin/env python3
"""Benchmark of playbooks/audit.yml (the CIS v1.12 audit) on the running lab (.lab/inventory.yml).

In one run, each measured --repeat times (median printed):
  (a) playbooks/audit.yml: one audit_node call per node, one bulk API pass (section 5), the report;
  (b) the peer: one kube-bench process per node, all nodes at once (what a kube-bench Job per node does),
      started with `podman exec` in each node container (no SSH), targets master,controlplane,etcd,node on
      the control-plane node and node on the workers; kube-bench has no section 5 here (its policies target
      needs kubectl on the node), so the comparison favours kube-bench;
  (c) the floor: `ansible k8s_cluster -m ping` (Ansible's own cost for one module call per node).
Prints a/b and a/c. Timing is reported, never asserted.

kube-bench: --kube-bench PATH (a binary built from the Go module proxy: github.com/aquasecurity/kube-bench)
and --kube-bench-cfg DIR (its cfg/ directory); without them (b) is skipped and said so.

Usage: LAB_ID=N .venv/bin/python bench/audit.py [--repeat 3] [--kube-bench PATH --kube-bench-cfg DIR]
"""

import argparse
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import yaml

REPO = pathlib.Path(__file__).resolve().parents[1]
STATE = pathlib.Path(os.environ.get("LAB_STATE", REPO / ".lab"))
ENV = dict(
    os.environ,
    ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
    ANSIBLE_HOME=str(REPO / ".ansible"),
    CONTAINERS_CONF=str(REPO / "lab/containers.conf"),
)


def timed(argv):
    start = time.monotonic()
    run = subprocess.run(argv, capture_output=True, text=True, env=ENV, cwd=REPO, check=False)
    seconds = time.monotonic() - start
    if run.returncode != 0:
        sys.exit(f"{argv[0]} failed:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}")
    return seconds


def nodes():
    """[(inventory name, container, is control plane)]."""
    inventory = yaml.safe_load((STATE / "inventory.yml").read_text())["all"]["children"]
    control = set((inventory["control_plane"] or {}).get("hosts") or {})
    found = []
    for group in ("control_plane", "workers"):
        for name, hostvars in ((inventory[group] or {}).get("hosts") or {}).items():
            found.append((name, hostvars["kubeguard_lab_container"], name in control))
    return found


def install_kube_bench(binary, cfg):
    """Copy the binary and its cfg/ into every node (setup, not timed)."""
    for _, container, _ in nodes():
        for source, target in ((binary, "/usr/local/bin/kube-bench"), (cfg, "/etc/kube-bench/cfg")):
            subprocess.run(["podman", "exec", container, "mkdir", "-p", os.path.dirname(target)], env=ENV, check=True)
            subprocess.run(["podman", "cp", str(source), f"{container}:{target}"], env=ENV, check=True)


def kube_bench_once(benchmark):
    def one(node):
        _, container, control = node
        targets = "master,controlplane,etcd,node" if control else "node"
        argv = ["podman", "exec", container, "kube-bench", "run", "--config-dir", "/etc/kube-bench/cfg"]
        argv += ["--benchmark", benchmark, "--targets", targets, "--json"]
        run = subprocess.run(argv, capture_output=True, text=True, env=ENV, check=False)
        if '"Controls"' not in run.stdout:  # it exits 0 with failing checks; no JSON means it did not run
            sys.exit(f"kube-bench failed on {container}:\n{run.stderr[-2000:]}")

    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(one, nodes()))
    return time.monotonic() - start


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--kube-bench", type=pathlib.Path)
    parser.add_argument("--kube-bench-cfg", type=pathlib.Path)
    parser.add_argument("--benchmark", default="cis-1.11", help="kube-bench v0.14.0 ships cis-1.11, not cis-1.12")
    args = parser.parse_args()
    inventory = str(STATE / "inventory.yml")
    with tempfile.TemporaryDirectory() as dest:
        audit = [
            timed(
                [
                    str(REPO / ".venv/bin/ansible-playbook"),
                    "-i",
                    inventory,
                    str(REPO / "playbooks/audit.yml"),
                    "-e",
                    f"audit_report_dir={dest}",
                ]
            )
            for _ in range(args.repeat)
        ]
    floor = [
        timed([str(REPO / ".venv/bin/ansible"), "k8s_cluster", "-i", inventory, "-m", "ansible.builtin.ping"])
        for _ in range(args.repeat)
    ]
    a, c = statistics.median(audit), statistics.median(floor)
    print(f"nodes: {len(nodes())}, repeat: {args.repeat}")
    print(f"(a) playbooks/audit.yml (sections 1-5, report)       median {a:6.2f} s  {[round(s, 2) for s in audit]}")
    print(f"(c) floor: ansible k8s_cluster -m ping               median {c:6.2f} s  {[round(s, 2) for s in floor]}")
    if args.kube_bench and args.kube_bench_cfg:
        install_kube_bench(args.kube_bench, args.kube_bench_cfg)
        peer = [kube_bench_once(args.benchmark) for _ in range(args.repeat)]
        b = statistics.median(peer)
        print(f"(b) kube-bench, one process per node, in parallel   median {b:6.2f} s  {[round(s, 2) for s in peer]}")
        print(f"audit / kube-bench: {a / b:.2f}x")
    else:
        print("(b) kube-bench: skipped (no --kube-bench/--kube-bench-cfg)")
    print(f"audit / floor: {a / c:.2f}x")


if __name__ == "__main__":
    main()
