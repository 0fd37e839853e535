"""Every node after site.yml, from outside with real clients: the kubelet API
refuses a request without credentials, and SSH takes the operator's key but
no password (the SSH checks run last: failed logins count against sshd's
per-source penalties, and testinfra's own connections share that source).

Hosts, ports, addresses and the key come from the cluster's inventory
(molecule.yml hands it to testinfra)."""

import pytest
from kubeguard_test import sshcheck
from kubeguard_test.api import https

testinfra_hosts = ["k8s_cluster"]

# Passwords the lab's accounts start with: a weak node lets them in.
WEAK_PASSWORDS = [("operator", "operator"), ("root", "root")]


def hostvar(host, name):
    return host.ansible.get_variables()[name]


def test_kubelet_refuses_a_request_without_credentials(host):
    """GET /pods on the kubelet's port 10250 with no client certificate or token:
    401 (anonymous off) or 403 (webhook authorization), never the pod list."""
    status, body = https(10250, "/pods", host=hostvar(host, "kubeguard_node_ip"))
    assert status in (401, 403), body[:200]


def test_ssh_accepts_the_operators_key_with_sudo(host):
    login = sshcheck.ssh_key(
        hostvar(host, "ansible_port"), "operator", "sudo -n id -u", key=hostvar(host, "ansible_ssh_private_key_file")
    )
    assert (login.returncode, login.stdout.strip()) == (0, "0"), login.stderr


@pytest.mark.parametrize(("user", "password"), WEAK_PASSWORDS)
def test_ssh_refuses_password_logins(host, user, password):
    login = sshcheck.ssh_password(hostvar(host, "ansible_port"), user, password, "true")
    assert login.returncode != 0, f"{user} logged in with a password"
    assert "Permission denied" in login.stderr, login.stderr
