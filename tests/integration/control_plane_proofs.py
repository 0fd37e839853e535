"""The control-plane proofs of issue 8, shared by both lab layouts: a Test*
class mixes them in and provides the ``cp_lab`` fixture (the lab to harden).
test_10 runs them on the hard-way lab, test_zz on the kubeadm lab with its
real kubelet. Real requests to the real etcd, kube-apiserver,
kube-controller-manager and kube-scheduler; objects made before the
hardening are still there; a second run changes and restarts nothing."""

import base64
import contextlib
import json
import os
import pathlib
import re
import signal
import subprocess
import tempfile
import threading
import time

import pytest
import yaml
from conftest import ansible_playbook
from kubeguard_test.api import Identity, https, request
from kubeguard_test.api import api_port as kube_api_port
from kubeguard_test.waiting import wait_for

REPO = pathlib.Path(__file__).resolve().parents[2]


def children(pid):
    """The pids whose parent is ``pid`` (from /proc; a process that ends meanwhile is skipped)."""
    found = []
    for entry in pathlib.Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                # the fields after the command's closing parenthesis: state, ppid, ...
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
    return found


SECRET_VALUE = "cp8-before-secret-value"
CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.cp8.example.com"},
    "spec": {
        "group": "cp8.example.com",
        "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
            }
        ],
    },
}
BEFORE = [
    ["create", "namespace", "cp8-before"],
    ["-n", "cp8-before", "create", "configmap", "cm1", "--from-literal=k=v"],
    ["-n", "cp8-before", "create", "secret", "generic", "s1", f"--from-literal=password={SECRET_VALUE}"],
    ["-n", "cp8-before", "create", "role", "r1", "--verb=get", "--resource=pods"],
    ["-n", "cp8-before", "create", "rolebinding", "rb1", "--role=r1", "--user=someone"],
]
AFTER = [
    ("namespace", "cp8-before", ""),
    ("configmap", "cm1", "cp8-before"),
    ("secret", "s1", "cp8-before"),
    ("role", "r1", "cp8-before"),
    ("rolebinding", "rb1", "cp8-before"),
    ("crd", "widgets.cp8.example.com", ""),
    ("widget", "w1", "cp8-before"),
]


def api_port(lab):
    return kube_api_port(lab.kubeconfig)


def kubectl(lab_binaries, kubeconfig, *args, check=True, stdin=None):
    run = subprocess.run(
        [str(lab_binaries / "kubectl"), "--kubeconfig", str(kubeconfig), *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=60,
        check=False,
    )
    if check:
        assert run.returncode == 0, run.stderr
    return run


class Availability(threading.Thread):
    """Polls a namespaced GET (it needs etcd) with the old and the new admin identity;
    records the longest stretch in which neither got an answer."""

    def __init__(self, port, identities):
        super().__init__(daemon=True)
        self.port, self.identities = port, identities
        self.stop, self.longest_gap, self.failures = threading.Event(), 0.0, 0

    def run(self):
        down_since = None
        while not self.stop.is_set():
            up = False
            for identity in self.identities:
                try:
                    up = https(self.port, "/api/v1/namespaces/cp8-before/configmaps/cm1", identity)[0] == 200
                except OSError:
                    up = False
                if up:
                    break
            now = time.monotonic()
            if up and down_since is not None:
                self.longest_gap = max(self.longest_gap, now - down_since)
                down_since = None
            elif not up:
                self.failures += 1
                down_since = down_since or now
            time.sleep(0.2)
        if down_since is not None:
            self.longest_gap = max(self.longest_gap, time.monotonic() - down_since)


def pids(lab, host):
    out = lab.podman_exec(
        host, "pgrep", "-a", "-f", "^[^ ]*(etcd|kube-apiserver|kube-controller-manager|kube-scheduler) "
    )
    return {line.split()[1].rsplit("/", 1)[-1]: line.split()[0] for line in out.stdout.splitlines()}


def cmdline(lab, host, component):
    pid = pids(lab, host)[component]
    return lab.podman_exec(host, "cat", f"/proc/{pid}/cmdline").stdout.split("\0")


def run_failing_restart(lab, concern, extra_flags):
    """control_plane.yml on one concern with flags that pass the pre-restart checks but
    keep the component from coming up; a 25 s health timeout. The run must fail."""
    extra = {f"control_plane_{concern}_extra_flags": extra_flags, "control_plane_health_timeout": 25}
    run, _ = ansible_playbook(
        lab.inventory, "control_plane.yml", "--tags", f"control_plane_{concern}", "-e", json.dumps(extra)
    )
    assert run.returncode != 0, run.stdout[-3000:]
    return run


def post_event(hardened, namespace, n):
    """POST one core/v1 Event (the kind EventRateLimit limits) as the new admin."""
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": "cp8-burst-", "namespace": namespace},
        "involvedObject": {"kind": "ConfigMap", "name": "cm1", "namespace": namespace, "apiVersion": "v1"},
        "reason": "Cp8Burst",
        "message": f"event {n} of a burst",
        "type": "Normal",
    }
    path = f"/api/v1/namespaces/{namespace}/events"
    return request(hardened["port"], "POST", path, hardened["identity"], body=event)


