"""kubeadm's own operations and two faults on the kubeadm-ha lab, after
site.yml hardened it (test_ha_site.py, which runs before this file: pytest
takes the files in name order; nothing here runs site.yml afresh).

- A control plane stopped before site.yml: the run stops at its first play,
  naming the node, and nothing changes on the others
  (playbooks/control_plane_reachable.yml).
- A third worker, a fresh node container (lab/bin/lab-add-worker), joins with
  the command `kubeadm token create --print-join-command` prints after
  hardening; it goes Ready and runs a pod. kubeadm then reads every
  certificate (`certs check-expiration`) and plans an upgrade (`upgrade plan`
  with the running version: the offline form, no internet check).
- `kubeadm upgrade apply` writes kubeadm's own manifests back: simulated on cp1
  with the phase it runs (`init phase control-plane apiserver` from the
  ClusterConfiguration in the kubeadm-config ConfigMap), our flags are gone.
- One site.yml rerun, worker3 now in the inventory (the user's flow), under
  bench/availability.py: cp1's flags are back, worker3's kubelet is hardened,
  no acknowledged write is lost, and worker1/2 have nothing to change.
Marked `ha`, on a fresh lab hardened by test_ha_site.py:
`LAB_ID=25 LAB_STATE=$PWD/.lab-ha LAYOUT=kubeadm-ha pytest -q -m ha tests/integration/test_ha_site.py \
tests/integration/test_ha_zz_kubeadm_ops.py` (make test-ha runs them all, in this order)."""

import json
import os
import socket
import ssl
import subprocess
import sys

import pytest
import yaml
from conftest import CONTAINERS_CONF, LAB_ID, LAB_STATE, REPO, Lab, ansible_playbook
from kubeguard_test.kube import Kubectl
from kubeguard_test.waiting import wait_for
from test_ha_lab import lb_servers, readyz

pytestmark = [pytest.mark.lab, pytest.mark.ha]

API_PORT = 16443 + 100 * LAB_ID
APISERVER = "/etc/kubernetes/manifests/kube-apiserver.yaml"
STATIC_PODS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")
ETCD_TLS = [
    "--cacert=/etc/kubernetes/pki/etcd/ca.crt",
    "--cert=/etc/kubernetes/pki/etcd/healthcheck-client.crt",
    "--key=/etc/kubernetes/pki/etcd/healthcheck-client.key",
]
NEW_WORKER = "worker3"
NAMESPACE = "kubeadm-ops"


def run(*argv, timeout=300):
    env = dict(os.environ, CONTAINERS_CONF=CONTAINERS_CONF)
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout, check=False)


def container(host):
    prefix = "kg-" if LAB_ID == 0 else f"kg{LAB_ID}-"
    return prefix + host


def on(host, *argv, timeout=300):
    return run("podman", "exec", container(host), *argv, timeout=timeout)


def kubelet_tls_verifies(ip, cafile):
    """Does the kubelet on ip serve a certificate the cluster CA (cafile) signed? A real handshake."""
    context = ssl.create_default_context(cafile=str(cafile))
    context.check_hostname = False
    try:
        with socket.create_connection((ip, 10250), timeout=5) as sock, context.wrap_socket(sock):
            return True
    except ssl.SSLCertVerificationError:
        return False


@pytest.fixture(scope="module")
def cluster_ca(tmp_path_factory):
    path = tmp_path_factory.mktemp("ca") / "ca.crt"
    path.write_text(on("cp1", "cat", "/etc/kubernetes/pki/ca.crt").stdout)
    return path


def apiserver_command(host):
    return yaml.safe_load(on(host, "cat", APISERVER).stdout)["spec"]["containers"][0]["command"]


def running_apiserver_flags(host):
    """The flags of the kube-apiserver process running on host (its /proc cmdline)."""
    ps = on(host, "pgrep", "-a", "-x", "kube-apiserver")
    return set(ps.stdout.split()[2:]) if ps.returncode == 0 else set()


