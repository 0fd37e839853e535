"""Parsing a node's conntrack table into live flows (network_policy_flows' logic)."""

import pytest
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError
from ansible_collections.kubeguard.hardening.plugins.module_utils._netpol import flows

# Captured with ``conntrack -L`` (conntrack-tools 1.4.8, Debian) on the lab's nodes (LAB_ID=23): shop and batch
# clients calling the web Service (10.110.65.62:80 -> pods :8080), DNS through 10.96.0.10, the kubelet probing
# CoreDNS from the bridge (10.244.0.1), an IGMP entry. cp1 sees the DNAT; worker1 the forwarded, translated packets.
LAB_LINES = [
    "tcp      6 118 TIME_WAIT src=10.244.0.1 dst=10.244.0.2 sport=37158 dport=8181 src=10.244.0.2 dst=10."
    "244.0.1 sport=8181 dport=37158 [ASSURED] mark=0 use=1",
    "tcp      6 100 TIME_WAIT src=10.244.0.1 dst=10.244.0.2 sport=37904 dport=8181 src=10.244.0.2 dst=10."
    "244.0.1 sport=8181 dport=37904 [ASSURED] mark=0 use=1",
    "udp      17 29 src=10.244.0.3 dst=10.96.0.10 sport=38589 dport=53 src=10.244.0.2 dst=10.244.0.3 spor"
    "t=53 dport=38589 mark=0 use=1",
    "tcp      6 115 TIME_WAIT src=10.244.0.3 dst=10.110.65.62 sport=33922 dport=80 src=10.244.2.2 dst=10."
    "244.0.3 sport=8080 dport=33922 [ASSURED] mark=0 use=1",
    "tcp      6 117 TIME_WAIT src=10.244.0.3 dst=10.110.65.62 sport=33936 dport=80 src=10.244.1.2 dst=10."
    "244.0.3 sport=8080 dport=33936 [ASSURED] mark=0 use=1",
    "unknown  2 546 src=10.244.0.1 dst=224.0.0.22 [UNREPLIED] src=224.0.0.22 dst=10.244.0.1 mark=0 use=1",
    "tcp      6 119 TIME_WAIT src=10.244.2.3 dst=10.244.1.2 sport=46158 dport=8080 src=10.244.1.2 dst=10."
    "244.2.3 sport=8080 dport=46158 [ASSURED] mark=0 use=1",
    "tcp      6 116 TIME_WAIT src=10.244.2.3 dst=10.244.1.2 sport=46126 dport=8080 src=10.244.1.2 dst=10."
    "244.2.3 sport=8080 dport=46126 [ASSURED] mark=0 use=1",
]
# Made up in the same format: the states a policy cannot cut.
TOOL_LINES = [
    # a client -> ClusterIP 10.96.5.5:80, DNAT to the pod 10.244.2.11:8080
    "tcp      6 118 TIME_WAIT src=10.244.1.12 dst=10.96.5.5 sport=40000 dport=80 src=10.244.2.11 dst=10.244.1.12 "
    "sport=8080 dport=40000 [ASSURED] mark=0 use=1",
    "tcp      6 119 TIME_WAIT src=10.244.1.12 dst=10.96.5.5 sport=40002 dport=80 src=10.244.2.11 dst=10.244.1.12 "
    "sport=8080 dport=40002 [ASSURED] mark=0 use=1",
    "tcp      6 86399 ESTABLISHED src=10.244.1.12 dst=10.244.2.11 sport=40010 dport=8080 src=10.244.2.11 "
    "dst=10.244.1.12 sport=8080 dport=40010 [ASSURED] mark=0 use=1",
    # an attempt nobody answered, a reset, and a half-open handshake: not live
    "tcp      6 110 SYN_SENT src=10.244.2.13 dst=10.96.5.5 sport=5000 dport=80 [UNREPLIED] src=10.244.1.10 "
    "dst=10.244.2.13 sport=8080 dport=5000 mark=0 use=1",
    "tcp      6 9 CLOSE src=10.244.2.13 dst=10.244.1.10 sport=5001 dport=81 src=10.244.1.10 dst=10.244.2.13 "
    "sport=81 dport=5001 mark=0 use=1",
    "tcp      6 50 SYN_RECV src=10.244.2.13 dst=10.244.1.10 sport=5002 dport=8080 src=10.244.1.10 dst=10.244.2.13 "
    "sport=8080 dport=5002 mark=0 use=1",
    # DNS through the kube-dns Service, answered
    "udp      17 28 src=10.244.1.12 dst=10.96.0.10 sport=33000 dport=53 src=10.244.0.2 dst=10.244.1.12 sport=53 "
    "dport=33000 mark=0 use=1",
    # unanswered UDP, loopback, ICMP: left out
    "udp      17 20 src=10.244.1.12 dst=10.96.0.10 sport=33001 dport=53 [UNREPLIED] src=10.244.0.2 "
    "dst=10.244.1.12 sport=53 dport=33001 mark=0 use=1",
    "tcp      6 431999 ESTABLISHED src=127.0.0.1 dst=127.0.0.1 sport=1 dport=2379 src=127.0.0.1 dst=127.0.0.1 "
    "sport=2379 dport=1 [ASSURED] mark=0 use=1",
    "icmp     1 29 src=10.244.1.12 dst=10.244.2.11 type=8 code=0 id=7 src=10.244.2.11 dst=10.244.1.12 type=0 code=0 "
    "id=7 mark=0 use=1",
    "",
]
PROC_LINE = (
    "ipv4     2 tcp      6 117 TIME_WAIT src=10.244.1.12 dst=10.96.5.5 sport=40000 dport=80 src=10.244.2.11 "
    "dst=10.244.1.12 sport=8080 dport=40000 [ASSURED] mark=0 zone=0 use=2"
)


