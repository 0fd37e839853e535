"""playbooks/cluster_pki.yml against the lab: each node gets only what it needs,
and a second run changes nothing."""

import json
import pathlib

import pytest
from conftest import ansible_playbook

REPO = pathlib.Path(__file__).resolve().parents[2]

from ansible_collections.kubeguard.hardening.plugins.module_utils._pki import _crypto, _kubeconfig  # noqa: E402

pytestmark = pytest.mark.lab


def play(lab, *extra):
    return ansible_playbook(lab.inventory, "cluster_pki.yml", *extra, timeout=900)


@pytest.fixture(scope="module")
def applied(lab):
    first, recap = play(lab)
    assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-2000:]
    second, recap2 = play(lab)
    assert second.returncode == 0, second.stdout[-4000:]
    output_dir = pathlib.Path(lab.vars["kubeguard_pki_output_dir"])
    return recap, recap2, output_dir


def node_name(lab, host):
    return lab.hostvars[host].get("kubeguard_node_name", host)


def files_on(lab, host):
    run = lab.podman_exec(
        host,
        "find",
        "/etc/kubernetes",
        "/var/lib/kubelet/pki",
        # Static-pod manifests, the lab's kubeadm config and the other roles' config dir
        # are not this role's files; nor are the client certs the kubelet rotates itself.
        "(",
        "-path",
        "/etc/kubernetes/manifests",
        "-o",
        "-path",
        "/etc/kubernetes/lab",
        "-o",
        "-path",
        "/etc/kubernetes/kubeguard",
        ")",
        "-prune",
        "-o",
        "-type",
        "f",
        "!",
        "-name",
        "kubelet-client-*.pem",
        "-printf",
        "%m %u %p\\n",
    )
    assert run.returncode == 0, run.stderr
    return {line.split()[2]: (line.split()[0], line.split()[1]) for line in run.stdout.splitlines()}


def test_second_run_changes_nothing(applied, lab):
    _, recap2, _ = applied
    assert set(recap2) >= set(lab.groups["k8s_cluster"])
    assert {host: recap2[host]["changed"] for host in lab.groups["k8s_cluster"]} == dict.fromkeys(
        lab.groups["k8s_cluster"], 0
    )
    assert all(recap2[host]["failed"] == 0 for host in lab.groups["k8s_cluster"])


def test_workers_have_no_ca_or_etcd_keys(applied, lab):
    for host in lab.groups["workers"]:
        files = files_on(lab, host)
        keys = sorted(p for p in files if p.endswith(".key"))
        assert keys == ["/var/lib/kubelet/pki/kubelet.key"], (host, keys)
        assert not [p for p in files if "/etcd/" in p], host
        assert set(files) == {
            "/etc/kubernetes/pki/ca.crt",
            "/etc/kubernetes/kubelet.conf",
            "/var/lib/kubelet/pki/kubelet.crt",
            "/var/lib/kubelet/pki/kubelet.key",
        }


def test_etcd_keys_only_on_etcd_members(applied, lab):
    for host in lab.groups["k8s_cluster"]:
        files = files_on(lab, host)
        has_etcd_keys = any(p.startswith("/etc/kubernetes/pki/etcd/") and p.endswith(".key") for p in files)
        assert has_etcd_keys == (host in lab.groups["etcd"]), host


def test_each_node_has_only_its_own_kubelet_credentials(applied, lab):
    _, _, output_dir = applied
    for host in lab.groups["k8s_cluster"]:
        name = node_name(lab, host)
        key = lab.podman_exec(host, "cat", "/var/lib/kubelet/pki/kubelet.key").stdout.encode()
        mine = (output_dir / f"nodes/{name}/kubelet/kubelet.key").read_bytes()
        assert _crypto.public_der(_crypto.load_key(key)) == _crypto.public_der(_crypto.load_key(mine)), host
        conf = _kubeconfig.parse(lab.podman_exec(host, "cat", "/etc/kubernetes/kubelet.conf").stdout.encode())
        assert _crypto.describe(_crypto.load_cert(conf["cert"]))["cn"] == f"system:node:{name}"
        serving = _crypto.describe(
            _crypto.load_cert(lab.podman_exec(host, "cat", "/var/lib/kubelet/pki/kubelet.crt").stdout.encode())
        )
        assert serving["cn"] == f"system:node:{name}"
        assert lab.hostvars[host]["kubeguard_node_ip"] in serving["ips"]