def node_state(host):
    """What a site.yml run could change on a node: every file under /etc/kubernetes,
    /etc/ssh and the kubelet's config (sha256), the static pods' container ids
    (a new id is a restart) and the kubelet's pid."""
    files = on(
        host, "sh", "-c", "find /etc/kubernetes /etc/ssh /var/lib/kubelet/config.yaml -type f | sort | xargs sha256sum"
    )
    pods = json.loads(on(host, "crictl", "ps", "-o", "json").stdout)["containers"]
    kubelet = on(host, "systemctl", "show", "-p", "MainPID", "--value", "kubelet").stdout.strip()
    assert files.returncode == 0 and kubelet not in ("", "0"), (host, files.stderr)
    return {
        "files": files.stdout,
        "containers": sorted((c["metadata"]["name"], c["id"]) for c in pods if c["metadata"]["name"] in STATIC_PODS),
        "kubelet": kubelet,
    }


@pytest.fixture(scope="module")
def hardened(lab):
    """The lab as test_ha_site.py left it: hardened (checked here, not redone)."""
    if "--authentication-config" not in " ".join(apiserver_command("cp1")):
        pytest.fail("site.yml has not hardened this lab: run test_ha_site.py first, on a fresh lab")
    return lab


@pytest.fixture(scope="module")
def kube(lab, lab_binaries):
    return Kubectl(lab_binaries, lab.kubeconfig)


def test_a_control_plane_down_stops_site_before_any_change(hardened):
    lab = hardened
    before = {host: node_state(host) for host in ("cp1", "cp2")}
    assert run("podman", "stop", container("cp3"), timeout=120).returncode == 0
    try:
        site, recap = ansible_playbook(lab.inventory, "site.yml", timeout=900)
        assert site.returncode == 4, (site.stdout[-3000:], site.stderr[-3000:])
        assert "fatal: [cp3]: UNREACHABLE!" in site.stdout, site.stdout[-3000:]
        assert "Reach every etcd and control-plane node" in site.stdout
        # Only the reachability check ran: no role touched any node.
        assert recap["cp3"]["unreachable"] == 1
        assert {h: (s["ok"], s["changed"]) for h, s in recap.items() if h != "cp3"} == {
            **{h: (1, 0) for h in ("cp1", "cp2")},
            **{h: (0, 0) for h in lab.groups["workers"]},
        }
        assert {host: node_state(host) for host in ("cp1", "cp2")} == before
    finally:
        assert run("podman", "start", container("cp3"), timeout=120).returncode == 0
        # As lab-up does after `podman run`: / shared, as a host's systemd makes it.
        on("cp3", "mount", "--make-rshared", "/")
    ip = lab.hostvars["cp3"]["kubeguard_node_ip"]
    wait_for(lambda: readyz(ip) == 200, 300, "cp3's apiserver after its restart")
    health = on("cp1", "etcdctl", "--endpoints=https://127.0.0.1:2379", *ETCD_TLS, "endpoint", "health", "--cluster")
    assert health.returncode == 0 and health.stdout.count("is healthy") == 3, health.stdout + health.stderr


@pytest.fixture(scope="module")
def worker3(hardened, kube):
    """worker3 made by lab-add-worker and joined with a token printed after hardening."""
    added = run(str(REPO / "lab" / "bin" / "lab-add-worker"), timeout=900)
    assert added.returncode == 0, added.stderr[-3000:]
    made = on("cp1", "kubeadm", "token", "create", "--print-join-command", "--ttl=15m")
    assert made.returncode == 0, made.stderr
    join = made.stdout.split()
    assert join[:2] == ["kubeadm", "join"]
    joined = on(NEW_WORKER, *join, "--node-name", NEW_WORKER, "--cri-socket", "unix:///run/containerd/containerd.sock")
    assert joined.returncode == 0, (joined.stdout[-3000:], joined.stderr[-3000:])
    on("cp1", "kubeadm", "token", "delete", join[join.index("--token") + 1])
    return Lab(LAB_STATE)


