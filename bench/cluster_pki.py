#!/usr/bin/env python3
"""Benchmark of kubeguard.hardening.cluster_pki.

In one run it measures:
  (a) the bare cost of generating as many keys as the cluster PKI needs, with
      the ``cryptography`` library, in a single process;
  (b) the module logic (module_utils/_pki/_engine.run, in-process, no
      Ansible) creating the full PKI for N control-plane nodes and M workers
      into an empty directory;
  (c) an idempotent rerun of (b) (must report changed=False).
It prints b/a and the rerun time. Targets: b/a <= 1.0 for RSA-2048 on 2 cores,
rerun <= 1 s. Timing is reported, never asserted.

With --lab it also times, on the running lab (.lab/inventory.yml), an
idempotent rerun of playbooks/cluster_pki.yml (after one converging run) and
its floor in the same run: ansible-playbook running one ping per node.

Usage: .venv/bin/python bench/cluster_pki.py [--control-plane 3] [--workers 100] [--algorithm RSA-2048] [--ansible]
       [--lab [--repeat 3]]
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / ".collections"))

from ansible_collections.kubeguard.hardening.plugins.module_utils._pki import _crypto, _engine, _inputs, _model  # noqa: E402
from rerun_ratio import playbook_seconds  # noqa: E402  (bench/ is the script's directory)


def cluster_params(out, control_plane, workers, algorithm):
    return {
        "output_dir": str(out),
        "cluster_name": "bench",
        "control_plane_nodes": [
            {"name": f"cp{i}", "ips": [f"10.0.0.{i}"], "dns_names": [], "etcd": True}
            for i in range(1, control_plane + 1)
        ],
        "worker_nodes": [
            {"name": f"worker{i}", "ips": [f"10.1.{i // 250}.{i % 250 + 1}"], "dns_names": []}
            for i in range(1, workers + 1)
        ],
        "service_cidr": "10.96.0.0/12",
        "dns_domain": "cluster.local",
        "control_plane_endpoint": "api.bench.test:6443",
        "api_port": 6443,
        "extra_sans": [],
        "key_algorithm": algorithm,
        "ca_validity_days": 3650,
        "leaf_validity_days": 365,
        "renew_before_days": 30,
        "workers": 0,
    }


def ansible_rerun(params):
    """Time an idempotent rerun through ansible-playbook (module + Ansible overhead)."""
    args = {k: v for k, v in params.items() if k != "workers"}
    with tempfile.TemporaryDirectory() as tmp:
        play = pathlib.Path(tmp, "play.yml")
        task = {"name": "Run cluster_pki", "kubeguard.hardening.cluster_pki": args}
        play.write_text(json.dumps([{"name": "bench", "hosts": "localhost", "gather_facts": False, "tasks": [task]}]))
        env = dict(
            os.environ,
            ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
            ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json",
            ANSIBLE_INVENTORY="localhost,",
        )
        start = time.perf_counter()
        run = subprocess.run(
            [str(REPO / ".venv/bin/ansible-playbook"), "-c", "local", str(play)],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        elapsed = time.perf_counter() - start
    result = json.loads(run.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]
    return elapsed, result["changed"]


def lab_rerun(repeat):
    """Best of ``repeat`` idempotent role reruns on the lab, against the ping floor."""
    inventory = REPO / ".lab" / "inventory.yml"
    playbook = REPO / "playbooks" / "cluster_pki.yml"
    playbook_seconds(inventory, playbook)  # converge first
    with tempfile.TemporaryDirectory() as tmp:
        floor_play = pathlib.Path(tmp, "floor.yml")
        task = {"name": "Ping", "ansible.builtin.ping": {}}
        floor_play.write_text(
            json.dumps([{"name": "floor", "hosts": "k8s_cluster", "gather_facts": False, "tasks": [task]}])
        )
        floor = min(playbook_seconds(inventory, floor_play)[0] for _ in range(repeat))
    reruns = [playbook_seconds(inventory, playbook) for _ in range(repeat)]
    best = min(seconds for seconds, _ in reruns)
    changed = max(count for _, count in reruns)
    print(f"(d) role rerun on the lab, best of {repeat}: {best:7.2f} s  (changed={changed})")
    print(f"(e) floor: one ping per node          : {floor:7.2f} s")
    print(f"d/e = {best / floor:.2f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--control-plane", type=int, default=3)
    parser.add_argument("--workers", type=int, default=100)
    parser.add_argument("--algorithm", default="RSA-2048", choices=_model.ALGORITHMS)
    parser.add_argument("--ansible", action="store_true", help="also time the rerun through ansible-playbook")
    parser.add_argument("--lab", action="store_true", help="also time the role's idempotent rerun on the lab")
    parser.add_argument("--repeat", type=int, default=3, help="runs per lab measurement (the best counts)")
    opts = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        params = cluster_params(pathlib.Path(tmp, "pki"), opts.control_plane, opts.workers, opts.algorithm)
        n_keys = len(_model.catalogue(_inputs.parse_cluster(params)))

        start = time.perf_counter()
        for _ in range(n_keys):
            _crypto.generate_der(opts.algorithm)
        bare = time.perf_counter() - start

        start = time.perf_counter()
        created = _engine.run(params)
        full = time.perf_counter() - start

        start = time.perf_counter()
        rerun_result = _engine.run(params)
        rerun = time.perf_counter() - start

        shape = f"{opts.control_plane} control-plane + {opts.workers} workers, {opts.algorithm}"
        print(f"cluster: {shape}, {n_keys} keys, {os.cpu_count()} CPUs")
        print(f"(a) bare key generation, 1 process : {bare:7.2f} s")
        print(f"(b) module logic, full PKI         : {full:7.2f} s  (summary {created['summary']})")
        print(f"(c) idempotent rerun               : {rerun:7.3f} s  (changed={rerun_result['changed']})")
        print(f"b/a = {full / bare:.2f}  (target <= 1.0)   rerun = {rerun:.3f} s  (target <= 1 s, changed=0)")
        if opts.ansible:
            elapsed, changed = ansible_rerun(params)
            note = "includes ansible-playbook start-up"
            print(f"(c') rerun via ansible-playbook     : {elapsed:7.2f} s  (changed={changed}; {note})")
    if opts.lab:
        lab_rerun(opts.repeat)


if __name__ == "__main__":
    main()
