#!/usr/bin/env python3
"""Idempotent rerun time of playbooks on the running lab, as ratios to the
ssh_hardening rerun and to a floor (one ping per node), all measured in the
same run. It also times ROUNDS ping tasks in a row, to state each rerun as the
floor plus a number of module rounds (one task on every node) at this minute's
cost: what a rerun with fewer module calls would save.

Each playbook runs once to converge, then ``--repeat`` times; the best rerun
counts, and its changed total is printed next to it (an idempotent rerun shows
changed=0). Timing is reported, never asserted.

Usage: .venv/bin/python bench/rerun_ratio.py control_plane.yml [api_access.yml ...]
       [--repeat 3] [--inventory .lab/inventory.yml] [--full]

site.yml's rerun takes the fast path (docs/fast-rerun.md) when nothing moved;
--full also times each playbook with it off, every role checking.
"""

import argparse
import json
import os
import pathlib
import re
import subprocess
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
PEER = "ssh_hardening.yml"
ROUNDS = 20


def playbook_seconds(inventory, playbook, *extra):
    """Wall time of one ansible-playbook run and its total changed count; ``extra``: more arguments (``-f 30``)."""
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"))
    start = time.perf_counter()
    run = subprocess.run(
        [str(REPO / ".venv/bin/ansible-playbook"), "-i", str(inventory), *extra, str(playbook)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    elapsed = time.perf_counter() - start
    if run.returncode != 0:
        # The hosts' errors first: with many nodes the recap alone fills the tail.
        errors = [line for line in run.stdout.splitlines() if line.startswith(("fatal:", "UNREACHABLE", "ERROR"))]
        tail = f"{run.stdout[-2000:]}\n{run.stderr[-2000:]}"
        raise SystemExit(f"{playbook} failed:\n" + "\n".join(errors[:20]) + f"\n{tail}")
    return elapsed, sum(int(n) for n in re.findall(r"changed=(\d+)", run.stdout))


def best_rerun(inventory, playbook, repeat, *extra):
    playbook_seconds(inventory, playbook, *extra)  # converge first
    runs = [playbook_seconds(inventory, playbook, *extra) for _ in range(repeat)]
    return min(seconds for seconds, _ in runs), max(changed for _, changed in runs)


def pings(tmp, count):
    """A playbook of ``count`` ping tasks on every node, written under ``tmp``."""
    path = pathlib.Path(tmp, f"pings-{count}.yml")
    tasks = [{"name": f"Ping {n}", "ansible.builtin.ping": {}} for n in range(count)]
    path.write_text(json.dumps([{"name": "floor", "hosts": "all", "gather_facts": False, "tasks": tasks}]))
    return path


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("playbooks", nargs="+", help="playbooks under playbooks/")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--inventory", type=pathlib.Path, default=REPO / ".lab" / "inventory.yml")
    parser.add_argument(
        "--full",
        action="store_true",
        help="also time each playbook with site.yml's fast rerun off (every role checks; docs/fast-rerun.md)",
    )
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        floor = min(playbook_seconds(opts.inventory, pings(tmp, 1))[0] for _ in range(opts.repeat))
        # One module round (a task on every node) costs what a ping task costs: ROUNDS pings in a row.
        rounds = min(playbook_seconds(opts.inventory, pings(tmp, ROUNDS))[0] for _ in range(opts.repeat))
    round_cost = max(rounds - floor, 0.001) / (ROUNDS - 1)
    peer, peer_changed = best_rerun(opts.inventory, REPO / "playbooks" / PEER, opts.repeat)
    print(f"floor (one ping per node)     : {floor:7.2f} s")
    print(f"one module round (ping task)  : {round_cost:7.2f} s  ({ROUNDS} pings in a row: {rounds:.2f} s)")
    print(f"{PEER:<30}: {peer:7.2f} s  changed={peer_changed}  {peer / floor:5.2f}x floor")
    variants = [("", ())] + ([(" (fast rerun off)", ("-e", "kubeguard_fast_rerun_enabled=false"))] if opts.full else [])
    for name in opts.playbooks:
        for label, extra in variants:
            seconds, changed = best_rerun(opts.inventory, REPO / "playbooks" / name, opts.repeat, *extra)
            rounds_in = (seconds - floor) / round_cost
            print(
                f"{name + label:<30}: {seconds:7.2f} s  changed={changed}  {seconds / floor:5.2f}x floor"
                f"  {seconds / peer:5.2f}x {PEER} rerun  = the floor + {rounds_in:.0f} module rounds"
            )


if __name__ == "__main__":
    main()
