"""Tables for the pure planning logic: what to issue, and why."""

import dataclasses
import datetime

import pytest
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError
from ansible_collections.kubeguard.hardening.plugins.module_utils._pki import _model, _plan

NOW = datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc)
DAY = datetime.timedelta(days=1)
RENEW = 30 * DAY

LEAF = _model.Item(
    "nodes/cp1/pki/apiserver",
    "leaf",
    cn="kube-apiserver",
    eku=("serverAuth",),
    dns=("cp1", "kubernetes"),
    ips=("10.0.0.10", "10.96.0.1"),
    signer="pki/ca",
)
KUBECONFIG = _model.Item(
    "admin.conf",
    "kubeconfig",
    cn="kubernetes-admin",
    orgs=("kubeadm:cluster-admins",),
    eku=("clientAuth",),
    signer="pki/ca",
    server="https://10.0.0.10:6443",
)
CA = _model.Item("pki/ca", "ca", cn="kubernetes", dns=("kubernetes",))


def good_meta(item, days_left=200):
    meta = dict(_plan.wanted_meta(item))
    meta["not_after"] = NOW + days_left * DAY
    return meta


def observed(item, days_left=200, **changes):
    files = {f: True for f in _model.item_files(item)}
    obs = _plan.Observed(files=files, key_algorithm="RSA-2048", meta=good_meta(item, days_left), server=item.server)
    meta_changes = changes.pop("meta", {})
    obs.meta.update(meta_changes)
    files_changes = changes.pop("files", {})
    obs.files.update(files_changes)
    return dataclasses.replace(obs, **changes)


@pytest.mark.parametrize(
    ("item", "obs", "expected", "new_key"),
    [
        pytest.param(
            LEAF,
            observed(LEAF, files={"nodes/cp1/pki/apiserver.crt": False, "nodes/cp1/pki/apiserver.key": False}),
            "created",
            True,
            id="absent",
        ),
        pytest.param(
            LEAF,
            observed(LEAF, files={"nodes/cp1/pki/apiserver.key": False}),
            "reissued: key missing",
            True,
            id="key-missing",
        ),
        pytest.param(
            LEAF,
            observed(LEAF, files={"nodes/cp1/pki/apiserver.crt": False}),
            "reissued: certificate missing",
            False,
            id="cert-missing",
        ),
        pytest.param(LEAF, observed(LEAF, readable=False), "reissued: unreadable", True, id="unreadable"),
        pytest.param(LEAF, observed(LEAF, key_matches=False), "reissued: key mismatch", True, id="key-mismatch"),
        pytest.param(
            LEAF, observed(LEAF, key_algorithm="ECDSA-P256"), "reissued: algorithm drift", True, id="algorithm"
        ),
        pytest.param(
            LEAF, observed(LEAF, signed_by_ca=False), "reissued: not signed by current CA", False, id="other-ca"
        ),
        pytest.param(LEAF, observed(LEAF, meta={"cn": "apiserver"}), "reissued: subject drift", False, id="cn"),
        pytest.param(
            LEAF, observed(LEAF, meta={"orgs": ("system:masters",)}), "reissued: subject drift", False, id="org"
        ),
        pytest.param(LEAF, observed(LEAF, meta={"dns": ("cp1",)}), "reissued: SAN drift", False, id="dns-san"),
        pytest.param(
            LEAF, observed(LEAF, meta={"ips": ("10.0.0.11", "10.96.0.1")}), "reissued: SAN drift", False, id="ip-san"
        ),
        pytest.param(
            LEAF, observed(LEAF, meta={"eku": ("clientAuth", "serverAuth")}), "reissued: EKU drift", False, id="eku"
        ),
        pytest.param(
            LEAF,
            observed(LEAF, meta={"key_usage": ("digital_signature",)}),
            "reissued: key usage drift",
            False,
            id="ku",
        ),
        pytest.param(
            LEAF,
            observed(LEAF, meta={"key_usage": ("not-critical",)}),
            "reissued: key usage drift",
            False,
            id="ku-not-critical",
        ),
        pytest.param(LEAF, observed(LEAF, meta={"is_ca": True}), "reissued: key usage drift", False, id="leaf-is-ca"),
        pytest.param(LEAF, observed(LEAF, days_left=12), "renewed: expires in 12 d", False, id="expiring"),
        pytest.param(LEAF, observed(LEAF, days_left=30), "renewed: expires in 30 d", False, id="window-edge"),
        pytest.param(LEAF, observed(LEAF, days_left=31), "ok", False, id="just-outside-window"),
        pytest.param(LEAF, observed(LEAF, days_left=-3), "renewed: expired 3 d ago", False, id="expired"),
        pytest.param(LEAF, observed(LEAF), "ok", False, id="ok"),
        pytest.param(
            KUBECONFIG,
            observed(KUBECONFIG, ca_data_matches=False),
            "reissued: CA data drift",
            False,
            id="kubeconfig-ca",
        ),
        pytest.param(
            KUBECONFIG,
            observed(KUBECONFIG, server="https://10.0.0.99:6443"),
            "reissued: server drift",
            False,
            id="kubeconfig-server",
        ),
        pytest.param(
            KUBECONFIG, observed(KUBECONFIG, days_left=5), "renewed: expires in 5 d", False, id="kubeconfig-expiring"
        ),
        pytest.param(KUBECONFIG, observed(KUBECONFIG), "ok", False, id="kubeconfig-ok"),
    ],
)
def test_decide_leaf(item, obs, expected, new_key):
    decision = _plan.decide_leaf(item, obs, "RSA-2048", NOW, RENEW, NOW + 365 * DAY)
    assert decision.action == expected
    assert decision.new_key is new_key
    assert decision.changed is (expected != "ok")


