"""SSH host certificates (issue 23), proved with real logins: an OpenSSH client that knows ONLY the
``@cert-authority`` line the role wrote (GlobalKnownHostsFile), a fresh empty UserKnownHostsFile and
StrictHostKeyChecking=yes logs in to every node, by its node IP (port 22) and through the published port
(HostKeyAlias = inventory name, a principal). Regenerated host keys, a certificate from another CA and one
close to its end are each refused or replaced and the rerun makes the login work again; reruns change nothing.
The CA and known_hosts live in a temporary store, not ~/.kubeguard."""

from __future__ import annotations

import datetime
import json
import os
import stat
import subprocess
import time

import pytest
from ansible_collections.kubeguard.hardening.plugins.module_utils._sshd import hostcert
from conftest import CONTAINERS_CONF, ansible_playbook

pytestmark = pytest.mark.lab

CERT = "/etc/ssh/ssh_host_{}_key-cert.pub"
TRANSIENT = ("Connection refused", "Connection reset", "Connection closed by remote host")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return tmp_path_factory.mktemp("ssh-host-ca")


def role_vars(store, **more):
    values = {
        "ssh_hardening_host_certificate_enabled": True,
        "ssh_hardening_host_certificate_ca_dir": str(store / "ssh"),
        "ssh_hardening_host_certificate_known_hosts_path": str(store / "ssh_known_hosts"),
    }
    values.update(more)
    return values