def whoami(port, token):
    """(status, body) of a SelfSubjectReview sent with a bearer token: who the apiserver says it is."""
    review = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    return request(port, "POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", token=token, body=review)


def wait_for_value(func, seconds, what):
    """The first truthy value of ``func()`` within ``seconds``; fails naming ``what``."""
    deadline = time.monotonic() + seconds
    while True:
        value = func()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {seconds} s waiting for {what}")
        time.sleep(1)


def config_sources(lab, host):
    """sha256 of every file that configures a component: manifests, units and drop-ins."""
    listing = "/etc/kubernetes/manifests/* /etc/systemd/system/etcd.service* /etc/systemd/system/kube-*"
    return lab.podman_exec(host, "sh", "-c", f"find {listing} -type f | sort | xargs sha256sum").stdout


def lab_is_fresh(lab, lab_binaries):
    """Whether the lab's own admin may still create namespaces (a weak lab) or the API
    positively refuses it (a lab this test already hardened: the before-state, and its
    check-mode proof, is gone). Any other outcome (no answer, a TLS or kubeconfig error)
    fails here instead of turning the proofs that need a fresh lab into skips."""
    probe = kubectl(lab_binaries, lab.kubeconfig, "auth", "can-i", "create", "namespaces", check=False)
    answer = probe.stdout.strip()
    if answer in ("yes", "no"):
        return answer == "yes"
    # A hardened apiserver no longer trusts the lab's original client certificate.
    assert probe.returncode != 0 and "(Unauthorized)" in probe.stderr, (
        f"kubectl auth can-i gave no answer (rc {probe.returncode}): {probe.stdout} {probe.stderr}"
    )
    return False


