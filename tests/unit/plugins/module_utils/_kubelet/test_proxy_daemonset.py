"""kube-proxy's DaemonSet ConfigMap (pure logic, against a recording fake API; the lab test
tests/integration/test_ha_kube_proxy_daemonset.py proves it on kubeadm's real DaemonSet)."""

import copy

import pytest
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError
from ansible_collections.kubeguard.hardening.plugins.module_utils._k8s.client import ApiError
from ansible_collections.kubeguard.hardening.plugins.module_utils._kubelet import proxy_daemonset as pd

CM = "/api/v1/namespaces/kube-system/configmaps/kube-proxy"
DS = "/apis/apps/v1/namespaces/kube-system/daemonsets/kube-proxy"
CONF = (
    "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n"
    "metricsBindAddress: 0.0.0.0:10249\nmode: nftables\n"
)


class FakeApi:
    def __init__(self, conf=CONF, daemonset=True, rolls=True):
        self.objects = {}
        if conf is not None:
            self.objects[CM] = {
                "metadata": {"name": "kube-proxy", "resourceVersion": "7"},
                "data": {"config.conf": conf},
            }
        if daemonset:
            self.objects[DS] = {"metadata": {"generation": 1}, "status": self._status(1)}
        self.rolls = rolls
        self.calls = []

    @staticmethod
    def _status(generation, updated=3):
        return {
            "observedGeneration": generation,
            "desiredNumberScheduled": 3,
            "updatedNumberScheduled": updated,
            "numberAvailable": 3,
        }

    def request(self, method, path, query=None, body=None, content_type="application/json"):
        self.calls.append((method, path))
        if method == "GET":
            if path not in self.objects:
                raise ApiError(404, "Not Found", "not found")
            return copy.deepcopy(self.objects[path])
        if method == "PUT":
            self.objects[path] = copy.deepcopy(body)
            return body
        if path == CM:  # PATCH: the roll-pending mark cleared
            annotations = self.objects[CM]["metadata"].setdefault("annotations", {})
            for key, value in body["metadata"]["annotations"].items():
                annotations.pop(key) if value is None else annotations.__setitem__(key, value)
            return self.objects[CM]
        daemonset = self.objects[path]  # PATCH: a new template generation
        generation = daemonset["metadata"]["generation"] + 1
        daemonset["metadata"]["generation"] = generation
        daemonset["status"] = self._status(generation, 3 if self.rolls else 1)
        return daemonset


def params(**over):
    base = {
        "metrics_bind_address": "127.0.0.1:10249",
        "namespace": "kube-system",
        "name": "kube-proxy",
        "restart_timeout": 0,
        "kubeconfig": None,
        "request_timeout": 30,
    }
    return dict(base, **over)


def test_an_empty_or_missing_address_is_kube_proxys_loopback_default():
    assert pd.effective('kind: KubeProxyConfiguration\nmetricsBindAddress: ""\n') == "127.0.0.1:10249"
    assert pd.effective("kind: KubeProxyConfiguration\n") == "127.0.0.1:10249"
    assert pd.effective(CONF) == "0.0.0.0:10249"


def test_the_address_line_alone_changes_and_the_daemonset_rolls():
    api = FakeApi()
    result = pd.run(params(), False, client=api)
    assert result["changed"] and result["restarted"]
    assert api.objects[CM]["data"]["config.conf"] == CONF.replace("0.0.0.0:10249", '"127.0.0.1:10249"')
    assert api.objects[CM]["metadata"]["resourceVersion"] == "7"  # a concurrent edit makes the PUT fail
    assert api.objects[CM]["metadata"]["annotations"] == {}  # the roll-pending mark is cleared after the roll
    assert ("PATCH", DS) in api.calls
    again = FakeApi(conf=api.objects[CM]["data"]["config.conf"])
    assert pd.run(params(), False, client=again)["changed"] is False
    assert [c for c in again.calls if c[0] != "GET"] == []


def test_check_mode_writes_nothing_and_shows_the_address():
    api = FakeApi()
    result = pd.run(params(), True, client=api)
    assert result["changed"] and result["diff"]["before"] == "metricsBindAddress: 0.0.0.0:10249\n"
    assert [c for c in api.calls if c[0] != "GET"] == []


def test_a_roll_out_that_does_not_finish_puts_the_old_configmap_back_and_names_the_timeout():
    api = FakeApi(rolls=False)
    with pytest.raises(KubeguardError) as caught:
        pd.run(params(), False, client=api)
    assert caught.value.option == "restart_timeout"
    assert api.objects[CM]["data"]["config.conf"] == CONF
    assert [c for c in api.calls if c[0] == "PATCH"] == [("PATCH", DS)] * 2


def test_no_daemonset_is_skipped_and_a_daemonset_without_its_configmap_warns():
    assert "skipped_reason" in pd.run(params(), False, client=FakeApi(daemonset=False))
    result = pd.run(params(), False, client=FakeApi(conf=None))
    assert result["changed"] is False and result["warnings"]


@pytest.mark.parametrize("address", ["0.0.0.0:10249", "10249", "localhost:10249"])
def test_a_non_loopback_address_is_refused_before_any_request(address):
    api = FakeApi()
    with pytest.raises(KubeguardError) as caught:
        pd.run(params(metrics_bind_address=address), False, client=api)
    assert caught.value.option == "metrics_bind_address" and api.calls == []


def test_a_run_killed_after_the_configmap_write_rolls_on_the_rerun():
    api = FakeApi(conf=CONF.replace("0.0.0.0:10249", "127.0.0.1:10249"))
    api.objects[CM]["metadata"]["annotations"] = {pd.PENDING: "2026-12-05T18:00:00Z"}
    assert pd.run(params(), True, client=api)["changed"] is True
    result = pd.run(params(), False, client=api)
    assert result["restarted"] and api.objects[CM]["metadata"]["annotations"] == {}
    assert [c for c in api.calls if c[0] == "PUT"] == []  # the text was right: only the roll was missing
    assert pd.run(params(), False, client=api)["changed"] is False
