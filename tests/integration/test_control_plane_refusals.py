"""Bad input refused before any restart, on the real lab (issue 18, item 5).

Each case runs a real playbook with one wrong variable and proves from the
outside that nothing happened: the run fails naming the role variable, the
component's pid is the same before and after, an apiserver client polling
/readyz every 200 ms through the run saw no failed request, and the files
that configure the node have the same checksums. The lab is left as found:
nothing is written, so there is nothing to undo.
"""

import json
import re
import tempfile
import threading
import time
from pathlib import Path

import pytest
from conftest import ansible_playbook
from control_plane_proofs import config_sources, pids
from kubeguard_test.api import Identity, api_port, https

pytestmark = pytest.mark.lab

# The trees a refused run must leave alone on a node.
NODE_TREES = "/etc/kubernetes /etc/systemd/system /var/lib/kubelet/config.yaml /etc/ssh"


class ReadyzPoller(threading.Thread):
    """GET /readyz every 200 ms as the lab admin; keeps each answer that is not 200 with the
    checks its body names as failed ("500 etcd-readiness"), so a failure says why."""

    def __init__(self, lab):
        super().__init__(daemon=True)
        self.port = api_port(lab.kubeconfig)
        self.identity = Identity(lab.kubeconfig, Path(tempfile.mkdtemp(prefix="kg-refusals-")), "admin")
        self.stop, self.requests, self.failed = threading.Event(), 0, []

    def run(self):
        while not self.stop.is_set():
            self.requests += 1
            try:
                status, body = https(self.port, "/readyz", self.identity)
            except OSError as exc:
                status, body = repr(exc), ""
            if status != 200:
                failed_checks = [line[3:].split(" ")[0] for line in body.splitlines() if line.startswith("[-]")]
                self.failed.append(f"{status} {','.join(failed_checks)}".strip())
            time.sleep(0.2)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.join()


def checksums(lab, host):
    command = f"find {NODE_TREES} -type f 2>/dev/null | sort | xargs -r sha256sum"
    return lab.podman_exec(host, "sh", "-c", command).stdout


def refused_run(lab, playbook, extra, *args):
    """The failed run's output on one line (the YAML callback folds long messages)."""
    run, _ = ansible_playbook(lab.inventory, playbook, "-e", json.dumps(extra), *args)
    assert run.returncode != 0, run.stdout[-3000:]
    return " ".join((run.stdout + run.stderr).split())


@pytest.fixture(scope="module")
def cp_host(lab):
    host = lab.groups["control_plane"][0]
    assert {"etcd", "kube-apiserver"} <= set(pids(lab, host)), "the lab's control plane is not running"
    return host


@pytest.mark.parametrize(
    ("tag", "extra", "component", "words"),
    [
        (
            "control_plane_etcd",
            {"control_plane_tls_cipher_suites": ["TLS_RSA_WITH_RC4_128_SHA"]},
            "etcd",
            "control_plane_tls_cipher_suites: insecure cipher suite(s) refused: TLS_RSA_WITH_RC4_128_SHA (RC4)",
        ),
        (
            "control_plane_apiserver",
            {"control_plane_tls_cipher_suites": ["TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA"]},
            "kube-apiserver",
            "control_plane_tls_cipher_suites: insecure cipher suite(s) refused: TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
        ),
        (
            "control_plane_apiserver",
            {"control_plane_etcd_servers": ["http://{ip}:2379"]},
            "kube-apiserver",
            "control_plane_etcd_servers: http://{ip}:2379: http:// is refused",
        ),
        (
            "control_plane_apiserver",
            {"control_plane_etcd_servers": ["https://{ip}:2379", "https://{ip}:2379"]},
            "kube-apiserver",
            "name the same member",
        ),
    ],
)
def test_refused_with_no_restart_and_no_failed_request(lab, cp_host, tag, extra, component, words):
    ip = lab.hostvars[cp_host]["kubeguard_node_ip"]
    extra = json.loads(json.dumps(extra).replace("{ip}", ip))
    before_pids, before_files = pids(lab, cp_host), config_sources(lab, cp_host)
    assert component in before_pids and before_files  # something to compare
    with ReadyzPoller(lab) as poller:
        out = refused_run(lab, "control_plane.yml", extra, "--tags", tag)
    assert words.replace("{ip}", ip) in out, out[-3000:]
    assert "option: control_plane_health_timeout" not in out  # the old, wrong blame
    assert f"option: {words.split(':')[0] if ':' in words else 'control_plane_etcd_servers'}" in out
    assert pids(lab, cp_host) == before_pids  # no restart of any component
    assert config_sources(lab, cp_host) == before_files
    assert poller.requests > 0 and poller.failed == [], poller.failed
    print(f"\n{component}: refused; {poller.requests} /readyz requests during the run, 0 failed")


