"""kubeadm join after site.yml (issue 19), on the kubeadm layout with kubeadm's
bootstrap-token phase run: token discovery is an anonymous GET of kube-public's
cluster-info, before and after the hardening, while every other anonymous
request is refused; a real `kubeadm join phase preflight` from worker1
discovers the cluster (and fails with api_access's exception turned off).
The CIS audit (issue 20) on this layout: kubeadm's weak lab fails with evidence read from its
manifests, processes, kubelet config and files; after site.yml nothing automated fails, the
report's changes name what site.yml fixed, and a profiling flag planted in kubeadm's scheduler
manifest fails 1.4.1 once the kubelet has restarted the pod.
Brings up a kubeadm lab (the kubeadm_lab fixture, LAB_FRESH) where LAB_ID and
LAB_STATE say: tests/run-integration runs this file in the loopback stream on a
kubeadm lab of its own, after Molecule."""

import json
import shlex
import time

import pytest
import yaml
from conftest import ansible_playbook
from kubeguard_test import audit

pytestmark = pytest.mark.lab

CLUSTER_INFO = "/api/v1/namespaces/kube-public/configmaps/cluster-info"
HEALTH = ("/healthz", "/livez", "/readyz")
# Neighbours of cluster-info and the usual anonymous probes: none is admitted after site.yml.
OTHERS = ("/api/v1/namespaces/kube-public/configmaps", "/api/v1/namespaces/default/secrets", "/version", "/api")
SUPER_ADMIN = "--kubeconfig=/etc/kubernetes/super-admin.conf"
# An anonymous grant that is not kubeadm's: rbac_baseline removes it.
LOOSE = {
    "apiVersion": "rbac.authorization.k8s.io/v1",
    "kind": "RoleBinding",
    "metadata": {"name": "kg19-anonymous-configmaps", "namespace": "kube-public"},
    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
    "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "system:anonymous"}],
}
# kubeadm's own grants that joining needs, which the hardening keeps.
KUBEADM_GRANTS = (
    ("rolebinding", "kube-public", "kubeadm:bootstrap-signer-clusterinfo"),
    ("rolebinding", "kube-system", "kubeadm:nodes-kubeadm-config"),
    ("rolebinding", "kube-system", "kubeadm:kubelet-config"),
    ("clusterrolebinding", "", "kubeadm:get-nodes"),
    ("clusterrolebinding", "", "kubeadm:kubelet-bootstrap"),
    ("clusterrolebinding", "", "kubeadm:node-autoapprove-bootstrap"),
    ("clusterrolebinding", "", "kubeadm:node-autoapprove-certificate-rotation"),
    ("clusterrolebinding", "", "system:public-info-viewer"),
)


def hosts(lab):
    return lab.groups["control_plane"][0], lab.groups["workers"][0]


def anonymous_get(lab, path):
    """The HTTP status of an anonymous GET from a worker (no client certificate, no token)."""
    cp, worker = hosts(lab)
    ip = lab.hostvars[cp]["kubeguard_node_ip"]
    url = f"https://{ip}:6443{path}"
    run = lab.podman_exec(worker, "curl", "-sk", "--max-time", "10", "-o", "/dev/null", "-w", "%{http_code}", url)
    return run.stdout


def cp_exec(lab, *argv):
    run = lab.podman_exec(hosts(lab)[0], *argv)
    assert run.returncode == 0, (argv, run.stdout, run.stderr)
    return run.stdout


def join_command(lab, *kubeconfig):
    """`kubeadm token create --print-join-command` on the control-plane node: (endpoint, token, CA hash)."""
    words = shlex.split(cp_exec(lab, "kubeadm", "token", "create", "--print-join-command", *kubeconfig))
    assert words[:2] == ["kubeadm", "join"], words
    return words[2], words[words.index("--token") + 1], words[words.index("--discovery-token-ca-cert-hash") + 1]


