"""The node firewall's rendering from the node's roles, and its refusals (pure)."""

import os

import pytest
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError
from ansible_collections.kubeguard.hardening.plugins.module_utils._node_os import firewall, nft

CONTROLLER = {"addr": "10.140.0.1", "lport": "22"}


def params(**over):
    base = {
        "roles": ["worker"],
        "control_plane_ips": ["10.140.0.10"],
        "etcd_ips": ["10.140.0.10"],
        "node_ips": ["10.140.0.10", "10.140.0.11", "10.140.0.12"],
        "admin_networks": ["10.140.0.0/24"],
        "ssh_ports": ["22"],
        "api_sources": ["0.0.0.0/0", "::/0"],
        "api_port": "6443",
        "etcd_client_sources": [],
        "kubelet_sources": ["10.140.0.1"],
        "pod_cidrs": ["10.244.0.0/16"],
        "service_cidrs": ["10.96.0.0/12"],
        "cni": "bridge",
        "nodeports_enabled": False,
        "nodeport_range": "30000-32767",
        "nodeport_sources": ["0.0.0.0/0", "::/0"],
        "extra_ports": [],
    }
    base.update(over)
    return base


def rendered(**over):
    return firewall.render(firewall.plan(params(**over), CONTROLLER), "test")


def accepts(text, port):
    return [line.strip() for line in text.splitlines() if f"dport {port} " in line and " accept" in line]


def test_a_worker_opens_only_ssh_and_the_kubelet():
    text = rendered()
    assert accepts(text, 22) == ['ip saddr { 10.140.0.0/24 } tcp dport 22 accept comment "SSH from the admin networks"']
    assert accepts(text, 10250) == [
        'ip saddr { 10.140.0.10/32, 10.140.0.1/32 } tcp dport 10250 accept comment "kubelet API from the control plane"'
    ]
    assert "tcp dport 10250 counter reject with tcp reset" in text
    for port in (6443, 2379, 2380):
        assert accepts(text, port) == []
    assert "policy drop;" in text
    assert text.rstrip().splitlines()[-3].strip() == 'counter drop comment "everything else"'


def test_the_control_plane_and_etcd_ports_follow_the_roles():
    text = rendered(roles=["control_plane", "etcd"], etcd_client_sources=["192.0.2.7"])
    assert accepts(text, 6443) == ['tcp dport 6443 accept comment "kube-apiserver"']
    assert accepts(text, 2379) == [
        'ip saddr { 10.140.0.10/32, 192.0.2.7/32 } tcp dport 2379 accept comment "etcd clients"'
    ]
    assert accepts(text, 2380) == ['ip saddr { 10.140.0.10/32 } tcp dport 2380 accept comment "etcd peers"']
    for port in (10257, 10259):
        assert f'tcp dport {port} counter drop comment "localhost only"' in text
    assert text.index('iif "lo" accept') < text.index("tcp dport 10257")


def test_a_restricted_api_still_admits_every_node_and_the_pods():
    text = rendered(roles=["control_plane"], api_sources=["192.0.2.0/24"])
    (line,) = accepts(text, 6443)
    for net in ("192.0.2.0/24", "10.140.0.11/32", "10.244.0.0/16"):
        assert net in line


def test_nodeports_are_dropped_before_kube_proxy_dnat_unless_enabled():
    off = rendered()
    assert "hook prerouting priority dstnat - 10" in off
    assert "fib daddr type local meta l4proto { tcp, udp } th dport 30000-32767 ct state new counter drop" in off
    on = rendered(nodeports_enabled=True)
    assert "prerouting" not in on
    assert accepts(on, "30000-32767") == [
        'tcp dport 30000-32767 accept comment "NodePorts (tcp)"',
        'udp dport 30000-32767 accept comment "NodePorts (udp)"',
    ]
    limited = rendered(nodeports_enabled=True, nodeport_sources=["192.0.2.0/24"])
    assert "ip saddr != { 192.0.2.0/24 } fib daddr type local" in limited
    assert "meta nfproto ipv6 fib daddr type local" in limited


def test_the_forward_chain_passes_only_pod_and_service_traffic():
    text = rendered(pod_cidrs=["10.244.0.0/16", "fd10::/64"])
    forward = text[text.index("chain forward") :]
    assert 'ip saddr { 10.244.0.0/16, 10.96.0.0/12 } accept comment "from pods and Services"' in forward
    assert 'ip6 daddr { fd10::/64 } accept comment "to pods and Services"' in forward
    assert "policy drop;" in forward


@pytest.mark.parametrize(
    ("cni", "expected"),
    [
        ("bridge", []),
        ("flannel", ["udp dport 8472"]),
        ("calico", ["tcp dport 179", "udp dport 4789", "tcp dport 5473", "meta l4proto ipip"]),
        ("cilium", ["udp dport 8472", "tcp dport 4240"]),
        ("kube-router", ["tcp dport 179", "meta l4proto ipip"]),
    ],
)
def test_the_cni_ports_are_open_between_nodes_only(cni, expected):
    text = rendered(cni=cni)
    lines = [line for line in text.splitlines() if "10.140.0.10/32, 10.140.0.11/32, 10.140.0.12/32" in line]
    assert [m for m in expected if any(m in line for line in lines)] == expected
    assert len(lines) == len(expected)


