"""kubeguard.hardening.cluster_pki through Ansible (check / apply / check /
apply, diff, errors) and its engine on a real filesystem (renewal with an
injected clock, node changes, external CA, CA protection)."""

import datetime
import hashlib
import json
import os
import pathlib
import shutil
import stat
import subprocess

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]

from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError  # noqa: E402
from ansible_collections.kubeguard.hardening.plugins.module_utils._pki import _engine  # noqa: E402

NOW = datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc)
DAY = datetime.timedelta(days=1)


def params(out, **extra):
    base = {
        "output_dir": str(out),
        "cluster_name": "kubeguard-test",
        "control_plane_nodes": [{"name": "cp1", "ips": ["10.0.0.10"], "dns_names": [], "etcd": True}],
        "worker_nodes": [
            {"name": "worker1", "ips": ["10.0.0.11"], "dns_names": []},
            {"name": "worker2", "ips": ["10.0.0.12"], "dns_names": []},
        ],
        "service_cidr": "10.96.0.0/12",
        "dns_domain": "cluster.local",
        "control_plane_endpoint": "api.example.test:6443",
        "api_port": 6443,
        "extra_sans": [],
        "key_algorithm": "ECDSA-P256",
        "ca_validity_days": 3650,
        "leaf_validity_days": 365,
        "renew_before_days": 30,
        "workers": 0,
    }
    base.update(extra)
    return base


def actions(result):
    return {c["path"]: c["action"] for c in result["certificates"]}


def digest(out):
    return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest() for p in out.rglob("*") if p.is_file()}


# ------------------------------------------------------------ through Ansible


def playbook(tmp_path, module_args, *flags):
    play = tmp_path / "play.yml"
    play.write_text(
        json.dumps(
            [
                {
                    "name": "PKI",
                    "hosts": "localhost",
                    "gather_facts": False,
                    "tasks": [
                        {"name": "Run cluster_pki", "kubeguard.hardening.cluster_pki": module_args, "register": "r"}
                    ],
                }
            ]
        )
    )
    env = dict(
        os.environ,
        ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
        ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json",
        ANSIBLE_INVENTORY="localhost",
        ANSIBLE_LOCALHOST_WARNING="false",
    )
    run = subprocess.run(
        [str(REPO / ".venv/bin/ansible-playbook"), "-c", "local", str(play), *flags],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        check=False,
    )
    report = json.loads(run.stdout)
    task = report["plays"][0]["tasks"][0]["hosts"]["localhost"]
    return run, task


def module_args(out):
    args = params(out)
    args.pop("workers")
    return args


def test_check_apply_check_apply(tmp_path):
    out = tmp_path / "pki"
    _, first = playbook(tmp_path, module_args(out), "--check", "--diff")
    assert first["changed"] is True
    assert not out.exists(), "check mode wrote files"
    _, applied = playbook(tmp_path, module_args(out), "--diff")
    assert applied["changed"] is True
    # check mode predicted exactly the actions of the real run
    assert actions(first) == actions(applied)
    assert set(actions(applied).values()) == {"created"}
    files = digest(out)
    _, second_check = playbook(tmp_path, module_args(out), "--check", "--diff")
    _, second = playbook(tmp_path, module_args(out), "--diff")
    assert second_check["changed"] is False and second["changed"] is False
    assert set(actions(second).values()) == {"ok"}
    assert digest(out) == files
    # every certificate entry carries its not-after
    assert all(c["not_after"] for c in second["certificates"] if c["kind"] != "sa")


def test_diff_and_result_carry_no_secrets(tmp_path):
    out = tmp_path / "pki"
    run, result = playbook(tmp_path, module_args(out), "--diff")
    assert result["diff"], "diff mode shows the metadata of the new certificates"
    assert "subject: CN=kube-apiserver" in json.dumps(result["diff"])
    secrets = [out / "pki/ca.key", out / "pki/sa.key", out / "nodes/cp1/pki/apiserver.key"]
    blob = run.stdout + run.stderr
    assert "PRIVATE KEY" not in blob
    assert "client-key-data" not in blob
    for key in secrets:
        body = "".join(key.read_text().splitlines()[1:-1])
        assert body[:40] not in blob


def test_bad_input_fails_naming_the_option_and_writes_nothing(tmp_path):
    out = tmp_path / "pki"
    args = module_args(out)
    args["worker_nodes"][1]["ips"] = ["10.0.0.300"]
    _, result = playbook(tmp_path, args)
    assert result["failed"] is True
    assert "worker_nodes[1].ips" in result["msg"]
    assert not out.exists()


