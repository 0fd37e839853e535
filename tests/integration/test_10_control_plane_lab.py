"""playbooks/control_plane.yml against the hard-way lab (systemd units, etcd
on plain HTTP until the role moves it to TLS). The proofs are shared with the
kubeadm layout (test_zz): tests/integration/control_plane_proofs.py."""

import os
import subprocess

import pytest
from conftest import CONTAINERS_CONF, ansible_playbook
from control_plane_proofs import ControlPlaneProofs, ControlPlaneSafety, cmdline, kubectl, pids, run_failing_restart

pytestmark = pytest.mark.lab

CREDENTIALS = "/run/credentials/etcd.service"
# Prints "<time> listening|stopped-listening" every 0.2 s while pid $1 runs, then "<time> gone".
DRAIN_MONITOR = r"""
while grep -qa kube-apiserver "/proc/$1/cmdline" 2>/dev/null; do
  if ss -Hltnp 'sport = :6443' | grep -q "pid=$1,"; then state=listening; else state=stopped-listening; fi
  echo "$(date +%s.%N) $state"
  sleep 0.2
done
echo "$(date +%s.%N) gone"
"""
# Polling and a loaded machine on top of the bound; far below an unbounded drain (60-90 s).
DRAIN_SLACK = 13


class TestHardwayControlPlane(ControlPlaneSafety, ControlPlaneProofs):
    @pytest.fixture(scope="class")
    @classmethod
    def cp_lab(cls, lab):
        return lab

    def etcd_user(self, cp_lab, host):
        return cp_lab.podman_exec(host, "ps", "-o", "user=", "-p", pids(cp_lab, host)["etcd"]).stdout.strip()

    def test_etcd_runs_as_its_own_user_while_its_keys_stay_root_only(self, hardened, cp_lab):
        host = cp_lab.groups["etcd"][0]
        assert self.etcd_user(cp_lab, host) == "etcd"
        argv = cmdline(cp_lab, host, "etcd")
        assert f"--key-file={CREDENTIALS}/key-file" in argv
        assert f"--peer-key-file={CREDENTIALS}/peer-key-file" in argv
        # CIS 1.1.19-1.1.21: the sources stay root:root, keys 0600, in a 0700 root directory.
        stat = cp_lab.podman_exec(
            host, "stat", "-c", "%a %U:%G %n", "/etc/kubernetes/pki/etcd", "/etc/kubernetes/pki/etcd/server.key"
        )
        assert stat.stdout.split("\n")[:2] == [
            "700 root:root /etc/kubernetes/pki/etcd",
            "600 root:root /etc/kubernetes/pki/etcd/server.key",
        ]
        # The copies systemd hands over are the etcd user's alone, and other users cannot read them.
        in_etcd = ["nsenter", f"--target={pids(cp_lab, host)['etcd']}", "--mount"]
        copy = cp_lab.podman_exec(host, *in_etcd, "stat", "-c", "%a %U", f"{CREDENTIALS}/key-file").stdout.strip()
        assert copy == "400 etcd", copy
        nobody = cp_lab.podman_exec(
            host,
            *in_etcd,
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "cat",
            f"{CREDENTIALS}/key-file",
        )
        assert nobody.returncode != 0 and "PRIVATE KEY" not in nobody.stdout
        # Everything etcd wrote as root before is the etcd user's now (CIS 1.1.12).
        foreign = cp_lab.podman_exec(host, "find", "/var/lib/etcd", "!", "-user", "etcd")
        assert foreign.returncode == 0 and foreign.stdout == ""

    def test_etcd_moves_back_to_root_and_again_to_its_user_with_nothing_lost(self, hardened, cp_lab, lab_binaries):
        host = cp_lab.groups["etcd"][0]
        back, _ = ansible_playbook(
            cp_lab.inventory,
            "control_plane.yml",
            "--tags",
            "control_plane_etcd",
            "-e",
            "control_plane_etcd_non_root=false",
        )
        assert back.returncode == 0, back.stdout[-3000:]
        assert self.etcd_user(cp_lab, host) == "root"
        kubectl(
            lab_binaries,
            hardened["admin"],
            "-n",
            "cp8-before",
            "delete",
            "configmap",
            "written-as-root",
            "--ignore-not-found",
        )
        kubectl(lab_binaries, hardened["admin"], "-n", "cp8-before", "create", "configmap", "written-as-root")
        again, _ = ansible_playbook(cp_lab.inventory, "control_plane.yml", "--tags", "control_plane_etcd")
        assert again.returncode == 0, again.stdout[-3000:]
        assert self.etcd_user(cp_lab, host) == "etcd"
        kubectl(lab_binaries, hardened["admin"], "-n", "cp8-before", "get", "configmap", "written-as-root", "cm1")
        still, recap = ansible_playbook(cp_lab.inventory, "control_plane.yml", "--tags", "control_plane_etcd")
        assert still.returncode == 0
        assert all(r["changed"] == 0 for r in recap.values()), recap

    def test_etcd_stays_root_with_a_warning_where_systemd_cannot_hand_it_credentials(
        self, hardened, cp_lab, lab_binaries
    ):
        """The credentials probe fails for real: / made a private mount again (podman's
        default, what lab-up undoes), so systemd's credential copies never reach a service.
        etcd stays root with a warning naming the variable, nothing fails, the API answers;
        with / shared again, the next run moves etcd to its user."""
        host = cp_lab.groups["etcd"][0]
        back, _ = ansible_playbook(
            cp_lab.inventory,
            "control_plane.yml",
            "--tags",
            "control_plane_etcd",
            "-e",
            "control_plane_etcd_non_root=false",
        )
        assert back.returncode == 0, back.stdout[-3000:]
        assert self.etcd_user(cp_lab, host) == "root"
        try:
            assert cp_lab.podman_exec(host, "mount", "--make-rprivate", "/").returncode == 0
            # The condition is real: a non-root service no longer reads a credential it was given.
            probe = cp_lab.podman_exec(
                host,
                "systemd-run",
                "--wait",
                "--quiet",
                "--collect",
                "--property=DynamicUser=yes",
                "--property=SetCredential=probe:ok",
                "--",
                "/bin/sh",
                "-c",
                'test -r "$CREDENTIALS_DIRECTORY/probe"',
            )
            assert probe.returncode != 0, "a private / did not break systemd credentials on this node"
            run, _ = ansible_playbook(cp_lab.inventory, "control_plane.yml", "--tags", "control_plane_etcd")
            assert run.returncode == 0, run.stdout[-3000:]
            said = " ".join((run.stdout + run.stderr).split())
            assert "etcd keeps running as root (control_plane_etcd_non_root)" in said, said[-3000:]
            assert "systemd could not hand a credential" in said
            assert self.etcd_user(cp_lab, host) == "root"
            assert not any(a.startswith(CREDENTIALS) for a in cmdline(cp_lab, host, "etcd")[1:])
            kubectl(lab_binaries, hardened["admin"], "-n", "cp8-before", "get", "configmap", "cm1")
        finally:
            shared = cp_lab.podman_exec(host, "mount", "--make-rshared", "/")
        assert shared.returncode == 0, shared.stderr
        again, _ = ansible_playbook(cp_lab.inventory, "control_plane.yml", "--tags", "control_plane_etcd")
        assert again.returncode == 0, again.stdout[-3000:]
        assert self.etcd_user(cp_lab, host) == "etcd"
        kubectl(lab_binaries, hardened["admin"], "-n", "cp8-before", "get", "configmap", "cm1")

    def test_an_apiserver_without_the_watch_drain_flag_is_stopped_within_its_bound(
        self, hardened, cp_lab, lab_binaries
    ):
        """An apiserver started without --shutdown-watch-termination-grace-period holds
        its watches until systemd kills it (90 s); the restart gives it the flag's drain."""
        host = hardened["host"]
        without = '{"control_plane_apiserver_extra_flags": {"shutdown-watch-termination-grace-period": null}}'
        run, _ = ansible_playbook(
            cp_lab.inventory, "control_plane.yml", "--tags", "control_plane_apiserver", "-e", without
        )
        assert run.returncode == 0, run.stdout[-3000:]
        assert not any(a.startswith("--shutdown-watch") for a in cmdline(cp_lab, host, "kube-apiserver"))
        old = pids(cp_lab, host)["kube-apiserver"]
        # A watch of our own, so the old process has one to hold whatever else watches.
        kubectl_argv = [str(lab_binaries / "kubectl"), "--kubeconfig", str(hardened["admin"]), "-n", "cp8-before"]
        watch = subprocess.Popen(
            [*kubectl_argv, "get", "configmaps", "--watch", "--request-timeout=0"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        # Seen from inside the node: when the old pid stops listening on 6443 (its SIGTERM) and when it is gone.
        seen = hardened["workdir"] / "drain-monitor.log"
        container = cp_lab.hostvars[host]["kubeguard_lab_container"]
        with seen.open("w") as out:
            monitor = subprocess.Popen(
                ["podman", "exec", container, "sh", "-c", DRAIN_MONITOR, "-", old],
                stdout=out,
                env=dict(os.environ, CONTAINERS_CONF=CONTAINERS_CONF),
            )
        try:
            back, _ = ansible_playbook(cp_lab.inventory, "control_plane.yml", "-v", "--tags", "control_plane_apiserver")
        finally:
            watch.kill()
            watch.wait()
        assert back.returncode == 0, back.stdout[-3000:]
        assert "old_process_killed_after_drain_seconds" in back.stdout
        assert "--shutdown-watch-termination-grace-period=5s" in cmdline(cp_lab, host, "kube-apiserver")
        try:
            monitor.wait(timeout=10)
        except subprocess.TimeoutExpired:
            monitor.kill()
            pytest.fail(f"the old apiserver (pid {old}) was still there after the run")
        events = [(float(t), what) for t, what in (line.split() for line in seen.read_text().splitlines())]
        assert events[-1][1] == "gone", events[-5:]
        # It drains from the moment it stops listening for good (its SIGTERM).
        last_listening = max(i for i, (_, what) in enumerate(events) if what == "listening")
        assert events[last_listening + 1][1] == "stopped-listening", events[-5:]
        drained = events[-1][0] - events[last_listening + 1][0]
        # The bound: the new flag's 5 s plus 2 s for in-flight requests, polled; unbounded,
        # the old process holds its watches until --request-timeout (60 s) or systemd's 90 s.
        print(f"\nold kube-apiserver {old}: gone {drained:.1f} s after it stopped listening")
        assert drained <= 5 + 2 + DRAIN_SLACK, events[-5:]

    def test_a_notify_unit_whose_new_etcd_dies_is_rolled_back(self, hardened, cp_lab, lab_binaries):
        """Type=notify (as kubernetes-the-hard-way's etcd unit has it): a blocking restart
        of a dying process fails systemctl itself, before any rollback. The restart is
        queued instead and the health wait rolls back."""
        host = cp_lab.groups["etcd"][0]
        notify = "/etc/systemd/system/etcd.service.d/10-notify.conf"
        cp_lab.podman_exec(host, "sh", "-c", f"printf '[Service]\\nType=notify\\n' > {notify}")
        try:
            # Passes every pre-restart check; the etcd user may not bind port 1, so etcd exits.
            run = run_failing_restart(cp_lab, "etcd", {"listen-metrics-urls": "http://127.0.0.1:1"})
            assert "restored" in run.stdout and "is healthy" in run.stdout, run.stdout[-3000:]
            assert "--listen-metrics-urls=http://127.0.0.1:1" not in cmdline(cp_lab, host, "etcd")
            kubectl(lab_binaries, hardened["admin"], "-n", "cp8-before", "get", "configmap", "cm1")
        finally:
            cp_lab.podman_exec(host, "sh", "-c", f"rm -f {notify} && systemctl daemon-reload")
        again, recap = ansible_playbook(cp_lab.inventory, "control_plane.yml", "--tags", "control_plane_etcd")
        assert again.returncode == 0
        assert all(r["changed"] == 0 for r in recap.values()), recap
