"""The users' requirement files say what the controller needs, and stay true: requirements.yml lists the collections
the roles and playbooks call (none besides ansible.builtin), and requirements-controller.txt allows the versions the
developer set (requirements.txt) pins and tests."""

import pathlib
import re

import yaml
from packaging.requirements import Requirement

REPO = pathlib.Path(__file__).resolve().parents[2]
OWN = {"ansible.builtin", "kubeguard.hardening"}
PLUGIN_CALL = re.compile(
    r"(?:lookup|query)\(\s*['\"]([a-z0-9_]+\.[a-z0-9_]+)\.[a-z0-9_]+|\|\s*([a-z0-9_]+\.[a-z0-9_]+)\.[a-z0-9_]+\b\s*(?:\(|\}|\||$)"
)
BLOCKS = ("block", "rescue", "always", "tasks", "pre_tasks", "post_tasks", "handlers")


def tasks(node):
    """Every task and play of a task file or playbook (nested blocks included)."""
    if isinstance(node, list):
        for item in node:
            yield from tasks(item)
    elif isinstance(node, dict):
        yield node
        for key in BLOCKS:
            yield from tasks(node.get(key))


def collections_used():
    """{namespace.collection: first file} over the actions, roles, lookups and filters of roles and playbooks."""
    used = {}
    files = sorted([*(REPO / "roles").glob("*/tasks/*.yml"), *(REPO / "roles").glob("*/handlers/*.yml")])
    for path in [*files, *sorted((REPO / "playbooks").glob("*.yml"))]:
        text = path.read_text()
        names = [m for g in PLUGIN_CALL.findall(text) for m in g if m]
        for task in tasks(yaml.safe_load(text)):
            names += [k.rsplit(".", 1)[0] for k in task if k.count(".") == 2]
            for role in task.get("roles") or []:
                role = role.get("role") if isinstance(role, dict) else role
                names += [role.rsplit(".", 1)[0]] if role.count(".") == 2 else []
        for name in names:
            used.setdefault(name, str(path.relative_to(REPO)))
    return used


def test_the_scan_sees_the_calls_it_checks():
    used = collections_used()
    assert "ansible.builtin" in used and "kubeguard.hardening" in used


def test_requirements_yml_lists_every_collection_the_roles_call():
    listed = {
        c["name"] if isinstance(c, dict) else c
        for c in yaml.safe_load((REPO / "requirements.yml").read_text())["collections"]
    }
    needed = set(collections_used()) - OWN
    assert needed == listed, {name: collections_used()[name] for name in needed ^ listed if name in collections_used()}


def controller_requirements():
    lines = (REPO / "requirements-controller.txt").read_text().splitlines()
    return [Requirement(line) for line in lines if line.strip() and not line.startswith("#")]


def test_controller_requirements_are_the_runtime_set_only():
    assert sorted(r.name.lower() for r in controller_requirements()) == [
        "ansible-core",
        "cryptography",
        "kubernetes",
        "pyyaml",
    ]


def test_the_tested_pins_satisfy_the_controller_requirements():
    pins = dict(
        m.groups() for m in re.finditer(r"^([A-Za-z0-9_.-]+)==(\S+)", (REPO / "requirements.txt").read_text(), re.M)
    )
    pins = {name.lower(): version for name, version in pins.items()}
    for requirement in controller_requirements():
        version = pins[requirement.name.lower()]
        assert requirement.specifier.contains(version), f"{requirement} excludes the tested {version}"


def test_the_cryptography_floor_is_the_modules():
    floor = re.search(
        r'MIN_CRYPTOGRAPHY_VERSION = "([^"]+)"', (REPO / "plugins/module_utils/_pki/_crypto.py").read_text()
    )
    crypto = next(r for r in controller_requirements() if r.name == "cryptography")
    assert str(crypto.specifier) == f">={floor.group(1)}"
