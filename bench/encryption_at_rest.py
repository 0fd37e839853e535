#!/usr/bin/env python3
"""Encryption at rest on the running lab: the time of one key rotation with N
Secrets, the bulk rewrite rate and the rotation time it predicts for 10x the
Secrets, the API's unavailable time per apiserver restart, and the idempotent
rerun time as a ratio to the ssh_hardening rerun, all measured in this run.

The API is probed every 0.1 s during the rotation (a GET of one Secret with
the lab admin certificate); a window of failed probes is unavailable time.
Timing is reported, never asserted.

Usage: .venv/bin/python bench/encryption_at_rest.py [--secrets 200] [--inventory .lab/inventory.yml]
"""

import argparse
import base64
import json
import os
import pathlib
import re
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request

import yaml

REPO = pathlib.Path(__file__).resolve().parents[1]
NAMESPACES = [f"enc-bench-{i}" for i in range(4)]


def playbook(inventory, name, *extra, json_output=False):
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"))
    if json_output:
        env["ANSIBLE_STDOUT_CALLBACK"] = "ansible.posix.json"
    start = time.perf_counter()
    run = subprocess.run(
        [str(REPO / ".venv/bin/ansible-playbook"), "-i", str(inventory), str(REPO / "playbooks" / name), *extra],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    elapsed = time.perf_counter() - start
    if run.returncode != 0:
        raise SystemExit(f"{name} failed:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}")
    return elapsed, run.stdout


def task_results(stdout):
    report = json.loads(stdout[stdout.find("{") :])
    for play in report["plays"]:
        for task in play["tasks"]:
            for result in task["hosts"].values():
                yield task["task"]["name"], result


class Prober(threading.Thread):
    """GET one Secret every 0.1 s; records (time, ok)."""

    def __init__(self, kubeconfig, workdir):
        super().__init__(daemon=True)
        config = yaml.safe_load(pathlib.Path(kubeconfig).read_text())
        self.url = config["clusters"][0]["cluster"]["server"] + "/api/v1/namespaces/default/secrets?limit=1"
        user = config["users"][0]["user"]
        cert, key = workdir / "probe.crt", workdir / "probe.key"
        cert.write_bytes(base64.b64decode(user["client-certificate-data"]))
        key.write_bytes(base64.b64decode(user["client-key-data"]))
        key.chmod(0o600)
        self.context = ssl.create_default_context()
        self.context.check_hostname = False
        self.context.verify_mode = ssl.CERT_NONE  # availability, not identity, is measured here
        self.context.load_cert_chain(str(cert), str(key))
        self.samples = []
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            start = time.monotonic()
            try:
                with urllib.request.urlopen(self.url, timeout=2, context=self.context) as response:  # noqa: S310
                    ok = response.status == 200
            except (urllib.error.URLError, OSError):
                ok = False
            self.samples.append((start, ok))
            time.sleep(max(0.0, 0.1 - (time.monotonic() - start)))

    def outages(self):
        windows, begin = [], None
        for at, ok in self.samples:
            if not ok and begin is None:
                begin = at
            elif ok and begin is not None:
                windows.append(at - begin)
                begin = None
        return windows


def kubectl(kubeconfig, *args, stdin=None):
    binaries = subprocess.check_output([str(REPO / "lab/bin/build-binaries")], text=True).strip().splitlines()[-1]
    run = subprocess.run(
        [f"{binaries}/kubectl", f"--kubeconfig={kubeconfig}", "--request-timeout=60s", *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=True,
    )
    return run.stdout


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--secrets", type=int, default=200)
    parser.add_argument("--inventory", type=pathlib.Path, default=REPO / ".lab" / "inventory.yml")
    opts = parser.parse_args()
    inventory = yaml.safe_load(opts.inventory.read_text())["all"]
    kubeconfig = inventory["vars"]["kubeguard_kubeconfig"]
    state_file = pathlib.Path(inventory["vars"]["kubeguard_pki_output_dir"]) / "encryption-state.json"

    # converge, then bring the Secret count to --secrets (4 namespaces, one request)
    playbook(opts.inventory, "encryption_at_rest.yml")
    have = len(json.loads(kubectl(kubeconfig, "get", "secrets", "-A", "-o", "json"))["items"])
    items = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}} for ns in NAMESPACES]
    items += [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": f"b{i:05}", "namespace": NAMESPACES[i % 4]},
            "data": {"v": base64.b64encode(os.urandom(48)).decode()},
        }
        for i in range(max(0, opts.secrets - have))
    ]
    kubectl(
        kubeconfig,
        "apply",
        "--server-side",
        "-f",
        "-",
        stdin=json.dumps({"kind": "List", "apiVersion": "v1", "items": items}),
    )
    total = len(json.loads(kubectl(kubeconfig, "get", "secrets", "-A", "-o", "json"))["items"])

    state = json.loads(state_file.read_text())
    current = state["current"]
    generation = int(re.match(r"gen(\d+)-", current).group(1)) + 1
    provider = current.split("-", 1)[1]
    with tempfile.TemporaryDirectory() as tmp:
        prober = Prober(kubeconfig, pathlib.Path(tmp))
        prober.start()
        seconds, stdout = playbook(
            opts.inventory,
            "encryption_at_rest.yml",
            "-e",
            f"encryption_at_rest_key_generation={generation}",
            "-e",
            f"encryption_at_rest_provider={provider}",
            json_output=True,
        )
        prober.stop.set()
        prober.join()
    rewrite = verify = None
    restarts = []
    for name, result in task_results(stdout):
        if "Read and replace every object" in name:
            rewrite = result
        if "Read every stored value's encryption prefix" in name:
            verify = result
        if name.endswith("Harden kube-apiserver and wait for /readyz") and result.get("restarted"):
            restarts.append(result["restart_seconds"])
    outages = prober.outages()
    rate = rewrite["objects_per_second"]
    fixed = seconds - rewrite["seconds"]
    print(f"secrets                          : {total}")
    print(
        f"rotation ({len(restarts)} apiserver restarts) : {seconds:7.1f} s  (rewrite {rewrite['seconds']:.2f} s, "
        f"{rate:.0f} objects/s; etcd proof {verify['checked']} values)"
    )
    print(
        f"predicted for {10 * total:>6} secrets      : {fixed + 10 * total / rate:7.1f} s  "
        f"(fixed part {fixed:.1f} s + {10 * total} / {rate:.0f} objects/s)"
    )
    print(f"restart_seconds (control plane)  : {', '.join(f'{s:.1f}' for s in restarts)}")
    print(f"API unavailable per restart      : {', '.join(f'{w:.1f} s' for w in outages)} (probe every 0.1 s)")

    rerun_enc = min(playbook(opts.inventory, "encryption_at_rest.yml")[0] for _ in range(3))
    playbook(opts.inventory, "ssh_hardening.yml")
    rerun_ssh = min(playbook(opts.inventory, "ssh_hardening.yml")[0] for _ in range(3))
    print(
        f"idempotent rerun                 : {rerun_enc:7.2f} s vs ssh_hardening.yml {rerun_ssh:.2f} s "
        f"= {rerun_enc / rerun_ssh:.2f}x"
    )


if __name__ == "__main__":
    main()
