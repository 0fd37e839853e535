"""The node-side helpers that need no daemon: /proc scanning and mode rules."""

import json
import os
import pwd
import time

import pytest
from ansible_collections.kubeguard.hardening.plugins.module_utils._control_plane import apply, cis, gather, health, plan
from ansible_collections.kubeguard.hardening.plugins.module_utils._control_plane import flags as flaglib
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError
from ansible_collections.kubeguard.hardening.plugins.module_utils._node import files, restart, system


def write_proc(root, pid, argv):
    (root / str(pid)).mkdir()
    (root / str(pid) / "cmdline").write_bytes(b"\0".join(a.encode() for a in argv) + b"\0")


def test_processes_finds_components_by_binary_name_oldest_first(tmp_path):
    write_proc(tmp_path, 300, ["/usr/local/bin/kube-apiserver", "--profiling=false"])
    write_proc(tmp_path, 200, ["kube-apiserver", "--profiling=true"])
    write_proc(tmp_path, 100, ["/usr/local/bin/etcdctl", "get"])
    write_proc(tmp_path, 50, ["/usr/local/bin/etcd", "--name=cp1"])
    (tmp_path / "60").mkdir()  # a kernel thread: empty cmdline
    (tmp_path / "60" / "cmdline").write_bytes(b"")
    found = gather.processes(str(tmp_path))
    assert found == {
        "kube-apiserver": {"pid": 200, "argv": ["kube-apiserver", "--profiling=true"]},
        "etcd": {"pid": 50, "argv": ["/usr/local/bin/etcd", "--name=cp1"]},
    }


def test_a_static_pod_s_binary_is_the_running_process_s():
    """A static pod's binary lives in its image: /proc/<pid>/exe opens it from the node (here: this
    test's own interpreter, a real process). readlink() would name a path the node may not have."""
    me = {"pid": os.getpid(), "argv": ["kube-scheduler"]}
    exe = f"/proc/{os.getpid()}/exe"
    assert gather.binary_path("kube-scheduler", ["kube-scheduler"], me, static_pod=True) == exe
    # A unit's binary is the one its command line names; without one on the node, the process's.
    assert gather.binary_path("kube-kg-absent", ["kube-kg-absent"], me) == exe
    assert gather.binary_path("kube-kg-absent", ["kube-kg-absent"], None) == ""
    assert gather.binary_facts("kube-scheduler", exe)["version"].startswith("Python 3")


@pytest.mark.parametrize(
    ("have", "want", "ok"),
    [("0600", "0600", True), ("0400", "0600", True), ("0644", "0600", False), ("0640", "0644", True),
     ("0755", "0700", False), ("0700", "0700", True)],
)  # fmt: skip
def test_a_stricter_mode_is_compliant(have, want, ok):
    assert files.mode_ok(have, want) is ok


def test_local_url_prefers_loopback():
    assert health._local_url("https://10.0.0.1:2379,https://127.0.0.1:2379/") == "https://127.0.0.1:2379"
    assert health._local_url("https://10.0.0.1:2379") == "https://10.0.0.1:2379"


def test_request_refuses_non_http_urls():
    with pytest.raises(ValueError, match="not an http"):
        health._request("file:///etc/passwd", None)


def test_probe_anonymous_contributes_a_structured_authn_file_once(tmp_path):
    source = tmp_path / "kube-apiserver.yaml"
    probe = {"httpGet": {"path": "/livez", "scheme": "HTTPS"}}
    source.write_text(json.dumps({"spec": {"containers": [{"name": "kube-apiserver", "livenessProbe": probe}]}}))
    conf = {"layout": "static-pod", "source": str(source), "flags": {"anonymous-auth": "true"}}
    params = {"component": "kube-apiserver", "config_dir": "/etc/kubernetes/kubeguard"}
    params["facts"] = {"components": {"kube-apiserver": conf}}
    new = plan.probe_anonymous(params)
    path = "/etc/kubernetes/kubeguard/authentication.yaml"
    assert new["contributed_flags"] == {"authentication-config": path, "anonymous-auth": None}
    assert json.loads(new["contributed_files"][path])["anonymous"]["conditions"] == [{"path": "/livez"}]
    # Once a structured config exists (ours or api_access's), it owns anonymous: nothing added.
    conf["flags"] = {"authentication-config": path}
    assert plan.probe_anonymous(params) is params
    conf["flags"], conf["layout"] = {}, "systemd"
    assert plan.probe_anonymous(params) is params


