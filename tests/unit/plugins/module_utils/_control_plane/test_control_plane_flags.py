"""Command lines, systemd ExecStart values and --help texts (pure)."""

import pytest
from ansible_collections.kubeguard.hardening.plugins.module_utils._control_plane import flags

APISERVER_HELP = """
      --enable-admission-plugins strings    admission plugins that should be enabled in addition to default
                                            enabled ones (NamespaceLifecycle, LimitRanger). Comma-delimited list of
                                            admission plugins: AlwaysAdmit, AlwaysPullImages, EventRateLimit,
                                            NodeRestriction, ServiceAccount. The order of plugins in this flag
                                            does not matter.
      --profiling                           Enable profiling via web interface host:port/debug/pprof/ (default true)
      --tls-cipher-suites strings           Comma-separated list of cipher suites for the server. If omitted, the
                                            default Go cipher suites will be used.
                                            Preferred values: TLS_AES_128_GCM_SHA256,
                                            TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256.
                                            Insecure values: TLS_RSA_WITH_RC4_128_SHA.
  -v, --v Level                             number for the log level verbosity
"""


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], ("", {})),
        (["/bin/etcd"], ("/bin/etcd", {})),
        (["etcd", "--a=1", "--b", "2", "--c"], ("etcd", {"a": "1", "b": "2", "c": "true"})),
        (["etcd", "--a=1", "--a=2"], ("etcd", {"a": "2"})),
        (["etcd", "--x=a=b"], ("etcd", {"x": "a=b"})),
        (["etcd", "-v", "2"], ("etcd", {"v": "2"})),
    ],
)
def test_parse_argv(argv, expected):
    assert flags.parse_argv(argv) == expected


def test_render_is_sorted_and_round_trips():
    argv = flags.render_argv("/bin/x", {"b": "2", "a": "1"})
    assert argv == ["/bin/x", "--a=1", "--b=2"]
    assert flags.parse_argv(argv) == ("/bin/x", {"a": "1", "b": "2"})


@pytest.mark.parametrize(
    ("text", "argv"),
    [
        ("[Service]\nExecStart=/bin/etcd \\\n --a=1 \\\n --b=2\n", ["/bin/etcd", "--a=1", "--b=2"]),
        ("ExecStart=/bin/etcd --a=1\n[Service]\nExecStart=\nExecStart=/bin/etcd --z=9\n", ["/bin/etcd", "--z=9"]),
        ("[Service]\nExecStart=-/bin/etcd --a='x y'\n", ["/bin/etcd", "--a=x y"]),
        ("[Service]\nExecStart=/bin/etcd\nExecStart=\n", []),
        ("[Unit]\nDescription=x\n", []),
    ],
)
def test_exec_start_follows_systemd_reset_rules(text, argv):
    assert flags.exec_start(text) == argv


def test_dropin_round_trips_through_exec_start():
    argv = ["/usr/local/bin/kube-apiserver", "--a=1", "--b=x y", "--c=$HOME", "--d=50%", "--e=*,-x"]
    text = flags.render_dropin(argv, "# header")
    assert text.startswith("# header\n[Service]\nExecStart=\n")
    assert flags.exec_start("[Service]\nExecStart=/old --gone=1\n" + text) == argv


def test_help_flags_admission_plugins_and_ciphers():
    assert flags.help_flags(APISERVER_HELP) == ["enable-admission-plugins", "profiling", "tls-cipher-suites", "v"]
    assert flags.admission_plugins(APISERVER_HELP) == [
        "AlwaysAdmit",
        "AlwaysPullImages",
        "EventRateLimit",
        "NodeRestriction",
        "ServiceAccount",
    ]
    assert flags.cipher_suites(APISERVER_HELP) == {
        "preferred": ["TLS_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"],
        "insecure": ["TLS_RSA_WITH_RC4_128_SHA"],
    }
    assert flags.admission_plugins("") == []
    assert flags.cipher_suites("") == {"preferred": [], "insecure": []}


def test_diff_lines_lists_each_change():
    assert flags.diff_lines({"a": "1", "b": "2", "c": "3"}, {"a": "1", "b": "9", "d": "4"}) == [
        "~ --b: 2 -> 9",
        "- --c=3",
        "+ --d=4",
    ]