def test_extra_ports_and_ipv6_sources():
    text = rendered(extra_ports=[{"port": "9100", "sources": ["10.140.0.1", "2001:db8::/64"], "name": "node exporter"}])
    assert 'ip saddr { 10.140.0.1/32 } tcp dport 9100 accept comment "node exporter"' in text
    assert 'ip6 saddr { 2001:db8::/64 } tcp dport 9100 accept comment "node exporter"' in text
    anywhere = rendered(extra_ports=[{"port": 8443, "proto": "udp"}])
    assert 'udp dport 8443 accept comment "extra udp/8443"' in anywhere


def test_the_table_is_replaced_in_one_transaction_and_names_only_itself():
    text = rendered()
    assert text.splitlines()[1:4] == [
        "table inet kubeguard_node_os",
        "delete table inet kubeguard_node_os",
        "table inet kubeguard_node_os {",
    ]
    tables = {line.split("{")[0].strip() for line in text.splitlines() if line.startswith(("table", "delete"))}
    assert tables == {"table inet kubeguard_node_os", "delete table inet kubeguard_node_os"}
    assert "flush ruleset" not in text


@pytest.mark.parametrize(
    ("over", "connection", "var", "words"),
    [
        ({"admin_networks": ["192.0.2.0/24"]}, CONTROLLER, "node_os_firewall_admin_networks", "lockout"),
        ({"ssh_ports": ["2222"]}, CONTROLLER, "node_os_firewall_ssh_ports", "lockout"),
        ({"admin_networks": ["10.140.0.0/33"]}, CONTROLLER, "node_os_firewall_admin_networks", "not an IP"),
        ({"pod_cidrs": ["10.244.0/16x"]}, CONTROLLER, "node_os_firewall_pod_cidrs", "not an IP"),
        ({"kubelet_sources": ["example.com"]}, CONTROLLER, "node_os_firewall_kubelet_sources", "not an IP"),
        ({"api_port": "65536"}, CONTROLLER, "node_os_firewall_api_port", "1 to 65535"),
        ({"ssh_ports": ["0"]}, CONTROLLER, "node_os_firewall_ssh_ports", "1 to 65535"),
        ({"nodeport_range": "32767-30000"}, CONTROLLER, "node_os_firewall_nodeport_range", "starts after"),
        ({"extra_ports": [{"port": 70000}]}, CONTROLLER, "node_os_firewall_extra_ports[0].port", "1 to 65535"),
        ({"extra_ports": [{"port": "ssh"}]}, CONTROLLER, "node_os_firewall_extra_ports[0].port", "not a port"),
        ({"extra_ports": [{"port": 1, "proto": "sctp"}]}, CONTROLLER, "node_os_firewall_extra_ports[0]", "tcp or udp"),
        ({"extra_ports": ["9100"]}, CONTROLLER, "node_os_firewall_extra_ports[0]", "dict"),
        ({"cni": "weave"}, CONTROLLER, "node_os_firewall_cni", "not one of"),
        ({"admin_networks": []}, None, "node_os_firewall_admin_networks", "at least one"),
    ],
)
def test_bad_input_is_refused_naming_the_variable(over, connection, var, words):
    with pytest.raises(KubeguardError) as err:
        firewall.plan(params(**over), connection)
    assert err.value.option == var
    assert words in err.value.message


def test_empty_admin_networks_mean_the_controller_address_only():
    planned = firewall.plan(params(admin_networks=[]), CONTROLLER)
    assert [str(n) for n in planned["rules"][0]["sources"]] == ["10.140.0.1/32"]


def test_an_ipv4_mapped_controller_address_is_matched_as_ipv4():
    firewall.plan(params(), {"addr": "::ffff:10.140.0.1", "lport": "22"})


class FakeNode:
    """run_command records argv; nft answers from a dict of (argv prefix) -> (rc, out, err)."""

    def __init__(self, tmp_path, answers=None):
        self.calls, self.answers, self.tmpdir = [], answers or {}, str(tmp_path)

    def run_command(self, argv):
        self.calls.append(list(argv))
        for prefix, answer in self.answers.items():
            if tuple(argv[: len(prefix)]) == prefix:
                return answer
        return 0, "", ""

    def atomic_move(self, src, dest):
        os.replace(src, dest)


def apply_params(tmp_path, **over):
    p = params(**over)
    p.update(path=str(tmp_path / "etc/node-firewall.nft"), header="test", rollback_timeout=60,
             state_dir=str(tmp_path / "state"), lockout_check=True)  # fmt: skip
    return p


@pytest.fixture
def with_nft(monkeypatch):
    monkeypatch.setattr(nft.shutil, "which", lambda *_a, **_k: "/usr/sbin/nft")