def test_an_apiserver_whose_etcd_does_not_answer_is_cut_off():
    # Port 9 (discard) on loopback: nothing listens, the dial is refused at once.
    assert not health.etcd_reachable(["kube-apiserver", "--etcd-servers=http://127.0.0.1:9"])
    assert not health.etcd_reachable(["kube-apiserver"])
    # https:// without readable client files: unknown, so the graceful stop is kept.
    assert health.etcd_reachable(
        ["kube-apiserver", "--etcd-servers=https://127.0.0.1:9", "--etcd-certfile=/nonexistent"]
    )


def test_a_contributed_authn_config_on_kubeadm_still_admits_the_probes(tmp_path):
    source = tmp_path / "kube-apiserver.yaml"
    probes = {
        "livenessProbe": {"httpGet": {"path": "/livez", "scheme": "HTTPS"}},
        "readinessProbe": {"httpGet": {"path": "/readyz", "scheme": "HTTPS"}},
    }
    source.write_text(json.dumps({"spec": {"containers": [{"name": "kube-apiserver", **probes}]}}))
    conf = {"layout": "static-pod", "source": str(source), "flags": {}}
    path = "/etc/kubernetes/kubeguard/authentication.yaml"
    off = {"apiVersion": "apiserver.config.k8s.io/v1", "kind": "AuthenticationConfiguration", "jwt": []}
    params = {
        "component": "kube-apiserver",
        "config_dir": "/etc/kubernetes/kubeguard",
        "facts": {"components": {"kube-apiserver": conf}},
        "contributed_flags": {"authentication-config": path, "anonymous-auth": None},
        "contributed_files": {path: json.dumps(off)},
    }
    new = plan.probe_anonymous(params)
    doc = json.loads(new["contributed_files"][path])
    assert doc["anonymous"] == {"enabled": True, "conditions": [{"path": "/livez"}, {"path": "/readyz"}]}
    assert doc["jwt"] == []  # the rest of the contributor's file is kept
    assert new["probe_warnings"]
    # Already admitted (api_access_anonymous: health), or anonymous everywhere: untouched.
    health = dict(
        off, anonymous={"enabled": True, "conditions": [{"path": p} for p in ("/healthz", "/livez", "/readyz")]}
    )
    params["contributed_files"] = {path: json.dumps(health)}
    assert plan.probe_anonymous(params) is params
    params["contributed_files"] = {path: json.dumps(dict(off, anonymous={"enabled": True}))}
    assert plan.probe_anonymous(params) is params


def test_etcd_as_its_user_reads_its_tls_files_as_systemd_credentials():
    pki = "/etc/kubernetes/pki/etcd"
    flags = {"cert-file": f"{pki}/server.crt", "key-file": f"{pki}/server.key", "data-dir": "/var/lib/etcd"}
    new, sources, lines = plan.etcd_credentials(flags, "etcd")
    assert new["key-file"] == "/run/credentials/etcd.service/key-file"
    assert new["data-dir"] == "/var/lib/etcd"
    assert sources == {
        "/run/credentials/etcd.service/cert-file": f"{pki}/server.crt",
        "/run/credentials/etcd.service/key-file": f"{pki}/server.key",
    }
    assert lines == [
        "User=etcd",
        "Group=etcd",
        f"LoadCredential=cert-file:{pki}/server.crt",
        f"LoadCredential=key-file:{pki}/server.key",
    ]
    text = flaglib.render_dropin(flaglib.render_argv("/usr/local/bin/etcd", new), "# h", lines)
    assert text.index("LoadCredential=key-file") < text.index("ExecStart=\n")
    assert flaglib.parse_argv(flaglib.exec_start(text))[1] == new


def test_a_credential_path_systemd_cannot_load_is_refused():
    with pytest.raises(KubeguardError, match=r"kubeguard_pki_dir: --key-file=/a b/k\.key"):
        plan.etcd_credentials({"key-file": "/a b/k.key"}, "etcd")


