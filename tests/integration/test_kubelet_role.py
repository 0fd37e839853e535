"""The kubelet role against the lab's real kubelets: real requests to :10250
and :10255, real TLS handshakes, kubectl logs/exec through the apiserver's
verified connection, a serving certificate from another CA that breaks it,
a renewal through cluster_pki that the kubelet picks up with no CSR, and the
role's idempotence, check mode and refusals.

Self-sufficient: when the lab's kubelets are still weak (this file run
alone on a fresh lab), it runs site.yml first."""

import datetime
import json
import pathlib
import re
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request

import pytest
from conftest import ansible_playbook
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from kubeguard_test.kube import Kubectl
from kubeguard_test.waiting import wait_for

pytestmark = pytest.mark.lab

NAMESPACE = "kubelet-proof"
CONFIG = "/var/lib/kubelet/config.yaml"
SERVING = "/var/lib/kubelet/pki/kubelet"
CA = "/etc/kubernetes/pki/ca"


def unverified():
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def anonymous_status(ip):
    try:
        return urllib.request.urlopen(f"https://{ip}:10250/pods", context=unverified(), timeout=10).status
    except urllib.error.HTTPError as exc:
        return exc.code


def served_cert(ip):
    return x509.load_pem_x509_certificate(ssl.get_server_certificate((ip, 10250), timeout=10).encode())


def served_serial(ip):
    try:
        return served_cert(ip).serial_number
    except OSError as exc:  # the kubelet is restarting
        return str(exc)


def kubelet_pid(lab, host):
    return lab.podman_exec(host, "pgrep", "-o", "-x", "kubelet").stdout.strip()


def sha(lab, host, path):
    return lab.podman_exec(host, "sha256sum", path).stdout.split(" ")[0]


@pytest.fixture(scope="module")
def kubectl(lab, lab_binaries):
    return Kubectl(lab_binaries, lab.kubeconfig)


@pytest.fixture(scope="module")
def hardened(lab):
    """The lab after site.yml; then kubelet.yml once more, which must change and restart nothing."""
    if any(anonymous_status(lab.hostvars[h]["kubeguard_node_ip"]) != 401 for h in lab.hosts):
        run, _ = ansible_playbook(lab.inventory, "site.yml")
        assert run.returncode == 0, (run.stdout[-3000:], run.stderr[-3000:])
    pids = {h: kubelet_pid(lab, h) for h in lab.hosts}
    run, recap = ansible_playbook(lab.inventory, "kubelet.yml")
    assert run.returncode == 0, (run.stdout[-3000:], run.stderr[-3000:])
    return {"recap": recap, "pids_before": pids, "pids_after": {h: kubelet_pid(lab, h) for h in lab.hosts}}


def test_a_rerun_changes_nothing_and_restarts_no_kubelet(hardened, lab):
    assert set(hardened["recap"]) == set(lab.hosts)
    assert {h: s["changed"] for h, s in hardened["recap"].items()} == dict.fromkeys(lab.hosts, 0)
    assert hardened["pids_after"] == hardened["pids_before"]


def test_anonymous_requests_get_401(hardened, lab):
    for host in lab.hosts:
        assert anonymous_status(lab.hostvars[host]["kubeguard_node_ip"]) == 401, host


def test_the_read_only_port_refuses_connections(hardened, lab):
    for host in lab.hosts:
        with (
            pytest.raises(ConnectionRefusedError),
            socket.create_connection((lab.hostvars[host]["kubeguard_node_ip"], 10255), timeout=5),
        ):
            pass


def test_the_serving_cert_chains_to_the_cluster_ca_and_names_the_node_ip(hardened, lab, tmp_path):
    """openssl s_client against the node IP, verifying with the cluster CA and the IP SAN."""
    ca = tmp_path / "ca.crt"
    ca.write_text(lab.podman_exec(lab.groups["control_plane"][0], "cat", f"{CA}.crt").stdout)
    for host in lab.hosts:
        ip = lab.hostvars[host]["kubeguard_node_ip"]
        run = s_client(ip, ca, ip)
        assert run.returncode == 0, (host, run.stderr)
        assert "Verification: OK" in run.stderr, (host, run.stderr)
        # And a handshake that expects another IP fails: the check is real.
        assert s_client(ip, ca, "192.0.2.1").returncode != 0, host