def play(lab, store, *extra, **more):
    run, recap = ansible_playbook(
        lab.inventory, "ssh_hardening.yml", "-e", json.dumps(role_vars(store, **more)), *extra
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    return run, recap


def podman(lab, host, *argv, stdin=None):
    env = dict(os.environ, CONTAINERS_CONF=CONTAINERS_CONF)
    run = subprocess.run(
        ["podman", "exec", "-i", lab.hostvars[host]["kubeguard_lab_container"], *argv],
        input=stdin, capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    return run.stdout


def login(lab, host, known_hosts, tmp_path, via):
    """A real key login that trusts nothing but ``known_hosts``; returns the process (stderr has -v)."""
    user_known = tmp_path / f"user_known_hosts-{host}-{via}"
    user_known.write_text("")
    opts = [
        "-v", "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={user_known}",
        "-o", f"GlobalKnownHostsFile={known_hosts}", "-o", "UpdateHostKeys=no", "-o", "CheckHostIP=no",
        "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-i", str(lab.key), "-o", "ConnectTimeout=10",
    ]  # fmt: skip
    if via == "ip":
        target = ["-p", "22", f"operator@{lab.hostvars[host]['kubeguard_node_ip']}"]
    else:
        target = ["-p", str(lab.hostvars[host]["ansible_port"]), "-o", f"HostKeyAlias={host}", "operator@127.0.0.1"]
    for _attempt in range(20):
        run = subprocess.run(["ssh", *opts, *target, "true"], capture_output=True, text=True, timeout=60, check=False)
        # A reload re-executes sshd: for a moment nothing listens. Only that is retried.
        if not any(sign in run.stderr for sign in TRANSIENT):
            break
        time.sleep(0.5)
    assert user_known.read_text() == "", "the client learned a key: it was not verified by the CA line alone"
    return run


def assert_verified_by_ca(run):
    assert run.returncode == 0, run.stderr[-3000:]
    assert "matches the ED25519-CERT host certificate" in run.stderr, run.stderr[-3000:]


def assert_refused(run):
    assert run.returncode != 0
    assert "Host key verification failed" in run.stderr, run.stderr[-3000:]


def node_cert(lab, host, key_type="ed25519"):
    return hostcert.parse_listing(podman(lab, host, "env", "TZ=UTC", "ssh-keygen", "-L", "-f", CERT.format(key_type)))


def install(lab, host, path, text):
    """Put a certificate on the node behind the role's back and let new connections see it (a restart returns
    once sshd listens again; a reload does not wait)."""
    podman(lab, host, "sh", "-c", f"cat > {path}", stdin=text)
    podman(lab, host, "sh", "-c", "systemctl try-restart ssh.service")


def sign_elsewhere(tmp_path, ca, host_pub, principals, validity):
    pub = tmp_path / "host.pub"
    pub.write_text(host_pub)
    subprocess.run(["ssh-keygen", "-q", "-s", str(ca), "-h", "-I", "test", "-n", ",".join(principals), "-V", validity,
                    str(pub)], check=True, capture_output=True)  # fmt: skip
    return (tmp_path / "host-cert.pub").read_text()


@pytest.mark.parametrize(
    "bad,variable",
    [
        ({"ssh_hardening_host_certificate_renew_before_days": 400}, "ssh_hardening_host_certificate_renew_before_days"),
        ({"ssh_hardening_host_certificate_extra_principals": ["*.example.org"]},
         "ssh_hardening_host_certificate_extra_principals[0]"),
        ({"ssh_hardening_host_certificate_ca_rotation": "resign"}, "ssh_hardening_host_certificate_ca_rotation"),
    ],
)  # fmt: skip
def test_bad_settings_fail_naming_the_variable_and_write_nothing(lab, tmp_path, bad, variable):
    before = {host: podman(lab, host, "sha256sum", "/etc/ssh/sshd_config", "/etc/ssh/ssh_host_ed25519_key.pub")
              for host in lab.hosts}  # fmt: skip
    run, _ = ansible_playbook(lab.inventory, "ssh_hardening.yml", "-e", json.dumps(role_vars(tmp_path, **bad)))
    assert run.returncode != 0
    assert f"msg: '{variable}: " in run.stdout or f'msg: "{variable}: ' in run.stdout, run.stdout[-3000:]
    assert not (tmp_path / "ssh").exists() and not (tmp_path / "ssh_known_hosts").exists()
    for host in lab.hosts:
        assert (
            podman(lab, host, "sha256sum", "/etc/ssh/sshd_config", "/etc/ssh/ssh_host_ed25519_key.pub") == before[host]
        )


@pytest.fixture(scope="module")
def converged(lab, store):
    """Check mode on an empty store writes nothing; then the real run."""
    check, _ = play(lab, store, "--check", "--diff")
    ca_task = check.stdout.split("Create the cluster SSH host CA on the controller when absent", 1)[1]
    assert ca_task.split("TASK [", 1)[0].strip().splitlines()[1].startswith("changed:"), ca_task[:500]
    assert not (store / "ssh").exists() and not (store / "ssh_known_hosts").exists()
    run, recap = play(lab, store, "--diff")
    private = (store / "ssh" / "ssh_host_ca").read_text()
    body = "".join(private.splitlines()[1:-1])
    assert body[:40] not in run.stdout + run.stderr, "the CA's private key appeared in the output"
    return run, recap


def test_every_node_is_verified_by_the_ca_line_alone(lab, store, converged, tmp_path):
    key = store / "ssh" / "ssh_host_ca"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(key.parent.stat().st_mode) == 0o700
    lines = (store / "ssh_known_hosts").read_text().splitlines()
    ca_lines = [line for line in lines if line.startswith("@cert-authority ")]
    assert len(ca_lines) == 1 and len(lines) == 2
    assert ca_lines[0].split()[2:4] == (store / "ssh" / "ssh_host_ca.pub").read_text().split()[:2]
    for host in lab.hosts:
        assert lab.hostvars[host]["kubeguard_node_ip"] in ca_lines[0].split()[1].split(",")
        principals = node_cert(lab, host)["principals"]
        assert host in principals and lab.hostvars[host]["kubeguard_node_ip"] in principals
        assert "127.0.0.1" not in principals
        assert_verified_by_ca(login(lab, host, store / "ssh_known_hosts", tmp_path, "ip"))
        assert_verified_by_ca(login(lab, host, store / "ssh_known_hosts", tmp_path, "port"))
    # The control: without the CA line the same client refuses the node.
    empty = tmp_path / "no_ca"
    empty.write_text("")
    assert_refused(login(lab, lab.hosts[0], empty, tmp_path, "ip"))


def test_rerun_changes_nothing_and_reloads_nothing(lab, store, converged):
    run, recap = play(lab, store)
    assert all(counts["changed"] == 0 for counts in recap.values()), run.stdout[-3000:]
    # The tag alone, and a run limited to one node: nothing changes, known_hosts keeps every node.
    known = (store / "ssh_known_hosts").read_text()
    run, recap = play(lab, store, "--tags", "ssh_hardening_host_certificate")
    assert "Sign the host keys that need it" in run.stdout
    assert all(counts["changed"] == 0 for counts in recap.values()), run.stdout[-3000:]
    run, recap = play(lab, store, "--limit", lab.hosts[-1])
    assert list(recap) == [lab.hosts[-1]] and recap[lab.hosts[-1]]["changed"] == 0, run.stdout[-3000:]
    assert (store / "ssh_known_hosts").read_text() == known


def test_regenerated_host_keys_are_re_signed(lab, store, converged, tmp_path):
    host = lab.groups["workers"][0]
    old = node_cert(lab, host)
    podman(lab, host, "sh", "-c", "rm -f /etc/ssh/ssh_host_ed25519_key /etc/ssh/ssh_host_ed25519_key.pub "
           "/etc/ssh/ssh_host_rsa_key /etc/ssh/ssh_host_rsa_key.pub && "
           "ssh-keygen -q -N '' -C '' -t ed25519 -f /etc/ssh/ssh_host_ed25519_key && "
           "ssh-keygen -q -N '' -C '' -t rsa -b 4096 -f /etc/ssh/ssh_host_rsa_key")  # fmt: skip
    podman(lab, host, "sh", "-c", "systemctl try-restart ssh.service")
    # The old certificates certify keys sshd no longer has: the CA-only client refuses the node.
    assert_refused(login(lab, host, store / "ssh_known_hosts", tmp_path, "ip"))
    _run, recap = play(lab, store)
    assert recap[host]["changed"] > 0
    new = node_cert(lab, host)
    assert new["key_fingerprint"] != old["key_fingerprint"]
    assert_verified_by_ca(login(lab, host, store / "ssh_known_hosts", tmp_path, "ip"))
    assert_verified_by_ca(login(lab, host, store / "ssh_known_hosts", tmp_path, "port"))
    _run, recap = play(lab, store)
    assert all(counts["changed"] == 0 for counts in recap.values())


def test_a_host_certificate_from_another_ca_is_refused_then_replaced(lab, store, converged, tmp_path):
    host = lab.groups["control_plane"][0]
    other = tmp_path / "other_ca"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "other", "-f", str(other)], check=True)
    principals = node_cert(lab, host)["principals"]
    for key_type in ("ed25519", "rsa"):
        pub = podman(lab, host, "cat", f"/etc/ssh/ssh_host_{key_type}_key.pub")
        install(lab, host, CERT.format(key_type), sign_elsewhere(tmp_path, other, pub, principals, "-5m:+30d"))
    assert_refused(login(lab, host, store / "ssh_known_hosts", tmp_path, "ip"))
    # The certificate itself is fine: a client trusting the other CA gets in.
    trusts_other = tmp_path / "other_known_hosts"
    trusts_other.write_text(f"@cert-authority * {(tmp_path / 'other_ca.pub').read_text()}")
    assert_verified_by_ca(login(lab, host, trusts_other, tmp_path, "ip"))
    _run, recap = play(lab, store)
    assert recap[host]["changed"] > 0
    assert_verified_by_ca(login(lab, host, store / "ssh_known_hosts", tmp_path, "ip"))
    assert_refused(login(lab, host, trusts_other, tmp_path, "ip"))