def test_unsupported_algorithm_is_refused_by_the_module(tmp_path):
    args = module_args(tmp_path / "pki")
    args["key_algorithm"] = "DSA-1024"
    _, result = playbook(tmp_path, args)
    assert result["failed"] is True and "key_algorithm" in result["msg"]


def test_info_module_reports_a_node(tmp_path):
    out = tmp_path / "pki"
    _engine.run(params(out), now=None)
    kdir = tmp_path / "node/etc/kubernetes"
    for entry in _engine.run(params(out))["distribution"]["worker1"]:
        dest = (kdir if entry["root"] == "kubernetes" else tmp_path / "node/kubelet") / entry["dest"]
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(entry["src"], dest)
    play = tmp_path / "info.yml"
    play.write_text(
        json.dumps(
            [
                {
                    "name": "Info",
                    "hosts": "localhost",
                    "gather_facts": False,
                    "tasks": [
                        {
                            "name": "Report",
                            "kubeguard.hardening.cluster_pki_info": {
                                "kubernetes_dir": str(kdir),
                                "kubelet_pki_dir": str(tmp_path / "node/kubelet"),
                            },
                        }
                    ],
                }
            ]
        )
    )
    env = dict(
        os.environ,
        ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
        ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json",
        ANSIBLE_INVENTORY="localhost",
    )
    run = subprocess.run(
        [str(REPO / ".venv/bin/ansible-playbook"), "-c", "local", str(play)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        check=False,
    )
    result = json.loads(run.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]
    assert {c["name"] for c in result["certificates"]} == {"kubelet.conf", "kubelet-serving"}
    assert [c["name"] for c in result["certificate_authorities"]] == ["ca"]
    assert result["certificate_authorities"][0]["externally_managed"] is True  # no CA key on a worker
    assert all(c["residual_days"] in (364, 365) and not c["expiring"] for c in result["certificates"])


# ---------------------------------------------------------- engine behaviour


@pytest.fixture
def tree(tmp_path):
    out = tmp_path / "pki"
    result = _engine.run(params(out), now=NOW)
    assert set(actions(result).values()) == {"created"}
    return out


def test_modes_of_files_and_directories(tree):
    for path in tree.rglob("*"):
        mode = stat.S_IMODE(path.stat().st_mode)
        if path.is_dir():
            assert mode == 0o700, path
        elif path.suffix in (".key", ".conf"):
            assert mode == 0o600, path
        else:
            assert mode == 0o644, path
    assert not list(tree.rglob("*.tmp"))


def test_wrong_modes_are_fixed(tree):
    os.chmod(tree / "pki/ca.key", 0o644)
    os.chmod(tree / "nodes/worker1/kubelet/kubelet.crt", 0o600)
    check = _engine.run(params(tree), now=NOW, check_mode=True)
    assert check["changed"] and check["modes_fixed"] == ["nodes/worker1/kubelet/kubelet.crt", "pki/ca.key"]
    assert stat.S_IMODE((tree / "pki/ca.key").stat().st_mode) == 0o644
    result = _engine.run(params(tree), now=NOW)
    assert result["modes_fixed"] == check["modes_fixed"]
    assert set(actions(result).values()) == {"ok"}
    assert stat.S_IMODE((tree / "pki/ca.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((tree / "nodes/worker1/kubelet/kubelet.crt").stat().st_mode) == 0o644
    assert not _engine.run(params(tree), now=NOW)["changed"]


def test_renewal_reissues_only_the_expiring_leaves(tree):
    # 100 days in, worker2 moves: its serving cert is reissued and now expires later than the rest
    moved = params(tree)
    moved["worker_nodes"][1]["ips"] = ["10.0.0.99"]
    _engine.run(moved, now=NOW + 100 * DAY)
    before = digest(tree)
    result = _engine.run(moved, now=NOW + 340 * DAY, check_mode=True)
    predicted = actions(result)
    result = _engine.run(moved, now=NOW + 340 * DAY)
    assert actions(result) == predicted
    renewed = {p for p, a in actions(result).items() if a.startswith("renewed")}
    assert {a for p, a in actions(result).items() if p in renewed} == {"renewed: expires in 25 d"}
    untouched = {p for p, a in actions(result).items() if a == "ok"}
    assert untouched == {
        "pki/ca.crt",
        "pki/front-proxy-ca.crt",
        "pki/etcd/ca.crt",
        "pki/sa.key",
        "nodes/worker2/kubelet/kubelet.crt",
    }
    after = digest(tree)
    assert {f for f in after if after[f] != before[f]} == set(result["changed_files"])
    assert after["nodes/worker2/kubelet/kubelet.crt"] == before["nodes/worker2/kubelet/kubelet.crt"]
    # renewal keeps the keys (like kubeadm certs renew)
    assert after["pki/apiserver-etcd-client.key"] == before["pki/apiserver-etcd-client.key"]
    assert not _engine.run(moved, now=NOW + 340 * DAY)["changed"]


def test_short_validity_renews_without_a_clock(tmp_path):
    out = tmp_path / "pki"
    _engine.run(params(out, leaf_validity_days=2, renew_before_days=1))
    result = _engine.run(params(out, leaf_validity_days=3, renew_before_days=2))
    assert {a for a in actions(result).values() if a != "ok"} == {"renewed: expires in 1 d"}


@pytest.mark.parametrize(
    ("node", "change", "expected"),
    [
        ("worker1", {"ips": ["10.0.0.111"]}, {"nodes/worker1/kubelet/kubelet.crt": "reissued: SAN drift"}),
        ("worker1", {"dns_names": ["w1.example.test"]}, {"nodes/worker1/kubelet/kubelet.crt": "reissued: SAN drift"}),
        (
            "cp1",
            {"ips": ["10.0.0.20"]},
            {
                "nodes/cp1/pki/apiserver.crt": "reissued: SAN drift",
                "nodes/cp1/pki/etcd/server.crt": "reissued: SAN drift",
                "nodes/cp1/pki/etcd/peer.crt": "reissued: SAN drift",
                "nodes/cp1/controller-manager.conf": "reissued: server drift",
                "nodes/cp1/scheduler.conf": "reissued: server drift",
                "nodes/cp1/kubelet.conf": "reissued: server drift",
                "nodes/cp1/kubelet/kubelet.crt": "reissued: SAN drift",
            },
        ),
    ],
)
def test_changing_one_node_reissues_only_its_certs(tree, node, change, expected):
    changed = params(tree)
    for entry in changed["control_plane_nodes"] + changed["worker_nodes"]:
        if entry["name"] == node:
            entry.update(change)
    result = _engine.run(changed, now=NOW + DAY)
    assert {p: a for p, a in actions(result).items() if a != "ok"} == expected
    assert all(f.startswith(f"nodes/{node}/") for f in result["changed_files"])


def test_new_worker_only_adds_its_files(tree):
    grown = params(tree)
    grown["worker_nodes"].append({"name": "worker3", "ips": ["10.0.0.13"], "dns_names": []})
    result = _engine.run(grown, now=NOW + DAY)
    assert {p: a for p, a in actions(result).items() if a != "ok"} == {
        "nodes/worker3/kubelet.conf": "created",
        "nodes/worker3/kubelet/kubelet.crt": "created",
    }


def test_drift_reasons(tree, tmp_path):
    other = tmp_path / "other"
    _engine.run(params(other), now=NOW)
    # a leaf signed by another CA, a key that does not match, an unreadable cert
    shutil.copy(other / "pki/front-proxy-client.crt", tree / "pki/front-proxy-client.crt")
    shutil.copy(other / "pki/front-proxy-client.key", tree / "pki/front-proxy-client.key")
    shutil.copy(other / "pki/apiserver-etcd-client.key", tree / "pki/apiserver-etcd-client.key")
    (tree / "pki/etcd/healthcheck-client.crt").write_text("garbage")
    (tree / "nodes/worker1/kubelet/kubelet.key").unlink()
    shutil.copy(other / "nodes/worker2/kubelet.conf", tree / "nodes/worker2/kubelet.conf")
    result = _engine.run(params(tree), now=NOW + DAY)
    assert {p: a for p, a in actions(result).items() if a != "ok"} == {
        "pki/front-proxy-client.crt": "reissued: not signed by current CA",
        "pki/apiserver-etcd-client.crt": "reissued: key mismatch",
        "pki/etcd/healthcheck-client.crt": "reissued: unreadable",
        "nodes/worker1/kubelet/kubelet.crt": "reissued: key missing",
        "nodes/worker2/kubelet.conf": "reissued: not signed by current CA",
    }
    assert not _engine.run(params(tree), now=NOW + DAY)["changed"]


def test_algorithm_change_reissues_leaves_but_keeps_cas(tree):
    result = _engine.run(params(tree, key_algorithm="RSA-2048"), now=NOW + DAY)
    got = actions(result)
    assert {got[p] for p in ("pki/ca.crt", "pki/etcd/ca.crt", "pki/front-proxy-ca.crt", "pki/sa.key")} == {"ok"}
    assert {
        a for p, a in got.items() if p not in ("pki/ca.crt", "pki/etcd/ca.crt", "pki/front-proxy-ca.crt", "pki/sa.key")
    } == {"reissued: algorithm drift"}


def test_external_ca_only_verifies_and_reports(tree):
    (tree / "pki/etcd/ca.key").unlink()
    (tree / "pki/etcd/healthcheck-client.crt").unlink()
    before = digest(tree)
    result = _engine.run(params(tree), now=NOW + 340 * DAY)
    assert result["external_ca"] == ["pki/etcd/ca"]
    got = actions(result)
    assert got["pki/etcd/healthcheck-client.crt"] == "missing (external CA)"
    assert got["pki/apiserver-etcd-client.crt"] == "expiring: expires in 25 d (external CA)"
    assert got["nodes/cp1/pki/etcd/server.crt"] == "expiring: expires in 25 d (external CA)"
    # leaves of the other CAs are renewed as usual, the etcd ones are left alone
    assert got["pki/apiserver-kubelet-client.crt"] == "renewed: expires in 25 d"
    after = digest(tree)
    assert all(after[f] == before[f] for f in before if "etcd" in f)
    assert "pki/etcd/healthcheck-client.crt" not in after


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda t: (t / "pki/ca.crt").write_text("garbage"), "pki/ca is unreadable"),
        (lambda t: (t / "pki/ca.crt").unlink(), "pki/ca.key exists without pki/ca.crt"),
        (lambda t: shutil.copy(t / "pki/front-proxy-ca.key", t / "pki/ca.key"), "pki/ca.key does not match"),
        (
            lambda t: [shutil.copy(t / f"pki/apiserver-kubelet-client.{x}", t / f"pki/ca.{x}") for x in ("crt", "key")],
            "is not a CA certificate",
        ),
        (lambda t: (t / "pki/sa.key").unlink(), "pki/sa.pub exists without pki/sa.key"),
        (lambda t: (t / "pki/sa.key").write_text("garbage"), "pki/sa.key is unreadable"),
    ],
)
def test_cas_and_sa_key_are_never_replaced(tree, damage, message):
    damage(tree)
    before = digest(tree)
    with pytest.raises(KubeguardError, match=message) as err:
        _engine.run(params(tree), now=NOW + DAY)
    assert err.value.option == "output_dir"
    assert digest(tree) == before