def s_client(ip, ca, verify_ip):
    argv = ["openssl", "s_client", "-connect", f"{ip}:10250", "-CAfile", str(ca), "-verify_return_error"]
    return subprocess.run(
        [*argv, "-verify_ip", verify_ip, "-brief"], input="", capture_output=True, text=True, timeout=30, check=False
    )


@pytest.fixture(scope="module")
def client_certs(hardened, lab, kubectl):
    """Two client certificates from the cluster CA, made on the control-plane node:
    one with no RBAC rights, one granted nodes/proxy."""
    cp = lab.groups["control_plane"][0]
    for user in ("kubeguard-test-nobody", "kubeguard-test-proxy"):
        make = (
            f"cd /tmp && openssl req -new -newkey rsa:2048 -nodes -keyout {user}.key -subj /CN={user} -out {user}.csr "
            f"2>/dev/null && openssl x509 -req -in {user}.csr -CA {CA}.crt -CAkey {CA}.key "
            f"-set_serial 0x$(openssl rand -hex 8) -days 1 -out {user}.crt 2>/dev/null"
        )
        assert lab.podman_exec(cp, "sh", "-c", make).returncode == 0
    rbac = {"apiGroup": "rbac.authorization.k8s.io"}
    kubectl.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "kubeguard-test:nodes-proxy"},
            "rules": [{"apiGroups": [""], "resources": ["nodes/proxy"], "verbs": ["get"]}],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "kubeguard-test:nodes-proxy"},
            "roleRef": {**rbac, "kind": "ClusterRole", "name": "kubeguard-test:nodes-proxy"},
            "subjects": [{**rbac, "kind": "User", "name": "kubeguard-test-proxy"}],
        },
    )
    yield cp
    kubectl("delete", "clusterrolebinding,clusterrole", "kubeguard-test:nodes-proxy", check=False)


def status_as(lab, cp, user, ip):
    """GET /pods on a kubelet from the control-plane node, verifying the kubelet with the cluster CA."""
    curl = (
        f"curl -s -o /dev/null -w '%{{http_code}}' --cacert {CA}.crt --cert /tmp/{user}.crt "
        f"--key /tmp/{user}.key https://{ip}:10250/pods"
    )
    return lab.podman_exec(cp, "sh", "-c", curl).stdout


def test_a_cluster_ca_client_without_rights_gets_403_and_nodes_proxy_gets_200(client_certs, lab):
    for host in lab.hosts:
        ip = lab.hostvars[host]["kubeguard_node_ip"]
        assert status_as(lab, client_certs, "kubeguard-test-nobody", ip) == "403", host
        assert status_as(lab, client_certs, "kubeguard-test-proxy", ip) == "200", host


@pytest.fixture(scope="module")
def pods(hardened, lab, kubectl):
    """One agnhost pod on every node (started under seccompDefault: RuntimeDefault)."""
    kubectl.fresh_namespace(NAMESPACE)
    image = lab.vars["kubeguard_lab_images"]["agnhost"]
    names = {}
    for host in lab.hosts:
        names[host] = f"proof-{host}"
        kubectl.apply(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": names[host], "namespace": NAMESPACE},
                "spec": {
                    "nodeName": host,
                    "terminationGracePeriodSeconds": 1,
                    "automountServiceAccountToken": False,
                    "containers": [
                        {
                            "name": "agnhost",
                            "image": image,
                            "imagePullPolicy": "Never",
                            "args": ["netexec", "--http-port=8080"],
                        }
                    ],
                },
            }
        )
    kubectl("-n", NAMESPACE, "wait", "--for=condition=Ready", "pod", "--all", "--timeout=120s")
    yield names
    kubectl("delete", "namespace", NAMESPACE, "--wait=false", check=False)


