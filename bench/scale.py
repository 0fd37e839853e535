#!/usr/bin/env python3
"""How the node-side plays grow with the number of nodes and with forks.

For each SIZE:FORKS pair, a fresh fleet of SIZE sshd-only node containers
(tests/lib/kubeguard_test/fleet.py: the lab's Debian 12 and 13 images, no
kubelet) takes each playbook twice: a first run that hardens the nodes, then an
idempotent rerun (changed=0 is printed next to it). A floor, one ping per node
with the same forks, is measured on the same fleet. Printed: seconds, seconds
per node, the ratio to the floor, and the per-node cost's growth against the
first pair. Timing is reported, never asserted; `make test` runs the same code
path on five nodes (tests/integration/test_scale_smoke.py).

Usage: .venv/bin/python bench/scale.py [--runs 3:10,10:10,30:10,30:30]
       [--playbooks ssh_hardening.yml,node_os.yml] [--keep]   (fleets: .lab-scale, kgscale-*)
Needs root (podman) and about 60 MiB of memory per node.
"""

import argparse
import json
import pathlib
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]
# The fleet is the smoke test's too; the smoke test loads this file by path, so bench/ is named here.
sys.path[:0] = [str(REPO / "tests" / "lib"), str(REPO / "bench")]
from kubeguard_test.fleet import Fleet  # noqa: E402
from rerun_ratio import playbook_seconds  # noqa: E402

# Names, network and ports of the benchmark's fleet (the smoke test uses others).
FLEET = {"name": "scale", "subnet": "10.240.0.0/24", "port_base": 34000}
# Its key and inventory (--keep leaves the last fleet usable: ansible -i .lab-scale/inventory.yml).
STATE = REPO / ".lab-scale"


def playbook(inventory, path, forks):
    """Wall time of one ansible-playbook run and its changed total; a failed run stops the benchmark."""
    return playbook_seconds(inventory, path, "-f", str(forks))


def floor_play(directory):
    path = pathlib.Path(directory, "floor.yml")
    task = {"name": "Ping", "ansible.builtin.ping": {}}
    path.write_text(json.dumps([{"name": "floor", "hosts": "all", "gather_facts": False, "tasks": [task]}]))
    return path


def measure(fleet, forks, playbooks):
    """A fresh fleet: the floor, then a first run and a rerun of each playbook."""
    row = {"size": fleet.size, "forks": forks, "fleet_up": fleet.up()}
    row["floor"], _ = playbook(fleet.inventory, floor_play(fleet.state), forks)
    for name in playbooks:
        path = REPO / "playbooks" / name
        row[name] = {"first": playbook(fleet.inventory, path, forks), "rerun": playbook(fleet.inventory, path, forks)}
    return row


def report(rows, playbooks):
    base = rows[0]
    header = f"{'nodes':>5} {'forks':>5} {'floor s':>8}  {'playbook':<20} {'run':<6} {'seconds':>8} {'s/node':>7}"
    print(f"{header} {'x floor':>8} {'changed':>8} {'growth':>7}")
    for row in rows:
        for name in playbooks:
            for run in ("first", "rerun"):
                seconds, changed = row[name][run]
                per_node = seconds / row["size"]
                growth = per_node / (base[name][run][0] / base["size"])
                print(
                    f"{row['size']:>5} {row['forks']:>5} {row['floor']:>8.2f}  {name:<20} {run:<6} {seconds:>8.2f}"
                    f" {per_node:>7.2f} {seconds / row['floor']:>8.2f} {changed:>8} {growth:>6.2f}x"
                )
    print("growth: seconds per node against the first pair's (1.00x = linear in the node count)")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", default="3:10,10:10,30:10,30:30", help="SIZE:FORKS pairs, comma-separated")
    parser.add_argument("--playbooks", default="ssh_hardening.yml,node_os.yml")
    parser.add_argument("--keep", action="store_true", help="leave the last fleet running")
    opts = parser.parse_args()
    pairs = [tuple(int(n) for n in pair.split(":")) for pair in opts.runs.split(",")]
    playbooks = opts.playbooks.split(",")
    rows = []
    for index, (size, forks) in enumerate(pairs):
        fleet = Fleet(size=size, state=STATE, **FLEET)
        try:
            rows.append(measure(fleet, forks, playbooks))
        finally:
            if not (opts.keep and index == len(pairs) - 1):
                fleet.down()
        print(f"{size} nodes, forks {forks}: done (fleet up in {rows[-1]['fleet_up']:.0f} s)", flush=True)
    report(rows, playbooks)


if __name__ == "__main__":
    main()