def test_sa_pub_is_rederived(tree):
    (tree / "pki/sa.pub").unlink()
    key_before = (tree / "pki/sa.key").read_bytes()
    result = _engine.run(params(tree), now=NOW + DAY)
    assert actions(result)["pki/sa.key"] == "reissued: public key missing"
    assert (tree / "pki/sa.key").read_bytes() == key_before


def test_ca_expiring_is_a_warning_not_a_replacement(tmp_path):
    out = tmp_path / "pki"
    _engine.run(params(out, ca_validity_days=400, leaf_validity_days=365), now=NOW)
    result = _engine.run(params(out, ca_validity_days=400, leaf_validity_days=365), now=NOW + 380 * DAY)
    assert any("pki/ca.crt expires in 20 d" in w for w in result["warnings"])
    assert actions(result)["pki/ca.crt"] == "ok"
    # leaves are renewed, capped at the CA's not-after; a rerun does not renew them again
    assert actions(result)["pki/apiserver-kubelet-client.crt"].startswith("renewed")
    again = _engine.run(params(out, ca_validity_days=400, leaf_validity_days=365), now=NOW + 381 * DAY)
    assert not again["changed"]


def test_unwritable_output_dir(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(KubeguardError, match="is not a directory") as err:
        _engine.run(params(blocker / "pki"))
    assert err.value.option == "output_dir"


def test_distribution_gives_each_node_only_what_it_needs(tree):
    dist = _engine.run(params(tree), now=NOW)["distribution"]
    worker = {e["dest"] for e in dist["worker1"]}
    assert worker == {"pki/ca.crt", "kubelet.conf", "kubelet.crt", "kubelet.key"}
    assert all(e["src"].startswith(str(tree / "nodes/worker1/")) or e["dest"] == "pki/ca.crt" for e in dist["worker1"])
    cp = {e["dest"] for e in dist["cp1"]}
    assert {
        "pki/ca.key",
        "pki/etcd/ca.key",
        "pki/etcd/server.key",
        "pki/sa.key",
        "admin.conf",
        "super-admin.conf",
    } <= cp
    no_etcd = params(tree)
    no_etcd["control_plane_nodes"][0]["etcd"] = False
    cp = {e["dest"] for e in _engine.run(no_etcd, now=NOW, check_mode=True)["distribution"]["cp1"]}
    assert not {d for d in cp if d.startswith("pki/etcd/") and d != "pki/etcd/ca.crt"}
    for entries in dist.values():
        for entry in entries:
            assert entry["secret"] == (entry["mode"] == "0600")
            assert entry["secret"] == (entry["dest"].endswith((".key", ".conf")))
