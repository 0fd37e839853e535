"""The cluster_pki role without the lab: three inventory hosts on the local
connection, each with its own directory tree standing in for its / (the role's
directory variables point there). Covers adoption of a kubeadm-made cluster,
the refusal to replace a node's CA, check mode and idempotence. The controller
store's vault, loss and backup: test_controller_store_local.py."""

import hashlib
import json
import os
import pathlib
import subprocess

import pytest
from conftest import ansible_playbook

REPO = pathlib.Path(__file__).resolve().parents[2]

KUBEADM_CONFIG = """\
apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
localAPIEndpoint: {{advertiseAddress: 10.123.0.10, bindPort: 6443}}
nodeRegistration: {{name: cp1}}
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: v1.34.4
clusterName: kubeguard-lab
certificatesDir: {pki}
controlPlaneEndpoint: "10.123.0.10:6443"
networking: {{serviceSubnet: 10.96.0.0/12, dnsDomain: cluster.local}}
apiServer: {{certSANs: [127.0.0.1, localhost]}}
"""


def inventory(base):
    host_vars = {
        "kubeguard_kubernetes_dir": str(base / "nodes/{{ inventory_hostname }}/etc/kubernetes"),
        "cluster_pki_kubelet_pki_dir": str(base / "nodes/{{ inventory_hostname }}/var/lib/kubelet/pki"),
        "cluster_pki_backup_dir": str(base / "backups/{{ inventory_hostname }}"),
    }
    data = {
        "all": {
            "vars": {
                "ansible_connection": "local",
                "ansible_python_interpreter": str(REPO / ".venv/bin/python"),
                "ansible_become": False,
                "kubeguard_cluster_name": "kubeguard-lab",
                # The hosts stand in for nodes on this machine: their node IPs are not its addresses.
                "kubeguard_node_ip_check_enabled": False,
                "kubeguard_control_plane_endpoint": "10.123.0.10:6443",
                "kubeguard_api_extra_sans": ["127.0.0.1", "localhost"],
                "kubeguard_pki_output_dir": str(base / "tree"),
                "cluster_pki_owner": os.getuid(),
                "cluster_pki_group": os.getgid(),
                **host_vars,
            },
            "children": {
                "k8s_cluster": {"children": {"control_plane": {}, "workers": {}}},
                "control_plane": {"hosts": {"cp1": {"kubeguard_node_ip": "10.123.0.10"}}},
                "etcd": {"hosts": {"cp1": {}}},
                "workers": {"hosts": {"worker1": {"kubeguard_node_ip": "10.123.0.11"}}},
            },
        }
    }
    path = base / "inventory.json"
    path.write_text(json.dumps(data))
    return path


def play(base, *extra):
    return ansible_playbook(base / "inventory.json", "cluster_pki.yml", *extra, timeout=600)


def digest(root):
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()
    }


def kubeadm_tree(base, lab_binaries):
    """cp1 made by kubeadm (certs and kubeconfigs) under ``base``, worker1 empty, and the inventory."""
    kdir = base / "nodes/cp1/etc/kubernetes"
    kdir.mkdir(parents=True)
    config = base / "kubeadm.yaml"
    config.write_text(KUBEADM_CONFIG.format(pki=kdir / "pki"))
    kubeadm = str(lab_binaries / "kubeadm")
    subprocess.run([kubeadm, "init", "phase", "certs", "all", "--config", str(config)], check=True, capture_output=True)
    cmd = [kubeadm, "init", "phase", "kubeconfig", "all", "--config", str(config), "--kubeconfig-dir", str(kdir)]
    subprocess.run(cmd, check=True, capture_output=True)
    inventory(base)
    return base


@pytest.fixture
def kubeadm_cluster(tmp_path, lab_binaries):
    """cp1 made by kubeadm (certs and kubeconfigs), worker1 empty."""
    return kubeadm_tree(tmp_path, lab_binaries)


ADOPT = ("-e", json.dumps({"cluster_pki_adopt_enabled": True}))


def test_adopts_a_kubeadm_cluster_and_keeps_its_files(kubeadm_cluster):
    base = kubeadm_cluster
    before = digest(base / "nodes/cp1")
    check, recap = play(base, "--check", *ADOPT)
    assert check.returncode == 0, check.stdout[-3000:]
    assert digest(base / "nodes/cp1") == before
    run, recap = play(base, *ADOPT)
    assert run.returncode == 0, run.stdout[-3000:]
    after = digest(base / "nodes/cp1")
    # every file kubeadm made is kept (the CAs above all); only what kubeadm lacks is added
    assert {f: h for f, h in after.items() if f in before} == before
    assert sorted(set(after) - set(before)) == ["var/lib/kubelet/pki/kubelet.crt", "var/lib/kubelet/pki/kubelet.key"]
    assert (base / "tree/pki/ca.crt").read_bytes() == (base / "nodes/cp1/etc/kubernetes/pki/ca.crt").read_bytes()
    worker = sorted(
        str(p.relative_to(base / "nodes/worker1")) for p in (base / "nodes/worker1").rglob("*") if p.is_file()
    )
    assert worker == [
        "etc/kubernetes/kubelet.conf",
        "etc/kubernetes/pki/ca.crt",
        "var/lib/kubelet/pki/kubelet.crt",
        "var/lib/kubelet/pki/kubelet.key",
    ]
    again, recap = play(base)
    assert again.returncode == 0
    assert {h: r["changed"] for h, r in recap.items()} == {"cp1": 0, "worker1": 0}


def test_refuses_to_replace_a_different_ca_on_a_node(kubeadm_cluster):
    base = kubeadm_cluster
    # The store holds another cluster's CA: the node's is not replaced silently.
    other = base / "other"
    (other / "nodes/cp1").mkdir(parents=True)
    inventory(other)
    made, _ = play(other)
    assert made.returncode == 0, made.stdout[-3000:]
    (other / "tree").rename(base / "tree")
    before = digest(base / "nodes/cp1")
    run, recap = play(base)
    assert run.returncode != 0
    assert recap["cp1"]["failed"] == 1
    assert "is a different CA than" in run.stdout + run.stderr
    assert "cluster_pki_replace_node_ca" in run.stdout + run.stderr
    assert digest(base / "nodes/cp1") == before
