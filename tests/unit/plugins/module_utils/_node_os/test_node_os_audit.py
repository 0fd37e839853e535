"""auditd watches: the grammar check, rendering, and the container case (pure, fake node)."""

import os

import pytest
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError
from ansible_collections.kubeguard.hardening.plugins.module_utils._node_os import audit


class Node:
    def __init__(self, status=(1, "", "Error sending status request (Operation not permitted)"), listed=""):
        self.status, self.listed, self.calls = status, listed, []

    def run_command(self, argv):
        self.calls.append(argv)
        if argv[:2] == ["auditctl", "-s"]:
            return self.status
        if argv[:2] == ["auditctl", "-l"]:
            return 0, self.listed, ""
        return 0, "", ""

    def atomic_move(self, src, dest):
        os.replace(src, dest)


@pytest.mark.parametrize(
    ("watch", "words"),
    [
        ({"path": "etc/kubernetes", "perms": "wa", "key": "k"}, "absolute"),
        ({"path": "/etc/my dir", "perms": "wa", "key": "k"}, "absolute"),
        ({"path": "/etc/kubernetes", "perms": "wq", "key": "k"}, "perms"),
        ({"path": "/etc/kubernetes", "perms": "ww", "key": "k"}, "perms"),
        ({"path": "/etc/kubernetes", "perms": "wa", "key": "x" * 32}, "key"),
        ({"path": "/etc/kubernetes", "perms": "wa", "key": "a b"}, "key"),
        ({"perms": "wa"}, "dict"),
    ],
)
def test_what_auditctl_would_refuse_is_refused(watch, words):
    with pytest.raises(KubeguardError) as err:
        audit.check_watch(watch, 3)
    assert err.value.option == "node_os_audit_watches[3]"
    assert words in err.value.message


def test_rules_render_as_watches_and_read_back(tmp_path):
    (tmp_path / "pki").mkdir()
    watches = [{"path": str(tmp_path / "pki") + "/", "perms": "wa", "key": "kubeguard-pki"},
               {"path": str(tmp_path / "missing/deeper"), "key": "x"}]  # fmt: skip
    kept, absent = audit.plan(watches)
    assert absent == [str(tmp_path / "missing/deeper")]
    text = audit.render(kept, "test")
    rule = text.splitlines()[-1]
    assert rule == f"-w {tmp_path / 'pki'} -p wa -k kubeguard-pki"
    assert audit.parse_rule(rule) == {"path": str(tmp_path / "pki"), "perms": "wa", "key": "kubeguard-pki"}


def test_a_container_node_gets_the_file_and_the_kernels_reason(tmp_path):
    p = {"watches": [{"path": str(tmp_path), "perms": "wa", "key": "k"}], "header": "t",
         "rules_file": str(tmp_path / "rules.d/60.rules")}  # fmt: skip
    node = Node()
    result = audit.run(p, False, node)
    assert result["changed"]
    assert result["kernel"] == {"available": False, "detail": "Error sending status request (Operation not permitted)"}
    assert (tmp_path / "rules.d/60.rules").read_text().endswith(f"-w {tmp_path} -p wa -k k\n")
    assert ["augenrules", "--load"] not in node.calls
    assert not audit.run(p, False, Node())["changed"]


def test_a_host_loads_missing_rules_and_a_rerun_changes_nothing(tmp_path):
    p = {"watches": [{"path": str(tmp_path), "perms": "wa", "key": "k"}], "header": "t",
         "rules_file": str(tmp_path / "60.rules")}  # fmt: skip
    node = Node(status=(0, "enabled 1", ""))
    assert audit.run(p, False, node)["changed"]
    assert ["augenrules", "--load"] in node.calls
    loaded = Node(status=(0, "enabled 1", ""), listed=f"-w {tmp_path} -p wa -k k\n")
    assert not audit.run(p, False, loaded)["changed"]
