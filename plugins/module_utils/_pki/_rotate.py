# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to kubeguard.hardening: the ``cluster_ca_rotation`` module's entry
point. ``plan`` writes nothing; ``begin`` refuses a step whose predecessors
are not recorded and writes the store's part of it; ``record`` records it
(``verify`` only with evidence that nothing in use chains only to the old CA);
``publish`` puts the store's CA bundle in the kubeconfigs the cluster publishes
in ConfigMaps (kubeadm's ``cluster-info``, kube-proxy's).
"""

from __future__ import annotations

import base64
import datetime
import os

from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError
from ansible_collections.kubeguard.hardening.plugins.module_utils._pki import _crypto, _files, _rotation, _rotation_pods
from ansible_collections.kubeguard.hardening.plugins.module_utils._pki import _rotation_sa as sa_store
from ansible_collections.kubeguard.hardening.plugins.module_utils._pki import _rotation_store as store

ACTIONS = ("plan", "begin", "rewrite", "pods", "publish", "record")


def _expiry(out, rotate_before_days, now):
    """Per CA of the tree: days left, and a warning when within the renewal window."""
    report, warnings = {}, []
    for name, path in (("ca", "pki/ca"), ("front-proxy-ca", "pki/front-proxy-ca"), ("etcd-ca", "pki/etcd/ca")):
        found = store.certs(_files.read(os.path.join(out, f"{path}.crt")))
        if not found:
            continue
        left = (found[0].not_valid_after_utc - now).days
        report[name] = {"not_after": found[0].not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ"), "days_left": left}
        if left <= rotate_before_days:
            warnings.append(f"{path}.crt expires in {left} d: rotate it with cluster_pki_rotate_ca: [{name}]")
    return report, warnings


def _signing(out):
    """The certificate the cluster CA's key signs with: the first of pki/ca.crt (for the controller-manager)."""
    found = store.certs(_files.read(os.path.join(out, "pki/ca.crt")))
    return _crypto.cert_pem(found[0]).decode() if found else ""


def _ops(name):
    """The store's steps for ``name``: a CA's, or the service-account key's."""
    return sa_store if name == "sa" else store


def _fingerprint(out, name):
    if name == "sa":
        return sa_store.fingerprint(sa_store.current(out)[1])
    return _crypto.fingerprint(store.certs(_files.read(os.path.join(out, store.CA[name] + ".crt")))[0])


def run(params, check_mode=False, now=None):
    now = now or datetime.datetime.now(datetime.timezone.utc)
    out = os.path.abspath(str(params.get("output_dir") or ""))
    if not params.get("output_dir"):
        raise KubeguardError("output_dir", "is required")
    action = params.get("action") or "plan"
    if action not in ACTIONS:
        raise KubeguardError("action", f"must be one of {', '.join(ACTIONS)}")
    round_ = params.get("round", 1)
    rotate = _rotation.check_request(params.get("rotate") or [], round_)
    state = store.read_state(out)
    expiry, warnings = _expiry(out, int(params.get("ca_renew_before_days") or 0), now)
    kubeconfig = params.get("controller_kubeconfig") or ""
    result = {"changed": False, "expiry": expiry, "warnings": warnings, "signing_certificate": _signing(out)}
    if action == "plan":
        plan = _rotation.describe(state, rotate, round_)
        for name, entry in plan.items():
            entry["files"] = {s: _ops(name).step_files(out, name, s, kubeconfig) for s in entry["due"]}
        result.update(plan=plan, in_progress=_rotation.in_progress(state))
        return result
    name, step = params.get("ca") or "", params.get("step") or ""
    if name not in rotate:
        raise KubeguardError("ca", f"{name!r} is not in rotate")
    ops = _ops(name)
    result.update(ca=name, step=step, files=ops.step_files(out, name, step, kubeconfig))
    if step not in _rotation.due(state, name, round_) and action != "pods":
        result["skipped"] = True  # recorded already: a rerun changes nothing
        return result
    if action == "rewrite":
        return _rewrite(out, name, step, params, result, now)
    if action == "pods":
        return _pods(out, name, state, round_, params, result, check_mode, now)
    if action == "publish":
        return _publish(out, name, step, params, result, check_mode)
    if action == "begin":
        _rotation.begin(state, name, round_, step)  # refusal before anything is written
        result["changed"] = step in ("generate", "trust", "reissue", "remove")
        if check_mode or not result["changed"]:
            return result
        _files.check_writable(out)
        if step == "generate":
            facts = ops.generate(out, name, params["key_algorithm"], int(params["ca_validity_days"]), now)
            _rotation.record(state, name, round_, step, **facts)
            store.write_state(out, state)
        elif step == "trust":
            ops.trust(out, name, kubeconfig)
        elif step == "reissue":
            ops.reissue(out, name, kubeconfig, int(params["leaf_validity_days"]), now)
        else:
            ops.remove(out, name, kubeconfig)
        result["signing_certificate"] = _signing(out)
        return result
    # record
    evidence = params.get("evidence") or []
    sources = params.get("evidence_sources") or []
    found = ops.offenders(out, name, evidence, sources, kubeconfig) if step == "verify" else []
    result["offenders"] = found
    if check_mode:
        return result
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    since = stamp if step == _rotation.pods_after(name) else ""
    trusted = stamp if step == "trust" else ""
    _rotation.record(state, name, round_, step, offenders=found, trusted_at=trusted, pods_since=since)
    store.write_state(out, state)
    if step == "remove":
        ops.forget(out, name)
    result["changed"] = True
    result["fingerprint"] = _fingerprint(out, name)
    return result


