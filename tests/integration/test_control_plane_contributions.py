"""The contribution entry point (control_plane tasks_from: apiserver) that
api_access and encryption_at_rest use: another role's apiserver flags and files
go through the same validate -> restart -> /readyz -> rollback path, stay put
on later control_plane runs, and a bad contribution is rolled back."""

import json

import pytest
import yaml
from conftest import ansible_playbook
from kubeguard_test.api import api_port, https

pytestmark = pytest.mark.lab

ROLE = "kubeguard.hardening.control_plane"
CONFIG = "/etc/kubernetes/kubeguard/contribution-test-authn.yaml"
# Anonymous requests only for the health endpoints (the structured form of --anonymous-auth).
HEALTH_ONLY = {
    "apiVersion": "apiserver.config.k8s.io/v1",
    "kind": "AuthenticationConfiguration",
    "anonymous": {"enabled": True, "conditions": [{"path": p} for p in ("/healthz", "/livez", "/readyz")]},
}


def contribute(lab, tmp_path, flags, files, *extra):
    play = [
        {
            "name": "Contribute to kube-apiserver",
            "hosts": "control_plane",
            "gather_facts": False,
            "become": True,
            "tasks": [
                {
                    "name": "Apply the contribution through the safe restart path",
                    "ansible.builtin.include_role": {
                        "name": "kubeguard.hardening.control_plane",
                        "tasks_from": "apiserver",
                    },
                    "vars": {
                        "control_plane_apiserver_contributed_flags": flags,
                        "control_plane_apiserver_contributed_files": files,
                    },
                }
            ],
        }
    ]
    book = tmp_path / "contribute.yml"
    book.write_text(yaml.safe_dump(play))
    return ansible_playbook(lab.inventory, str(book), *extra)


def anonymous(lab, path):
    return https(api_port(lab.kubeconfig), path)[0]


def apiserver_flags(lab):
    host = lab.groups["control_plane"][0]
    pid = lab.podman_exec(host, "pgrep", "-o", "-f", "^[^ ]*kube-apiserver ").stdout.split()[0]
    argv = lab.podman_exec(host, "cat", f"/proc/{pid}/cmdline").stdout.split("\0")
    return dict(a[2:].split("=", 1) for a in argv if a.startswith("--") and "=" in a)


@pytest.fixture(scope="module")
def contributed(lab, tmp_path_factory):
    """The hardened lab, then an authentication config that opens only the health endpoints."""
    run, _ = ansible_playbook(lab.inventory, "site.yml", "--tags", "cluster_pki,control_plane")
    assert run.returncode == 0, run.stdout[-3000:]
    tmp = tmp_path_factory.mktemp("contrib")
    before = apiserver_flags(lab)  # api_access may own authentication already: give it back after
    restore = {name: before.get(name) for name in ("authentication-config", "anonymous-auth")}
    flags = {"authentication-config": CONFIG, "anonymous-auth": None}
    first, first_recap = contribute(lab, tmp, flags, {CONFIG: yaml.safe_dump(HEALTH_ONLY)})
    assert first.returncode == 0, first.stdout[-3000:]
    yield {"tmp": tmp, "flags": flags, "first": first_recap}
    # Give the lab back as it was.
    back, _ = contribute(lab, tmp, restore, {})
    assert back.returncode == 0, back.stdout[-3000:]


def test_the_apiserver_runs_with_the_contributed_config(contributed, lab):
    assert any(stats["changed"] for stats in contributed["first"].values())
    flags = apiserver_flags(lab)
    assert flags["authentication-config"] == CONFIG
    assert "anonymous-auth" not in flags  # the file owns anonymous now; both at once is refused
    assert (anonymous(lab, "/readyz"), anonymous(lab, "/api")) == (200, 401)
    mode = lab.podman_exec(lab.groups["control_plane"][0], "stat", "-c", "%a %U", CONFIG).stdout.split()
    assert mode == ["600", "root"]


def test_rerun_and_a_control_plane_only_run_change_nothing(contributed, lab):
    again, recap = contribute(lab, contributed["tmp"], contributed["flags"], {CONFIG: yaml.safe_dump(HEALTH_ONLY)})
    assert again.returncode == 0
    assert all(stats["changed"] == 0 for stats in recap.values()), recap
    plain, recap = ansible_playbook(lab.inventory, "control_plane.yml")
    assert plain.returncode == 0, plain.stdout[-3000:]
    assert all(stats["changed"] == 0 for stats in recap.values()), recap
    assert apiserver_flags(lab)["authentication-config"] == CONFIG


def test_file_contents_never_reach_the_output(contributed, lab):
    secret = "kubeguard-contribution-canary"
    # A valid change (the preflight judges it in check mode too) that carries the canary: one more
    # anonymous path.
    paths = [*(c["path"] for c in HEALTH_ONLY["anonymous"]["conditions"]), f"/{secret}"]
    changed = dict(HEALTH_ONLY, anonymous={"enabled": True, "conditions": [{"path": p} for p in paths]})
    files = {CONFIG: json.dumps(changed)}
    run, _ = contribute(lab, contributed["tmp"], contributed["flags"], files, "--check", "--diff", "-v")
    assert run.returncode == 0, run.stdout[-3000:]
    assert secret not in run.stdout + run.stderr


def test_a_contribution_the_apiserver_refuses_is_refused_before_any_restart(contributed, lab):
    host = lab.groups["control_plane"][0]
    before = lab.podman_exec(host, "sha256sum", CONFIG).stdout
    pid = lab.podman_exec(host, "pgrep", "-o", "-f", "^[^ ]*kube-apiserver ").stdout.split()
    # Well-formed YAML that the apiserver refuses at start-up: JWT issuers must be https.
    issuer = {"url": "http://127.0.0.1:1/", "audiences": ["kubernetes"]}
    broken = dict(HEALTH_ONLY, jwt=[{"issuer": issuer, "claimMappings": {"username": {"claim": "sub", "prefix": ""}}}])
    run, _ = contribute(
        lab,
        contributed["tmp"],
        contributed["flags"],
        {CONFIG: yaml.safe_dump(broken)},
        "-e",
        '{"control_plane_health_timeout": 30}',
    )
    assert run.returncode != 0
    # The installed kube-apiserver judged the candidate first (preflight): nothing was written or
    # restarted, so there was nothing to roll back.
    assert "the installed kube-apiserver refuses the candidate" in run.stdout, run.stdout[-3000:]
    assert "restored" not in run.stdout
    assert lab.podman_exec(host, "sha256sum", CONFIG).stdout == before
    assert lab.podman_exec(host, "pgrep", "-o", "-f", "^[^ ]*kube-apiserver ").stdout.split() == pid
    assert anonymous(lab, "/readyz") == 200


def test_a_file_outside_the_config_dir_is_refused_with_nothing_written(contributed, lab):
    host = lab.groups["control_plane"][0]
    run, _ = contribute(lab, contributed["tmp"], {}, {"/etc/kubernetes/stray.yaml": "x"})
    assert run.returncode != 0
    assert "control_plane_apiserver_contributed_files" in run.stdout, run.stdout[-3000:]
    assert lab.podman_exec(host, "test", "-e", "/etc/kubernetes/stray.yaml").returncode != 0