def discover(lab, join, timeout="20s"):
    """A real token discovery from a worker: kubeadm join's preflight phase fetches cluster-info
    anonymously, checks its JWS signature and the pinned CA, then reads kubeadm-config with the
    token. Writes nothing on the node (--dry-run would fall back to a fake cluster-info)."""
    endpoint, token, ca_hash = join
    worker = hosts(lab)[1]
    config = {
        "apiVersion": "kubeadm.k8s.io/v1beta4",
        "kind": "JoinConfiguration",
        "discovery": {"bootstrapToken": {"apiServerEndpoint": endpoint, "token": token, "caCertHashes": [ca_hash]}},
        "timeouts": {"discovery": timeout},
        # preflight's node checks fail on a node that already runs a kubelet: only discovery matters here
        "nodeRegistration": {"name": worker, "ignorePreflightErrors": ["all"]},
    }
    path = "/root/kg19-join.json"  # holds the token: root-only, removed after
    write = lab.podman_exec(worker, "sh", "-c", f"umask 077; echo {shlex.quote(json.dumps(config))} > {path}")
    assert write.returncode == 0, write.stderr
    run = lab.podman_exec(worker, "kubeadm", "join", "phase", "preflight", "--config", path, "-v1")
    lab.podman_exec(worker, "rm", "-f", path)
    return run.returncode, run.stdout + run.stderr


DISCOVERED = "Cluster info signature and contents are valid and TLS certificate validates against pinned roots"


def test_before_site_yml_discovery_works_and_anonymous_reaches_more(kubeadm_lab):
    """The weak kubeadm lab: anonymous auth on everywhere (RBAC decides), kubeadm's discovery works."""
    assert anonymous_get(kubeadm_lab, CLUSTER_INFO) == "200"
    # anonymous is authenticated everywhere: RBAC answers 403 where kubeadm granted nothing
    assert anonymous_get(kubeadm_lab, "/api") == "403"
    assert anonymous_get(kubeadm_lab, "/version") == "200"  # system:public-info-viewer
    rc, out = discover(kubeadm_lab, join_command(kubeadm_lab, SUPER_ADMIN))
    assert rc == 0 and DISCOVERED in out, out[-3000:]


@pytest.fixture(scope="module")
def audit_before(kubeadm_lab):
    """playbooks/audit.yml on the weak kubeadm lab, before any role ran."""
    run, doc = audit.playbook(kubeadm_lab, kubeadm_lab.state / "audit-kubeadm-before")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    return doc


def pid_of(lab, host, name):
    """The oldest process running ``name`` (by its command line: pgrep -x sees 15 characters of it)."""
    return lab.podman_exec(host, "pgrep", "-o", "-f", f"^([^ ]*/)?{name}( |$)").stdout.strip()