def test_a_third_worker_joins_after_hardening_and_runs_a_pod(worker3, kube, cluster_ca):
    assert NEW_WORKER in worker3.groups["workers"]  # lab-add-worker wrote it into the inventory

    def ready():
        nodes = kube.get("nodes")["items"]
        return {
            n["metadata"]["name"]
            for n in nodes
            if any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"]["conditions"])
        }

    wait_for(lambda: NEW_WORKER in ready(), 180, f"{NEW_WORKER} Ready")
    assert ready() == set(worker3.hosts)
    kube.fresh_namespace(NAMESPACE)
    image = worker3.vars["kubeguard_lab_images"]["agnhost"]
    kube.apply(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "on-worker3", "namespace": NAMESPACE},
            "spec": {
                "nodeSelector": {"kubernetes.io/hostname": NEW_WORKER},
                "containers": [
                    {
                        "name": "netexec",
                        "image": image,
                        "imagePullPolicy": "Never",
                        "args": ["netexec", "--http-port=8080"],
                        "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 2},
                    }
                ],
            },
        }
    )
    kube("-n", NAMESPACE, "wait", "--for=condition=Ready", "pod/on-worker3", "--timeout=180s", timeout=200)
    pod = kube.get("-n", NAMESPACE, "pod", "on-worker3")
    assert pod["spec"]["nodeName"] == NEW_WORKER and pod["status"]["phase"] == "Running"
    # kubeadm's kubelet serves a self-signed certificate, which the hardened apiserver
    # (--kubelet-certificate-authority, CIS 1.2.5) refuses: no logs or exec there until
    # site.yml runs with the node in the inventory (the last test).
    assert not kubelet_tls_verifies(worker3.hostvars[NEW_WORKER]["kubeguard_node_ip"], cluster_ca)
    logs = kube("-n", NAMESPACE, "logs", "on-worker3", check=False)
    assert logs.returncode != 0 and "x509" in logs.stderr, logs.stderr
    # kubeadm's kube-proxy runs there too.
    wait_for(
        lambda: kube.get("-n", "kube-system", "daemonset", "kube-proxy")["status"].get("numberReady") == 6,
        120,
        "kube-proxy on 6 nodes",
    )


def test_kubeadm_reads_every_certificate_and_plans_an_upgrade(hardened):
    for host in hardened.groups["control_plane"]:
        expiry = on(host, "kubeadm", "certs", "check-expiration")
        assert expiry.returncode == 0, (host, expiry.stdout, expiry.stderr)
        assert "MISSING" not in expiry.stdout and "invalid" not in expiry.stdout.lower(), (host, expiry.stdout)
    # With a version, `upgrade plan` skips its internet check (the lab has no internet).
    version = on("cp1", "kubeadm", "version", "-o", "short").stdout.strip()
    plan = on("cp1", "kubeadm", "upgrade", "plan", version, timeout=600)
    assert plan.returncode == 0, (plan.stdout[-3000:], plan.stderr[-3000:])


@pytest.fixture(scope="module")
def rewritten(hardened, kube):
    """cp1's apiserver manifest written back by kubeadm, as `kubeadm upgrade apply` does;
    returns the hardened command it replaced."""
    hardened_command = apiserver_command("cp1")
    config = kube(
        "-n", "kube-system", "get", "configmap", "kubeadm-config", "-o", "jsonpath={.data.ClusterConfiguration}"
    )
    ip = hardened.hostvars["cp1"]["kubeguard_node_ip"]
    init = {
        "apiVersion": "kubeadm.k8s.io/v1beta4",
        "kind": "InitConfiguration",
        "localAPIEndpoint": {"advertiseAddress": ip, "bindPort": 6443},
        "nodeRegistration": {"name": "cp1", "criSocket": "unix:///run/containerd/containerd.sock"},
    }
    document = yaml.safe_dump(init) + "---\n" + config.stdout
    written = subprocess.run(
        ["podman", "exec", "-i", container("cp1"), "sh", "-c", "umask 077; cat > /root/kubeadm-upgrade.yaml"],
        input=document,
        capture_output=True,
        text=True,
        env=dict(os.environ, CONTAINERS_CONF=CONTAINERS_CONF),
        timeout=60,
        check=False,
    )
    assert written.returncode == 0, written.stderr
    phase = on(
        "cp1", "kubeadm", "init", "phase", "control-plane", "apiserver", "--config", "/root/kubeadm-upgrade.yaml"
    )
    assert phase.returncode == 0, (phase.stdout, phase.stderr)
    # Without --encryption-provider-config it cannot read a Secret (stored encrypted):
    # its /readyz fails (informer-sync) and the load balancer takes it out.
    wait_for(
        lambda: "--authentication-config" not in " ".join(running_apiserver_flags("cp1")) and readyz(ip) == 500,
        300,
        "cp1's apiserver running kubeadm's manifest",
    )
    return hardened_command


