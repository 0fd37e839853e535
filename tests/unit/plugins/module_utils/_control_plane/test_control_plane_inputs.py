"""Control-plane inputs refused before anything is written or restarted, naming the role variable."""

import copy

import pytest
from ansible_collections.kubeguard.hardening.plugins.module_utils._control_plane import desired, inputs
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError
from test_control_plane_desired import BINARY, params

ETCD = {"version": "etcd Version: 3.6.5", "help_flags": ["cipher-suites", "data-dir"]}


@pytest.mark.parametrize(
    ("component", "binary", "change", "option", "words"),
    [
        # The first case: etcd, whose --help lists no suites, restarted and failed 120 s on it.
        ("etcd", ETCD, {"tls_cipher_suites": ["TLS_RSA_WITH_RC4_128_SHA"]}, "control_plane_tls_cipher_suites", "RC4"),
        (
            "kube-apiserver",
            BINARY,
            {"tls_cipher_suites": ["TLS_RSA_WITH_RC4_128_SHA"]},
            "control_plane_tls_cipher_suites",
            "RC4",
        ),
        (
            "kube-scheduler",
            BINARY,
            {"tls_cipher_suites": ["TLS_RSA_WITH_AES_128_CBC_SHA"]},
            "control_plane_tls_cipher_suites",
            "RSA key exchange",
        ),
        ("etcd", ETCD, {"tls_cipher_suites": ["TLS_NOPE"]}, "control_plane_tls_cipher_suites", "unknown"),
        # The second case: the apiserver restarted and failed 132 s on it.
        (
            "kube-apiserver",
            BINARY,
            {"etcd_servers": ["http://10.123.0.10:2379"]},
            "control_plane_etcd_servers",
            "https:// only",
        ),
        (
            "kube-apiserver",
            BINARY,
            {"etcd_servers": ["unix:///run/etcd.sock"]},
            "control_plane_etcd_servers",
            "not a URL",
        ),
        (
            "kube-apiserver",
            BINARY,
            {"etcd_servers": ["https://10.123.0.10"]},
            "control_plane_etcd_servers",
            "needs a port",
        ),
        (
            "kube-apiserver",
            BINARY,
            {"etcd_servers": ["https://10.123.0.10:0"]},
            "control_plane_etcd_servers",
            "needs a port",
        ),
        ("kube-apiserver", BINARY, {"etcd_servers": ["10.123.0.10:2379"]}, "control_plane_etcd_servers", "not a URL"),
        ("kube-apiserver", BINARY, {"etcd_servers": []}, "control_plane_etcd_servers", "non-empty"),
        (
            "kube-apiserver",
            BINARY,
            {"etcd_servers": "https://10.123.0.10:2379"},
            "control_plane_etcd_servers",
            "non-empty list",
        ),
        (
            "kube-apiserver",
            BINARY,
            {"etcd_servers": ["https://10.123.0.10:2379", "https://10.123.0.10:2379/"]},
            "control_plane_etcd_servers",
            "same member",
        ),
        (
            "kube-apiserver",
            BINARY,
            {"etcd_servers": ["https://[fd00::a]:2379", "https://[FD00:0::A]:2379"]},
            "control_plane_etcd_servers",
            "same member",
        ),
        ("kube-apiserver", BINARY, {"request_timeout": "1d"}, "control_plane_request_timeout", "Go duration"),
        ("kube-apiserver", BINARY, {"request_timeout": "60"}, "control_plane_request_timeout", "missing unit"),
        (
            "kube-apiserver",
            BINARY,
            {"shutdown_watch_termination_grace_period": "-5s"},
            "control_plane_shutdown_watch_termination_grace_period",
            "negative",
        ),
        (
            "kube-scheduler",
            BINARY,
            {"extra_flags": {"no-such-flag": "1"}},
            "control_plane_scheduler_extra_flags",
            "no-such-flag",
        ),
    ],
)
def test_refused_before_any_write(component, binary, change, option, words):
    with pytest.raises(KubeguardError) as err:
        desired.validate(component, params(**change), copy.deepcopy(binary))
    assert err.value.option == option
    assert words in str(err.value)


@pytest.mark.parametrize(
    "change",
    [
        {"request_timeout": "1m30s"},  # the old parser took a single unit only
        {"shutdown_watch_termination_grace_period": "1.5s"},
        {"etcd_servers": ["https://10.123.0.10:2379", "https://10.123.0.11:2379"]},
        {"etcd_servers": ["https://etcd-1.example:2379", "https://[fd00::a]:2379"]},
        {"tls_cipher_suites": ["TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305"]},  # alias, not printed by --help
    ],
)
def test_accepted(change):
    desired.validate("kube-apiserver", params(**change), BINARY)


@pytest.mark.parametrize(
    ("urls", "members", "missing"),
    [
        (["https://10.123.0.10:2379"], ["10.123.0.10", "10.123.0.11"], "10.123.0.11"),
        (["https://[fd00::a]:2379"], ["fd00::b"], "fd00::b"),
    ],
)
def test_an_inventory_member_left_out(urls, members, missing):
    with pytest.raises(KubeguardError) as err:
        inputs.etcd_servers(urls, members)
    assert err.value.option == "control_plane_etcd_servers"
    assert f"leaves out the inventory etcd member(s) {missing}" in str(err.value)


def test_every_member_listed():
    assert inputs.etcd_servers(["https://10.123.0.11:2379", "https://10.123.0.10:2379"], ["10.123.0.10", "10.123.0.11"])
