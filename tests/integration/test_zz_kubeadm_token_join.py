"""kubeadm join after site.yml (issue 19), on the kubeadm layout with kubeadm's
bootstrap-token phase run: token discovery is an anonymous GET of kube-public's
cluster-info, before and after the hardening, while every other anonymous
request is refused; a real `kubeadm join phase preflight` from worker1
discovers the cluster (and fails with api_access's exception turned off).
Recreates the lab in the kubeadm layout, as test_zz_kubeadm_layout does, and
sorts after it: that file's first test reuses the running hard-way lab."""

import json
import shlex

import pytest
import yaml
from conftest import LAB_STATE, Lab, ansible_playbook
from test_zz_kubeadm_layout import lab_up

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


@pytest.fixture(scope="module")
def join_lab():
    result = lab_up(LAYOUT="kubeadm", LAB_FRESH="1")
    assert result.returncode == 0, result.stderr[-2000:]
    return Lab(LAB_STATE)


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


def test_before_site_yml_discovery_works_and_anonymous_reaches_more(join_lab):
    """The weak kubeadm lab: anonymous auth on everywhere (RBAC decides), kubeadm's discovery works."""
    assert anonymous_get(join_lab, CLUSTER_INFO) == "200"
    # anonymous is authenticated everywhere: RBAC answers 403 where kubeadm granted nothing
    assert anonymous_get(join_lab, "/api") == "403"
    assert anonymous_get(join_lab, "/version") == "200"  # system:public-info-viewer
    rc, out = discover(join_lab, join_command(join_lab, SUPER_ADMIN))
    assert rc == 0 and DISCOVERED in out, out[-3000:]


@pytest.fixture(scope="module")
def hardened(join_lab):
    """An anonymous grant that is not kubeadm's, site.yml, then a rerun that changes nothing."""
    cp_exec(join_lab, "sh", "-c", f"echo {shlex.quote(json.dumps(LOOSE))} | kubectl {SUPER_ADMIN} apply -f -")
    report = join_lab.state / "audit-kubeadm-join"
    first, _recap = ansible_playbook(join_lab.inventory, "site.yml", "-e", f"audit_report_dir={report}", timeout=2400)
    assert first.returncode == 0, first.stdout[-4000:]
    again, recap = ansible_playbook(join_lab.inventory, "site.yml", "-e", f"audit_report_dir={report}", timeout=2400)
    assert again.returncode == 0, again.stdout[-4000:]
    return {"rerun": recap, "report": json.loads((report / "report.json").read_text())}


def test_a_rerun_of_site_yml_changes_nothing(hardened):
    assert hardened["rerun"] and all(counts["changed"] == 0 for counts in hardened["rerun"].values()), hardened["rerun"]


def test_anonymous_reaches_cluster_info_and_health_only(hardened, join_lab):
    config = yaml.safe_load(cp_exec(join_lab, "cat", "/etc/kubernetes/kubeguard/authentication.yaml"))
    assert config["anonymous"] == {"enabled": True, "conditions": [{"path": p} for p in (CLUSTER_INFO, *HEALTH)]}
    assert "--anonymous-auth=true" not in cp_exec(join_lab, "cat", "/etc/kubernetes/manifests/kube-apiserver.yaml")
    assert anonymous_get(join_lab, CLUSTER_INFO) == "200"
    for path in HEALTH:
        assert anonymous_get(join_lab, path) == "200", path
    # Not admitted by the structured config: the anonymous authenticator declines, no other
    # authenticator knows the request, so the apiserver answers 401 (not RBAC's 403).
    for path in OTHERS:
        assert anonymous_get(join_lab, path) == "401", path


def test_kubeadm_token_create_and_discovery_work_after_site_yml(hardened, join_lab):
    # the operator's own command, with kubeadm's admin.conf on cp1
    join = join_command(join_lab)
    rc, out = discover(join_lab, join)
    assert rc == 0 and DISCOVERED in out, out[-3000:]


def test_rbac_keeps_kubeadm_grants_and_removes_other_anonymous_ones(hardened, join_lab):
    for kind, namespace, name in KUBEADM_GRANTS:
        ns = ["-n", namespace] if namespace else []
        run = join_lab.podman_exec(hosts(join_lab)[0], "kubectl", SUPER_ADMIN, "get", kind, name, *ns, "-o", "name")
        assert run.returncode == 0, (kind, namespace, name, run.stderr)
    gone = join_lab.podman_exec(
        hosts(join_lab)[0], "kubectl", SUPER_ADMIN, "-n", "kube-public", "get", "rolebinding", LOOSE["metadata"]["name"]
    )
    assert gone.returncode != 0 and "NotFound" in gone.stderr, gone.stdout + gone.stderr


def test_the_audit_passes_1_2_1_naming_the_kubeadm_exception(hardened, join_lab):
    cp = hosts(join_lab)[0]
    row = next(r for r in hardened["report"]["results"] if r["id"] == "1.2.1" and r["node"] == cp)
    assert row["result"] == "pass", row
    evidence = "\n".join(row["evidence"])
    assert "kubeadm exception" in evidence and CLUSTER_INFO in evidence, evidence


def test_with_the_exception_off_discovery_fails_and_back_on_it_works(hardened, join_lab):
    """The proof can fail: api_access_anonymous_kubeadm_discovery_enabled=false leaves only the
    kubelet's probe paths (control_plane keeps those), cluster-info answers 401 and discovery fails."""
    join = join_command(join_lab)
    off, _ = ansible_playbook(
        join_lab.inventory,
        "api_access.yml",
        "-e",
        json.dumps({"api_access_anonymous_kubeadm_discovery_enabled": False}),
    )
    try:
        assert off.returncode == 0, off.stdout[-4000:]
        assert anonymous_get(join_lab, CLUSTER_INFO) == "401"
        rc, out = discover(join_lab, join, timeout="10s")
        assert rc != 0, out[-3000:]
        assert "failed to request the cluster-info ConfigMap" in out and "Unauthorized" in out, out[-3000:]
    finally:
        on, _ = ansible_playbook(join_lab.inventory, "api_access.yml")
    assert on.returncode == 0, on.stdout[-4000:]
    assert anonymous_get(join_lab, CLUSTER_INFO) == "200"
    rc, out = discover(join_lab, join)
    assert rc == 0 and DISCOVERED in out, out[-3000:]
