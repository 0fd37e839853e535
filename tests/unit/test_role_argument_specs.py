"""Every role's defaults/main.yml and meta/argument_specs.yml agree exactly:
one source of truth for role inputs (style rule 2). Generic over roles/*."""

import pathlib

import pytest
import yaml

ROLES = sorted(p for p in (pathlib.Path(__file__).resolve().parents[2] / "roles").iterdir() if p.is_dir())


def load(path):
    if not path.exists():
        return {}
    return yaml.safe_load(path.read_text()) or {}


def options(role, entry="main"):
    specs = load(role / "meta/argument_specs.yml").get("argument_specs", {})
    return (specs.get(entry) or {}).get("options") or {}


@pytest.mark.parametrize("role", ROLES, ids=[r.name for r in ROLES])
def test_role_has_an_argument_spec(role):
    assert (role / "meta/argument_specs.yml").exists()
    assert options(role), "meta/argument_specs.yml documents no option of the main entry point"


@pytest.mark.parametrize("role", ROLES, ids=[r.name for r in ROLES])
def test_defaults_and_argument_specs_agree(role):
    defaults = load(role / "defaults/main.yml")
    specs = options(role)
    assert sorted(set(defaults) - set(specs)) == [], "defaults without an argument spec"
    with_default = {name for name, spec in specs.items() if "default" in spec}
    assert sorted(with_default - set(defaults)) == [], "argument specs with a default missing from defaults/main.yml"
    for name in defaults:
        assert specs[name].get("default") == defaults[name], f"{name}: defaults/main.yml and argument_specs.yml differ"


# The shared inventory contract has one home: only this role declares it.
CONTRACT_ROLE = "kubeguard"
CONTRACT = {
    "kubeguard_node_name",
    "kubeguard_node_ip",
    "kubeguard_node_ip_check_enabled",
    "kubeguard_cluster_name",
    "kubeguard_control_plane_endpoint",
    "kubeguard_api_extra_sans",
    "kubeguard_kubeconfig",
    "kubeguard_serial_control_plane",
    "kubeguard_serial_workers",
    "kubeguard_serial_ssh",
    # The shared layout (issue 18): one home, read by every role.
    "kubeguard_kubernetes_dir",
    "kubeguard_pki_dir",
    "kubeguard_config_dir",
    "kubeguard_pki_output_dir",
    "kubeguard_api_host",
    # Set by site.yml: one kube-apiserver assembly per run.
    "kubeguard_apiserver_assembly",
    "kubeguard_store_vault_password_file",
    "kubeguard_store_vault_id",
    # The API load balancer's drain around each apiserver restart (control_plane, cluster_pki).
    # site.yml's fast rerun (docs/fast-rerun.md).
    "kubeguard_fast_rerun_enabled",
    "kubeguard_fast_rerun_stamp",
    "kubeguard_fast_rerun_max_age_hours",
    "kubeguard_fast_rerun_trees",
    "kubeguard_fast_rerun_paths",
    "kubeguard_fast_rerun_units",
    "kubeguard_fast_rerun_nft_tables",
    "kubeguard_fast_rerun_sysctl_files",
    "kubeguard_fast_rerun_controller_paths",
    "kubeguard_lb_drain_enabled",
    "kubeguard_lb_drain_haproxy_runtime_api",
    "kubeguard_lb_drain_haproxy_backend",
    "kubeguard_lb_drain_tasks",
    "kubeguard_lb_drain_undrain_tasks",
    "kubeguard_lb_drain_server",
    "kubeguard_lb_drain_host",
    "kubeguard_lb_drain_timeout",
    "kubeguard_lb_drain_marker_dir",
}
# Names of layout variables that once lived in several roles: only the contract may define one.
LAYOUT_SUFFIXES = ("_api_host", "_kubernetes_dir", "_pki_output_dir", "_output_dir", "_config_dir")


@pytest.mark.parametrize("role", ROLES, ids=[r.name for r in ROLES])
def test_every_variable_carries_the_role_prefix(role):
    names = set(load(role / "defaults/main.yml")) | set(options(role))
    allowed = CONTRACT if role.name == CONTRACT_ROLE else set()
    assert sorted(n for n in names if not n.startswith(f"{role.name}_") and n not in allowed) == []


def test_the_contract_role_declares_exactly_the_contract():
    role = ROLES[[r.name for r in ROLES].index(CONTRACT_ROLE)]
    assert set(options(role)) == CONTRACT


@pytest.mark.parametrize("role", ROLES, ids=[r.name for r in ROLES])
def test_no_role_defines_its_own_layout(role):
    if role.name == CONTRACT_ROLE:
        return
    names = set(load(role / "defaults/main.yml")) | set(options(role))
    assert sorted(n for n in names if n.endswith(LAYOUT_SUFFIXES)) == []


@pytest.mark.parametrize("role", ROLES, ids=[r.name for r in ROLES])
def test_roles_reading_the_contract_depend_on_its_role(role):
    if role.name == CONTRACT_ROLE:
        return
    text = "".join(p.read_text() for p in sorted(role.rglob("*.yml")))
    if "kubeguard_" not in text.replace("kubeguard.hardening", ""):
        pytest.skip(f"{role.name} reads no kubeguard_* variable")
    dependencies = load(role / "meta/main.yml").get("dependencies") or []
    names = {(d.get("role") if isinstance(d, dict) else d).rsplit(".", 1)[-1] for d in dependencies}
    assert CONTRACT_ROLE in names


@pytest.mark.parametrize("role", ROLES, ids=[r.name for r in ROLES])
def test_every_option_is_described_and_typed(role):
    for name, spec in options(role).items():
        assert spec.get("description"), f"{name} has no description"
        assert spec.get("type"), f"{name} has no type"
