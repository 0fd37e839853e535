"""kube-proxy, kubeadm's DaemonSet, after site.yml hardened the kubeadm-ha lab
(test_ha_site.py): the lab starts with its metrics on every interface
(test_ha_lab.py proves it), and site.yml bound them to loopback on every node
through the kube-system/kube-proxy ConfigMap, keeping the rest of its
config.conf, and rolled the DaemonSet (CIS 4.3.1)."""

import re

import pytest
from kubeguard_test.kube import Kubectl
from test_ha_lab import metrics_listeners

pytestmark = [pytest.mark.lab, pytest.mark.ha]


def test_kube_proxy_metrics_are_on_loopback_on_every_node_through_its_configmap(lab, lab_binaries):
    kube = Kubectl(lab_binaries, lab.kubeconfig)
    config = kube.get("-n", "kube-system", "configmap", "kube-proxy")["data"]["config.conf"]
    assert re.findall(r"^metricsBindAddress:.*$", config, re.M) == ['metricsBindAddress: "127.0.0.1:10249"']
    assert "mode: nftables" in config and "maxPerCore: 0" in config
    proxy = kube.get("-n", "kube-system", "daemonset", "kube-proxy")
    assert "kubeguard.io/restartedAt" in proxy["spec"]["template"]["metadata"]["annotations"]
    status = proxy["status"]
    assert status["updatedNumberScheduled"] == status["numberAvailable"] == status["desiredNumberScheduled"]
    for host in lab.hosts:
        assert metrics_listeners(lab, host) == ["127.0.0.1:10249"], host
