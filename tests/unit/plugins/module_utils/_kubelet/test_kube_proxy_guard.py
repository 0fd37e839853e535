"""The kube-proxy restart guard: its ExecStartPre commands run by a real sh."""

import shlex
import subprocess

import pytest
from ansible_collections.kubeguard.hardening.plugins.module_utils._kubelet import kube_proxy_guard

GUARDED_TABLE = """table ip kube-proxy {
\tchain endpoint-2GKX576Q-kube-system/kube-dns/udp/dns__10.244.0.2/53 {
%s\t}

\tchain service-FY5PMXPG-kube-system/kube-dns/udp/dns {
\t\tnumgen random mod 1 vmap { 0 : goto endpoint-2GKX576Q-kube-system/kube-dns/udp/dns__10.244.0.2/53 }
\t}
}
"""


@pytest.mark.parametrize(
    ("rules", "deleted"),
    [
        ("", ["delete table ip kube-proxy", "delete table ip6 kube-proxy"]),
        ("\t\tip saddr 10.244.0.2 jump mark-for-masquerade\n\t\tmeta l4proto udp dnat to 10.244.0.2:53\n", []),
    ],
)
def test_kube_proxy_guard_deletes_only_a_table_with_an_empty_endpoint_chain(tmp_path, rules, deleted):
    """The drop-in's ExecStartPre commands, run by sh with an nft that prints a table and logs deletions."""
    (tmp_path / "table").write_text(GUARDED_TABLE % rules)
    nft = tmp_path / "nft"
    nft.write_text(f'#!/bin/sh\n[ "$1" = list ] && exec cat {tmp_path}/table\necho "$*" >> {tmp_path}/log\n')
    nft.chmod(0o755)
    commands = [
        line.split("=", 1)[1] for line in kube_proxy_guard.TEXT.splitlines() if line.startswith("ExecStartPre=")
    ]
    assert len(commands) == 2
    for command in commands:
        argv = shlex.split(command.lstrip("-"))
        run = subprocess.run(argv, env={"PATH": f"{tmp_path}:/usr/bin:/bin"}, capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
    log = tmp_path / "log"
    assert (log.read_text().splitlines() if log.exists() else []) == deleted
