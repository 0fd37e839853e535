"""A node's fingerprint (site.yml's fast rerun): every write, chmod, new or removed entry and link retarget
under a watched tree moves its digest, a watched path ignores what is below it, and the live probes (units,
sysctls, addresses) digest what the node reports."""

import json
import os

import pytest
from ansible_collections.kubeguard.hardening.plugins.module_utils._node import fingerprint


@pytest.fixture
def etc(tmp_path):
    root = tmp_path / "etc"
    (root / "ssh").mkdir(parents=True)
    (root / "ssh/sshd_config").write_text("PermitRootLogin no\n")
    (root / "hosts").write_text("127.0.0.1 localhost\n")
    os.symlink("hosts", root / "hosts.link")
    return root


def test_an_untouched_tree_keeps_its_digest(etc):
    assert fingerprint.tree(str(etc)) == fingerprint.tree(str(etc))


@pytest.mark.parametrize(
    "touch",
    [
        lambda root: os.chmod(root / "ssh/sshd_config", 0o600),
        lambda root: (root / "ssh/sshd_config").write_text("PermitRootLogin yes\n"),
        lambda root: (root / "ssh/sshd_config.d").mkdir(),
        lambda root: (root / "hosts").unlink(),
        lambda root: os.replace(root / "hosts", root / "hosts2"),
        lambda root: (os.unlink(root / "hosts.link"), os.symlink("ssh", root / "hosts.link")),
    ],
    ids=["chmod", "write", "new entry", "removal", "rename", "link retarget"],
)
def test_any_change_below_a_tree_moves_its_digest(etc, touch):
    before = fingerprint.tree(str(etc))
    touch(etc)
    assert fingerprint.tree(str(etc)) != before


def test_a_write_of_the_same_bytes_still_shows(etc):
    """ctime moves on every write, so a change made and undone is not hidden."""
    before = fingerprint.tree(str(etc))
    path = etc / "hosts"
    content = path.read_bytes()
    path.write_bytes(b"x")
    path.write_bytes(content)
    assert fingerprint.tree(str(etc)) != before


def test_a_missing_tree_is_a_stable_digest_of_its_own(tmp_path):
    missing = str(tmp_path / "none")
    absent = fingerprint.tree(missing)
    assert fingerprint.tree(missing) == absent
    (tmp_path / "none").mkdir()
    assert fingerprint.fingerprint({"trees": [missing]})["fingerprint"]["tree:" + missing] != absent


def test_a_path_is_watched_by_itself_not_what_is_below_it(etc):
    params = {"paths": [str(etc / "ssh")]}
    before = fingerprint.fingerprint(params)["fingerprint"]
    (etc / "ssh/sshd_config").write_text("changed\n")
    assert fingerprint.fingerprint(params)["fingerprint"] == before
    os.chmod(etc / "ssh", 0o700)
    assert fingerprint.fingerprint(params)["fingerprint"] != before


def test_the_result_holds_digests_only_and_never_a_change(etc):
    result = fingerprint.fingerprint({"trees": [str(etc)], "paths": [str(etc / "hosts")]})
    assert result["changed"] is False
    assert set(result["fingerprint"]) == {f"tree:{etc}", f"path:{etc / 'hosts'}"}
    assert all(len(value) == 64 for value in result["fingerprint"].values())
    assert "PermitRootLogin" not in json.dumps(result)


SHOW = "Id=kubelet.service\nActiveState=active\n\nId=etcd.service\nActiveState={etcd}\n"


def test_each_unit_gets_its_digest_from_one_systemctl_call(monkeypatch):
    calls = []

    def run(argv, timeout=60):
        calls.append(argv)
        return 0, SHOW.format(etcd=state), ""

    monkeypatch.setattr(fingerprint, "run", run)
    state = "active"
    before = fingerprint.units(["kubelet.service", "etcd.service"])
    state = "failed"
    after = fingerprint.units(["kubelet.service", "etcd.service"])
    assert len(calls) == 2 and calls[0][:2] == ["systemctl", "show"]
    assert before["unit:kubelet.service"] == after["unit:kubelet.service"]
    assert before["unit:etcd.service"] != after["unit:etcd.service"]


def test_a_systemctl_that_fails_gives_every_unit_the_same_error_digest(monkeypatch):
    monkeypatch.setattr(fingerprint, "run", lambda argv, timeout=60: (1, "", "Failed to connect to bus"))
    found = fingerprint.units(["a.service", "b.service"])
    assert len(set(found.values())) == 1


def test_the_live_value_of_each_sysctl_the_files_set_is_watched(tmp_path, monkeypatch):
    conf = tmp_path / "60-kubeguard.conf"
    conf.write_text("# comment\nnet.ipv4.ip_forward = 1\n-net.ipv4.conf.all.send_redirects=0\n")
    live = {"/proc/sys/net/ipv4/ip_forward": "1\n", "/proc/sys/net/ipv4/conf/all/send_redirects": "0\n"}
    real_read = fingerprint.read
    monkeypatch.setattr(fingerprint, "read", lambda path, binary=False: live.get(path) or real_read(path))
    before = fingerprint.sysctls([str(tmp_path / "*.conf")])
    live["/proc/sys/net/ipv4/conf/all/send_redirects"] = "1\n"
    assert fingerprint.sysctls([str(tmp_path / "*.conf")]) != before


def test_the_addresses_digest_says_which_the_node_still_has(monkeypatch):
    listing = {"text": "2: eth0    inet 10.0.0.5/24 brd 10.0.0.255 scope global eth0\n"}
    monkeypatch.setattr(fingerprint, "run", lambda argv, timeout=60: (0, listing["text"], ""))
    has = fingerprint.addresses(["10.0.0.5"])
    listing["text"] = "2: eth0    inet 10.0.0.6/24 brd 10.0.0.255 scope global eth0\n"
    assert fingerprint.addresses(["10.0.0.5"]) != has
