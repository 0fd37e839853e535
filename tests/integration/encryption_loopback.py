"""A real etcd + kube-apiserver on loopback (ports 24000-24999) whose
apiserver restarts with an --encryption-provider-config, and a driver that
runs the encryption_at_rest modules' entry points in the role's order (plan,
begin + write + restart, rewrite, verify in etcd, record). Shared by
test_encryption_at_rest_loopback.py and bench/encryption_at_rest.py."""

from __future__ import annotations

import contextlib
import json
import pathlib
import subprocess

from ansible_collections.kubeguard.hardening.plugins.module_utils._encryption import etcd, facts, machine, objects
from apiserver_fixture import NODE_IP, Cluster, _local_kubeconfig, _pki, etcd_argv, free_port
from kubeguard_test.waiting import wait_for


class EncryptedCluster(Cluster):
    def __init__(self, binaries, work):
        self.pki = work / "pki-tree"
        _pki(self.pki)
        self.etcd_client = free_port()
        self.etcd_peer = free_port({self.etcd_client})
        self.api = free_port({self.etcd_client, self.etcd_peer})
        super().__init__(binaries, work, f"https://127.0.0.1:{self.api}")
        self.config = work / "encryption-config.yaml"
        self.etcd_proc = self.api_proc = None
        self.restarts = 0

    @property
    def flags(self):
        n, p = self.pki / "nodes/cp1/pki", self.pki / "pki"
        flags = {
            "bind-address": "127.0.0.1",
            "advertise-address": NODE_IP,
            "secure-port": str(self.api),
            "cert-dir": str(self.work),
            "etcd-servers": f"https://127.0.0.1:{self.etcd_client}",
            "etcd-cafile": f"{p}/etcd/ca.crt",
            "etcd-certfile": f"{p}/apiserver-etcd-client.crt",
            "etcd-keyfile": f"{p}/apiserver-etcd-client.key",
            "tls-cert-file": f"{n}/apiserver.crt",
            "tls-private-key-file": f"{n}/apiserver.key",
            "client-ca-file": f"{p}/ca.crt",
            "service-account-key-file": f"{p}/sa.pub",
            "service-account-signing-key-file": f"{p}/sa.key",
            "service-account-issuer": "https://kubernetes.default.svc.cluster.local",
            "service-cluster-ip-range": "10.96.0.0/12",
            "authorization-mode": "Node,RBAC",
            "anonymous-auth": "false",
            "profiling": "false",
        }
        if self.config.exists():
            flags["encryption-provider-config"] = str(self.config)
        return flags

    def start_etcd(self):
        log = open(self.work / "etcd.log", "a")  # noqa: SIM115
        self.etcd_proc = subprocess.Popen(
            etcd_argv(self.binaries, self.work, self.pki, self.etcd_client, self.etcd_peer),
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def start_api(self):
        log = open(self.work / "apiserver.log", "a")  # noqa: SIM115
        argv = [str(self.binaries / "kube-apiserver"), *(f"--{k}={v}" for k, v in self.flags.items())]
        self.api_proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)

        def ready():
            if self.api_proc.poll() is not None:
                raise AssertionError((self.work / "apiserver.log").read_text()[-3000:])
            run = self.kubectl("get", "--raw", "/readyz")
            return run.returncode == 0 or run.stderr[-200:]

        wait_for(ready, 120, "kube-apiserver", interval=0.2)

    def restart_api(self):
        self.api_proc.terminate()
        self.api_proc.wait(30)
        self.start_api()
        self.restarts += 1

    def kubectl_stdin(self, text, *args):
        argv = [str(self.binaries / "kubectl"), f"--kubeconfig={self.super_admin}", "--request-timeout=30s", *args]
        run = subprocess.run(argv, input=text, capture_output=True, text=True, check=False)
        assert run.returncode == 0, run.stderr
        return run.stdout

    def stop(self):
        for proc in (self.api_proc, self.etcd_proc):
            if proc and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()

    def etcd_reader(self):
        f = self.flags
        return etcd.Etcd(f["etcd-servers"], f["etcd-cafile"], f["etcd-certfile"], f["etcd-keyfile"])


@contextlib.contextmanager
def encrypted_cluster(binaries, work):
    work = pathlib.Path(work)
    cluster = EncryptedCluster(binaries, work)
    _local_kubeconfig(cluster.pki / "super-admin.conf", cluster.super_admin, cluster.server)
    try:
        cluster.start_etcd()
        cluster.start_api()
        yield cluster
    finally:
        cluster.stop()


def converge(cluster, store_dir, stop_after=None, **wanted):
    """The role's sequence through the modules' entry points; returns what each step did."""
    base = {
        "key_store": str(store_dir / "encryption-keys.json"),
        "state_file": str(store_dir / "encryption-state.json"),
        "provider": wanted.get("provider", "aescbc"),
        "generation": wanted.get("generation", 1),
        "resources": wanted.get("resources", ["secrets"]),
        "adopt": False,
    }
    api = {"kubeconfig": str(cluster.super_admin), "request_timeout": 30}
    nodes = {"cp1": facts.gather({}, flags=cluster.flags)["encryption"]}
    objects.run(dict(api, resources=base["resources"]))  # validation before anything is written
    planned = machine.run(dict(base, action="plan", nodes=nodes))
    report = {"plan": planned}
    for step in planned["steps"]:
        evidence = None
        if step in ("secondary", "primary", "remove"):
            begun = machine.run(dict(base, action="begin", step=step))
            cluster.config.write_text(begun["config"])
            cluster.config.chmod(0o600)
            cluster.restart_api()
        elif step == "rewrite":
            report["rewrite"] = objects.run(dict(api, action="rewrite", resources=planned["resources"], workers=8))
        else:
            resolved = objects.run(dict(api, resources=planned["resources"]))["resources"]
            evidence = etcd.run(
                {
                    "prefixes": {k: v["etcd_prefix"] for k, v in resolved.items()},
                    "expected_prefix": planned["target_prefix"],
                },
                etcd=cluster.etcd_reader(),
            )
            report["verify"] = evidence
        machine.run(dict(base, action="record", step=step, evidence=evidence))
        if step == stop_after:
            break
    return report


def secrets_data(cluster):
    run = cluster.kubectl("get", "secrets", "-A", "-o", "json", check=True)
    items = json.loads(run.stdout)["items"]
    return {(s["metadata"]["namespace"], s["metadata"]["name"]): s.get("data") or {} for s in items}