def test_unowned_lists_what_the_etcd_user_must_be_given(tmp_path):
    data = tmp_path / "data"
    (data / "member" / "wal").mkdir(parents=True)
    (data / "member" / "wal" / "0.wal").write_text("x")
    me = pwd.getpwuid(os.getuid()).pw_name
    assert cis._unowned([str(data)], me) == []
    assert cis._unowned([str(tmp_path / "missing")], me) == [str(tmp_path / "missing")]
    assert len(cis._unowned([str(data)], "no-such-user-here")) == 4


def test_etcd_stays_root_with_a_warning_where_systemd_cannot_hand_it_credentials(monkeypatch):
    calls = []

    def refused(argv, timeout=60):
        calls.append(argv)
        return 1, "", ""

    monkeypatch.setattr(system, "run", refused)
    conf = {"layout": "systemd", "running_flags": {"key-file": "/etc/kubernetes/pki/etcd/server.key"}}
    user, warning = plan.etcd_user(conf, {"etcd_non_root": True})
    assert user is None
    assert "control_plane_etcd_non_root" in warning and "probe exited 1" in warning
    assert calls[0][0] == "systemd-run"
    # Already running from its credentials: no probe; not asked, or a static pod: root, silently.
    conf["running_flags"] = {"key-file": "/run/credentials/etcd.service/key-file"}
    assert plan.etcd_user(conf, {"etcd_non_root": True}) == ("etcd", "")
    assert plan.etcd_user(conf, {"etcd_non_root": False}) == (None, "")
    assert plan.etcd_user({**conf, "layout": "static-pod"}, {"etcd_non_root": True}) == (None, "")
    assert len(calls) == 1


def test_an_old_apiserver_that_stopped_listening_is_killed_after_the_drain_bound():
    import socket
    import subprocess

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    proc = subprocess.Popen(["sleep", "60"])
    while system.cmdline(proc.pid) != ["sleep", "60"]:
        time.sleep(0.01)  # still the forked python until exec: not yet the process to bound
    try:
        bound = restart.DrainBound(proc.pid, ["sleep", "60"], port, grace=0)
        bound()
        assert proc.poll() is None and bound.killed_after is None  # still listening: not told to stop
        listener.close()
        bound()
        assert proc.wait(timeout=5) == -9 and bound.killed_after is not None
        other = restart.DrainBound(proc.pid, ["not", "this"], port, grace=0)
        other()
        assert other.pid is None and other.killed_after is None  # a pid that is not the old process
    finally:
        proc.kill()
        listener.close()


KUBEADM_ETCD = {
    "listen-client-urls": "https://127.0.0.1:2379,https://10.0.0.11:2379",
    "cert-file": "/etc/kubernetes/pki/etcd/server.crt",
    "key-file": "/etc/kubernetes/pki/etcd/server.key",
    "trusted-ca-file": "/etc/kubernetes/pki/etcd/ca.crt",
    "client-cert-auth": "true",
}


def test_an_etcd_change_that_keeps_the_client_side_can_follow_the_apiserver():
    hardened = {
        **KUBEADM_ETCD,
        "cipher-suites": "TLS_AES_128_GCM_SHA256",
        "listen-client-urls": "https://10.0.0.11:2379,https://127.0.0.1:2379/",
    }
    assert apply.clients_kept(KUBEADM_ETCD, hardened, {})
    # etcd as its own user: the same files, handed over as systemd credentials.
    creds = {
        f"/run/credentials/etcd.service/{n}": KUBEADM_ETCD[n] for n in ("cert-file", "key-file", "trusted-ca-file")
    }
    assert apply.clients_kept(KUBEADM_ETCD, {**KUBEADM_ETCD, **{k.rsplit("/", 1)[1]: k for k in creds}}, creds)


@pytest.mark.parametrize(
    "change",
    [
        {"listen-client-urls": "http://127.0.0.1:2379"},  # plain HTTP: the apiserver must follow etcd
        {"listen-client-urls": "https://127.0.0.1:2379"},  # the node IP no longer served
        {"trusted-ca-file": "/etc/kubernetes/pki/etcd/new-ca.crt"},
        {"client-cert-auth": None},
    ],
)
def test_an_etcd_change_that_moves_the_client_side_goes_first(change):
    running = {**KUBEADM_ETCD, **change}
    assert not apply.clients_kept(running, KUBEADM_ETCD, {})
    assert not apply.clients_kept({}, KUBEADM_ETCD, {})  # not running: nothing to keep
