# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to kubeguard.hardening: what each CA rotation step writes in the
controller store (``_rotation`` decides when), and the verify evidence.

The store stays consistent for the ``cluster_pki`` engine at every step: the
CA file is a bundle whose *first* certificate is the one the CA key signs
with (old during ``trust``, new from ``reissue`` on), and each kubeconfig
embeds that same bundle, so an ordinary run in the middle of a rotation
changes nothing. Secrets go through ``_files`` (vault-sealed like every key).
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import json
import os
import re

from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError
from ansible_collections.kubeguard.hardening.plugins.module_utils._node import files as _node_files
from ansible_collections.kubeguard.hardening.plugins.module_utils._pki import _crypto, _files, _model, _rotation

STATE = "rotation/state.json"
# The CA's path in the tree and its CN, per rotatable name.
CA = {"ca": "pki/ca", "front-proxy-ca": "pki/front-proxy-ca", "etcd-ca": "pki/etcd/ca"}
_CN = {"ca": "kubernetes", "front-proxy-ca": "front-proxy-ca", "etcd-ca": "etcd-ca"}
_PEM = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----\n?", re.S)
_CA_DATA = re.compile(r"^(\s*certificate-authority-data:\s*)['\"]?([A-Za-z0-9+/=]+)['\"]?\s*$", re.M)
_CLIENT = re.compile(r"^(\s*client-certificate-data:\s*)['\"]?([A-Za-z0-9+/=]+)['\"]?\s*$", re.M)
_KEY = re.compile(r"^\s*client-key-data:\s*['\"]?([A-Za-z0-9+/=]+)['\"]?\s*$", re.M)


def _rot(name, what):
    return f"rotation/{name}/{what}"


def read_state(out):
    raw = _files.read(os.path.join(out, STATE))
    try:
        return _rotation.check_state(json.loads(raw) if raw is not None else None)
    except ValueError:
        raise KubeguardError("output_dir", f"{STATE} is not valid JSON") from None


def write_state(out, state):
    _files.ensure_dir(os.path.join(out, "rotation"), _files.PRIVATE_DIR_MODE)
    data = json.dumps(state, indent=2, sort_keys=True).encode() + b"\n"
    _files.atomic_write(os.path.join(out, STATE), data, _files.CERT_MODE)


def certs(data):
    """The certificates of a PEM bundle, in order."""
    return [_crypto.load_cert(block) for block in _PEM.findall(data or b"")]


def bundle(*cas):
    return b"".join(_crypto.cert_pem(c) for c in cas)


def kubeconfigs(out):
    """Every kubeconfig of the tree (relative paths): they all embed the cluster CA."""
    found = []
    for root, dirs, names in os.walk(out):
        dirs[:] = sorted(d for d in dirs if os.path.relpath(os.path.join(root, d), out) != "rotation")
        found += [os.path.relpath(os.path.join(root, n), out) for n in sorted(names) if n.endswith(".conf")]
    return found


def set_ca_data(text, ca_pem):
    """``text`` (a kubeconfig) with every certificate-authority-data replaced by ``ca_pem``."""
    value = base64.b64encode(ca_pem).decode("ascii")
    return _CA_DATA.sub(lambda m: m.group(1) + value, text)


def _ca_item(name):
    layout = _model.LAYOUT_BY_NAME[name]
    cn = _CN[name]
    return _model.Item(layout.dest, "ca", cn=cn, dns=(cn,), layout=layout)


def _load_pair(out, name):
    crt, key = (
        _files.read(os.path.join(out, _rot(name, "new.crt"))),
        _files.read(os.path.join(out, _rot(name, "new.key"))),
    )
    if crt is None or key is None:
        return None, None
    cert, key = _crypto.load_cert(crt), _crypto.load_key(key)
    if _crypto.public_der(key) != _crypto.public_der(cert.public_key()):
        return None, None  # a run killed between the two writes: make the pair again
    return cert, key


def current(out, name):
    """(bundle certificates, the key) of the CA in the tree."""
    path = CA[name]
    found = certs(_files.read(os.path.join(out, f"{path}.crt")))
    if not found:
        raise KubeguardError("output_dir", f"{path}.crt is missing: run cluster_pki first")
    return found, _files.read(os.path.join(out, f"{path}.key"))


def step_files(out, name, step, controller_kubeconfig=""):
    """The store (and controller) files ``step`` writes, for check mode and the report."""
    path = CA[name]
    # Only the cluster CA is embedded in kubeconfigs.
    confs = (kubeconfigs(out) + ([controller_kubeconfig] if controller_kubeconfig else [])) if name == "ca" else []
    return {
        "generate": [_rot(name, "new.crt"), _rot(name, "new.key"), _rot(name, "old.crt"), STATE],
        "trust": [f"{path}.crt", *confs, STATE],
        "reissue": [f"{path}.crt", f"{path}.key", *_signed(out, path), *confs, STATE],
        "pods": [STATE],
        "verify": [STATE],
        "remove": [f"{path}.crt", *confs, _rot(name, "new.crt"), _rot(name, "new.key"), STATE],
    }[step]


