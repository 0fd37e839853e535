#!/usr/bin/python3
"""A kubelet stand-in for the lab: runs each static-pod manifest in
/etc/kubernetes/manifests as a systemd service and restarts it whenever the
manifest changes, as a kubelet would recreate the pod. Container images are
ignored: the command runs from the node's /usr/local/bin (the same upstream
binaries). Polls like the kubelet's file source; no inotify edge cases."""

import hashlib
import os
import subprocess
import sys
import time

import yaml

MANIFESTS = "/etc/kubernetes/manifests"
UNIT_DIR = "/run/systemd/system"
PREFIX = "static-pod-"


def systemd_quote(arg):
    escaped = arg.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%").replace("$", "$$")
    return f'"{escaped}"'


def unit_for(path):
    with open(path, "rb") as handle:
        raw = handle.read()
    pod = yaml.safe_load(raw)
    container = pod["spec"]["containers"][0]
    argv = list(container.get("command", [])) + list(container.get("args", []))
    argv[0] = os.path.join("/usr/local/bin", os.path.basename(argv[0]))
    digest = hashlib.sha256(raw).hexdigest()
    return pod["metadata"]["name"], (
        f"# manifest {path} sha256 {digest}\n"
        f"[Unit]\nDescription=Static pod {pod['metadata']['name']} (lab kubelet stand-in)\n\n"
        f"[Service]\nExecStart={' '.join(systemd_quote(a) for a in argv)}\n"
        "Restart=always\nRestartSec=2\nLimitNOFILE=1024\n"
    )


def read_text(path):
    try:
        with open(path) as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def sync():
    wanted = {}
    for entry in sorted(os.listdir(MANIFESTS)) if os.path.isdir(MANIFESTS) else []:
        if entry.endswith((".yaml", ".yml", ".json")) and not entry.startswith("."):
            try:
                name, text = unit_for(os.path.join(MANIFESTS, entry))
            except (OSError, yaml.YAMLError, KeyError, IndexError, TypeError):
                continue  # a half-written or invalid manifest: the kubelet skips it too
            wanted[f"{PREFIX}{name}.service"] = text
    current = {u for u in os.listdir(UNIT_DIR) if u.startswith(PREFIX)}
    changed = []
    for unit, text in wanted.items():
        path = os.path.join(UNIT_DIR, unit)
        if read_text(path) != text:
            with open(path + ".tmp", "w") as handle:
                handle.write(text)
            os.replace(path + ".tmp", path)
            changed.append(unit)
    removed = sorted(current - set(wanted))
    if removed:
        subprocess.run(["systemctl", "stop", *removed], check=False)
        for unit in removed:
            os.remove(os.path.join(UNIT_DIR, unit))
    if changed or removed:
        subprocess.run(["systemctl", "daemon-reload"], check=False)
    if changed:
        subprocess.run(["systemctl", "restart", *changed], check=False)


if __name__ == "__main__":
    if len(sys.argv) > 1:
        sys.exit("usage: lab-static-pods (no arguments; runs inside the lab's control-plane node)")
    while True:
        sync()
        time.sleep(2)