def test_the_audit_of_the_weak_kubeadm_lab_fails_with_evidence_from_kubeadm_files(kubeadm_lab, audit_before):
    """Read from kubeadm's static pods (their processes and manifests), the kubelet's config file and
    the files' modes; the pids and modes are taken from the nodes, not from the report."""
    cp = hosts(kubeadm_lab)[0]
    rows = audit.rows(audit_before, cp)
    assert audit_before["nodes"][cp]["layout"] == "static-pod"
    api, kcm, sched, etcd = (
        pid_of(kubeadm_lab, cp, n) for n in ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd")
    )
    failing = {
        "1.2.1": f"--anonymous-auth=true (kube-apiserver process {api})",
        "1.2.15": f"--profiling=true (kube-apiserver process {api})",
        "1.2.16": f"--audit-log-path not set (kube-apiserver process {api})",
        "1.2.27": f"--encryption-provider-config not set (kube-apiserver process {api})",
        "1.2.5": f"--kubelet-certificate-authority not set (kube-apiserver process {api})",
        "1.3.2": f"--profiling not set (default true) (kube-controller-manager process {kcm})",
        "1.4.1": f"--profiling not set (default true) (kube-scheduler process {sched})",
        "1.1.12": "/var/lib/etcd root:root (wants etcd:etcd)",  # kubeadm's etcd runs as root
    }
    for check_id, evidence in failing.items():
        assert rows[check_id]["result"] == "fail", (check_id, rows[check_id])
        assert evidence in rows[check_id]["evidence"], (check_id, rows[check_id]["evidence"])
        assert rows[check_id]["remediation"], check_id
    # What kubeadm does right is read as such: its manifests' modes, its etcd's TLS, Node,RBAC.
    passing = {
        "1.1.1": "/etc/kubernetes/manifests/kube-apiserver.yaml 0600",
        "1.1.7": "/etc/kubernetes/manifests/etcd.yaml 0600",
        "1.1.13": "/etc/kubernetes/admin.conf 0600",
        "1.2.6": f"--authorization-mode=Node,RBAC (kube-apiserver process {api})",
        "2.1": f"--cert-file=/etc/kubernetes/pki/etcd/server.crt (etcd process {etcd})",
        "2.2": f"--client-cert-auth=true (etcd process {etcd})",
        "2.7": "--trusted-ca-file=/etc/kubernetes/pki/etcd/ca.crt is not "
        f"--client-ca-file=/etc/kubernetes/pki/ca.crt (etcd process {etcd})",
    }
    for check_id, evidence in passing.items():
        assert rows[check_id]["result"] == "pass", (check_id, rows[check_id])
        assert evidence in rows[check_id]["evidence"], (check_id, rows[check_id]["evidence"])
    for host in kubeadm_lab.hosts:
        rows = audit.rows(audit_before, host)
        config = "/var/lib/kubelet/config.yaml"
        assert rows["4.2.1"]["result"] == rows["4.2.4"]["result"] == rows["4.1.9"]["result"] == "fail", host
        assert f"authentication.anonymous.enabled: true ({config})" in rows["4.2.1"]["evidence"], host
        assert f"readOnlyPort: 10255 ({config})" in rows["4.2.4"]["evidence"], host
        mode = kubeadm_lab.podman_exec(host, "stat", "-c", "%a", config).stdout.strip()
        assert f"{config} 0{mode} (wants 0600 or stricter)" in rows["4.1.9"]["evidence"], (host, mode)


@pytest.fixture(scope="module")
def hardened(kubeadm_lab, audit_before):
    """An anonymous grant that is not kubeadm's, site.yml, then a rerun that changes nothing.
    Both runs end with the audit, compared with the weak lab's report."""
    cp_exec(kubeadm_lab, "sh", "-c", f"echo {shlex.quote(json.dumps(LOOSE))} | kubectl {SUPER_ADMIN} apply -f -")
    report = kubeadm_lab.state / "audit-kubeadm-join"
    extra = (
        "-e",
        f"audit_report_dir={report}",
        "-e",
        f"audit_baseline={kubeadm_lab.state / 'audit-kubeadm-before' / 'report.json'}",
    )
    first, _recap = ansible_playbook(kubeadm_lab.inventory, "site.yml", *extra, timeout=2400)
    assert first.returncode == 0, first.stdout[-4000:]
    # Every role checks again: a fast rerun would skip them (docs/fast-rerun.md).
    fast_off = ("-e", "kubeguard_fast_rerun_enabled=false")
    again, recap = ansible_playbook(kubeadm_lab.inventory, "site.yml", *extra, *fast_off, timeout=2400)
    assert again.returncode == 0, again.stdout[-4000:]
    return {"rerun": recap, "report": json.loads((report / "report.json").read_text())}


def test_a_rerun_of_site_yml_changes_nothing(hardened):
    assert hardened["rerun"] and all(counts["changed"] == 0 for counts in hardened["rerun"].values()), hardened["rerun"]


def test_anonymous_reaches_cluster_info_and_health_only(hardened, kubeadm_lab):
    config = yaml.safe_load(cp_exec(kubeadm_lab, "cat", "/etc/kubernetes/kubeguard/authentication.yaml"))
    assert config["anonymous"] == {"enabled": True, "conditions": [{"path": p} for p in (CLUSTER_INFO, *HEALTH)]}
    assert "--anonymous-auth=true" not in cp_exec(kubeadm_lab, "cat", "/etc/kubernetes/manifests/kube-apiserver.yaml")
    assert anonymous_get(kubeadm_lab, CLUSTER_INFO) == "200"
    for path in HEALTH:
        assert anonymous_get(kubeadm_lab, path) == "200", path
    # Not admitted by the structured config: the anonymous authenticator declines, no other
    # authenticator knows the request, so the apiserver answers 401 (not RBAC's 403).
    for path in OTHERS:
        assert anonymous_get(kubeadm_lab, path) == "401", path


