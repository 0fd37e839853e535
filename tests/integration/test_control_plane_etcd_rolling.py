"""The rolling etcd migration from plain HTTP to mutual TLS on a real
3-member cluster on loopback (the lab's etcd binary, ports 23100-23199):
one member at a time, with the role's own flag computation, member update
and health probe, while a writer keeps writing. No acknowledged write is
lost, the cluster keeps quorum throughout, and afterwards every member
refuses plain HTTP and clients without a certificate of the etcd CA."""

import base64
import json
import os
import pathlib
import ssl
import subprocess
import threading
import time

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]

from ansible_collections.kubeguard.hardening.plugins.module_utils._control_plane import (  # noqa: E402
    desired,
)
from ansible_collections.kubeguard.hardening.plugins.module_utils._control_plane import (  # noqa: E402
    flags as flaglib,
)
from ansible_collections.kubeguard.hardening.plugins.module_utils._control_plane import (  # noqa: E402
    health as cphealth,
)

MEMBERS = 3
BASE_PORT = 23100


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_pki(root):
    """An etcd CA, one server/peer certificate for 127.0.0.1 and a healthcheck client, kubeadm names."""
    etcd = root / "etcd"
    etcd.mkdir(parents=True)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
            "-subj", "/CN=etcd-ca", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,digitalSignature", cwd=etcd)  # fmt: skip
    for name, cn, eku, san in (
        ("server", "member", "serverAuth,clientAuth", "IP:127.0.0.1,DNS:localhost"),
        ("peer", "member", "serverAuth,clientAuth", "IP:127.0.0.1,DNS:localhost"),
        ("healthcheck-client", "kube-etcd-healthcheck-client", "clientAuth", ""),
    ):
        ext = f"basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage={eku}\n"
        if san:
            ext += f"subjectAltName={san}\n"
        (etcd / f"{name}.ext").write_text(ext)
        openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-subj", f"/CN={cn}",
                "-out", f"{name}.csr", cwd=etcd)  # fmt: skip
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                "-days", "1", "-extfile", f"{name}.ext", "-out", f"{name}.crt", cwd=etcd)  # fmt: skip
    # A client certificate from another CA.
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "foreign.key", "-out", "foreign.crt",
            "-days", "1", "-subj", "/CN=foreign", cwd=root)  # fmt: skip


def params(pki):
    return {
        "node_ip": "127.0.0.1",
        "node_name": "unused",
        "pki_dir": str(pki),
        "etcd_data_dir": "/nonexistent",
        "tls_cipher_suites": ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"],
        "tls_min_version": "VersionTLS12",
        "extra_flags": {},
    }


class Client:
    """JSON-gateway client for one member, over whatever scheme it serves now."""

    def __init__(self, pki, port):
        self.port = port
        self.tls = ssl.create_default_context(cafile=str(pki / "etcd/ca.crt"))
        self.tls.check_hostname = False
        self.tls.load_cert_chain(str(pki / "etcd/healthcheck-client.crt"), str(pki / "etcd/healthcheck-client.key"))

    def call(self, path, body, timeout=3):
        for url, context in ((f"https://127.0.0.1:{self.port}", self.tls), (f"http://127.0.0.1:{self.port}", None)):
            try:
                return json.loads(cphealth._request(url + path, context, body, timeout))
            except (OSError, ValueError, ssl.SSLError):
                continue
        raise OSError(f"member on {self.port} unreachable")


def b64(text):
    return base64.b64encode(text.encode()).decode()


class Writer(threading.Thread):
    def __init__(self, clients):
        super().__init__(daemon=True)
        self.clients, self.acked, self.errors, self.stop = clients, [], 0, threading.Event()

    def run(self):
        i = 0
        while not self.stop.is_set():
            key = f"/rolling/{i:06d}"
            for client in self.clients:
                try:
                    client.call("/v3/kv/put", {"key": b64(key), "value": b64(f"v{i}")})
                except OSError:
                    continue
                self.acked.append(key)
                break
            else:
                self.errors += 1
            i += 1
            time.sleep(0.02)