def test_bad_input_writes_nothing_and_runs_no_nft(tmp_path, with_nft):
    node = FakeNode(tmp_path)
    with pytest.raises(KubeguardError):
        nft.apply(apply_params(tmp_path, admin_networks=["192.0.2.0/24"]), False, node, CONTROLLER)
    assert not (tmp_path / "etc").exists()
    assert not [c for c in node.calls if c[:2] in (["nft", "-f"], ["systemd-run"])]


def test_a_refused_candidate_is_not_applied(tmp_path, with_nft):
    node = FakeNode(tmp_path, {("nft", "-c"): (1, "", "Error: syntax error")})
    with pytest.raises(KubeguardError) as err:
        nft.apply(apply_params(tmp_path), False, node, CONTROLLER)
    assert "nft refused" in str(err.value)
    assert not (tmp_path / "etc").exists()


def test_apply_arms_the_rollback_before_loading_then_a_rerun_is_unchanged(tmp_path, with_nft):
    live = "table inet kubeguard_node_os {\n}\n"
    node = FakeNode(tmp_path, {("nft", "-s", "list"): (1, "", "No such file")})
    result = nft.apply(apply_params(tmp_path), False, node, CONTROLLER)
    assert result["changed"] and result["rollback"]["armed"]
    order = [c[0] if c[0] != "nft" else " ".join(c[:2]) for c in node.calls]
    assert order.index("systemd-run") < order.index("nft -f")
    script = (tmp_path / "state/rollback.sh").read_text()
    assert "nft -f" in script and "rm -f" in script  # no previous file: the restore removes ours
    assert (tmp_path / "state/table.previous").read_text().startswith("table inet kubeguard_node_os\ndelete table")
    # The live table now answers; record it as the apply would have.
    node2 = FakeNode(tmp_path, {("nft", "-s", "list"): (0, live, "")})
    (tmp_path / "state/live.sha256").write_text(nft._digest(live))
    again = nft.apply(apply_params(tmp_path), False, node2, CONTROLLER)
    assert not again["changed"]
    assert not [c for c in node2.calls if c[0] in ("systemd-run",) or c[:2] == ["nft", "-f"]]
    # A table edited or flushed behind our back is drift: applied again.
    node3 = FakeNode(tmp_path, {("nft", "-s", "list"): (0, live + "# edited\n", "")})
    assert nft.apply(apply_params(tmp_path), True, node3, CONTROLLER)["drifted"]


def test_check_mode_validates_but_writes_nothing(tmp_path, with_nft):
    node = FakeNode(tmp_path, {("nft", "-s", "list"): (1, "", "")})
    result = nft.apply(apply_params(tmp_path), True, node, CONTROLLER)
    assert result["changed"] and result["pending"]
    assert node.calls[-1][:3] == ["nft", "-c", "-f"]
    assert not (tmp_path / "etc").exists() and not (tmp_path / "state").exists()


def test_the_operators_hosts_are_refused_where_others_meet_silence():
    text = rendered(reject_sources=["10.140.0.1", "2001:db8::1"])
    lines = text[: text.index("chain prerouting")].splitlines()
    end = lines.index('    counter drop comment "everything else"')
    assert lines[end - 4 : end] == [
        '    ip saddr { 10.140.0.1/32 } meta l4proto tcp counter reject with tcp reset comment "refused"',
        '    ip saddr { 10.140.0.1/32 } counter reject with icmp port-unreachable comment "refused"',
        '    ip6 saddr { 2001:db8::1/128 } meta l4proto tcp counter reject with tcp reset comment "refused"',
        '    ip6 saddr { 2001:db8::1/128 } counter reject with icmpv6 port-unreachable comment "refused"',
    ]
    assert "port-unreachable" not in rendered()


@pytest.mark.parametrize(
    "on_disk,enabled,pending",
    [
        (None, (1, "", "Failed to get unit file state"), True),  # fresh node
        ("[Unit]\nold\n", (0, "enabled\n", ""), True),  # edited file
        ("[Unit]\n", (1, "disabled\n", ""), True),  # current file, unit disabled
        ("[Unit]\n", (0, "enabled\n", ""), False),  # nothing to do: the role skips both tasks
    ],
)
def test_the_boot_unit_is_reported_pending_and_never_written(tmp_path, with_nft, on_disk, enabled, pending):
    unit = tmp_path / "kubeguard-node-firewall.service"
    if on_disk is not None:
        unit.write_text(on_disk)
    node = FakeNode(tmp_path, {("nft", "-s", "list"): (1, "", ""), ("systemctl", "is-enabled"): enabled})
    p = apply_params(tmp_path, boot_unit="[Unit]\n", boot_unit_path=str(unit))
    result = nft.apply(p, True, node, CONTROLLER)
    assert result["boot_unit_pending"] is pending
    assert (unit.read_text() if unit.exists() else None) == on_disk
    assert "boot_unit_pending" not in nft.apply(apply_params(tmp_path), True, FakeNode(tmp_path), CONTROLLER)