def test_owners_and_modes(applied, lab):
    for host in lab.groups["k8s_cluster"]:
        for path, (mode, owner) in files_on(lab, host).items():
            assert owner == "root", path
            assert mode == ("600" if path.endswith((".key", ".conf")) else "644"), (host, path, mode)


def test_control_plane_has_kubeadm_layout(applied, lab):
    for host in lab.groups["control_plane"]:
        files = files_on(lab, host)
        for name in ("ca.key", "apiserver.crt", "apiserver-etcd-client.key", "front-proxy-ca.key", "sa.key", "sa.pub"):
            assert f"/etc/kubernetes/pki/{name}" in files
        for conf in ("admin.conf", "super-admin.conf", "controller-manager.conf", "scheduler.conf"):
            assert f"/etc/kubernetes/{conf}" in files


def test_changed_files_restart_only_their_existing_units(applied, lab):
    """scheduler.conf is restored on cp1 and only the scheduler's unit restarts (the lab runs
    the control plane as <component> units, or static-pod-<component> in the kubeadm layout)."""
    host = lab.groups["control_plane"][0]

    def started(unit):
        return lab.podman_exec(
            host, "systemctl", "show", "-p", "ExecMainStartTimestampMonotonic", "--value", unit
        ).stdout.strip()

    components = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")
    prefix = "static-pod-"
    if lab.podman_exec(host, "systemctl", "cat", "static-pod-kube-scheduler.service").returncode != 0:
        prefix = ""
    units = {c: f"{prefix}{c}" for c in components}
    scheduler = units["kube-scheduler"]
    assert lab.podman_exec(host, "systemctl", "cat", f"{scheduler}.service").returncode == 0
    before = {u: started(u) for u in units.values()}
    assert lab.podman_exec(host, "rm", "/etc/kubernetes/scheduler.conf").returncode == 0
    run, recap = play(lab, "-e", json.dumps({"cluster_pki_services": {**units, "kubelet": "kubelet"}}))
    assert run.returncode == 0, run.stdout[-3000:]
    assert recap[host]["changed"] >= 1
    after = {u: started(u) for u in units.values()}
    assert after[scheduler] != before[scheduler]
    assert {u: after[u] for u in after if u != scheduler} == {u: before[u] for u in before if u != scheduler}
    assert lab.podman_exec(host, "test", "-s", "/etc/kubernetes/scheduler.conf").returncode == 0


def control_plane_units(lab, host):
    """component -> unit on the lab's control plane (<component>, or static-pod-<component> in the kubeadm layout)."""
    kubeadm = lab.podman_exec(host, "systemctl", "cat", "static-pod-kube-scheduler.service").returncode == 0
    prefix = "static-pod-" if kubeadm else ""
    components = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")
    return {**{c: f"{prefix}{c}" for c in components}, "kubelet": "kubelet"}


def role_files_digest(lab):
    """sha256 of every file the role manages, on every node, plus the PKI tree on the controller."""
    digest = {}
    for host in lab.groups["k8s_cluster"]:
        paths = sorted(files_on(lab, host))
        run = lab.podman_exec(host, "sha256sum", *paths)
        assert run.returncode == 0, run.stderr
        digest[host] = run.stdout
    tree = pathlib.Path(lab.vars["kubeguard_pki_output_dir"])
    digest["tree"] = {str(p): p.read_bytes() for p in sorted(tree.rglob("*")) if p.is_file()}
    return digest


def unit_starts(lab, host, units):
    return {
        u: lab.podman_exec(host, "systemctl", "show", "-p", "ExecMainStartTimestampMonotonic", "--value", u).stdout
        for u in units
    }