def test_an_inventory_etcd_member_left_out_is_refused(lab, cp_host):
    """One etcd member in the lab: list another address instead, the real one is left out."""
    ip = lab.hostvars[cp_host]["kubeguard_node_ip"]
    before = pids(lab, cp_host)
    out = refused_run(
        lab,
        "control_plane.yml",
        {"control_plane_etcd_servers": ["https://192.0.2.1:2379"]},
        "--tags",
        "control_plane_apiserver",
    )
    assert f"control_plane_etcd_servers: leaves out the inventory etcd member(s) {ip}" in out, out[-3000:]
    assert pids(lab, cp_host) == before


def test_a_wrong_node_ip_is_refused_with_nothing_written(lab):
    host = lab.groups["workers"][0]
    pki_dir = Path(lab.vars["kubeguard_pki_output_dir"])
    pki_before = sorted((p, p.stat().st_mtime_ns) for p in pki_dir.rglob("*") if p.is_file())
    before = checksums(lab, host)
    assert "/etc/kubernetes/kubelet.conf" in before  # something to compare
    for playbook in ("cluster_pki.yml", "kubelet.yml"):
        out = refused_run(lab, playbook, {"kubeguard_node_ip": "10.9.9.9"}, "--limit", host)
        assert f"kubeguard_node_ip: 10.9.9.9 is not an address of {host}" in out, out[-3000:]
    assert checksums(lab, host) == before
    assert sorted((p, p.stat().st_mtime_ns) for p in pki_dir.rglob("*") if p.is_file()) == pki_before


def test_the_real_node_ip_passes_the_check(lab):
    """The check refuses what is wrong, not everything: a check-mode run with the real address gets past it."""
    host = lab.groups["workers"][0]
    run, _ = ansible_playbook(lab.inventory, "kubelet.yml", "--check", "--limit", host, "--tags", "never")
    assert run.returncode == 0, run.stdout[-3000:]
    assert "Refuse a kubeguard_node_ip the node does not have" in run.stdout


def test_a_foreign_ssh_listen_address_is_refused_before_sshd_config_is_written(lab):
    host = lab.groups["workers"][0]
    before = checksums(lab, host)
    assert "/etc/ssh/sshd_config" in before  # something to compare
    out = refused_run(lab, "ssh_hardening.yml", {"ssh_hardening_listen_addresses": ["10.9.9.9"]}, "--limit", host)
    assert "ssh_hardening_listen_addresses: 10.9.9.9 is not an address of the node" in out, out[-3000:]
    assert checksums(lab, host) == before
    # sshd still answers a fresh login on its old listener.
    assert lab.ssh(host, "true").returncode == 0


# ---------------------------------------------------------------- CEL and structured configs
# The installed kube-apiserver judges them (module_utils/_control_plane/preflight.py): a
# throw-away instance on an unreachable etcd, the candidate files in a private directory.

CONFIG_DIR = "/etc/kubernetes/kubeguard"


def authn(rule="claims.email_verified == true", username="'oidc:' + claims.sub.lowerAscii()", version="v1"):
    return json.dumps(
        {
            "apiVersion": f"apiserver.config.k8s.io/{version}",
            "kind": "AuthenticationConfiguration",
            "jwt": [
                {
                    # Never fetched before the config is judged (the authenticator starts asynchronously).
                    "issuer": {"url": "https://127.0.0.1:1/idp", "audiences": ["kubeguard"]},
                    "claimValidationRules": [{"expression": rule, "message": "verified e-mail only"}],
                    "claimMappings": {"username": {"expression": username}},
                }
            ],
        }
    )


def authz(condition="has(request.resourceAttributes) && request.resourceAttributes.namespace == 'kube-system'"):
    return json.dumps(
        {
            "apiVersion": "apiserver.config.k8s.io/v1",
            "kind": "AuthorizationConfiguration",
            "authorizers": [
                {"type": "Node", "name": "node"},
                {"type": "RBAC", "name": "rbac"},
                {
                    "type": "Webhook",
                    "name": "policy",
                    "webhook": {
                        "timeout": "3s",
                        "subjectAccessReviewVersion": "v1",
                        "matchConditionSubjectAccessReviewVersion": "v1",
                        "failurePolicy": "Deny",
                        "connectionInfo": {
                            "type": "KubeConfigFile",
                            "kubeConfigFile": f"{CONFIG_DIR}/policy.kubeconfig",
                        },
                        "matchConditions": [{"expression": condition}],
                    },
                },
            ],
        }
    )