def test_pods_run_with_the_runtime_default_seccomp_profile(pods, kubectl):
    for name in pods.values():
        pod = json.loads(kubectl("-n", NAMESPACE, "get", "pod", name, "-o", "json").stdout)
        assert pod["status"]["phase"] == "Running"
    status = {
        name: kubectl("-n", NAMESPACE, "exec", name, "--", "/agnhost", "etc-hosts", check=False).returncode
        for name in pods.values()
    }
    assert status == dict.fromkeys(pods.values(), 0)


def test_kubectl_logs_and_exec_work_on_every_node(pods, kubectl):
    for host, name in pods.items():
        logs = kubectl("-n", NAMESPACE, "logs", name, check=False)
        assert logs.returncode == 0, (host, logs.stderr)
        assert "8080" in logs.stdout, host
        run = kubectl("-n", NAMESPACE, "exec", name, "--", "/agnhost", "etc-hosts", check=False)
        assert run.returncode == 0, (host, run.stderr)
        assert name in run.stdout, host


def test_a_serving_cert_from_another_ca_makes_kubectl_logs_fail(pods, lab, kubectl):
    """The apiserver really verifies the kubelet. The pair is swapped and the
    kubelet restarted, as cluster_pki does after it installs a new pair: the
    kubelet's own file reload (ReloadKubeletServerCertificateFile) can stop on
    the moment between the two files ("private key does not match public key")."""
    host = lab.groups["workers"][-1]
    ip = lab.hostvars[host]["kubeguard_node_ip"]
    original = served_cert(ip).serial_number
    swap = (
        "set -e; cd /tmp; "
        "openssl req -x509 -newkey rsa:2048 -nodes -keyout other-ca.key -subj /CN=kubeguard-test-other-ca "
        "-days 1 -out other-ca.crt 2>/dev/null; "
        f"openssl req -new -newkey rsa:2048 -nodes -keyout other.key -subj /CN=system:node:{host} -out other.csr "
        "2>/dev/null; "
        f"printf 'subjectAltName=IP:{ip},DNS:{host}\\nextendedKeyUsage=serverAuth\\n' > other.ext; "
        "openssl x509 -req -in other.csr -CA other-ca.crt -CAkey other-ca.key -set_serial 0x$(openssl rand -hex 8) "
        "-days 1 -extfile other.ext -out other.crt 2>/dev/null; "
        f"cp -p {SERVING}.crt kubelet.crt.orig; cp -p {SERVING}.key kubelet.key.orig; "
        f"cp other.key {SERVING}.key.new; cp other.crt {SERVING}.crt.new; "
        f"mv {SERVING}.key.new {SERVING}.key; mv {SERVING}.crt.new {SERVING}.crt; systemctl restart kubelet"
    )
    restore = (
        f"cp -p /tmp/kubelet.key.orig {SERVING}.key.new; cp -p /tmp/kubelet.crt.orig {SERVING}.crt.new; "
        f"mv {SERVING}.key.new {SERVING}.key; mv {SERVING}.crt.new {SERVING}.crt; systemctl restart kubelet"
    )

    def issuer():
        try:
            return served_cert(ip).issuer.rfc4514_string()
        except OSError as exc:  # the kubelet is restarting
            return str(exc)

    try:
        assert lab.podman_exec(host, "sh", "-c", swap).returncode == 0
        wait_for(lambda: issuer() == "CN=kubeguard-test-other-ca" or issuer(), 90, "the other CA's cert served")
        logs = kubectl("-n", NAMESPACE, "logs", pods[host], check=False)
        assert logs.returncode != 0
        assert "x509" in logs.stderr or "certificate" in logs.stderr, logs.stderr
        run = kubectl("-n", NAMESPACE, "exec", pods[host], "--", "/agnhost", "etc-hosts", check=False)
        assert run.returncode != 0
        # Another node, still on the cluster CA, is unaffected.
        other = pods[lab.groups["control_plane"][0]]
        assert kubectl("-n", NAMESPACE, "logs", other, check=False).returncode == 0
    finally:
        lab.podman_exec(host, "sh", "-c", restore)
    wait_for(lambda: issuer() == "CN=kubernetes" or issuer(), 90, "the cluster CA's cert served again")
    assert served_cert(ip).serial_number == original
    wait_for(lambda: kubectl("-n", NAMESPACE, "logs", pods[host], check=False).returncode == 0, 60, "logs again")