@pytest.mark.parametrize(
    "endpoint, reason",
    [
        ("noport", "does not resolve"),  # issue 13 point 4: a host with no port, resolving nowhere
        ("worker1:22", "does not complete a TLS handshake"),  # worker1's IP: resolves, answers, but no TLS
        ("127.0.0.1:6443", "does not"),  # cp1's own apiserver, but not for the workers (and hardway: another CA)
    ],
)
def test_a_bad_endpoint_is_refused_from_the_nodes_and_nothing_changes(applied, lab, endpoint, reason):
    cp1 = lab.groups["control_plane"][0]
    units = control_plane_units(lab, cp1)
    before, started = role_files_digest(lab), unit_starts(lab, cp1, units.values())
    endpoint = endpoint.replace("worker1:", f"{lab.hostvars['worker1']['kubeguard_node_ip']}:")  # any LAB_ID
    run, recap = play(lab, "-e", json.dumps({"cluster_pki_control_plane_endpoint": endpoint}))
    output = run.stdout + run.stderr
    assert run.returncode != 0, output[-3000:]
    assert "cluster_pki_control_plane_endpoint" in output and reason in output, output[-3000:]
    assert "nothing was written anywhere" in output
    assert all(recap[h]["changed"] == 0 for h in lab.groups["k8s_cluster"]), recap
    assert role_files_digest(lab) == before
    assert unit_starts(lab, cp1, units.values()) == started


def test_after_a_refusal_a_good_run_still_changes_nothing(applied, lab):
    run, recap = play(lab)
    assert run.returncode == 0, run.stdout[-3000:]
    assert {h: recap[h]["changed"] for h in lab.groups["k8s_cluster"]} == dict.fromkeys(lab.groups["k8s_cluster"], 0)


@pytest.mark.parametrize(
    "tag",
    ["cluster_pki", "cluster_pki_generate", "cluster_pki_distribute", "cluster_pki_node_agents", "cluster_pki_report"],
)
def test_each_tag_runs_alone(applied, lab, tag):
    run, recap = play(lab, "--tags", tag)
    assert run.returncode == 0, run.stdout[-3000:]
    assert {h: recap[h]["changed"] for h in lab.groups["k8s_cluster"]} == dict.fromkeys(lab.groups["k8s_cluster"], 0)
    assert all(recap[h]["failed"] == 0 for h in lab.groups["k8s_cluster"])


def test_a_component_that_does_not_come_back_healthy_is_rolled_back(applied, lab):
    """scheduler.conf drifted (a valid kubeconfig with a comment added) is replaced, but the
    scheduler's health URL never answers: the drifted file comes back, the scheduler is restarted
    again, the play fails naming it. A normal run then converges, with the real health check passing."""
    host = lab.groups["control_plane"][0]
    units = control_plane_units(lab, host)
    conf = "/etc/kubernetes/scheduler.conf"
    drift = "printf '# drifted by the rollback test\\n' >> " + conf
    assert lab.podman_exec(host, "sh", "-c", drift).returncode == 0
    drifted = lab.podman_exec(host, "cat", conf).stdout
    never = {"kube-scheduler": ["http://127.0.0.1:9/never"]}
    extra = {"cluster_pki_services": units, "cluster_pki_health_checks": never, "cluster_pki_restart_timeout": 5}
    run, recap = play(lab, "-e", json.dumps(extra))
    output = run.stdout + run.stderr
    assert run.returncode != 0
    assert "kube-scheduler" in output and "did not become healthy" in output and "Rolled back" in output, output[-3000:]
    assert lab.podman_exec(host, "cat", conf).stdout == drifted
    scheduler = f"{units['kube-scheduler']}.service"
    assert lab.podman_exec(host, "systemctl", "is-active", scheduler).stdout.strip() == "active"
    backup = "/var/backups/kubeguard/cluster_pki/pending-restart.json"
    assert lab.podman_exec(host, "test", "-e", backup).returncode != 0
    run, recap = play(lab, "-e", json.dumps({"cluster_pki_services": units}))
    assert run.returncode == 0, run.stdout[-3000:]
    assert recap[host]["changed"] >= 1
    assert "drifted" not in lab.podman_exec(host, "cat", conf).stdout
    assert lab.podman_exec(host, "test", "-e", backup).returncode != 0
    run, recap = play(lab)
    assert {h: recap[h]["changed"] for h in lab.groups["k8s_cluster"]} == dict.fromkeys(lab.groups["k8s_cluster"], 0)
