"""The HAProxy drain/undrain logic against a stand-in runtime API on a UNIX socket
(the real HAProxy is exercised by tests/integration/test_ha_site.py)."""

import socket
import threading

import pytest
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError
from ansible_collections.kubeguard.hardening.plugins.module_utils._lb import haproxy

HEADER = "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight\n"


class RuntimeAPI:
    """Answers `show servers state` from ``servers`` and records `set server` commands."""

    def __init__(self, path, servers):
        self.servers, self.commands = servers, []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(8)
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                conn, _unused = self.sock.accept()
            except OSError:
                return
            with conn:
                line = conn.makefile().readline().strip()
                self.commands.append(line)
                conn.sendall(self.answer(line).encode())

    def answer(self, line):
        if line == "show servers state apiservers":
            rows = [
                f"3 apiservers {i} {n} 10.0.0.{i} {op} {adm} 1"
                for i, (n, (op, adm)) in enumerate(self.servers.items(), 1)
            ]
            return HEADER + "\n".join(rows) + "\n\n"
        if line.startswith("show servers state"):
            return "Can't find backend.\n"
        if line.startswith("set server apiservers/"):
            name, state = line.split("/", 1)[1].split(" state ")
            op, _unused = self.servers[name]
            self.servers[name] = (op, 0x08 if state == "drain" else 0)
            return "\n"
        return "Unknown command.\n"


@pytest.fixture
def api(tmp_path):
    path = str(tmp_path / "admin.sock")
    server = RuntimeAPI(path, {"cp1": (2, 0), "cp2": (2, 0), "cp3": (0, 0)})
    yield path, server
    server.sock.close()


def params(path, **extra):
    return {
        "runtime_api": path,
        "backend": "apiservers",
        "server": "cp1",
        "state": "drain",
        "wait": True,
        "timeout": 5,
        **extra,
    }


def test_drain_then_ready_waits_for_up_and_a_second_call_changes_nothing(api):
    path, server = api
    drained = haproxy.run(params(path), check_mode=False)
    assert drained["changed"] and drained["before"] == "UP" and drained["state"] == "DRAIN (UP)"
    assert drained["others_in_rotation"] == ["cp2"]
    assert "set server apiservers/cp1 state drain" in server.commands
    assert not haproxy.run(params(path), check_mode=False)["changed"]
    ready = haproxy.run(params(path, state="ready"), check_mode=False)
    assert ready["changed"] and ready["state"] == "UP"
    assert not haproxy.run(params(path, state="ready"), check_mode=False)["changed"]


def test_check_mode_reports_the_change_and_sends_no_set_command(api):
    path, server = api
    result = haproxy.run(params(path), check_mode=True)
    assert result["changed"] and result["diff"]["after"] == "apiservers/cp1: DRAIN\n"
    assert not [c for c in server.commands if c.startswith("set ")]
    assert server.servers["cp1"] == (2, 0)


def test_refuses_to_drain_the_last_server_in_rotation(api):
    path, server = api
    server.servers["cp2"] = (2, 0x08)
    with pytest.raises(KubeguardError) as err:
        haproxy.run(params(path), check_mode=False)
    assert err.value.option == "server" and "no other server" in err.value.message
    assert server.servers["cp1"] == (2, 0)


def test_ready_times_out_naming_the_timeout_while_the_check_says_down(api):
    path, server = api
    server.servers["cp3"] = (0, 0x08)
    ticks = iter(range(100))
    with pytest.raises(KubeguardError) as err:
        haproxy.run(params(path, server="cp3", state="ready"), False, clock=lambda: next(ticks), sleep=lambda _s: None)
    assert err.value.option == "timeout" and "DOWN" in err.value.message
    assert server.servers["cp3"] == (0, 0)  # back in rotation: HAProxy's check decides


@pytest.mark.parametrize(
    ("option", "value", "needle"),
    [
        ("server", "cp9", "no server 'cp9'"),
        ("backend", "nope", "no backend 'nope'"),
        ("runtime_api", "nohost", "neither"),
    ],
)
def test_bad_input_names_the_option(api, option, value, needle):
    path, _server = api
    with pytest.raises(KubeguardError) as err:
        haproxy.run(params(path, **{option: value}), check_mode=False)
    assert err.value.option == option and needle in err.value.message


def test_an_unreachable_runtime_api_names_it(tmp_path):
    with pytest.raises(KubeguardError) as err:
        haproxy.run(params(str(tmp_path / "missing.sock")), check_mode=False)
    assert err.value.option == "runtime_api" and "cannot reach" in err.value.message