def test_a_renewal_through_cluster_pki_is_picked_up_with_no_csr(pods, lab, kubectl):
    """The tree's serving cert of one worker is made to expire tomorrow; cluster_pki
    renews it from the controller, installs it, and the kubelet serves it."""
    host = lab.groups["workers"][0]
    ip = lab.hostvars[host]["kubeguard_node_ip"]
    tree = pathlib.Path(lab.vars["kubeguard_pki_output_dir"])
    crt_path = tree / f"nodes/{host}/kubelet/kubelet.crt"
    ca_key = serialization.load_pem_private_key((tree / "pki/ca.key").read_bytes(), None)
    ca = x509.load_pem_x509_certificate((tree / "pki/ca.crt").read_bytes())
    old = x509.load_pem_x509_certificate(crt_path.read_bytes())
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(old.subject)
        .issuer_name(ca.subject)
        .public_key(old.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
    )
    for extension in old.extensions:
        if extension.oid != x509.oid.ExtensionOID.AUTHORITY_KEY_IDENTIFIER:
            builder = builder.add_extension(extension.value, extension.critical)
    short = builder.sign(ca_key, hashes.SHA256())
    crt_path.write_bytes(short.public_bytes(serialization.Encoding.PEM))

    run, recap = ansible_playbook(lab.inventory, "cluster_pki.yml", "--limit", host)
    assert run.returncode == 0, (run.stdout[-3000:], run.stderr[-3000:])
    assert recap[host]["changed"] > 0
    assert "renewed" in run.stdout
    renewed = x509.load_pem_x509_certificate(crt_path.read_bytes())
    assert renewed.serial_number != short.serial_number
    assert renewed.not_valid_after_utc - now > datetime.timedelta(days=300)
    on_node = lab.podman_exec(host, "cat", f"{SERVING}.crt").stdout.encode()
    assert x509.load_pem_x509_certificate(on_node).serial_number == renewed.serial_number
    wait_for(lambda: served_serial(ip) == renewed.serial_number, 90, "the renewed cert served")
    # No serving CSR ever (serverTLSBootstrap: false); client rotation's CSRs (CIS 4.2.10) go to another signer.
    signers = kubectl("get", "csr", "-o", "jsonpath={.items[*].spec.signerName}").stdout.split()
    assert "kubernetes.io/kubelet-serving" not in signers, signers
    # The renewal restarted the kubelet: until it has synced its pods again it answers
    # pods/log with 404 (seen once on a loaded machine); the proof is that it answers.
    wait_for(
        lambda: kubectl("-n", NAMESPACE, "logs", pods[host], check=False).returncode == 0,
        60,
        "kubectl logs through the kubelet serving the renewed cert",
        interval=2,
    )


def test_check_mode_reports_a_change_and_writes_nothing(hardened, lab):
    before = {h: (sha(lab, h, CONFIG), kubelet_pid(lab, h)) for h in lab.hosts}
    run, recap = ansible_playbook(
        lab.inventory,
        "kubelet.yml",
        "--check",
        "--diff",
        "--tags",
        "kubelet_config",
        "-e",
        "kubelet_event_record_qps=7",
    )
    assert run.returncode == 0, (run.stdout[-3000:], run.stderr[-3000:])
    assert {h: s["changed"] for h, s in recap.items()} == dict.fromkeys(lab.hosts, 1)
    assert "+eventRecordQPS: 7" in run.stdout
    assert "-eventRecordQPS: 50" in run.stdout
    assert {h: (sha(lab, h, CONFIG), kubelet_pid(lab, h)) for h in lab.hosts} == before


