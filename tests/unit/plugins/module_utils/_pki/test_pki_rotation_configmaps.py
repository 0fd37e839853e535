"""The CA bundle published in ConfigMaps' kubeconfigs (kubeadm's cluster-info, kube-proxy's), with the API
server faked: what changes, what is left alone, and the patch guarded by the resourceVersion."""

import base64

import yaml
from ansible_collections.kubeguard.hardening.plugins.module_utils._k8s.client import ApiError
from ansible_collections.kubeguard.hardening.plugins.module_utils._pki import _rotation_configmaps as published

OLD = "-----BEGIN CERTIFICATE-----\nOLD\n-----END CERTIFICATE-----\n"
NEW = "-----BEGIN CERTIFICATE-----\nNEW\n-----END CERTIFICATE-----\n"
OTHER = "-----BEGIN CERTIFICATE-----\nOTHER\n-----END CERTIFICATE-----\n"


def kubeconfig(ca=None, path=None):
    cluster = {"server": "https://lb:6443"}
    if ca is not None:
        cluster["certificate-authority-data"] = base64.b64encode(ca.encode()).decode()
    if path:
        cluster["certificate-authority"] = path
    return yaml.safe_dump({"apiVersion": "v1", "kind": "Config", "clusters": [{"name": "", "cluster": cluster}]})


class FakeApi:
    def __init__(self, configmaps):
        self.configmaps, self.patches = configmaps, []

    def request(self, method, path, query=None, body=None, content_type="application/json"):
        namespace, name = path.split("/")[4], path.split("/")[6]
        if (namespace, name) not in self.configmaps:
            raise ApiError(404, "Not Found", "not found")
        if method == "PATCH":
            self.patches.append((namespace, name, body))
            return {}
        key, text = self.configmaps[(namespace, name)]
        return {"metadata": {"resourceVersion": "7"}, "data": {key: text}}


def ca_of(text):
    data = yaml.safe_load(text)["clusters"][0]["cluster"]["certificate-authority-data"]
    return base64.b64decode(data).decode()


def test_cluster_info_gets_the_bundle_and_the_patch_is_guarded_by_its_resource_version():
    api = FakeApi({("kube-public", "cluster-info"): ("kubeconfig", kubeconfig(OLD))})
    assert published.publish(api, OLD + NEW, [OLD, NEW], check_mode=False) == ["kube-public/cluster-info"]
    ((_ns, _name, patch),) = api.patches
    assert patch[0] == {"op": "test", "path": "/metadata/resourceVersion", "value": "7"}
    assert patch[1]["path"] == "/data/kubeconfig" and ca_of(patch[1]["value"]) == OLD + NEW


def test_check_mode_writes_nothing_and_a_published_bundle_changes_nothing():
    api = FakeApi({("kube-public", "cluster-info"): ("kubeconfig", kubeconfig(OLD))})
    assert published.publish(api, NEW, [OLD, NEW], check_mode=True) == ["kube-public/cluster-info"]
    assert api.patches == []
    same = FakeApi({("kube-public", "cluster-info"): ("kubeconfig", kubeconfig(NEW))})
    assert published.publish(same, NEW, [OLD, NEW], check_mode=False) == []


def test_a_kube_proxy_kubeconfig_reading_the_token_ca_file_and_another_clusters_are_left_alone():
    api = FakeApi(
        {
            ("kube-system", "kube-proxy"): ("kubeconfig.conf", kubeconfig(path="/var/run/secrets/ca.crt")),
            ("kube-public", "cluster-info"): ("kubeconfig", kubeconfig(OTHER)),
        }
    )
    assert published.publish(api, OLD + NEW, [OLD, NEW], check_mode=False) == []
    assert api.patches == []
