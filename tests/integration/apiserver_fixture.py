"""A real etcd + kube-apiserver on loopback (ports 24000-24999), with the PKI from
the cluster_pki engine, RBAC and Node authorization and anonymous auth off.

Shared by the RBAC / NetworkPolicy / bulk-apply tests and bench/k8s_bulk_apply.py:
``loopback_cluster(binaries, workdir)`` is a context manager; ``shared_cluster``
starts one per test session and stops it at exit. No kubelet, no
controller-manager: only what the API itself decides (authz, admission, SSA).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import pathlib
import random
import socket
import subprocess
import tempfile
import time

import yaml
from kubeguard_test.waiting import wait_for

REPO = pathlib.Path(__file__).resolve().parents[2]

from ansible_collections.kubeguard.hardening.plugins.module_utils._pki import (  # noqa: E402
    _engine,
    _kubeconfig,
)

# KUBEGUARD_LOOPBACK_PORTS=first-last gives a parallel run its own range.
_FIRST, _LAST = (int(n) for n in os.environ.get("KUBEGUARD_LOOPBACK_PORTS", "24000-24999").split("-"))
PORTS = range(_FIRST, _LAST + 1)
NODE_IP = "10.123.0.10"


def free_port(taken=(), ports=None):
    """A free loopback port in ``ports`` (this helper's range by default)."""
    ports = PORTS if ports is None else ports
    for port in random.sample(ports, len(ports)):
        if port in taken:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {ports[0]}-{ports[-1]}")


class Cluster:
    """What a test needs: the server URL, kubeconfigs and a kubectl runner."""

    def __init__(self, binaries, work, server):
        self.binaries = pathlib.Path(binaries)
        self.work = work
        self.server = server
        self.super_admin = work / "super-admin.kubeconfig"  # system:masters
        self.admin = work / "admin.kubeconfig"  # kubeadm:cluster-admins, needs its binding

    def kubectl(self, *args, kubeconfig=None, check=False):
        argv = [
            str(self.binaries / "kubectl"),
            f"--kubeconfig={kubeconfig or self.super_admin}",
            "--request-timeout=15s",
        ]
        run = subprocess.run([*argv, *args], capture_output=True, text=True, check=False)
        if check and run.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)}: {run.stderr}")
        return run

    def can_i(self, verb, resource, *extra, user="someone", groups=()):
        """`kubectl auth can-i` as an impersonated user/groups: the real authorizer's answer."""
        args = ["auth", "can-i", verb, resource, *extra, f"--as={user}"]
        args += [f"--as-group={group}" for group in groups]
        run = self.kubectl(*args)
        answer = run.stdout.strip()
        if answer not in ("yes", "no"):
            raise AssertionError(f"can-i {verb} {resource}: {run.stdout} {run.stderr}")
        return answer == "yes"

    def review(self, user, groups, verb, resource=None, namespace="", path=None):
        """A SubjectAccessReview sent as super-admin: the authorizer's answer for subjects that may
        not even ask themselves (anonymous requests cannot create SelfSubjectAccessReviews)."""
        spec = {"user": user, "groups": list(groups)}
        if path:
            spec["nonResourceAttributes"] = {"verb": verb, "path": path}
        else:
            spec["resourceAttributes"] = {"verb": verb, "resource": resource, "namespace": namespace}
        review = self.work / f"review-{time.monotonic_ns()}.json"
        review.write_text(
            json.dumps({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec})
        )
        run = self.kubectl("create", "-f", str(review), "-o", "json")
        if run.returncode != 0:
            raise AssertionError(run.stderr)
        return json.loads(run.stdout)["status"].get("allowed", False)


def _pki(out):
    params = {
        "output_dir": str(out),
        "cluster_name": "kubeguard-rbac",
        "control_plane_nodes": [{"name": "cp1", "ips": [NODE_IP], "dns_names": [], "etcd": True}],
        "worker_nodes": [],
        "service_cidr": "10.96.0.0/12",
        "dns_domain": "cluster.local",
        "control_plane_endpoint": f"{NODE_IP}:6443",
        "api_port": 6443,
        "extra_sans": ["127.0.0.1", "localhost"],
        "key_algorithm": "ECDSA-P256",
        "ca_validity_days": 3650,
        "leaf_validity_days": 365,
        "renew_before_days": 30,
        "workers": 0,
    }
    _engine.run(params)


