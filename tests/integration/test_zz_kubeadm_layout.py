"""LAYOUT=kubeadm: kubeadm writes the files, and cp1's real kubelet runs the
control plane as static pods from the lab's local images. Runs last: it
recreates the lab in the kubeadm layout."""

import json
import os
import socket
import subprocess
import time

import pytest
from conftest import CONTAINERS_CONF, LAB_LABEL, LAB_STATE, lab_up
from control_plane_proofs import ControlPlaneProofs, cmdline

pytestmark = pytest.mark.lab


def podman(*argv):
    env = {**os.environ, "CONTAINERS_CONF": CONTAINERS_CONF}
    return subprocess.run(["podman", *argv], capture_output=True, text=True, env=env, check=True).stdout


def test_a_running_lab_survives_a_transient_api_outage(lab):
    """`make lab` on a running lab of the same recipe reuses it, even when its
    API is briefly down: it retries and says so, and never recreates it."""
    cp = lab.groups["control_plane"][0]
    layout = os.environ.get("LAYOUT", "hardway")
    unit = "kube-apiserver" if layout == "hardway" else "kubelet"
    # Long enough for lab-up to meet it (its builds are cache hits first). Killed,
    # not stopped: a hardened apiserver drains for up to --request-timeout (60 s)
    # on a graceful stop, longer than lab-up's retries.
    outage = f"systemctl kill -s SIGKILL {unit}; systemctl stop {unit}; sleep 20; systemctl start {unit}"
    if layout == "kubeadm":  # the kubelet would restart the static pod: stop both
        outage = f"crictl stop $(crictl ps -q --name kube-apiserver); {outage}"
    container = lab.hostvars[cp]["kubeguard_lab_container"]
    before = node_containers(lab)
    podman("exec", "-d", container, "sh", "-c", outage)
    time.sleep(1)
    result = lab_up(LAYOUT=layout)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "did not answer readyz (attempt 1/" in result.stderr
    assert f"lab {os.environ.get('LAB_ID', '0')} already up (reused" in result.stderr
    assert "creating lab" not in result.stderr
    # The same containers (a recreated one has a new ID and creation time), never restarted.
    assert node_containers(lab) == before


def node_containers(lab):
    """{container name: (ID, creation time, start time)} of every node of the lab."""
    names = [lab.hostvars[host]["kubeguard_lab_container"] for host in lab.hosts]
    inspect = json.loads(podman("inspect", "--type", "container", *names))
    return {c["Name"].lstrip("/"): (c["Id"], c["Created"], c["State"]["StartedAt"]) for c in inspect}


def test_a_taken_port_fails_clearly_and_leaves_nothing_behind():
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        result = lab_up(LAB_FRESH="1", LAB_API_PORT=str(port))
    assert result.returncode != 0
    assert f"port 127.0.0.1:{port} is already taken" in result.stderr
    assert podman("ps", "-aq", "--filter", f"label={LAB_LABEL}") == ""
    assert podman("volume", "ls", "-q", "--filter", f"label={LAB_LABEL}") == ""
    assert not LAB_STATE.exists()


def test_kubeadm_wrote_its_layout(kubeadm_lab):
    cp = kubeadm_lab.groups["control_plane"][0]
    files = [
        "pki/ca.crt",
        "pki/etcd/ca.crt",
        "pki/front-proxy-ca.crt",
        "pki/sa.pub",
        "admin.conf",
        "super-admin.conf",
        "controller-manager.conf",
        "scheduler.conf",
    ]
    files += [
        f"manifests/{pod}.yaml" for pod in ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")
    ]
    for name in files:
        assert kubeadm_lab.podman_exec(cp, "test", "-s", f"/etc/kubernetes/{name}").returncode == 0, name