def _signed(out, path):
    """The tree's leaf certificates the CA of ``path`` signs (the engine reissues them at ``reissue``)."""
    signer = certs(_files.read(os.path.join(out, f"{path}.crt")))
    found = []
    for rel in _store_files(out):
        if rel.endswith(".crt") and rel != f"{path}.crt":
            leaf = certs(_files.read(os.path.join(out, rel)))
            if leaf and signer and _crypto.signed_by(leaf[0], signer[0]) and leaf[0].subject != signer[0].subject:
                found.append(rel)
    return found


def generate(out, name, algorithm, ca_days, now):
    """Make the new CA (kept when a killed run already made it) and keep the old certificate."""
    old = current(out, name)[0][0]
    new, key = _load_pair(out, name)
    _files.ensure_dir(os.path.join(out, "rotation", name), _files.PRIVATE_DIR_MODE)
    if new is None:
        # The old certificate first: a generate killed after it keeps this round's old CA.
        _files.atomic_write(os.path.join(out, _rot(name, "old.crt")), _crypto.cert_pem(old), _files.CERT_MODE)
        key = _crypto.generate_keys([algorithm])[0]
        new = _crypto.build_cert(_ca_item(name), key, now, now + datetime.timedelta(days=ca_days))
        _files.atomic_write(os.path.join(out, _rot(name, "new.key")), _crypto.key_pem(key), _files.KEY_MODE)
        _files.atomic_write(os.path.join(out, _rot(name, "new.crt")), _crypto.cert_pem(new), _files.CERT_MODE)
    old = pair(out, name)[0]
    return {"old": _crypto.fingerprint(old), "new": _crypto.fingerprint(new)}


def old_certs(out, name):
    """The old CA's certificates the generate step kept in the store ([] before it)."""
    return certs(_files.read(os.path.join(out, _rot(name, "old.crt"))))


def pair(out, name):
    """(old certificate, new certificate, new key) of a generated rotation."""
    old = old_certs(out, name)
    new, key = _load_pair(out, name)
    if not old or new is None:
        raise KubeguardError("step", f"the new {name} is missing from the store; run the generate step again")
    return old[0], new, key


def _write_bundle(out, name, first, second, key=None):
    path = CA[name]
    _files.atomic_write(
        os.path.join(out, f"{path}.crt"), bundle(first, *([second] if second else [])), _files.CERT_MODE
    )
    if key is not None:
        _files.atomic_write(os.path.join(out, f"{path}.key"), _crypto.key_pem(key), _files.KEY_MODE)


def _rewrite_kubeconfigs(out, name, ca_pem, controller_kubeconfig):
    if name != "ca":
        return  # only the cluster CA is embedded in kubeconfigs
    for rel in kubeconfigs(out):
        full = os.path.join(out, rel)
        text = _files.read(full).decode()
        if _CA_DATA.search(text):
            _files.atomic_write(full, set_ca_data(text, ca_pem).encode(), _files.KEY_MODE)
    if controller_kubeconfig and os.path.exists(controller_kubeconfig):
        rewrite_controller(controller_kubeconfig, lambda text: set_ca_data(text, ca_pem))


def rewrite_controller(path, change):
    """Rewrite the controller's kubeconfig (not in the store: kept plain, its mode kept)."""
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    new = change(text)
    if new != text:
        _node_files.atomic_write(path, new.encode(), os.stat(path).st_mode & 0o7777)


def trust(out, name, controller_kubeconfig):
    """Bundles and kubeconfigs carry old + new; the old CA still signs (its key stays)."""
    old, new, _unused = pair(out, name)
    signing = current(out, name)[0][0]
    if _crypto.fingerprint(signing) != _crypto.fingerprint(old):
        raise KubeguardError(
            "output_dir", f"{CA[name]}.crt does not start with the CA this rotation began from; nothing was written"
        )
    _write_bundle(out, name, old, new)
    _rewrite_kubeconfigs(out, name, bundle(old, new), controller_kubeconfig)


def reissue(out, name, controller_kubeconfig, leaf_days, now):
    """The new CA signs from now on (bundle new + old); the engine reissues the
    tree's leaves, this reissues the controller's client certificate."""
    old, new, key = pair(out, name)
    _write_bundle(out, name, new, old, key)
    if name == "ca" and controller_kubeconfig and os.path.exists(controller_kubeconfig):
        rewrite_controller(controller_kubeconfig, lambda text: _reissue_client(text, old, new, key, leaf_days, now))