def harden(lab, lab_binaries):
    """Objects before, the PKI, check mode, apply (timed, API availability polled), rerun."""
    host = lab.groups["control_plane"][0]
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="cp8-"))
    fresh = lab_is_fresh(lab, lab_binaries)
    if fresh:
        for args in BEFORE:
            made = kubectl(lab_binaries, lab.kubeconfig, *args, check=False)
            assert made.returncode == 0 or "already exists" in made.stderr, made.stderr
        kubectl(lab_binaries, lab.kubeconfig, "apply", "-f", "-", stdin=json.dumps(CRD))
        # Not `kubectl wait`: it fails at once while the new CRD has no status.conditions yet (a busy apiserver).
        # The jsonpath filter fails the same way on a nil list, so a failed get is one more poll.
        established = '{.status.conditions[?(@.type=="Established")].status}'
        crd = ("get", "crd/widgets.cp8.example.com", "-o", f"jsonpath={established}")
        wait_for(
            lambda: kubectl(lab_binaries, lab.kubeconfig, *crd, check=False).stdout == "True",
            120,
            "the Widget CRD Established",
        )
        widget = {
            "apiVersion": "cp8.example.com/v1",
            "kind": "Widget",
            "metadata": {"name": "w1", "namespace": "cp8-before"},
        }
        kubectl(lab_binaries, lab.kubeconfig, "apply", "-f", "-", stdin=json.dumps(widget))

    pki, _ = ansible_playbook(lab.inventory, "cluster_pki.yml")
    assert pki.returncode == 0, pki.stdout[-3000:]
    pki_dir = pathlib.Path(lab.vars["kubeguard_pki_output_dir"])
    port = api_port(lab)
    admin = workdir / "super-admin.conf"
    conf = yaml.safe_load((pki_dir / "super-admin.conf").read_text())
    conf["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{port}"
    admin.write_text(yaml.safe_dump(conf))
    admin.chmod(0o600)
    new_admin = Identity(admin, workdir, "super-admin")
    old_admin = Identity(lab.kubeconfig, workdir, "lab-admin")

    sources_before = config_sources(lab, host)
    check, check_recap = ansible_playbook(lab.inventory, "control_plane.yml", "--check", "--diff")
    assert check.returncode == 0, check.stdout[-4000:]
    after_check = (sources_before, config_sources(lab, host))

    poller = Availability(port, [old_admin, new_admin])
    poller.start()
    started = time.monotonic()
    first, first_recap = ansible_playbook(lab.inventory, "control_plane.yml", "--diff")
    first_seconds = time.monotonic() - started
    poller.stop.set()
    poller.join()
    assert first.returncode == 0, first.stdout[-6000:]
    pids_after_first = pids(lab, host)

    started = time.monotonic()
    second, second_recap = ansible_playbook(lab.inventory, "control_plane.yml")
    second_seconds = time.monotonic() - started
    assert second.returncode == 0, second.stdout[-4000:]
    print(
        f"\ncontrol_plane.yml: first run {first_seconds:.1f} s, idempotent rerun {second_seconds:.1f} s, "
        f"API unavailable at most {poller.longest_gap:.1f} s during the run"
    )
    return {
        "host": host,
        "fresh": fresh,
        "port": port,
        "admin": admin,
        "identity": new_admin,
        "workdir": workdir,
        "pki_dir": pki_dir,
        "check": (check, check_recap, after_check),
        "first": (first, first_recap, first_seconds),
        "second": (second, second_recap, second_seconds),
        "gap": poller.longest_gap,
        "pids": pids_after_first,
    }


class ControlPlaneProofs:
    """The Proof section of issue 8, check mode, idempotence and rollback."""

    @pytest.fixture(scope="class")
    @classmethod
    def hardened(cls, cp_lab, lab_binaries):
        return harden(cp_lab, lab_binaries)

    def test_check_mode_predicts_changes_and_writes_nothing(self, hardened, cp_lab):
        if not hardened["fresh"]:
            pytest.skip("the cp_lab was hardened by an earlier run: no before-state to check against")
        check, recap, (sources_before, sources_after) = hardened["check"]
        assert sum(r["changed"] for r in recap.values()) > 0
        assert sources_before and sources_after == sources_before  # no unit, drop-in or manifest written
        assert "PRIVATE KEY" not in check.stdout  # no key material in the diff
        # The diff lists flags one a line: "-" before, "+" after (both labs start with profiling on).
        assert "---profiling=true" in check.stdout
        assert "+--profiling=false" in check.stdout

    def test_second_run_changes_and_restarts_nothing(self, hardened, cp_lab):
        _, recap, _ = hardened["second"]
        assert all(r["changed"] == 0 for r in recap.values()), recap
        assert pids(cp_lab, hardened["host"]) == hardened["pids"]

    def test_every_object_from_before_the_migration_is_intact(self, hardened, lab_binaries):
        if not hardened["fresh"]:
            pytest.skip("the lab was hardened before this class ran (site.yml?): no objects from before the migration")
        for kind, name, namespace in AFTER:
            args = ["get", kind, name, "-o", "json"] + (["-n", namespace] if namespace else [])
            kubectl(lab_binaries, hardened["admin"], *args)
        secret = json.loads(
            kubectl(lab_binaries, hardened["admin"], "-n", "cp8-before", "get", "secret", "s1", "-o", "json").stdout
        )
        assert base64.b64decode(secret["data"]["password"]).decode() == SECRET_VALUE

    def test_etcd_refuses_plain_http_no_cert_and_a_foreign_ca(self, hardened, cp_lab):
        host = cp_lab.groups["etcd"][0]
        pki = "/etc/kubernetes/pki/etcd"
        curl = ["curl", "-sS", "--max-time", "5"]
        plain = cp_lab.podman_exec(host, *curl, "http://127.0.0.1:2379/health")
        assert plain.returncode != 0 or '"health":"true"' not in plain.stdout
        no_cert = cp_lab.podman_exec(host, *curl, "--cacert", f"{pki}/ca.crt", "https://127.0.0.1:2379/health")
        assert no_cert.returncode != 0, no_cert.stdout
        foreign = cp_lab.podman_exec(
            host,
            *curl,
            "--cacert",
            f"{pki}/ca.crt",
            "--cert",
            "/etc/kubernetes/pki/apiserver-kubelet-client.crt",
            "--key",
            "/etc/kubernetes/pki/apiserver-kubelet-client.key",
            "https://127.0.0.1:2379/health",
        )
        assert foreign.returncode != 0, foreign.stdout
        good = cp_lab.podman_exec(
            host,
            *curl,
            "--cacert",
            f"{pki}/ca.crt",
            "--cert",
            f"{pki}/healthcheck-client.crt",
            "--key",
            f"{pki}/healthcheck-client.key",
            "https://127.0.0.1:2379/health",
        )
        assert '"health":"true"' in good.stdout.replace(" ", ""), good.stdout + good.stderr
        argv = cmdline(cp_lab, host, "etcd")
        assert "--client-cert-auth=true" in argv
        assert "--peer-client-cert-auth=true" in argv
        assert not any(a.startswith("--auto-tls=true") for a in argv)

    def test_apiserver_flags_are_effective(self, hardened, cp_lab):
        argv = cmdline(cp_lab, hardened["host"], "kube-apiserver")
        # Anonymous is off, or (kubeadm, whose kubelet probes anonymously) left to a structured config.
        assert "--anonymous-auth=false" in argv or any(a.startswith("--authentication-config=") for a in argv)
        for flag in (
            "--authorization-mode=Node,RBAC",
            "--profiling=false",
            "--service-account-lookup=true",
            "--service-account-extend-token-expiration=false",
            "--kubelet-certificate-authority=/etc/kubernetes/pki/ca.crt",
            "--audit-log-maxage=30",
            "--tls-min-version=VersionTLS12",
        ):
            assert flag in argv
        plugins = next(a for a in argv if a.startswith("--enable-admission-plugins=")).split("=", 1)[1].split(",")
        assert {"NodeRestriction", "EventRateLimit", "DenyServiceExternalIPs"} <= set(plugins)
        assert any(a.startswith("--etcd-servers=https://") for a in argv)

    def test_anonymous_is_401_and_a_cert_without_rbac_rights_is_403(self, hardened, lab_binaries):
        assert https(hardened["port"], "/api")[0] == 401
        pki = hardened["pki_dir"] / "pki"
        workdir = hardened["workdir"]
        subprocess.run(
            [
                "openssl",
                "req",
                "-new",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                workdir / "nobody.key",
                "-subj",
                "/CN=cp8-nobody",
                "-out",
                workdir / "nobody.csr",
            ],
            check=True,
            capture_output=True,
        )
        subprocess.run(
            [
                "openssl",
                "x509",
                "-req",
                "-in",
                workdir / "nobody.csr",
                "-CA",
                pki / "ca.crt",
                "-CAkey",
                pki / "ca.key",
                "-CAcreateserial",
                "-days",
                "1",
                "-out",
                workdir / "nobody.crt",
            ],
            check=True,
            capture_output=True,
        )
        nobody = type("Nobody", (), {"cert": workdir / "nobody.crt", "key": workdir / "nobody.key"})
        status, body = https(hardened["port"], "/api/v1/namespaces/cp8-before/secrets", nobody)
        assert status == 403, body
        assert https(hardened["port"], "/api/v1/namespaces/cp8-before/secrets", hardened["identity"])[0] == 200

    def test_reading_a_secret_is_audited_at_metadata_without_its_data(self, hardened, cp_lab, lab_binaries):
        kubectl(lab_binaries, hardened["admin"], "-n", "cp8-before", "get", "secret", "s1", "-o", "yaml")
        deadline, events = time.monotonic() + 30, []
        while time.monotonic() < deadline and not events:
            log = cp_lab.podman_exec(hardened["host"], "cat", "/var/log/kubernetes/audit/audit.log").stdout
            events = [
                json.loads(line)
                for line in log.splitlines()
                if '"secrets"' in line and '"s1"' in line and '"get"' in line
            ]
            time.sleep(1)
        assert events, "no audit event for reading the secret"
        assert {e["level"] for e in events} == {"Metadata"}
        assert SECRET_VALUE not in log
        assert base64.b64encode(SECRET_VALUE.encode()).decode() not in log

    def test_profiling_endpoints_are_not_served(self, hardened, cp_lab):
        assert https(hardened["port"], "/debug/pprof/", hardened["identity"])[0] == 404
        host = hardened["host"]
        # The super-admin identity (system:masters) is authorized for everything: 404 means "not served".
        extract = (
            "umask 077; for part in certificate key; do grep client-$part-data /etc/kubernetes/super-admin.conf"
            " | awk '{print $2}' | base64 -d > /tmp/cp8-super-admin.$part; done"
        )
        assert cp_lab.podman_exec(host, "sh", "-c", extract).returncode == 0
        for port in (10257, 10259):
            out = cp_lab.podman_exec(
                host,
                "curl",
                "-sk",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--cert",
                "/tmp/cp8-super-admin.certificate",
                "--key",
                "/tmp/cp8-super-admin.key",
                f"https://127.0.0.1:{port}/debug/pprof/",
            )
            assert out.stdout == "404", (port, out.stdout, out.stderr)

    def test_tls_below_1_2_and_weak_ciphers_are_refused(self, hardened):
        base = ["openssl", "s_client", "-connect", f"127.0.0.1:{hardened['port']}"]
        old = subprocess.run(
            [*base, "-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0"],
            input="",
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
        assert old.returncode != 0
        assert re.search(r"alert protocol version|no protocols available|wrong version", old.stdout + old.stderr)
        cbc = subprocess.run(
            [*base, "-tls1_2", "-cipher", "ECDHE-RSA-AES128-SHA256"],
            input="",
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
        assert cbc.returncode != 0, cbc.stdout[-500:]
        gcm = subprocess.run(
            [*base, "-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256"],
            input="",
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
        assert "ECDHE-RSA-AES128-GCM-SHA256" in gcm.stdout

    def test_controller_manager_and_scheduler_listen_on_loopback_only(self, hardened, cp_lab):
        listening = cp_lab.podman_exec(hardened["host"], "ss", "-Hltn").stdout
        for port in ("10257", "10259"):
            addresses = {
                line.split()[3].rsplit(":", 1)[0]
                for line in listening.splitlines()
                if line.split()[3].endswith(f":{port}")
            }
            assert addresses == {"127.0.0.1"}, (port, addresses)

    def test_event_rate_limit_config_is_in_force(self, hardened, cp_lab):
        argv = cmdline(cp_lab, hardened["host"], "kube-apiserver")
        config = next(a for a in argv if a.startswith("--admission-control-config-file=")).split("=", 1)[1]
        doc = json.loads(cp_lab.podman_exec(hardened["host"], "cat", config).stdout)
        assert doc["plugins"][0]["name"] == "EventRateLimit"
        assert {limit["type"] for limit in doc["plugins"][0]["configuration"]["limits"]} == {"Server", "Namespace"}

    def test_event_rate_limit_throttles_a_burst_of_events(self, hardened, cp_lab):
        """EventRateLimit answers HTTP 429 once a namespace's bucket is spent, and only
        there. The role's limits are lowered for this test (the defaults' burst of 2000
        refills at 500 qps, faster than a client on this machine posts), then put back."""
        low = {"control_plane_event_rate_limits": [{"type": "Namespace", "qps": 1, "burst": 5, "cacheSize": 16}]}
        try:
            run, _ = ansible_playbook(
                cp_lab.inventory, "control_plane.yml", "--tags", "control_plane_apiserver", "-e", json.dumps(low)
            )
            assert run.returncode == 0, run.stdout[-3000:]
            answers = [post_event(hardened, "cp8-before", n) for n in range(30)]
            codes = [status for status, _ in answers]
            assert codes[0] == 201 and 429 in codes, answers[:3] + answers[-3:]
            throttled = next(body for status, body in answers if status == 429)
            assert "limit reached on type Namespace" in throttled, throttled
            # Another namespace has its own bucket.
            status, body = post_event(hardened, "default", 0)
            assert status == 201, body
        finally:
            back, _ = ansible_playbook(cp_lab.inventory, "control_plane.yml", "--tags", "control_plane_apiserver")
            assert back.returncode == 0, back.stdout[-3000:]

    def test_a_deleted_service_accounts_token_is_refused(self, hardened, lab_binaries):
        """--service-account-lookup: a legacy (Secret) token of a ServiceAccount that was
        deleted is refused, though its signature is still valid; so is a bound token."""
        admin, ns, name = hardened["admin"], "cp8-before", "cp8-lookup"
        kubectl(lab_binaries, admin, "-n", ns, "delete", "serviceaccount", name, "--ignore-not-found", "--wait")
        kubectl(lab_binaries, admin, "-n", ns, "create", "serviceaccount", name)
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "kubernetes.io/service-account-token",
            "metadata": {
                "name": f"{name}-legacy",
                "namespace": ns,
                "annotations": {"kubernetes.io/service-account.name": name},
            },
        }
        kubectl(lab_binaries, admin, "apply", "-f", "-", stdin=json.dumps(secret))
        legacy = wait_for_value(
            lambda: (
                kubectl(
                    lab_binaries, admin, "-n", ns, "get", "secret", f"{name}-legacy", "-o", "jsonpath={.data.token}"
                ).stdout
            ),
            60,
            "the token controller to fill the legacy token",
        )
        tokens = {
            "legacy": base64.b64decode(legacy).decode(),
            "bound": kubectl(lab_binaries, admin, "-n", ns, "create", "token", name).stdout.strip(),
        }
        for kind, token in tokens.items():
            status, body = whoami(hardened["port"], token)
            assert status == 201, (kind, body)
            assert json.loads(body)["status"]["userInfo"]["username"] == f"system:serviceaccount:{ns}:{name}", kind
        kubectl(lab_binaries, admin, "-n", ns, "delete", "serviceaccount", name, "--wait")
        for kind, token in tokens.items():
            # The apiserver's informer may still hold the account for a moment.
            answer = wait_for_value(
                lambda token=token: (lambda a: a if a[0] != 201 else None)(whoami(hardened["port"], token)),
                30,
                f"the {kind} token of the deleted account to be refused",
            )
            assert answer[0] == 401, (kind, answer)
        kubectl(lab_binaries, admin, "-n", ns, "delete", "secret", f"{name}-legacy", "--ignore-not-found")

    def test_a_service_with_external_ips_is_refused(self, hardened, lab_binaries):
        """DenyServiceExternalIPs: creating a Service with spec.externalIPs is forbidden
        by admission; the same Service without them is created."""
        path = "/api/v1/namespaces/cp8-before/services"
        kubectl(
            lab_binaries, hardened["admin"], "-n", "cp8-before", "delete", "service", "cp8-plain", "--ignore-not-found"
        )

        def service(name, **spec):
            ports = [{"port": 80, "targetPort": 8080}]
            return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": {"ports": ports, **spec}}

        status, body = request(
            hardened["port"], "POST", path, hardened["identity"], body=service("cp8-ext", externalIPs=["203.0.113.10"])
        )
        assert status == 403, body
        assert "use of external ips is denied by admission control" in body.lower(), body
        assert request(hardened["port"], "GET", f"{path}/cp8-ext", hardened["identity"])[0] == 404
        status, body = request(hardened["port"], "POST", path, hardened["identity"], body=service("cp8-plain"))
        assert status == 201, body
        assert request(hardened["port"], "DELETE", f"{path}/cp8-plain", hardened["identity"])[0] == 200

    def test_cis_file_modes(self, hardened, cp_lab):
        host = hardened["host"]
        stat = cp_lab.podman_exec(
            host,
            "sh",
            "-c",
            "stat -c '%a %U %n' /etc/kubernetes/*.conf /etc/kubernetes/pki/*.key /etc/kubernetes/pki/*.crt "
            "/var/lib/etcd /etc/systemd/system/kube-*.service.d/* /etc/systemd/system/etcd.service.d/* "
            "/etc/kubernetes/manifests/* 2>/dev/null; true",
        ).stdout
        entries = [line.split(" ", 2) for line in stat.splitlines()]
        assert entries
        for mode, owner, path in entries:
            if path == "/var/lib/etcd":
                assert (mode, owner) == ("700", "etcd")
            elif path.endswith(".crt"):
                assert int(mode, 8) & ~0o644 == 0 and owner == "root", path
            else:
                assert int(mode, 8) & ~0o600 == 0 and owner == "root", (path, mode)

    def test_failed_restart_rolls_back_and_the_cluster_stays_healthy(self, hardened, cp_lab):
        host = hardened["host"]
        dropin = "/etc/systemd/system/kube-scheduler.service.d/50-kubeguard.conf"
        layout_systemd = cp_lab.podman_exec(host, "test", "-f", dropin).returncode == 0
        source = dropin if layout_systemd else "/etc/kubernetes/manifests/kube-scheduler.yaml"
        before = cp_lab.podman_exec(host, "sha256sum", source).stdout
        # Passes every pre-restart check (the flag exists, the file is readable) but is not a certificate.
        key = "/etc/kubernetes/pki/ca.key"
        run = run_failing_restart(cp_lab, "scheduler", {"tls-cert-file": key, "tls-private-key-file": key})
        assert "control_plane_health_timeout" in run.stdout and "restored" in run.stdout, run.stdout[-3000:]
        assert cp_lab.podman_exec(host, "sha256sum", source).stdout == before
        status = cp_lab.podman_exec(host, "curl", "-sk", "https://127.0.0.1:10259/healthz")
        assert status.stdout == "ok"
        again, recap = ansible_playbook(cp_lab.inventory, "control_plane.yml", "--tags", "control_plane_scheduler")
        assert again.returncode == 0
        assert all(r["changed"] == 0 for r in recap.values()), recap


class ControlPlaneSafety:
    """Bad input refused with nothing restarted; a run killed mid-way converges."""

    def test_bad_input_is_refused_naming_the_variable_with_nothing_restarted(self, hardened, cp_lab):
        host = hardened["host"]
        before = pids(cp_lab, host)
        cases = [
            (
                '{"control_plane_tls_cipher_suites": ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA265"]}',
                "control_plane_tls_cipher_suites",
            ),
            ('{"control_plane_admission_plugins": ["NodeRestrictio"]}', "control_plane_admission_plugins"),
            ('{"control_plane_audit_log_maxage": -1}', "control_plane_audit_log_maxage"),
            ('{"control_plane_authorization_modes": ["AlwaysAllow"]}', "control_plane_authorization_modes"),
            ('{"control_plane_service_cidr": "10.200.0.0/16"}', "control_plane_service_cidr"),
            ('{"control_plane_scheduler_extra_flags": {"no-such-flag": "1"}}', "control_plane_scheduler_extra_flags"),
        ]
        for extra, variable in cases:
            run, recap = ansible_playbook(cp_lab.inventory, "control_plane.yml", "-e", extra)
            assert run.returncode != 0, extra
            assert variable in run.stdout, (variable, run.stdout[-2000:])
            assert all(r["changed"] == 0 for r in recap.values()), (extra, recap)
        assert pids(cp_lab, host) == before

    def test_a_run_killed_mid_way_converges_on_rerun(self, hardened, cp_lab):
        """SIGKILL the play right after it wrote the apiserver's new configuration
        (before health was proven), then rerun: it converges, and the next run is a no-op."""
        host = hardened["host"]
        change = ["-e", '{"control_plane_request_timeout": "61s"}']
        systemd = cp_lab.podman_exec(host, "test", "-d", "/etc/systemd/system/kube-apiserver.service.d").returncode == 0
        source = (
            "/etc/systemd/system/kube-apiserver.service.d/50-kubeguard.conf"
            if systemd
            else "/etc/kubernetes/manifests/kube-apiserver.yaml"
        )
        env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"))
        play = subprocess.Popen(
            [
                str(REPO / ".venv/bin/ansible-playbook"),
                "-i",
                str(cp_lab.inventory),
                "playbooks/control_plane.yml",
                *change,
            ],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and play.poll() is None:
            if cp_lab.podman_exec(host, "grep", "-q", "request-timeout=61s", source).returncode == 0:
                # as an operator's kill -9 of the job: the play and its workers, which ansible
                # detaches into sessions of their own (WorkerProcess._detach)
                workers = children(play.pid)
                os.killpg(play.pid, signal.SIGKILL)
                for pid in workers:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                break
            time.sleep(0.3)
        play.wait(timeout=60)
        assert play.returncode != 0, "the play ended before it could be killed"
        rerun, _ = ansible_playbook(cp_lab.inventory, "control_plane.yml", *change)
        assert rerun.returncode == 0, rerun.stdout[-3000:]
        assert "--request-timeout=61s" in cmdline(cp_lab, host, "kube-apiserver")
        again, recap = ansible_playbook(cp_lab.inventory, "control_plane.yml", *change)
        assert again.returncode == 0
        assert all(r["changed"] == 0 for r in recap.values()), recap
        back, _ = ansible_playbook(cp_lab.inventory, "control_plane.yml")
        assert back.returncode == 0, back.stdout[-3000:]
