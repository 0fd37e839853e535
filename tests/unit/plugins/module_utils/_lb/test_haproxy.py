"""The HAProxy drain/undrain logic against a stand-in runtime API on a UNIX socket
(the real HAProxy is exercised by tests/integration/test_ha_site.py)."""

import os
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
        "marker_dir": os.path.join(os.path.dirname(path), "markers"),
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
    assert result["changed"] and result["diff"]["after"].startswith("apiservers/cp1: DRAIN\n")
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


# The drain markers: a killed run's drain is ours to undo, an operator's is not.


def test_drain_writes_a_marker_first_and_ready_removes_it_once_up(api, tmp_path):
    path, _server = api
    p = params(path, marker_dir=str(tmp_path / "markers"))
    drained = haproxy.run(p, check_mode=False)
    marker = drained["marker"]
    assert marker.endswith("/apiservers/cp1") and haproxy.marked(p) == ["cp1"]
    assert oct(os.stat(marker).st_mode & 0o777) == "0o600"
    assert "drained by kubeguard" in drained["diff"]["after"] and "kubeguard" not in drained["diff"]["before"]
    again = haproxy.run(p, check_mode=False)
    assert not again["changed"] and again["marker"] == marker
    ready = haproxy.run({**p, "state": "ready"}, check_mode=False)
    assert ready["changed"] and ready["marker"] == "" and haproxy.marked(p) == []
    assert not haproxy.run({**p, "state": "ready"}, check_mode=False)["changed"]


def test_the_marker_key_holds_the_runtime_api_so_two_load_balancers_do_not_mix(api, tmp_path):
    path, _server = api
    p = params(path, marker_dir=str(tmp_path / "markers"))
    haproxy.run(p, check_mode=False)
    assert haproxy.marked({**p, "runtime_api": "10.9.9.9:9999"}) == []


def test_check_mode_writes_no_marker_and_diff_shows_it(api, tmp_path):
    path, server = api
    p = params(path, marker_dir=str(tmp_path / "markers"))
    result = haproxy.run(p, check_mode=True)
    assert result["changed"] and "drained by kubeguard" in result["diff"]["after"]
    assert not (tmp_path / "markers").exists() and server.servers["cp1"] == (2, 0)


def test_an_operators_drain_gets_no_marker_and_heal_leaves_it(api, tmp_path):
    path, server = api
    server.servers["cp2"] = (2, 0x08)
    p = params(path, server="cp2", marker_dir=str(tmp_path / "markers"))
    assert not haproxy.run(p, check_mode=False)["changed"] and haproxy.marked(p) == []
    healed = haproxy.run({**p, "state": "heal", "server": None}, check_mode=False)
    assert not healed["changed"] and healed["healed"] == [] and server.servers["cp2"] == (2, 0x08)
    assert not server.commands[-1].startswith("set ")


def test_only_marked_ready_leaves_an_operators_drain_and_waits_for_its_check(api, tmp_path):
    """The roles' drain → restart → ready on a server the operator drained first: it stays drained."""
    path, server = api
    server.servers["cp2"] = (2, 0x08)
    p = params(path, server="cp2", marker_dir=str(tmp_path / "markers"), only_marked=True)
    assert not haproxy.run(p, check_mode=False)["changed"]  # the drain: already drained, no marker
    for check_mode in (True, False):
        asked = len(server.commands)
        ready = haproxy.run({**p, "state": "ready"}, check_mode=check_mode)
        assert len(server.commands) == asked + 1  # one read: the check already passes, nothing to wait for
        assert not ready["changed"] and ready["state"] == "DRAIN (UP)", ready
        assert ready["warnings"] == ["apiservers/cp2 is DRAIN (UP) without kubeguard's drain marker: left drained"]
        assert ready["diff"]["before"] == ready["diff"]["after"] == "apiservers/cp2: DRAIN (UP)\n"
    assert server.servers["cp2"] == (2, 0x08) and not any(c.startswith("set ") for c in server.commands)


def test_only_marked_ready_fails_naming_the_timeout_when_the_drained_server_stays_down(api, tmp_path):
    path, server = api
    server.servers["cp3"] = (0, 0x08)
    p = params(path, server="cp3", state="ready", timeout=1, marker_dir=str(tmp_path / "m"), only_marked=True)
    with pytest.raises(KubeguardError) as error:
        haproxy.run(p, check_mode=False)
    assert error.value.option == "timeout" and "stays drained (not by kubeguard)" in str(error.value)
    assert server.servers["cp3"] == (0, 0x08)
    # In maintenance HAProxy checks nothing: nothing to wait for, still left as it is.
    server.servers["cp3"] = (0, 0x01)
    assert haproxy.run(p, check_mode=False)["state"] == "MAINT"


