"""Every module, fed wrong types and values, ends cleanly: Ansible's own argument-spec failure or a
KubeguardError rendered by run_module (the option named first), never a traceback.

Each module's main() runs in this process in check mode, as Ansible runs it, with Hypothesis choosing
the options from its argument spec. Nothing leaves the test: every path option points into a
temporary directory, no command runs (each answers rc 1), and no connection opens (refused).
"""

from __future__ import annotations

import io
import os
import socket
import string
import subprocess
from unittest import mock

import pytest
from ansible.module_utils import basic
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kubeguard_test import modules

SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)
# Values a user gets wrong in real life.
BAD_TEXT = st.sampled_from(
    [
        "",
        " ",
        "10.96.0.0/33",
        "10.0.0.0/8",
        "999.1.1.1",
        "fd00::/129",
        "::zz",
        "-1",
        "0",
        "40000",
        "1e9",
        "1.5",
        "yes",
        "http://127.0.0.1:1",
        "https://[::1",
        "TLS_RSA_WITH_RC4_128_SHA",
        "5m",
        "0s",
        "1h1",
        "kube-*",
        "a/b",
        "../..",
        "\n",
        "é",
        "x" * 300,
    ]
)
TEXT = BAD_TEXT | st.text(alphabet=string.printable, max_size=16)
PATH_NAMES = ("_dir", "_file", "path", "dest", "_store", "backup")


def is_path(name, spec):
    return spec.get("type") == "path" or any(part in name for part in PATH_NAMES)


def value_for(name, spec, tmp):
    """A strategy for one option: mostly its own type with bad values, sometimes any type at all."""
    kind = spec.get("type", "str")
    if is_path(name, spec) and kind in ("path", "str"):
        # never outside the temporary directory: relative names land in it too (the test runs there)
        return st.sampled_from(["", "missing", "a/b", "."]).map(lambda rel: str(tmp / rel) if rel else "")
    if name == "kubeconfig":
        return st.sampled_from([str(tmp / "kubeconfig"), ""]) | st.dictionaries(st.text(max_size=8), JSON, max_size=3)
    if spec.get("choices"):
        own = st.sampled_from(list(spec["choices"]))
    elif kind == "int":
        own = st.integers(min_value=-(2**40), max_value=2**40) | BAD_TEXT
    elif kind == "float":
        own = st.floats(allow_nan=False) | BAD_TEXT
    elif kind == "bool":
        own = st.booleans() | st.sampled_from(["yes", "no", "maybe"])
    elif kind == "list":
        own = st.lists(TEXT if spec.get("elements", "str") == "str" else JSON, max_size=4)
    elif kind == "dict":
        own = st.dictionaries(TEXT, JSON, max_size=4)
    else:
        own = TEXT
    return own | JSON


def params_for(spec, tmp):
    """Required options always, the others sometimes (their default otherwise)."""
    required = {name: value_for(name, option, tmp) for name, option in spec.items() if option.get("required")}
    optional = {name: value_for(name, option, tmp) for name, option in spec.items() if not option.get("required")}
    return st.fixed_dictionaries(required, optional=optional)


class NoProcess:
    """subprocess.Popen that runs nothing: every command exits 1."""

    def __init__(self, args, *unused, **kwargs):
        self.args, self.returncode, self.pid = args, 1, 0
        text = kwargs.get("text") or kwargs.get("universal_newlines") or kwargs.get("encoding")
        self._empty = "" if text else b""
        self.stdin = None
        self.stdout = io.StringIO() if text else io.BytesIO()
        self.stderr = io.StringIO() if text else io.BytesIO()

    def communicate(self, input=None, timeout=None):
        return self._empty, self._empty

    def wait(self, timeout=None):
        return 1

    def poll(self):
        return 1

    def kill(self):
        pass

    terminate = kill

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def refuse(*args, **kwargs):
    raise ConnectionRefusedError("the fuzz test opens no connection")


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(subprocess, "Popen", NoProcess)
    monkeypatch.setattr(basic.AnsibleModule, "run_command", lambda self, *a, **k: (1, "", "fuzz: no command runs"))
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "sendto", refuse)  # no datagram leaves the sandbox either
    monkeypatch.setattr("time.sleep", lambda seconds: None)
    return tmp_path


@pytest.mark.parametrize("name", modules.NAMES)
def test_wrong_types_and_values_end_cleanly(name, sandbox):
    spec = modules.argument_spec(name)

    @settings(
        # the same examples on every run (KUBEGUARD_FUZZ_RANDOM=1 explores new ones)
        max_examples=int(os.environ.get("KUBEGUARD_FUZZ_EXAMPLES", "60")),
        derandomize=not os.environ.get("KUBEGUARD_FUZZ_RANDOM"),
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(params=params_for(spec, sandbox))
    def run(params):
        with mock.patch("time.monotonic", side_effect=_clock()):
            ended = modules.run(name, params)
        if ended.failed:
            msg = ended.result["msg"]
            assert isinstance(msg, str) and msg, ended.result
            assert "Traceback" not in msg, msg
            if "option" in ended.result:  # a KubeguardError through run_module: the option comes first
                option = ended.result["option"]
                assert not option or msg.startswith(f"{option}: "), ended.result

    run()


def _clock():
    """A clock that runs 60 s per call, so a wait loop in a module ends at once instead of sleeping."""
    now = 0.0
    while True:
        now += 60.0
        yield now
