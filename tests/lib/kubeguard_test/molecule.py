"""Run playbooks against the nodes of the current Molecule scenario (from a testinfra verifier)."""

from __future__ import annotations

import json
import os
import re
import subprocess


def inventory():
    """The scenario's inventory file and ``{host: ansible_port}``."""
    path = os.environ.get("MOLECULE_INVENTORY_FILE") or os.path.join(
        os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "inventory", "ansible_inventory.yml"
    )
    data = json.loads(subprocess.check_output(["ansible-inventory", "-i", path, "--list"], text=True))
    return path, {name: int(hv["ansible_port"]) for name, hv in data["_meta"]["hostvars"].items()}


def playbook(path, *args, timeout=600):
    """Run ``ansible-playbook`` on the scenario's nodes; return ``(CompletedProcess, {host: recap counts})``."""
    inv, _ = inventory()
    proc = subprocess.run(["ansible-playbook", "-i", inv, path, *args], capture_output=True, text=True, timeout=timeout)
    recap = {}
    # Molecule makes Ansible colour its output; the recap is read without the escapes.
    for line in re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout).splitlines():
        match = re.match(r"^(\S+)\s+:\s+(ok=.*)$", line)
        if match:
            recap[match.group(1)] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", match.group(2))}
    return proc, recap