def _rewrite(out, name, step, params, result, now):
    """Of ``contents`` (base64 kubeconfigs read on a node, '' for an absent one), those ``step`` changes,
    rewritten, as [{'index', 'content'}]: the role writes them back (they are not in the store). Only
    indexes and new contents are returned: Ansible masks every value equal to a no_log input."""
    if step not in ("trust", "reissue", "remove") or name != "ca":
        raise KubeguardError("step", f"only trust, reissue and remove of a CA rewrite kubeconfigs, not {name} {step}")
    changed = []
    for index, content in enumerate(params.get("contents") or []):
        if not content:
            continue
        text = base64.b64decode(content).decode("utf-8")
        after = store.rewrite_node_kubeconfig(out, name, step, text, int(params["leaf_validity_days"]), now)
        if after != text:
            changed.append({"index": index, "content": base64.b64encode(after.encode()).decode("ascii")})
    result.update(rewritten=changed, changed=bool(changed))
    return result


def _publish(out, name, step, params, result, check_mode):
    """The store's bundle into the ConfigMaps' kubeconfigs that trust the old or the new CA (trust, reissue,
    remove of the cluster CA); ``published``: the ``namespace/name`` of those changed."""
    from ansible_collections.kubeguard.hardening.plugins.module_utils._k8s.client import Client
    from ansible_collections.kubeguard.hardening.plugins.module_utils._pki import _rotation_configmaps

    if step not in ("trust", "reissue", "remove") or name != "ca":
        raise KubeguardError("step", f"only trust, reissue and remove of ca publish kubeconfigs, not {name} {step}")
    if not params.get("kubeconfig"):
        raise KubeguardError("kubeconfig", "publishing the CA bundle needs the controller's kubeconfig")
    bundle = _files.read(os.path.join(out, store.CA[name] + ".crt")) or b""
    known = [_crypto.cert_pem(c).decode() for c in store.certs(bundle) + store.old_certs(out, name)]
    client = Client.from_kubeconfig(params["kubeconfig"])
    published = _rotation_configmaps.publish(client, bundle.decode(), known, check_mode)
    result.update(published=published, changed=bool(published))
    return result


def _pods(out, name, state, round_, params, result, check_mode, now):
    """List the pods that hold the old root CA (a token of the old key for ``sa``); restart their controllers
    when asked (the pods step, after trust; after reissue for ``sa``)."""
    from ansible_collections.kubeguard.hardening.plugins.module_utils._k8s.client import Client

    if name in ("front-proxy-ca", "etcd-ca"):
        # No pod reads them: the API server presents the front-proxy client certificate (aggregated API
        # servers reread kube-system/extension-apiserver-authentication by themselves) and is etcd's client.
        result.update(pods=[], controllers=[], restarted=[])
        return result
    if not params.get("kubeconfig"):
        raise KubeguardError("kubeconfig", "the pods step needs the controller's kubeconfig")
    entry = state["rotations"].get(name) or {}
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    due = "pods" in _rotation.due(state, name, round_)
    restart = bool(params.get("restart_pods")) and due
    reissue = bool(params.get("reissue_token_secrets")) and due and name == "sa"
    if (restart or reissue) and not check_mode:
        _rotation.begin(state, name, round_, "pods")  # refused before trust is recorded
    new_pem = ""  # a token signed by the new key needs no bundle: the pod is only restarted
    if name != "sa":
        new = store.certs(_files.read(os.path.join(out, store.CA[name] + ".crt")))
        new_pem = _crypto.cert_pem(new[-1]).decode() if new else ""  # the bundle's last certificate during trust
    client = Client.from_kubeconfig(params["kubeconfig"])
    since = entry.get("pods_since") or entry.get("trusted_at") if entry.get("round") == round_ else ""
    before = since or stamp
    what = _rotation_pods.TOKEN if name == "sa" else _rotation_pods.ROOT_CA
    found = _rotation_pods.run(client, before, restart, check_mode, new_pem, stamp, what=what)
    if name == "sa":
        # Before generate (check mode) every legacy token is one the new key did not sign.
        generated = entry.get("round") == round_ and "generate" in (entry.get("steps") or [])
        signing_kid = _crypto.key_id(sa_store.next_signing_key(out)) if generated else ""
        found.update(_rotation_pods.reissue_secrets(client, signing_kid, reissue, check_mode))
    changed = bool(found["restarted"]) or (restart and check_mode and bool(found["controllers"]))
    result.update(found, changed=changed or bool(found.get("token_secrets_reissued")))
    return result