def test_new_ca_forces_reissue_even_of_a_perfect_leaf():
    decision = _plan.decide_leaf(LEAF, observed(LEAF), "RSA-2048", NOW, RENEW, NOW + 365 * DAY, ca_replaced=True)
    assert decision.action == "reissued: not signed by current CA"


@pytest.mark.parametrize(
    ("days_left", "cap_days", "expected"),
    [
        (10, 365, "renewed: expires in 10 d"),
        (10, 10, "ok"),  # capped by an expiring CA: renewing would not extend it
        (10, 10.5, "ok"),
        (10, 11, "renewed: expires in 10 d"),
    ],
)
def test_renewal_only_when_it_extends_the_validity(days_left, cap_days, expected):
    decision = _plan.decide_leaf(
        LEAF, observed(LEAF, days_left=days_left), "RSA-2048", NOW, RENEW, NOW + cap_days * DAY
    )
    assert decision.action == expected


@pytest.mark.parametrize(
    ("files", "changes", "expected", "mode", "warns"),
    [
        ({"pki/ca.crt": False, "pki/ca.key": False}, {}, "created", "own", 0),
        ({}, {}, "ok", "own", 0),
        ({"pki/ca.key": False}, {}, "ok", "external", 0),
        ({}, {"meta": {"not_after": NOW + 10 * DAY}}, "ok", "own", 1),
        ({"pki/ca.key": False}, {"meta": {"not_after": NOW + 10 * DAY}}, "ok", "external", 1),
    ],
)
def test_decide_ca(files, changes, expected, mode, warns):
    obs = observed(CA, files=files)
    obs.meta.update(changes.get("meta", {}))
    decision, got_mode, warnings = _plan.decide_ca(CA, obs, NOW, RENEW)
    assert (decision.action, got_mode, len(warnings)) == (expected, mode, warns)
    if warns:
        assert "expires in 10 d; CA rotation is manual" in warnings[0]


@pytest.mark.parametrize(
    ("obs", "message"),
    [
        (observed(CA, files={"pki/ca.crt": False}), "exists without pki/ca.crt"),
        (observed(CA, readable=False), "unreadable"),
        (observed(CA, key_matches=False), "does not match"),
        (observed(CA, meta={"is_ca": False}), "not a CA certificate"),
    ],
)
def test_decide_ca_never_replaces(obs, message):
    with pytest.raises(KubeguardError, match=message) as err:
        _plan.decide_ca(CA, obs, NOW, RENEW)
    assert err.value.option == "output_dir"


@pytest.mark.parametrize(
    ("action", "report"),
    [
        ("created", "missing (external CA)"),
        ("reissued: key missing", "missing (external CA)"),
        ("renewed: expires in 3 d", "expiring: expires in 3 d (external CA)"),
        ("reissued: SAN drift", "invalid: SAN drift (external CA)"),
        ("ok", "ok"),
    ],
)
def test_external_status(action, report):
    assert _plan.external_status(_plan.Decision(action)) == report


SA = _model.Item("pki/sa", "sa")


@pytest.mark.parametrize(
    ("key", "pub", "matches", "expected", "new_key"),
    [
        (False, False, True, "created", True),
        (True, False, False, "reissued: public key missing", False),
        (True, True, False, "reissued: public key mismatch", False),
        (True, True, True, "ok", False),
    ],
)
def test_decide_sa(key, pub, matches, expected, new_key):
    obs = _plan.Observed(files={"pki/sa.key": key, "pki/sa.pub": pub}, key_matches=matches)
    decision = _plan.decide_sa(obs)
    assert (decision.action, decision.new_key) == (expected, new_key)


@pytest.mark.parametrize(
    ("files", "readable", "message"),
    [
        ({"pki/sa.key": False, "pki/sa.pub": True}, True, "exists without pki/sa.key"),
        ({"pki/sa.key": True, "pki/sa.pub": True}, False, "unreadable"),
    ],
)
def test_decide_sa_never_replaces_the_key(files, readable, message):
    with pytest.raises(KubeguardError, match=message):
        _plan.decide_sa(_plan.Observed(files=files, readable=readable))


@pytest.mark.parametrize(
    ("delta", "phrase"),
    [
        (12 * DAY, "expires in 12 d"),
        (12 * DAY + datetime.timedelta(hours=23), "expires in 12 d"),
        (-2 * DAY, "expired 2 d ago"),
        (datetime.timedelta(0), "expires in 0 d"),
    ],
)
def test_expiry_phrase(delta, phrase):
    assert _plan.expiry_phrase(NOW + delta, NOW) == phrase