def test_admin_conf_reaches_the_api_from_the_host(kubeadm_lab, lab_binaries):
    result = subprocess.run(
        [
            str(lab_binaries / "kubectl"),
            "--kubeconfig",
            str(kubeadm_lab.kubeconfig),
            "auth",
            "whoami",
            "-o",
            "jsonpath={.status.userInfo.groups}",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "kubeadm:cluster-admins" in result.stdout


def test_etcd_serves_tls_with_client_certs(kubeadm_lab):
    cp = kubeadm_lab.groups["etcd"][0]
    pki = "/etc/kubernetes/pki/etcd"
    base = ["etcdctl", "--endpoints=https://127.0.0.1:2379", f"--cacert={pki}/ca.crt", "endpoint", "health"]
    with_cert = kubeadm_lab.podman_exec(
        cp, *base, f"--cert={pki}/healthcheck-client.crt", f"--key={pki}/healthcheck-client.key"
    )
    assert with_cert.returncode == 0, with_cert.stderr
    without_cert = kubeadm_lab.podman_exec(cp, *base, "--command-timeout=3s")
    assert without_cert.returncode != 0


def test_a_changed_manifest_restarts_its_component(kubeadm_lab):
    cp = kubeadm_lab.groups["control_plane"][0]
    scheduler = running_containers(kubeadm_lab, cp)["kube-scheduler"]
    manifest = "/etc/kubernetes/manifests/kube-scheduler.yaml"
    edit = f"sed -i 's/    - --leader-elect=true/    - --leader-elect=true\\n    - --v=3/' {manifest}"
    assert kubeadm_lab.podman_exec(cp, "sh", "-c", edit).returncode == 0
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if "--v=3" in kubeadm_lab.podman_exec(cp, "pgrep", "-af", "kube-scheduler").stdout:
            break
        time.sleep(1)
    else:
        pytest.fail("kube-scheduler was not restarted with the manifest's new flag")
    # The kubelet recreated the static pod: a new scheduler container runs.
    assert wait_until(lambda: running_containers(kubeadm_lab, cp).get("kube-scheduler") not in (None, scheduler))


def running_containers(lab, host):
    """{container name: container id} of what the node's containerd runs, through the CRI."""
    listing = lab.podman_exec(host, "crictl", "ps", "--state", "running", "-o", "json")
    assert listing.returncode == 0, listing.stderr
    return {c["metadata"]["name"]: c["id"] for c in json.loads(listing.stdout)["containers"]}


def wait_until(condition, timeout=60):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(1)
    return True


def test_the_kubelet_runs_the_control_plane_as_static_pods(kubeadm_lab, lab_binaries):
    cp = kubeadm_lab.groups["control_plane"][0]
    components = {"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"}
    assert components <= set(running_containers(kubeadm_lab, cp))
    # No stand-in: nothing but the kubelet runs them.
    units = kubeadm_lab.podman_exec(cp, "systemctl", "list-units", "--all", "--plain", "--no-legend", "static-pod-*")
    assert units.stdout.strip() == ""
    # The API's mirror pods: the kubelet reports each component, and kubeadm's
    # own readiness probes pass (the apiserver is not being killed by its probes).
    kubectl = [str(lab_binaries / "kubectl"), "--kubeconfig", str(kubeadm_lab.kubeconfig), "-n", "kube-system"]
    pods = [f"pod/{c}-{cp}" for c in sorted(components)]
    ready = subprocess.run(
        [*kubectl, "wait", "--for=condition=Ready", *pods, "--timeout=120s"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert ready.returncode == 0, ready.stderr
    # Each runs from the lab's local image of the same binary.
    images = {
        i["id"]: i["repoTags"]
        for i in json.loads(kubeadm_lab.podman_exec(cp, "crictl", "images", "-o", "json").stdout)["images"]
    }
    listing = json.loads(kubeadm_lab.podman_exec(cp, "crictl", "ps", "-o", "json").stdout)["containers"]
    for container in listing:
        name = container["metadata"]["name"]
        if name in components:
            assert images[container["imageRef"]] == [kubeadm_lab.vars["kubeguard_lab_images"][name]], name


def test_every_node_is_ready_with_cluster_dns(kubeadm_lab, lab_binaries):
    kubectl = [str(lab_binaries / "kubectl"), "--kubeconfig", str(kubeadm_lab.kubeconfig)]
    nodes = subprocess.run(
        [*kubectl, "wait", "--for=condition=Ready", "node", "--all", "--timeout=60s"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert nodes.returncode == 0, nodes.stderr
    assert len(nodes.stdout.splitlines()) == len(kubeadm_lab.hosts)
    dns = subprocess.run(
        [*kubectl, "-n", "kube-system", "rollout", "status", "deployment/coredns", "--timeout=60s"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert dns.returncode == 0, dns.stderr


class TestKubeadmControlPlane(ControlPlaneProofs):
    """issue 8's proofs on kubeadm's static pods, run by the real kubelet."""

    @pytest.fixture(scope="class")
    @classmethod
    def cp_lab(cls, kubeadm_lab):
        return kubeadm_lab

    def test_the_kubelet_probes_still_pass(self, hardened, cp_lab, lab_binaries):
        """kubeadm probes the apiserver with anonymous HTTPS GETs: anonymous access
        is allowed on exactly those paths, so its mirror pod is Ready (a 401 would
        fail the 1 s readiness probe within seconds) while /api is still 401."""
        cp, ip = hardened["host"], cp_lab.hostvars[hardened["host"]]["ansible_host"]
        argv = cmdline(cp_lab, cp, "kube-apiserver")
        assert not any(a.startswith("--anonymous-auth") for a in argv)
        config = next(a for a in argv if a.startswith("--authentication-config=")).split("=", 1)[1]
        anonymous = json.loads(cp_lab.podman_exec(cp, "cat", config).stdout)["anonymous"]
        assert anonymous == {"enabled": True, "conditions": [{"path": "/livez"}, {"path": "/readyz"}]}
        for path, status in (("/livez", 200), ("/readyz", 200), ("/api", 401), ("/healthz", 401)):
            out = cp_lab.podman_exec(
                cp, "curl", "-sk", "-o", "/dev/null", "-w", "%{http_code}", f"https://{ip}:6443{path}"
            )
            assert out.stdout == str(status), (path, out.stdout)
        kubectl = [str(lab_binaries / "kubectl"), "--kubeconfig", str(hardened["admin"]), "-n", "kube-system"]
        pod = f"pod/kube-apiserver-{cp}"
        ready = subprocess.run(
            [*kubectl, "wait", "--for=condition=Ready", pod, "--timeout=120s"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert ready.returncode == 0, ready.stderr
        # The mirror pod is the hardened one: its config hash is the manifest's.
        mirror = json.loads(subprocess.check_output([*kubectl, "get", pod, "-o", "json"], text=True))
        manifest = cp_lab.podman_exec(
            cp, "grep", "kubeguard.io/config-hash", "/etc/kubernetes/manifests/kube-apiserver.yaml"
        )
        assert mirror["metadata"]["annotations"]["kubeguard.io/config-hash"] in manifest.stdout

    def test_kubeadm_accepts_the_hardened_tree(self, hardened, cp_lab):
        """kubeadm's own read-only checks: the init phases that validate an existing
        PKI and kubeconfigs reuse every file ("Using existing", nothing generated or
        rewritten), check-expiration reads every certificate, and upgrade diff parses
        each hardened manifest (after kubeadm init's upload-config step, run again, and
        the CRI annotation that NodeLocalCRISocket no longer writes)."""
        cp, config = hardened["host"], "/etc/kubernetes/lab/kubeadm.yaml"
        tree = "cd /etc/kubernetes && find . -type f | sort | xargs sha256sum"
        before = cp_lab.podman_exec(cp, "sh", "-c", tree).stdout

        def kubeadm(*argv):
            run = cp_lab.podman_exec(cp, "kubeadm", *argv, "--config", config)
            assert run.returncode == 0, run.stdout + run.stderr
            return run.stdout

        certs = kubeadm("init", "phase", "certs", "all")
        assert "Generating" not in certs
        assert certs.count("Using existing") == 10 and 'Using the existing "sa" key' in certs, certs  # 3 CAs, 7 pairs
        kubeconfigs = kubeadm("init", "phase", "kubeconfig", "all")
        assert kubeconfigs.count("Using existing kubeconfig file") == 5, kubeconfigs
        expiration = kubeadm("certs", "check-expiration")
        assert "MISSING" not in expiration and "apiserver-etcd-client" in expiration, expiration
        assert cp_lab.podman_exec(cp, "sh", "-c", tree).stdout == before

        kubeadm("init", "phase", "upload-config", "all", "--kubeconfig", "/etc/kubernetes/super-admin.conf")
        annotate = cp_lab.podman_exec(
            cp,
            "kubectl",
            "--kubeconfig=/etc/kubernetes/super-admin.conf",
            "annotate",
            "--overwrite",
            f"node/{cp}",
            "kubeadm.alpha.kubernetes.io/cri-socket=unix:///run/containerd/containerd.sock",
        )
        assert annotate.returncode == 0, annotate.stderr
        diff = cp_lab.podman_exec(cp, "kubeadm", "upgrade", "diff", "--kubeconfig", "/etc/kubernetes/super-admin.conf")
        assert diff.returncode == 0, diff.stdout + diff.stderr
        # kubeadm read our manifests: what it would write back lacks our flags.
        assert "--- /etc/kubernetes/manifests/kube-apiserver.yaml" in diff.stdout
        assert "-    - --authentication-config=/etc/kubernetes/kubeguard/authentication.yaml" in diff.stdout
        assert "-    - --profiling=false" in diff.stdout