@pytest.mark.parametrize(
    ("extra", "variable"),
    [
        (
            {"kubelet_tls_cipher_suites": ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_BOGUS"]},
            "kubelet_tls_cipher_suites",
        ),
        ({"kubelet_read_only_port": 70000}, "kubelet_read_only_port"),
        (
            {"kubelet_tls_cert_file": "/tmp/no-ip-san.crt", "kubelet_tls_private_key_file": "/tmp/no-ip-san.key"},
            "kubelet_tls_cert_file",
        ),
    ],
    ids=["unknown-cipher", "read-only-port-out-of-range", "serving-cert-without-node-ip"],
)
def test_bad_input_is_refused_naming_the_variable_and_nothing_is_written(hardened, lab, extra, variable):
    host = lab.groups["workers"][0]
    if variable == "kubelet_tls_cert_file":
        # A cert from the cluster CA that names the node but not its IP, made on the node.
        cp = lab.groups["control_plane"][0]
        make = (
            "cd /tmp && openssl req -new -newkey rsa:2048 -nodes -keyout no-ip-san.key "
            f"-subj /CN=system:node:{host} -out no-ip-san.csr 2>/dev/null && "
            f"printf 'subjectAltName=DNS:{host}\\nextendedKeyUsage=serverAuth\\n' > no-ip-san.ext && "
            f"openssl x509 -req -in no-ip-san.csr -CA {CA}.crt -CAkey {CA}.key -set_serial 0x$(openssl rand -hex 8) "
            "-days 1 -extfile no-ip-san.ext -out no-ip-san.crt 2>/dev/null"
        )
        assert lab.podman_exec(cp, "sh", "-c", make).returncode == 0
        for name in ("no-ip-san.crt", "no-ip-san.key"):
            data = lab.podman_exec(cp, "cat", f"/tmp/{name}").stdout
            copy = subprocess.run(
                [
                    "podman",
                    "exec",
                    "-i",
                    lab.hostvars[host]["kubeguard_lab_container"],
                    "sh",
                    "-c",
                    f"cat > /tmp/{name}",
                ],
                input=data,
                text=True,
                check=False,
            )
            assert copy.returncode == 0
    before = (sha(lab, host, CONFIG), kubelet_pid(lab, host))
    run, _ = ansible_playbook(
        lab.inventory, "kubelet.yml", "--limit", host, "--tags", "kubelet_config", "-e", json.dumps(extra)
    )
    assert run.returncode != 0
    assert f"{variable}:" in run.stdout, run.stdout[-3000:]
    assert (sha(lab, host, CONFIG), kubelet_pid(lab, host)) == before


def test_the_cis_settings_are_in_the_file_and_no_flag_overrides_them(hardened, lab):
    for host in lab.hosts:
        text = lab.podman_exec(host, "cat", CONFIG).stdout
        for line in ("readOnlyPort: 0", "mode: Webhook", "serverTLSBootstrap: false", "rotateCertificates: true"):
            assert line in text, (host, line)
        argv = lab.podman_exec(host, "sh", "-c", "tr '\\0' ' ' < /proc/$(pgrep -o -x kubelet)/cmdline").stdout
        assert "--read-only-port" not in argv and "--anonymous-auth" not in argv, argv
        modes = lab.podman_exec(host, "stat", "-c", "%a %U:%G", CONFIG, "/etc/kubernetes/kubelet.conf").stdout
        assert modes.split("\n")[:2] == ["600 root:root", "600 root:root"], (host, modes)


def test_kube_proxy_metrics_listen_on_loopback_only(hardened, lab):
    for host in lab.hosts:
        lines = lab.podman_exec(host, "ss", "-Hltn", "sport = :10249").stdout.splitlines()
        local = [line.split()[3] for line in lines]  # State Recv-Q Send-Q Local Peer
        assert local == ["127.0.0.1:10249"], (host, lines)


GUARD = "/etc/systemd/system/kube-proxy.service.d/80-kubeguard-nftables-guard.conf"
CONNECT = "import socket, sys; socket.create_connection((sys.argv[1], 8080), timeout=2).close()"
LAST_SYNC = (
    "import re, urllib.request; text = urllib.request.urlopen('http://127.0.0.1:10249/metrics', timeout=2)"
    ".read().decode(); print(re.search(r'^kubeproxy_sync_proxy_rules_last_timestamp_seconds"
    '(?:{ip_family="IPv4"})? (\\S+)\', text, re.M)[1])'
)


def endpoint_chain(lab, host, ip):
    """The rules of this node's kube-proxy chain for endpoint ip:8080 of Service guard, or None."""
    table = lab.podman_exec(host, "nft", "list", "table", "ip", "kube-proxy").stdout
    found = re.search(
        rf"chain endpoint-\S+-{NAMESPACE}/guard/tcp/\S*__{re.escape(ip)}/8080 {{\n(.*?)^\s*}}", table, re.M | re.S
    )
    return None if found is None else found[1].strip()


def restart_kube_proxy_after_its_endpoint_chain_was_emptied(lab, kubectl, host, pod, ip):
    """The endpoint goes away (kube-proxy empties its chain), kube-proxy is frozen while it comes
    back at the same address, then restarted: the rules of the chain after the new process's
    first sync, and whether the node reaches the Service."""
    kubectl("-n", NAMESPACE, "label", "pod", pod, "kubeguard-proof-")
    wait_for(lambda: endpoint_chain(lab, host, ip) == "", 30, f"{host}: the emptied endpoint chain")
    lab.podman_exec(host, "pkill", "-STOP", "-x", "kube-proxy")
    kubectl("-n", NAMESPACE, "label", "pod", pod, "kubeguard-proof=guard")
    wait_for(lambda: bool(kubectl.get("-n", NAMESPACE, "endpointslices")["items"][0]["endpoints"]), 30, "endpoints")
    restarted = time.time()
    assert lab.podman_exec(host, "systemctl", "restart", "kube-proxy").returncode == 0

    def synced():
        run = lab.podman_exec(host, "python3", "-c", LAST_SYNC)
        return run.returncode == 0 and float(run.stdout) > restarted

    wait_for(synced, 60, f"{host}: kube-proxy's first sync")
    reached = lab.podman_exec(
        host, "python3", "-c", CONNECT, kubectl.get("-n", NAMESPACE, "service", "guard")["spec"]["clusterIP"]
    )
    return endpoint_chain(lab, host, ip), reached.returncode == 0


def test_a_kube_proxy_restart_rewrites_the_endpoint_chain_its_last_process_emptied(pods, lab, kubectl):
    """kube-proxy's nftables mode keeps, at start, the endpoint chains it finds: one emptied just
    before (the endpoint left and came back at its address) stays empty, the Service is dropped.
    With the guard the role installs, the new process rewrites it. Without it (moved aside), the
    same sequence leaves the chain empty: the control that shows this test can fail."""
    host, target = lab.groups["workers"][0], lab.groups["workers"][-1]
    pod = pods[target]
    ip = kubectl.get("-n", NAMESPACE, "pod", pod)["status"]["podIP"]
    kubectl("-n", NAMESPACE, "label", "pod", pod, "kubeguard-proof=guard", "--overwrite")
    kubectl.apply(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "guard", "namespace": NAMESPACE},
            "spec": {"selector": {"kubeguard-proof": "guard"}, "ports": [{"port": 8080}]},
        }
    )
    assert lab.podman_exec(host, "test", "-f", GUARD).returncode == 0
    wait_for(lambda: bool(endpoint_chain(lab, host, ip)), 30, f"{host}: the endpoint chain")
    try:
        rules, reached = restart_kube_proxy_after_its_endpoint_chain_was_emptied(lab, kubectl, host, pod, ip)
        assert "dnat to" in rules and reached, rules
        lab.podman_exec(host, "sh", "-c", f"mv {GUARD} /root/ && systemctl daemon-reload")
        rules, reached = restart_kube_proxy_after_its_endpoint_chain_was_emptied(lab, kubectl, host, pod, ip)
        assert rules == "" and not reached, rules
    finally:
        lab.podman_exec(host, "sh", "-c", f"test -f {GUARD} || mv /root/{GUARD.rsplit('/', 1)[1]} {GUARD}")
        lab.podman_exec(host, "sh", "-c", "systemctl daemon-reload && systemctl restart kube-proxy")
    wait_for(lambda: "dnat to" in (endpoint_chain(lab, host, ip) or ""), 60, f"{host}: the chain rewritten")