@pytest.mark.ha_upgrade
def test_a_kubeadm_manifest_rewrite_drops_our_flags(rewritten):
    now = apiserver_command("cp1")
    removed = set(rewritten) - set(now)  # --flag=value; some flags stay with kubeadm's value
    gone = {flag.split("=")[0] for flag in removed}
    for flag in ("--authentication-config", "--encryption-provider-config", "--audit-log-path", "--tls-cipher-suites"):
        assert flag in gone, (flag, sorted(gone))
    assert running_apiserver_flags("cp1") & removed == set()
    # The other two serve: the API answers through the load balancer, which has cp1 DOWN.
    wait_for(lambda: lb_servers(Lab(LAB_STATE))["cp1"]["status"] == "DOWN", 60, "the load balancer taking cp1 out")
    assert readyz("127.0.0.1", API_PORT) == 200


@pytest.fixture(scope="module")
def rerun(worker3, rewritten, lab_binaries):
    """One site.yml rerun, worker3 in the inventory, under bench/availability.py."""
    env = dict(
        os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_FORCE_COLOR="0", CONTAINERS_CONF=CONTAINERS_CONF
    )
    bench = [sys.executable, str(REPO / "bench" / "availability.py"), "--json"]
    bench += [
        f"--url=https://127.0.0.1:{API_PORT}/readyz",
        f"--kubeconfig={worker3.kubeconfig}",
        "--write-interval=0.1",
    ]
    bench += [f"--get-url=https://127.0.0.1:{API_PORT}/api/v1/namespaces/default"]
    bench += [f"--kubectl={lab_binaries / 'kubectl'}", "--max-seconds=2400", "--"]
    site = [
        str(REPO / ".venv/bin/ansible-playbook"),
        "-i",
        str(worker3.inventory),
        str(REPO / "playbooks" / "site.yml"),
    ]
    result = subprocess.run(bench + site, capture_output=True, text=True, env=env, cwd=REPO, check=False, timeout=2700)
    (worker3.state / "ha_kubeadm_ops_site.log").write_text(result.stdout + result.stderr)
    assert result.returncode == 0, (result.stdout[-3000:], result.stderr[-3000:])
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    recap = {
        line.split()[0]: {k: int(v) for k, v in (pair.split("=") for pair in line.split(":", 1)[1].split())}
        for line in result.stdout.splitlines()
        if " : ok=" in line
    }
    print(json.dumps(figures))  # the figures (pytest -rA shows them)
    return {"figures": figures, "recap": recap}


@pytest.mark.ha_upgrade
def test_a_site_rerun_restores_the_flags_and_loses_no_write(rerun, rewritten):
    writes = rerun["figures"]["writes"]
    assert writes["acknowledged"] > 0 and writes["lost"] == [], writes
    assert sorted(apiserver_command("cp1")) == sorted(rewritten)
    assert {f.split("=")[0] for f in running_apiserver_flags("cp1")} >= {
        "--authentication-config",
        "--encryption-provider-config",
    }
    recap = rerun["recap"]
    assert all(stats["failed"] == 0 and stats["unreachable"] == 0 for stats in recap.values()), recap
    assert recap["cp1"]["changed"] > 0 and recap[NEW_WORKER]["changed"] > 0, recap
    # worker1/2 had nothing to change. (The control planes all change: cp1's apiserver wrote with
    # identity while it ran kubeadm's manifest, so encryption_at_rest runs a whole transition.)
    assert {h: recap[h]["changed"] for h in ("worker1", "worker2")} == {"worker1": 0, "worker2": 0}, recap


@pytest.mark.ha_upgrade
def test_the_rerun_hardened_the_new_workers_kubelet(rerun, worker3, kube, cluster_ca):
    config = yaml.safe_load(on(NEW_WORKER, "cat", "/var/lib/kubelet/config.yaml").stdout)
    # kubeadm's kubelet config has neither (CIS 4.2.13, 4.2.14); anonymous is off in both.
    assert (config["podPidsLimit"], config["seccompDefault"]) == (4096, True)
    assert config["tlsCertFile"] == "/var/lib/kubelet/pki/kubelet.crt"
    assert config["authentication"]["anonymous"]["enabled"] is False
    ip = worker3.hostvars[NEW_WORKER]["kubeguard_node_ip"]
    assert kubelet_tls_verifies(ip, cluster_ca)
    # The apiserver reaches it with its verified client: logs of the pod on worker3.
    assert kube("-n", NAMESPACE, "logs", "on-worker3").returncode == 0