@pytest.fixture
def cluster(lab_binaries, tmp_path):
    pki = tmp_path / "pki"
    make_pki(pki)
    names = [f"m{i}" for i in range(MEMBERS)]
    ports = {n: (BASE_PORT + 10 * i, BASE_PORT + 10 * i + 1, BASE_PORT + 10 * i + 2) for i, n in enumerate(names)}
    initial = ",".join(f"{n}=http://127.0.0.1:{ports[n][1]}" for n in names)
    members = {}
    for name in names:
        client, peer, metrics = ports[name]
        members[name] = {
            "name": name,
            "data-dir": str(tmp_path / name),
            "listen-client-urls": f"http://127.0.0.1:{client}",
            "advertise-client-urls": f"http://127.0.0.1:{client}",
            "listen-peer-urls": f"http://127.0.0.1:{peer}",
            "initial-advertise-peer-urls": f"http://127.0.0.1:{peer}",
            "listen-metrics-urls": f"http://127.0.0.1:{metrics}",
            "initial-cluster": initial,
            "initial-cluster-state": "new",
        }
    procs = {}
    logs = tmp_path / "logs"
    logs.mkdir()

    def start(name, flags):
        argv = flaglib.render_argv(str(lab_binaries / "etcd"), flags)
        log = open(logs / f"{name}.log", "ab")  # noqa: SIM115 - lives as long as the process
        procs[name] = subprocess.Popen(argv, stdout=log, stderr=log)

    def stop(name):
        procs[name].terminate()
        procs[name].wait(timeout=30)

    for name in names:
        start(name, members[name])
    clients = [Client(pki, ports[n][0]) for n in names]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if all(cphealth.health("etcd", members[n], {"pki_dir": str(pki)})[0] for n in names):
            break
        time.sleep(0.5)
    else:
        pytest.fail("the plain-HTTP cluster did not come up: " + (logs / "m0.log").read_text()[-2000:])
    yield {"pki": pki, "names": names, "members": members, "start": start, "stop": stop, "clients": clients}
    for proc in procs.values():
        proc.terminate()
    for proc in procs.values():
        proc.wait(timeout=30)


def test_rolling_migration_keeps_every_write_and_quorum(cluster):
    pki, members, clients = cluster["pki"], cluster["members"], cluster["clients"]
    writer = Writer(clients)
    writer.start()
    time.sleep(1)
    binary = {"help_flags": ["tls-min-version"]}
    rolled = []
    for name in cluster["names"]:
        before = members[name]
        after = desired.desired_flags("etcd", before, params(pki), binary)
        cphealth.etcd_peer_urls(before, after, params(pki))  # while the member still serves its old URL
        cluster["stop"](name)
        cluster["start"](name, after)
        started = time.monotonic()
        while not cphealth.health("etcd", after, {"pki_dir": str(pki)})[0]:
            assert time.monotonic() - started < 60, f"{name} did not become healthy on TLS"
            time.sleep(0.5)
        members[name] = after
        rolled.append((name, round(time.monotonic() - started, 1)))
        time.sleep(1)
    time.sleep(1)
    writer.stop.set()
    writer.join()
    print(f"\nrolled {rolled}; {len(writer.acked)} writes acknowledged, {writer.errors} attempts found no member")

    assert len(writer.acked) > 50
    # Every member is on TLS, knows every peer by an https URL and holds every acknowledged write.
    listed = clients[0].call("/v3/cluster/member/list", {})["members"]
    assert sorted(u for m in listed for u in m["peerURLs"]) == sorted(
        m["initial-advertise-peer-urls"] for m in members.values()
    )
    assert all(u.startswith("https://") for m in listed for u in m["clientURLs"])
    for client in clients:
        found = client.call(
            "/v3/kv/range",
            {"key": b64("/rolling/"), "range_end": b64("/rolling0"), "keys_only": True, "limit": 0},
            timeout=10,
        )
        keys = {base64.b64decode(kv["key"]).decode() for kv in found.get("kvs", [])}
        assert set(writer.acked) <= keys, f"lost writes on {client.port}: {sorted(set(writer.acked) - keys)[:5]}"

    port = clients[0].port
    curl = ["curl", "-sS", "--max-time", "5"]
    assert subprocess.run([*curl, f"http://127.0.0.1:{port}/health"], capture_output=True, check=False).returncode != 0
    cacert = ["--cacert", str(pki / "etcd/ca.crt")]
    url = f"https://127.0.0.1:{port}/health"
    no_cert = subprocess.run([*curl, *cacert, url], capture_output=True, check=False)
    assert no_cert.returncode != 0
    root = pki
    foreign = subprocess.run(
        [*curl, *cacert, "--cert", str(root / "foreign.crt"), "--key", str(root / "foreign.key"), url],
        capture_output=True,
        check=False,
    )
    assert foreign.returncode != 0
    assert os.path.exists(pki / "etcd/healthcheck-client.crt")


def test_a_member_down_stops_the_next_restart_while_the_quorum_holds(cluster):
    """The guard apply runs before restarting an etcd member (etcd_quorum_without_me): with
    one member of three down, restarting another would leave one and lose the quorum."""
    members, clients, probe = cluster["members"], cluster["clients"], {"pki_dir": str(cluster["pki"])}
    kept, detail = cphealth.etcd_quorum_without_me(members["m1"], probe)
    assert kept, detail
    cluster["stop"]("m2")
    kept, detail = cphealth.etcd_quorum_without_me(members["m1"], probe)
    assert not kept and "(down: m2)" in detail, detail
    # m0 and m1 still hold the quorum: a write is acknowledged.
    clients[0].call("/v3/kv/put", {"key": b64("/guard/while-m2-is-down"), "value": b64("v")})
    cluster["start"]("m2", members["m2"])
    started = time.monotonic()
    while not cphealth.etcd_quorum_without_me(members["m1"], probe)[0]:
        assert time.monotonic() - started < 60, "m2 did not come back"
        time.sleep(0.5)