def test_a_certificate_close_to_its_end_is_renewed(lab, store, converged, tmp_path):
    host = lab.groups["workers"][-1]
    principals = node_cert(lab, host)["principals"]
    pub = podman(lab, host, "cat", "/etc/ssh/ssh_host_ed25519_key.pub")
    install(lab, host, CERT.format("ed25519"), sign_elsewhere(tmp_path, store / "ssh" / "ssh_host_ca", pub, principals,
                                                              "-5m:+3d"))  # fmt: skip
    short = node_cert(lab, host)
    now = datetime.datetime.now(datetime.timezone.utc)
    assert short["valid_to"] - now < datetime.timedelta(days=4)
    assert_verified_by_ca(login(lab, host, store / "ssh_known_hosts", tmp_path, "ip"))  # still valid, served
    run, recap = play(lab, store, "--diff")
    assert recap[host]["changed"] > 0
    assert "within 30 days" in run.stdout or "until" in run.stdout
    renewed = node_cert(lab, host)
    assert renewed["valid_to"] - now > datetime.timedelta(days=300)
    assert renewed["key_fingerprint"] == short["key_fingerprint"]
    assert_verified_by_ca(login(lab, host, store / "ssh_known_hosts", tmp_path, "ip"))
    _run, recap = play(lab, store)
    assert all(counts["changed"] == 0 for counts in recap.values())


def ca_lines(path):
    return [line for line in path.read_text().splitlines() if line.startswith("@cert-authority ")]


def test_host_ca_rotation_with_dual_trust(lab, store, converged, tmp_path):
    known = store / "ssh_known_hosts"
    old_only = tmp_path / "old_only"
    old_only.write_text(known.read_text())
    old_fp = {host: node_cert(lab, host)["ca_fingerprint"] for host in lab.hosts}

    play(lab, store, ssh_hardening_host_certificate_ca_rotation="add")
    lines = ca_lines(known)
    assert len(lines) == 2 and lines[0] == ca_lines(old_only)[0]
    new_only = tmp_path / "new_only"
    new_only.write_text(lines[1] + "\n")
    new_fp = hostcert.fingerprint(" ".join(lines[1].split()[2:4]))
    for host in lab.hosts:
        assert node_cert(lab, host)["ca_fingerprint"] == old_fp[host]  # nothing re-signed yet
        assert_verified_by_ca(login(lab, host, known, tmp_path, "ip"))
        assert_verified_by_ca(login(lab, host, old_only, tmp_path, "ip"))
        assert_refused(login(lab, host, new_only, tmp_path, "ip"))

    _run, recap = play(lab, store, ssh_hardening_host_certificate_ca_rotation="resign")
    assert all(counts["changed"] > 0 for counts in recap.values())
    for host in lab.hosts:
        assert node_cert(lab, host)["ca_fingerprint"] == new_fp
        assert_verified_by_ca(login(lab, host, known, tmp_path, "ip"))
        assert_verified_by_ca(login(lab, host, new_only, tmp_path, "port"))
        assert_refused(login(lab, host, old_only, tmp_path, "ip"))

    play(lab, store, ssh_hardening_host_certificate_ca_rotation="finish")
    assert ca_lines(known) == [lines[1]]
    assert (store / "ssh" / "ssh_host_ca.retired").exists() and not (store / "ssh" / "ssh_host_ca.next").exists()
    for host in lab.hosts:
        assert_verified_by_ca(login(lab, host, known, tmp_path, "ip"))
    _run, recap = play(lab, store)
    assert all(counts["changed"] == 0 for counts in recap.values())