def test_kubeadm_token_create_and_discovery_work_after_site_yml(hardened, kubeadm_lab):
    # the operator's own command, with kubeadm's admin.conf on cp1
    join = join_command(kubeadm_lab)
    rc, out = discover(kubeadm_lab, join)
    assert rc == 0 and DISCOVERED in out, out[-3000:]


def test_rbac_keeps_kubeadm_grants_and_removes_other_anonymous_ones(hardened, kubeadm_lab):
    for kind, namespace, name in KUBEADM_GRANTS:
        ns = ["-n", namespace] if namespace else []
        run = kubeadm_lab.podman_exec(
            hosts(kubeadm_lab)[0], "kubectl", SUPER_ADMIN, "get", kind, name, *ns, "-o", "name"
        )
        assert run.returncode == 0, (kind, namespace, name, run.stderr)
    gone = kubeadm_lab.podman_exec(
        hosts(kubeadm_lab)[0],
        "kubectl",
        SUPER_ADMIN,
        "-n",
        "kube-public",
        "get",
        "rolebinding",
        LOOSE["metadata"]["name"],
    )
    assert gone.returncode != 0 and "NotFound" in gone.stderr, gone.stdout + gone.stderr


def test_the_audit_passes_1_2_1_naming_the_kubeadm_exception(hardened, kubeadm_lab):
    cp = hosts(kubeadm_lab)[0]
    row = next(r for r in hardened["report"]["results"] if r["id"] == "1.2.1" and r["node"] == cp)
    assert row["result"] == "pass", row
    evidence = "\n".join(row["evidence"])
    assert "kubeadm exception" in evidence and CLUSTER_INFO in evidence, evidence


def test_no_automated_check_fails_after_site_yml_but_the_documented_choices(hardened):
    failing = {(r["id"], r["node"]): r for r in hardened["report"]["results"] if r["result"] == "fail"}
    unexplained = {
        key: row["evidence"]
        for key, row in failing.items()
        if key[0] not in (audit.USER_CHOICES if row["automated"] else audit.MANUAL_CHOICES)
    }
    assert not unexplained
    assert hardened["report"]["totals"]["pass"] > hardened["report"]["baseline"]["totals"]["pass"]


def test_the_report_shows_what_site_yml_fixed_on_kubeadm(hardened, kubeadm_lab):
    changed = {(c["id"], c["node"]): (c["before"], c["after"]) for c in hardened["report"]["changes"]}
    cp = hosts(kubeadm_lab)[0]
    for check_id in ("1.1.12", "1.2.1", "1.2.5", "1.2.15", "1.2.16", "1.2.27", "1.3.2", "1.4.1", "3.2.1"):
        assert changed.get((check_id, cp)) == ("fail", "pass"), check_id
    for host in kubeadm_lab.hosts:
        for check_id in ("4.1.9", "4.2.1", "4.2.4"):
            assert changed.get((check_id, host)) == ("fail", "pass"), (check_id, host)


SCHEDULER = "/etc/kubernetes/manifests/kube-scheduler.yaml"


def _scheduler(lab, old_pid, profiling):
    """Wait for the kubelet to replace the scheduler pod: a new process, with or without
    --profiling=true, answering /healthz. Returns its pid."""
    cp = hosts(lab)[0]
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        pid = pid_of(lab, cp, "kube-scheduler")
        if pid and pid != old_pid:
            argv = lab.podman_exec(cp, "cat", f"/proc/{pid}/cmdline").stdout.split("\0")
            health = lab.podman_exec(cp, "curl", "-sk", "--max-time", "5", "https://127.0.0.1:10259/healthz").stdout
            if ("--profiling=true" in argv) == profiling and health == "ok":
                return pid
        time.sleep(1)
    raise AssertionError(f"the kubelet did not restart kube-scheduler (profiling={profiling}) in time")


