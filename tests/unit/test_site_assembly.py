"""site.yml assembles kube-apiserver once: the contributing roles run in a play
that only hands their config on (kubeguard_apiserver_assembly), the control
plane applies it, and the encryption steps follow. A reorder that put a
contributing role after the control plane would restart the apiserver again."""

import pathlib

import yaml

PLAYBOOKS = pathlib.Path(__file__).resolve().parents[2] / "playbooks"


def imports():
    return [play["ansible.builtin.import_playbook"] for play in yaml.safe_load((PLAYBOOKS / "site.yml").read_text())]


def test_contributions_come_before_the_control_plane_and_the_steps_after():
    order = imports()
    assert order.index("cluster_pki.yml") < order.index("apiserver_contributions.yml")
    assert order.index("apiserver_contributions.yml") < order.index("control_plane.yml")
    assert order.index("control_plane.yml") < order.index("encryption_at_rest_steps.yml")
    # the contributing roles' own playbooks (with their own restart) are not imported
    assert "api_access.yml" not in order and "encryption_at_rest.yml" not in order


def test_the_contributions_play_only_hands_config_on():
    (play,) = yaml.safe_load((PLAYBOOKS / "apiserver_contributions.yml").read_text())
    assert play["vars"]["kubeguard_apiserver_assembly"] is True
    assert [r["role"].rsplit(".", 1)[-1] for r in play["roles"]] == ["api_access", "encryption_at_rest"]


def test_every_contributing_role_hands_on_a_prefixed_fact():
    roles = PLAYBOOKS.parent / "roles"
    for role in ("api_access", "encryption_at_rest"):
        text = "".join(p.read_text() for p in sorted((roles / role / "tasks").glob("*.yml")))
        assert f"{role}_apiserver_contribution:" in text, role
    control_plane = (roles / "control_plane/tasks/main.yml").read_text()
    assert "_apiserver_contribution$" in control_plane
    # the contributors' tags select the apiserver task (and the check's copy of them); nothing else of theirs is named
    named = []

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key not in ("tags", "control_plane_check_tags"):
                    named.append(str(key))
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)
        else:
            named.append(str(node))

    walk(yaml.safe_load(control_plane))
    assert [text for text in named if "api_access" in text or "encryption_at_rest" in text] == []