def test_the_destination_is_the_reply_source_after_dnat():
    entry = flows.parse_entry(TOOL_LINES[0])
    assert entry == {
        "protocol": "TCP",
        "state": "TIME_WAIT",
        "replied": True,
        "source": "10.244.1.12",
        "original_destination": "10.96.5.5",
        "original_port": 80,
        "destination": "10.244.2.11",
        "port": 8080,
    }
    assert flows.parse_entry(PROC_LINE) == entry


def test_live_flows_aggregate_over_source_ports_and_keep_the_service_address():
    assert flows.aggregate(TOOL_LINES) == [
        {
            "protocol": "TCP",
            "source": "10.244.1.12",
            "destination": "10.244.2.11",
            "port": 8080,
            "via": ["10.96.5.5:80"],
            "entries": 3,
        },
        {
            "protocol": "UDP",
            "source": "10.244.1.12",
            "destination": "10.244.0.2",
            "port": 53,
            "via": ["10.96.0.10:53"],
            "entries": 1,
        },
    ]


def test_read_table_runs_conntrack_for_both_families(monkeypatch):
    calls = []
    monkeypatch.setattr(flows.shutil, "which", lambda name, path=None: "/usr/sbin/conntrack")

    def run_command(argv):
        calls.append(argv)
        return (
            (0, TOOL_LINES[0] + "\n", "conntrack v1.4.7: 1 flow entries have been shown.")
            if "ipv4" in argv
            else (0, "", "")
        )

    source, lines = flows.read_table(run_command, lambda path: None)
    assert source == "conntrack -L" and lines == [TOOL_LINES[0]]
    assert calls == [["/usr/sbin/conntrack", "-L", "-f", "ipv4"], ["/usr/sbin/conntrack", "-L", "-f", "ipv6"]]


def test_read_table_falls_back_to_proc_and_refuses_when_nothing_is_readable(monkeypatch, tmp_path):
    monkeypatch.setattr(flows.shutil, "which", lambda name, path=None: None)
    table = tmp_path / "nf_conntrack"
    table.write_text(PROC_LINE + "\n")
    assert flows.read_table(None, lambda path: table.read_text(), str(table)) == (str(table), [PROC_LINE])
    with pytest.raises(KubeguardError, match="apt install conntrack"):
        flows.read_table(None, lambda path: None, str(tmp_path / "missing"))


def test_a_failing_conntrack_is_an_error_with_its_message(monkeypatch):
    monkeypatch.setattr(flows.shutil, "which", lambda name, path=None: "/usr/sbin/conntrack")
    with pytest.raises(KubeguardError, match="Operation not permitted"):
        flows.read_table(lambda argv: (1, "", "conntrack v1.4.7: Operation not permitted"), None)


def test_lab_capture_one_flow_per_pod_pair_and_port_the_bridge_probe_kept_for_the_controller():
    found = flows.aggregate(LAB_LINES)
    assert [(f["protocol"], f["source"], f["destination"], f["port"], f["via"], f["entries"]) for f in found] == [
        ("TCP", "10.244.0.1", "10.244.0.2", 8181, [], 2),
        ("TCP", "10.244.0.3", "10.244.1.2", 8080, ["10.110.65.62:80"], 1),
        ("TCP", "10.244.0.3", "10.244.2.2", 8080, ["10.110.65.62:80"], 1),
        ("TCP", "10.244.2.3", "10.244.1.2", 8080, [], 2),
        ("UDP", "10.244.0.3", "10.244.0.2", 53, ["10.96.0.10:53"], 1),
    ]