def test_only_marked_ready_puts_back_a_server_it_drained(api, tmp_path):
    path, server = api
    p = params(path, marker_dir=str(tmp_path / "markers"), only_marked=True)
    assert haproxy.run(p, check_mode=False)["changed"] and haproxy.marked(p) == ["cp1"]
    ready = haproxy.run({**p, "state": "ready"}, check_mode=False)
    assert ready["changed"] and ready["state"] == "UP" and server.servers["cp1"] == (2, 0)
    assert haproxy.marked(p) == []


def test_heal_without_markers_does_not_ask_haproxy(tmp_path):
    p = params(str(tmp_path / "missing.sock"), state="heal", server=None, marker_dir=str(tmp_path / "m"))
    assert haproxy.run(p, check_mode=False) == {
        "changed": False,
        "backend": "apiservers",
        "marked": [],
        "healed": [],
        "warnings": [],
        "diff": {"before": "", "after": ""},
    }


def killed_after_drain(api, tmp_path, name):
    """A run killed between drain and ready: the server drained, its marker left."""
    path, server = api
    p = params(path, server=name, marker_dir=str(tmp_path / "markers"))
    haproxy.run(p, check_mode=False)
    return {**p, "state": "heal", "server": None}, server


def test_heal_puts_back_a_marked_server_waits_for_up_and_is_idempotent(api, tmp_path):
    p, server = killed_after_drain(api, tmp_path, "cp1")
    assert server.servers["cp1"] == (2, 0x08)
    checked = haproxy.run(p, check_mode=True)
    assert checked["changed"] and checked["healed"] == ["cp1"] and server.servers["cp1"] == (2, 0x08)
    assert haproxy.marked(p) == ["cp1"]
    healed = haproxy.run(p, check_mode=False)
    assert healed["changed"] and healed["healed"] == ["cp1"] and server.servers["cp1"] == (2, 0)
    assert "cp1: DRAIN (UP)" in healed["diff"]["before"] and "cp1: READY" in healed["diff"]["after"]
    assert haproxy.marked(p) == [] and not haproxy.run(p, check_mode=False)["changed"]


def test_heal_refuses_a_marked_server_whose_health_check_fails_and_keeps_its_marker(api, tmp_path):
    p, server = killed_after_drain(api, tmp_path, "cp1")
    server.servers["cp1"] = (0, 0x08)  # its apiserver's /readyz fails
    ticks = iter(range(100))
    with pytest.raises(KubeguardError) as err:
        haproxy.run(p, check_mode=False, clock=lambda: next(ticks), sleep=lambda _s: None)
    assert err.value.option == "server" and "apiservers/cp1" in err.value.message and "DOWN" in err.value.message
    assert server.servers["cp1"] == (0, 0x08) and haproxy.marked(p) == ["cp1"]


def test_heal_drops_the_marker_of_a_server_already_back_or_in_maintenance(api, tmp_path):
    p, server = killed_after_drain(api, tmp_path, "cp1")
    server.servers["cp1"] = (2, 0x01)  # the operator put it in maintenance since
    result = haproxy.run(p, check_mode=False)
    assert result["changed"] and result["healed"] == []
    assert "MAINT" in result["warnings"][0] and server.servers["cp1"] == (2, 0x01) and haproxy.marked(p) == []


def test_a_relative_marker_dir_names_the_option(api):
    path, _server = api
    with pytest.raises(KubeguardError) as err:
        haproxy.run(params(path, marker_dir="relative/dir"), check_mode=False)
    assert err.value.option == "marker_dir"


def test_heal_waits_for_a_restart_under_way_before_putting_the_server_back(api, tmp_path):
    p, server = killed_after_drain(api, tmp_path, "cp1")
    server.servers["cp1"] = (0, 0x08)

    def restart_done(_seconds):
        server.servers["cp1"] = (2, server.servers["cp1"][1])

    healed = haproxy.run(p, check_mode=False, sleep=restart_done)
    assert healed["healed"] == ["cp1"] and server.servers["cp1"] == (2, 0) and haproxy.marked(p) == []