def test_profiling_planted_in_kubeadm_s_scheduler_manifest_fails_1_4_1(hardened, kubeadm_lab):
    """kubeadm's way: edit the static pod manifest, the kubelet recreates the pod."""
    cp = hosts(kubeadm_lab)[0]
    assert audit.rows(hardened["report"], cp)["1.4.1"]["result"] == "pass"
    pod = yaml.safe_load(cp_exec(kubeadm_lab, "cat", SCHEDULER))
    container = next(c for c in pod["spec"]["containers"] if c["name"] == "kube-scheduler")
    command = [a for a in container["command"] if not a.startswith("--profiling")]
    container["command"] = [command[0], "--profiling=true", *command[1:]]
    old = pid_of(kubeadm_lab, cp, "kube-scheduler")
    keep, staged = "/etc/kubernetes/kube-scheduler.yaml.audit-test", "/etc/kubernetes/.kube-scheduler.audit-test"
    cp_exec(kubeadm_lab, "cp", "-p", SCHEDULER, keep)  # outside manifests/: the kubelet would run it
    try:
        text = yaml.safe_dump(pod)
        cp_exec(kubeadm_lab, "sh", "-c", f"umask 077; cat >{staged} <<'EOF'\n{text}EOF\nmv {staged} {SCHEDULER}")
        planted = _scheduler(kubeadm_lab, old, profiling=True)
        row = audit.node(kubeadm_lab, cp)["1.4.1"]
    finally:
        cp_exec(kubeadm_lab, "mv", keep, SCHEDULER)
    _scheduler(kubeadm_lab, planted, profiling=False)
    assert row["result"] == "fail", row
    assert f"--profiling=true (kube-scheduler process {planted})" in row["evidence"], row["evidence"]
    assert audit.node(kubeadm_lab, cp)["1.4.1"]["result"] == "pass"


def test_the_report_names_the_version_of_the_static_pod_s_binary(hardened, kubeadm_lab):
    """A kubeadm node has no control-plane binary of its own (the lab's nodes have them): the
    version comes from the running pod's binary, not from an error reading the node's path."""
    cp = hosts(kubeadm_lab)[0]
    host_binary = "/usr/local/bin/kube-scheduler"
    pid = pid_of(kubeadm_lab, cp, "kube-scheduler")
    running = cp_exec(kubeadm_lab, f"/proc/{pid}/exe", "--version").strip()
    cp_exec(kubeadm_lab, "mv", host_binary, f"{host_binary}.audit-test")
    try:
        versions = audit.node_result(kubeadm_lab, cp)["node"]["versions"]
    finally:
        cp_exec(kubeadm_lab, "mv", f"{host_binary}.audit-test", host_binary)
    assert running.startswith("Kubernetes v")
    assert versions["kube-scheduler"] == running, versions


def test_with_the_exception_off_discovery_fails_and_back_on_it_works(hardened, kubeadm_lab):
    """The proof can fail: api_access_anonymous_kubeadm_discovery_enabled=false leaves only the
    kubelet's probe paths (control_plane keeps those), cluster-info answers 401 and discovery fails."""
    join = join_command(kubeadm_lab)
    off, _ = ansible_playbook(
        kubeadm_lab.inventory,
        "api_access.yml",
        "-e",
        json.dumps({"api_access_anonymous_kubeadm_discovery_enabled": False}),
    )
    try:
        assert off.returncode == 0, off.stdout[-4000:]
        assert anonymous_get(kubeadm_lab, CLUSTER_INFO) == "401"
        rc, out = discover(kubeadm_lab, join, timeout="10s")
        assert rc != 0, out[-3000:]
        assert "failed to request the cluster-info ConfigMap" in out and "Unauthorized" in out, out[-3000:]
    finally:
        on, _ = ansible_playbook(kubeadm_lab.inventory, "api_access.yml")
    assert on.returncode == 0, on.stdout[-4000:]
    assert anonymous_get(kubeadm_lab, CLUSTER_INFO) == "200"
    rc, out = discover(kubeadm_lab, join)
    assert rc == 0 and DISCOVERED in out, out[-3000:]