def _reissue_client(text, old, new, key, leaf_days, now):
    client, client_key = _CLIENT.search(text), _KEY.search(text)
    if not client or not client_key:
        return text  # token or exec authentication: nothing signed by the CA
    cert = _crypto.load_cert(base64.b64decode(client.group(2)))
    if not _crypto.signed_by(cert, old) or _crypto.signed_by(cert, new):
        return text
    from cryptography.x509.oid import NameOID

    private = _crypto.load_key(base64.b64decode(client_key.group(1)))
    cn = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    orgs = tuple(a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME))
    item = _model.Item(
        "controller-kubeconfig", "leaf", cn=cn[0] if cn else "kubernetes-admin", orgs=orgs, eku=("clientAuth",)
    )
    not_after = min(now + datetime.timedelta(days=leaf_days), new.not_valid_after_utc)
    issued = _crypto.build_cert(item, private, now, not_after, (new, key))
    value = base64.b64encode(_crypto.cert_pem(issued)).decode("ascii")
    return _CLIENT.sub(lambda m: m.group(1) + value, text)


def rewrite_node_kubeconfig(out, name, step, text, leaf_days, now):
    """A kubeconfig the store does not manage (kube-proxy's, a network plugin's), as ``step`` wants it:
    its CA data follows the store's bundle; at ``reissue`` a client certificate of the old CA is reissued."""
    old, new, key = pair(out, name)
    if step == "reissue":
        text = _reissue_client(text, old, new, key, leaf_days, now)
    ca_pem = {"trust": bundle(old, new), "reissue": bundle(new, old), "remove": bundle(new)}[step]
    return set_ca_data(text, ca_pem) if _trusts(text, old, new) else text


def _trusts(text, old, new):
    """Whether the kubeconfig trusts this CA (old or new) at all: another cluster's is left alone."""
    wanted = {_crypto.fingerprint(old), _crypto.fingerprint(new)}
    return any(
        wanted & {_crypto.fingerprint(c) for c in certs(base64.b64decode(m.group(2)))} for m in _CA_DATA.finditer(text)
    )


def remove(out, name, controller_kubeconfig):
    """Only the new CA is left in the bundles."""
    _old, new, _key = pair(out, name)
    _write_bundle(out, name, new, None)
    _rewrite_kubeconfigs(out, name, bundle(new), controller_kubeconfig)


def forget(out, name):
    """Once ``remove`` is recorded: the rotation's copies go (the new key is the CA's key now)."""
    for what in ("new.key", "new.crt", "old.crt"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(out, _rot(name, what)))


def offenders(out, name, evidence, sources, controller_kubeconfig):
    """Certificates in use that chain only to the old CA, and trust stores that lack the new one.

    ``evidence`` is the base64 contents read on the nodes, ``sources`` their
    ``node:path`` names; the store and the controller's kubeconfig are read here."""
    old, new, _key = pair(out, name)
    found = []
    read = [("store", rel, _files.read(os.path.join(out, rel))) for rel in _store_files(out)]
    if controller_kubeconfig and os.path.exists(controller_kubeconfig):
        with open(controller_kubeconfig, "rb") as handle:
            read.append(("controller", controller_kubeconfig, handle.read()))
    names = list(sources) + [f"node {i}" for i in range(len(sources), len(evidence))]
    read += [("", where, base64.b64decode(content)) for where, content in zip(names, evidence)]
    for where, path, data in read:
        found += [f"{where + ':' if where else ''}{path}: {why}" for why in _judge(data or b"", old, new)]
    return found


def _store_files(out):
    names = []
    for root, dirs, files in os.walk(out):
        dirs[:] = sorted(d for d in dirs if os.path.relpath(os.path.join(root, d), out) != "rotation")
        names += [os.path.relpath(os.path.join(root, f), out) for f in sorted(files) if f.endswith((".crt", ".conf"))]
    return names


def _judge(data, old, new):
    """Why one file keeps the old CA in use ([] when it does not)."""
    text = data.decode("utf-8", "replace")
    found = certs(data)
    trust = []
    for match in _CA_DATA.finditer(text):
        trust += certs(base64.b64decode(match.group(2)))
    for match in _CLIENT.finditer(text):
        found += certs(base64.b64decode(match.group(2)))
    why = []
    same = _crypto.fingerprint
    for cert in found:
        if same(cert) in (same(old), same(new)):
            trust.append(cert)
        elif _crypto.signed_by(cert, old) and not _crypto.signed_by(cert, new):
            why.append(f"{cert.subject.rfc4514_string()} is signed by the old CA only")
    fingerprints = {same(c) for c in trust}
    if same(old) in fingerprints and same(new) not in fingerprints:
        why.append("trusts the old CA only")
    return why