WEBHOOK_KUBECONFIG = json.dumps(
    {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "policy", "cluster": {"server": "https://127.0.0.1:1/authorize"}}],
        "users": [{"name": "apiserver", "user": {}}],
        "contexts": [{"name": "policy", "context": {"cluster": "policy", "user": "apiserver"}}],
        "current-context": "policy",
    }
)


@pytest.fixture(scope="module")
def apiserver_candidate(lab_binaries, tmp_path_factory):
    """A kube-apiserver command line with structured authn/authz files, and its SA key pair."""
    import subprocess

    keys = tmp_path_factory.mktemp("sa")
    subprocess.run(
        ["openssl", "genpkey", "-algorithm", "RSA", "-out", keys / "sa.key"], check=True, capture_output=True
    )
    subprocess.run(
        ["openssl", "pkey", "-in", keys / "sa.key", "-pubout", "-out", keys / "sa.pub"], check=True, capture_output=True
    )
    flags = {
        "service-account-issuer": "https://kubernetes.default.svc.cluster.local",
        "service-account-key-file": str(keys / "sa.pub"),
        "service-account-signing-key-file": str(keys / "sa.key"),
        "service-cluster-ip-range": "10.96.0.0/12",
        "authentication-config": f"{CONFIG_DIR}/authentication.yaml",
        "authorization-config": f"{CONFIG_DIR}/authorization.yaml",
    }
    return str(lab_binaries / "kube-apiserver"), flags


def candidate_files(authentication=None, authorization=None):
    return {
        f"{CONFIG_DIR}/authentication.yaml": authentication or authn(),
        f"{CONFIG_DIR}/authorization.yaml": authorization or authz(),
        f"{CONFIG_DIR}/policy.kubeconfig": WEBHOOK_KUBECONFIG,
    }


def test_kubernetes_cel_is_accepted_by_the_installed_apiserver(apiserver_candidate):
    """lowerAscii() is Kubernetes' strings extension (cel-go ext.Strings), not core
    CEL: a core-CEL library would refuse it. The installed apiserver accepts it, and then waits for etcd."""
    from ansible_collections.kubeguard.hardening.plugins.module_utils._control_plane import preflight

    binary, flags = apiserver_candidate
    output = preflight.check(binary, flags, candidate_files(), CONFIG_DIR)
    assert preflight.PASSED.search(output), output[-2000:]


@pytest.mark.parametrize(
    ("files", "option", "words"),
    [
        # Syntax error.
        (
            candidate_files(authn(rule="claims.email ==")),
            "api_access_jwt_issuers[0].claim_validation_rules[0]",
            "Syntax error",
        ),
        # Type error: a validation rule must be a bool, the compiler knows claims.sub is not.
        (candidate_files(authn(rule="'not a bool'")), "api_access_jwt_issuers[0].claim_validation_rules[0]", "bool"),
        # Unknown function (not in Kubernetes' CEL environment either).
        (
            candidate_files(authn(username="claims.sub.noSuchFunction()")),
            "api_access_jwt_issuers[0]",
            "noSuchFunction",
        ),
        # matchConditions are type-checked against SubjectAccessReviewSpec.
        (
            candidate_files(authorization=authz("request.noSuchField == 'x'")),
            "api_access_authorizers[2].match_conditions[0]",
            "noSuchField",
        ),
        # An API version the binary does not serve.
        (candidate_files(authn(version="v9")), "api_access_jwt_issuers", "v9"),
    ],
)
def test_bad_cel_and_configs_are_refused_by_the_installed_apiserver(apiserver_candidate, files, option, words):
    from ansible_collections.kubeguard.hardening.plugins.module_utils._control_plane import preflight
    from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError

    binary, flags = apiserver_candidate
    with pytest.raises(KubeguardError) as err:
        preflight.check(binary, flags, files, CONFIG_DIR)
    print(f"\n{err.value}")
    assert err.value.option == option
    assert words in str(err.value)