def _local_kubeconfig(source, dest, server):
    parsed = _kubeconfig.parse(source.read_bytes())
    user = "kubernetes-super-admin" if "super" in source.name else "kubernetes-admin"
    dest.write_bytes(_kubeconfig.render("kubeguard-rbac", server, user, parsed["ca"], parsed["cert"], parsed["key"]))
    dest.chmod(0o600)


def etcd_argv(binaries, work, pki, client_port, peer_port):
    """One etcd member on loopback, mutual TLS for clients and peers from the PKI tree ``pki``."""
    n, p = pki / "nodes/cp1/pki", pki / "pki"
    return [
        str(pathlib.Path(binaries) / "etcd"),
        "--name=cp1",
        f"--data-dir={work / 'etcd-data'}",
        f"--listen-client-urls=https://127.0.0.1:{client_port}",
        f"--advertise-client-urls=https://127.0.0.1:{client_port}",
        f"--listen-peer-urls=https://127.0.0.1:{peer_port}",
        f"--initial-advertise-peer-urls=https://127.0.0.1:{peer_port}",
        f"--initial-cluster=cp1=https://127.0.0.1:{peer_port}",
        f"--cert-file={n}/etcd/server.crt",
        f"--key-file={n}/etcd/server.key",
        f"--peer-cert-file={n}/etcd/peer.crt",
        f"--peer-key-file={n}/etcd/peer.key",
        f"--trusted-ca-file={p}/etcd/ca.crt",
        f"--peer-trusted-ca-file={p}/etcd/ca.crt",
        "--client-cert-auth=true",
        "--peer-client-cert-auth=true",
        "--listen-metrics-urls=",
        "--unsafe-no-fsync=true",
    ]


@contextlib.contextmanager
def loopback_cluster(binaries, work, flags=None):
    """``flags`` ({name: value}) overrides kube-apiserver flags; a None value removes one."""
    work = pathlib.Path(work)
    work.mkdir(parents=True, exist_ok=True)
    pki = work / "pki-tree"
    _pki(pki)
    bins = pathlib.Path(binaries)
    etcd_client = free_port()
    etcd_peer = free_port({etcd_client})
    api_port = free_port({etcd_client, etcd_peer})
    n = pki / "nodes/cp1/pki"
    p = pki / "pki"
    procs = []
    logs = []
    try:
        etcd_log = open(work / "etcd.log", "w")  # noqa: SIM115
        logs.append(etcd_log)
        procs.append(
            subprocess.Popen(
                etcd_argv(bins, work, pki, etcd_client, etcd_peer),
                stdout=etcd_log,
                stderr=subprocess.STDOUT,
            )
        )
        api_log = open(work / "apiserver.log", "w")  # noqa: SIM115
        logs.append(api_log)
        api_argv = [
            str(bins / "kube-apiserver"),
            "--bind-address=127.0.0.1",
            f"--advertise-address={NODE_IP}",
            f"--secure-port={api_port}",
            f"--cert-dir={work}",
            f"--etcd-servers=https://127.0.0.1:{etcd_client}",
            f"--etcd-cafile={p}/etcd/ca.crt",
            f"--etcd-certfile={p}/apiserver-etcd-client.crt",
            f"--etcd-keyfile={p}/apiserver-etcd-client.key",
            f"--tls-cert-file={n}/apiserver.crt",
            f"--tls-private-key-file={n}/apiserver.key",
            f"--client-ca-file={p}/ca.crt",
            f"--kubelet-client-certificate={p}/apiserver-kubelet-client.crt",
            f"--kubelet-client-key={p}/apiserver-kubelet-client.key",
            f"--service-account-key-file={p}/sa.pub",
            f"--service-account-signing-key-file={p}/sa.key",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            "--service-cluster-ip-range=10.96.0.0/12",
            "--authorization-mode=Node,RBAC",
            "--anonymous-auth=false",
            "--enable-admission-plugins=NodeRestriction",
            "--profiling=false",
        ]
        for name, value in (flags or {}).items():
            api_argv = [a for a in api_argv if not a.startswith(f"--{name}=")]
            api_argv += [] if value is None else [f"--{name}={value}"]
        procs.append(subprocess.Popen(api_argv, stdout=api_log, stderr=subprocess.STDOUT))
        server = f"https://127.0.0.1:{api_port}"
        _local_kubeconfig(pki / "super-admin.conf", work / "super-admin.kubeconfig", server)
        _local_kubeconfig(pki / "admin.conf", work / "admin.kubeconfig", server)
        cluster = Cluster(bins, work, server)

        def ready():
            for proc in procs:
                if proc.poll() is not None:
                    raise AssertionError((work / "apiserver.log").read_text()[-3000:])
            # the bootstrap RBAC (system:public-info-viewer & co.) is in place once this answers
            run = cluster.kubectl("get", "clusterrolebinding", "system:public-info-viewer", "-o", "name")
            return run.returncode == 0 or run.stderr[-300:]

        wait_for(ready, 120, "kube-apiserver")
        yield cluster
    finally:
        for proc in reversed(procs):
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
        for log in logs:
            log.close()


