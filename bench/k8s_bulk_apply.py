#!/usr/bin/env python3
"""Benchmark of kubeguard.hardening.k8s_bulk_apply against a kubernetes.core.k8s loop.

In one run, against one real kube-apiserver (started on loopback from the lab's
binaries, or the one of --kubeconfig), it applies N namespaces x (1 default-deny
NetworkPolicy + 1 DNS-egress allow + 1 Role + 1 RoleBinding):
  (a) with one k8s_bulk_apply task, first apply and idempotent rerun;
  (b) with a kubernetes.core.k8s task looping over the same objects (server-side
      apply too), first apply and idempotent rerun, in namespaces of its own.
Both are whole ansible-playbook runs timed the same way. It prints the times,
the changed counts and the ratios b/a (goal >= 10). Timing is reported, never asserted.

Usage: .venv/bin/python bench/k8s_bulk_apply.py [--namespaces 50] [--kubeconfig PATH]
"""

import argparse
import contextlib
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
# A script, not a test: the paths pytest gets from pyproject.toml, set by hand.
for path in (".collections", "tests/lib", "tests/integration"):
    sys.path.insert(0, str(REPO / path))


def objects(prefix, count):
    out = []
    for i in range(count):
        ns = f"{prefix}-{i:02d}"
        out += [
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": {"name": "default-deny", "namespace": ns},
                "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
            },
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": {"name": "allow-dns", "namespace": ns},
                "spec": {
                    "podSelector": {},
                    "policyTypes": ["Egress"],
                    "egress": [
                        {
                            "to": [
                                {
                                    "namespaceSelector": {
                                        "matchLabels": {"kubernetes.io/metadata.name": "kube-system"}
                                    },
                                    "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                                }
                            ],
                            "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
                        }
                    ],
                },
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": {"name": "reader", "namespace": ns},
                "rules": [{"apiGroups": [""], "resources": ["pods", "services"], "verbs": ["get", "list", "watch"]}],
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": "reader", "namespace": ns},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"},
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": f"{ns}-readers"}],
            },
        ]
    return out


def namespaces(prefix, count):
    return [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": f"{prefix}-{i:02d}"}} for i in range(count)]


def playbook(path, task):
    path.write_text(json.dumps([{"name": "bench", "hosts": "localhost", "gather_facts": False, "tasks": [task]}]))
    return path


def timed_playbook(book, varsfile):
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_STDOUT_CALLBACK="ansible.posix.json")
    started = time.monotonic()
    run = subprocess.run(
        [str(REPO / ".venv/bin/ansible-playbook"), str(book), "-e", f"@{varsfile}"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        check=False,
    )
    elapsed = time.monotonic() - started
    if run.returncode != 0:
        sys.exit(f"ansible-playbook {book.name} failed:\n{run.stdout[-4000:]}\n{run.stderr[-2000:]}")
    report = json.loads(run.stdout[run.stdout.find("{") :])
    return elapsed, report["stats"]["localhost"]["changed"], report


def changed_items(report):
    result = report["plays"][0]["tasks"][0]["hosts"]["localhost"]
    if (
        "results" in result
        and isinstance(result["results"], list)
        and result["results"]
        and "item" in result["results"][0]
    ):
        return sum(1 for item in result["results"] if item.get("changed"))
    return sum(1 for r in result.get("results", []) if r.get("action") in ("created", "updated"))


def bench(kubeconfig, count, work):
    ours_objects, peer_objects = objects("bench-ours", count), objects("bench-core", count)
    varsfile = work / "vars.json"
    varsfile.write_text(json.dumps({"bench_ours": ours_objects, "bench_peer": peer_objects}))
    # the namespaces exist before either tool runs (not timed)
    setup = playbook(
        work / "setup.yml",
        {
            "kubeguard.hardening.k8s_bulk_apply": {
                "kubeconfig": str(kubeconfig),
                "objects": namespaces("bench-ours", count) + namespaces("bench-core", count),
            }
        },
    )
    timed_playbook(setup, varsfile)
    ours = playbook(
        work / "ours.yml",
        {"kubeguard.hardening.k8s_bulk_apply": {"kubeconfig": str(kubeconfig), "objects": "{{ bench_ours }}"}},
    )
    peer = playbook(
        work / "peer.yml",
        {
            "kubernetes.core.k8s": {
                "kubeconfig": str(kubeconfig),
                "state": "present",
                "definition": "{{ item }}",
                "server_side_apply": {"field_manager": "kubeguard-bench", "force_conflicts": True},
            },
            "loop": "{{ bench_peer }}",
            "loop_control": {"label": "{{ item.kind }} {{ item.metadata.namespace }}/{{ item.metadata.name }}"},
        },
    )
    figures = {}
    for name, book in (("ours", ours), ("peer", peer)):
        for phase in ("first", "rerun"):
            elapsed, _, report = timed_playbook(book, varsfile)
            figures[(name, phase)] = (elapsed, changed_items(report))
    total = len(ours_objects)
    print(f"objects per tool: {total} ({count} namespaces x 4), one kube-apiserver, ansible-playbook wall time")
    print(f"{'':28}{'first apply':>22}{'idempotent rerun':>22}")
    for name, label in (("ours", "k8s_bulk_apply (1 task)"), ("peer", "kubernetes.core.k8s loop")):
        cells = [f"{figures[(name, p)][0]:8.2f} s changed={figures[(name, p)][1]:<4}" for p in ("first", "rerun")]
        print(f"{label:28}{cells[0]:>22}{cells[1]:>22}")
    for phase in ("first", "rerun"):
        ratio = figures[("peer", phase)][0] / figures[("ours", phase)][0]
        print(f"ratio kubernetes.core loop / k8s_bulk_apply, {phase:5}: {ratio:6.1f}x (goal >= 10x)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--namespaces", type=int, default=50)
    parser.add_argument("--kubeconfig", help="an existing cluster (default: a fresh loopback apiserver)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kg-bench-bulk-") as tmp:
        work = pathlib.Path(tmp)
        with contextlib.ExitStack() as stack:
            kubeconfig = args.kubeconfig
            if not kubeconfig:
                from apiserver_fixture import loopback_cluster

                binaries = (
                    subprocess.check_output([str(REPO / "lab/bin/build-binaries")], text=True).strip().splitlines()[-1]
                )
                cluster = stack.enter_context(loopback_cluster(binaries, work / "cluster"))
                kubeconfig = cluster.super_admin
            bench(kubeconfig, args.namespaces, work)


if __name__ == "__main__":
    main()