def test_the_cipher_catalogue_matches_the_installed_apiserver(lab_binaries):
    """The catalogue against kube-apiserver's own --tls-cipher-suites lists (the kubelet and
    the other components are built from the same component-base)."""
    import subprocess

    from ansible_collections.kubeguard.hardening.plugins.module_utils._common import ciphers
    from ansible_collections.kubeguard.hardening.plugins.module_utils._control_plane import flags

    run = subprocess.run([str(lab_binaries / "kube-apiserver"), "--help"], capture_output=True, text=True, check=False)
    listed = flags.cipher_suites(run.stdout + run.stderr)
    assert set(listed["insecure"]) == set(ciphers.INSECURE)
    assert set(listed["preferred"]) == ciphers.ACCEPTED  # Go's secure suites and the two ChaCha20 aliases
    assert ciphers.catalogue_drift(listed["preferred"], listed["insecure"]) == {
        "preferred_not_secure": [],
        "insecure_not_insecure": [],
        "secure_not_listed": [],
    }


# ------------------------------------------------ through the role: judged before any write
# control_plane_component runs the same check on the node when kube-apiserver's command line
# or a file it reads would change, after the certificate checks and before the first write.


def cel_issuer(rule, message="verified e-mail only"):
    """One JWT issuer whose claim validation rule is ``rule`` (never fetched before the config is judged)."""
    return {
        "api_access_jwt_issuers": [
            {
                "url": "https://127.0.0.1:1/idp",
                "audiences": ["kubeguard"],
                "username_claim": "sub",
                "username_prefix": "oidc:",
                "claim_validation_rules": [{"expression": rule, "message": message}],
            }
        ]
    }


def started(lab, host, pid):
    """A process's start time in clock ticks since boot (field 22 of /proc/<pid>/stat)."""
    stat = lab.podman_exec(host, "cat", f"/proc/{pid}/stat").stdout
    return stat.rsplit(")", 1)[1].split()[19]


@pytest.fixture(scope="module")
def hardened(lab, cp_host):
    """api_access contributes to a hardened control plane (its certificates checked first): on a
    lab that site.yml has not hardened yet (this file run alone), harden it as site.yml would."""
    if lab.podman_exec(cp_host, "test", "-e", "/etc/kubernetes/pki/apiserver-etcd-client.crt").returncode != 0:
        run, _ = ansible_playbook(lab.inventory, "site.yml", "--tags", "cluster_pki,control_plane")
        assert run.returncode == 0, run.stdout[-3000:]
    return cp_host


def test_a_bad_cel_claim_rule_is_refused_by_the_installed_apiserver_through_the_role(lab, hardened):
    """The api_access role run alone (its apiserver entry point): check mode refuses it too,
    and the real run restarts nothing, writes nothing and fails no /readyz request."""
    cp_host = hardened
    pid = pids(lab, cp_host)["kube-apiserver"]
    before = (pid, started(lab, cp_host, pid), checksums(lab, cp_host))
    assert "/etc/systemd/system/kube-apiserver.service" in before[2] or "kube-apiserver.yaml" in before[2]
    extra = cel_issuer("claims.email ==")
    with ReadyzPoller(lab) as poller:
        outs = [refused_run(lab, "api_access.yml", extra, *args) for args in (["--check"], [])]
    for out in outs:
        assert "api_access_jwt_issuers[0].claim_validation_rules[0]: the installed kube-apiserver refuses" in out, out[
            -3000:
        ]
        assert "Syntax error" in out, out[-3000:]
    after_pid = pids(lab, cp_host)["kube-apiserver"]
    assert (after_pid, started(lab, cp_host, after_pid), checksums(lab, cp_host)) == before
    assert poller.requests > 0 and poller.failed == [], poller.failed
    print(f"\nbad CEL refused (check mode and real run); {poller.requests} /readyz requests, 0 failed")


def test_a_good_cel_claim_rule_passes_the_installed_apiserver_in_check_mode(lab, hardened):
    """The check refuses what is wrong, not everything: the same issuer with a valid rule gets
    past it (check mode: nothing written; the applied change and its one restart are
    test_api_access_role's, through the same path)."""
    cp_host = hardened
    before = (pids(lab, cp_host), checksums(lab, cp_host))
    # A message no other run applies, so the candidate differs from what runs (else nothing to judge).
    extra = cel_issuer("claims.email_verified == true", "kubeguard preflight proof: verified e-mail only")
    run, _ = ansible_playbook(lab.inventory, "api_access.yml", "--check", "-v", "-e", json.dumps(extra))
    assert run.returncode == 0, run.stdout[-3000:]
    seconds = re.search(r"preflight_seconds: ([0-9.]+)", run.stdout)
    assert seconds, run.stdout[-3000:]
    assert (pids(lab, cp_host), checksums(lab, cp_host)) == before
    print(f"\ngood CEL accepted by the installed kube-apiserver in {seconds.group(1)} s (check mode)")