_SHARED = {}


def shared_cluster(binaries):
    """One loopback cluster per process (test session), stopped at exit."""
    if "cluster" not in _SHARED:
        stack = contextlib.ExitStack()
        work = stack.enter_context(tempfile.TemporaryDirectory(prefix="kg-rbac12-"))
        _SHARED["cluster"] = stack.enter_context(loopback_cluster(binaries, work))
        atexit.register(stack.close)
    return _SHARED["cluster"]


# ------------------------------------------------------------------ running Ansible against it


def _json_or_fail(run):
    start = run.stdout.find("{")
    if start < 0:
        raise AssertionError(f"ansible-playbook printed no JSON:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}")
    return json.loads(run.stdout[start:])


def ansible(playbook, inventory=None, *extra, env=None):
    """ansible-playbook with the JSON callback: (process, {host: stats}, [task results for the first host])."""
    environment = dict(
        os.environ,
        ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
        ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
        ANSIBLE_FORCE_COLOR="0",
        **(env or {}),
    )
    argv = [str(REPO / ".venv/bin/ansible-playbook"), str(playbook)]
    if inventory:
        argv += ["-i", str(inventory)]
    run = subprocess.run(
        [*argv, *extra], capture_output=True, text=True, env=environment, cwd=REPO, check=False, timeout=600
    )
    report = _json_or_fail(run)
    tasks = []
    for play in report.get("plays", []):
        for task in play.get("tasks", []):
            for host, result in task.get("hosts", {}).items():
                tasks.append({"task": task["task"]["name"], "host": host, **result})
    return run, report.get("stats", {}), tasks


def module_playbook(path, module, args, check=False):
    """A one-task playbook on localhost calling ``module`` with ``args``; written to ``path``."""
    task = {"name": "Call the module", module: args, "register": "out"}
    if check:
        task["check_mode"] = True
    path.write_text(yaml.safe_dump([{"name": "Module", "hosts": "localhost", "gather_facts": False, "tasks": [task]}]))
    return path


def call_module(tmp_path, module, args, *extra, check=False):
    """Run one module through ansible-playbook; returns (its result, the whole run)."""
    book = module_playbook(tmp_path / f"call-{time.monotonic_ns()}.yml", f"kubeguard.hardening.{module}", args, check)
    run, _, tasks = ansible(book, None, *extra)
    results = [t for t in tasks if t["task"] == "Call the module"]
    assert results, (run.stdout[-3000:], run.stderr[-3000:])
    return results[0], run


def controller_inventory(path):
    """An inventory whose only control-plane node is this machine (the API modules run here anyway)."""
    path.write_text(
        yaml.safe_dump(
            {
                "all": {
                    "children": {
                        "k8s_cluster": {
                            "children": {"control_plane": {"hosts": {"cp1": {"kubeguard_node_ip": "127.0.0.1"}}}}
                        },
                    },
                    "vars": {
                        "ansible_connection": "local",
                        "ansible_python_interpreter": str(REPO / ".venv/bin/python"),
                    },
                }
            }
        )
    )
    return path
