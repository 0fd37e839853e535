# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to kubeguard.hardening: read the PKI tree, plan, issue, write.

``run(params, check_mode, now)`` is the whole module logic, usable without
Ansible (the benchmark and the integration tests call it in-process). ``now``
is the clock injection point; the module never passes it.
"""

from __future__ import annotations

import datetime
import os

from ansible_collections.kubeguard.hardening.plugins.module_utils._common import vault
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError
from ansible_collections.kubeguard.hardening.plugins.module_utils._pki import (
    _agents,
    _crypto,
    _files,
    _inputs,
    _kubeconfig,
    _model,
    _plan,
)


class _State:
    """What was read from disk for one item, plus the decision about it."""

    def __init__(self, item):
        self.item = item
        self.obs = _plan.Observed()
        self.cert = None
        self.key = None
        self.decision = None
        self.mode = "own"
        self.report = ""
        self.written = []
        self.bundle = None  # a CA file with more than one certificate (a CA rotation, docs/ca-rotation.md)


def _load(out, item, ca_states):
    state = _State(item)
    files = _model.item_files(item)
    data = {f: _files.read(os.path.join(out, f)) for f in files}
    state.obs.files = {f: data[f] is not None for f in files}
    if item.kind == "sa":
        return _load_sa(state, data, files), data
    if not all(state.obs.files.values()):
        return state, data
    try:
        if item.kind == "kubeconfig":
            parsed = _kubeconfig.parse(data[item.path])
            if parsed is None:
                raise ValueError("not a kubeconfig")
            state.obs.server = parsed["server"]
            state.cert, state.key = _crypto.load_cert(parsed["cert"]), _crypto.load_key(parsed["key"])
            ca = ca_states.get(item.signer)
            state.obs.ca_data_matches = bool(ca and ca.cert and parsed["ca"].strip() == _ca_pem(ca).strip())
        else:
            state.cert, state.key = _crypto.load_cert(data[files[0]]), _crypto.load_key(data[files[1]])
        state.obs.key_matches = _crypto.public_der(state.key) == _crypto.public_der(state.cert.public_key())
        state.obs.key_algorithm = _crypto.key_algorithm(state.key)
        state.obs.meta = _crypto.describe(state.cert)
        ca = ca_states.get(item.signer)
        if item.kind != "ca":
            state.obs.signed_by_ca = bool(ca and ca.cert and _crypto.signed_by(state.cert, ca.cert))
    except (ValueError, TypeError):
        state.obs.readable = False
        state.cert = state.key = None
    return state, data


def _ca_pem(ca_state):
    """What a kubeconfig embeds for this CA: the whole bundle during a rotation, else the certificate."""
    return ca_state.bundle or _crypto.cert_pem(ca_state.cert)


def _load_sa(state, data, files):
    key, pub = data[files[0]], data[files[1]]
    if key is None:
        return state
    try:
        state.key = _crypto.load_key(key)
    except (ValueError, TypeError):
        state.obs.readable = False
        return state
    try:
        state.obs.key_matches = pub is not None and _crypto.public_der(_crypto.load_public(pub)) == _crypto.public_der(
            state.key
        )
    except (ValueError, TypeError):
        state.obs.key_matches = False
    return state


def _written(state):
    """The files a change of ``state`` writes (the key only when it is new)."""
    files = _model.item_files(state.item)
    if state.item.kind == "kubeconfig":
        return list(files)
    if state.item.kind == "sa":
        return list(files) if state.key is None or state.decision.new_key else [files[1]]
    if state.decision.new_key or state.key is None:
        return list(files)
    return [files[0]]


def _load_partial_ca(out, item, state):
    """A CA whose key is absent (external CA mode): load the certificate alone."""
    raw = _files.read(os.path.join(out, f"{item.path}.crt"))
    try:
        state.cert = _crypto.load_cert(raw)
        state.obs.meta = _crypto.describe(state.cert)
    except (ValueError, TypeError):
        state.obs.readable = False


def _entry(state, not_after, fingerprint):
    item = state.item
    subject = f"CN={item.cn}" + "".join(f", O={o}" for o in item.orgs) if item.cn else ""
    return {
        "path": _model.item_files(item)[0],
        "node": item.node,
        "kind": item.kind,
        "action": state.report or state.decision.action,
        "not_after": not_after.strftime("%Y-%m-%dT%H:%M:%SZ") if not_after else None,
        "subject": subject,
        "fingerprint": fingerprint,
    }


def _meta_text(cert):
    if cert is None:
        return "(absent)\n"
    meta = _crypto.describe(cert)
    subject = cert.subject.rfc4514_string()
    return (
        f"subject: {subject}\n"
        f"dns_sans: {list(meta['dns'])}\n"
        f"ip_sans: {list(meta['ips'])}\n"
        f"eku: {list(meta['eku'])}\n"
        f"not_after: {meta['not_after'].strftime('%Y-%m-%dT%H:%M:%SZ')}\n"
        f"fingerprint: {_crypto.fingerprint(cert)}\n"
    )


def distribution(cluster, items, out, pending=()):
    """Per node name, the files it receives: only what that node needs.

    ``pending`` lists the files (relative to ``out``) this run writes or, in
    check mode, would write. Each item's entries are built once; a node gets
    the cluster-wide ones its receiver groups (``_model.LAYOUT``) allow and
    its own per-node ones.
    """
    pending = set(pending)
    shared, own = [], {}
    for item in items:
        entries = _entries(item, out, pending)
        if item.node:
            own.setdefault(item.node, []).extend(entry for _unused, entry in entries)
        else:
            shared.append((item.layout, entries))
    result = {}
    for node in cluster.nodes:
        groups = _model.receivers(node)
        files = [
            entry
            for layout, entries in shared
            for part, entry in entries
            if (layout.secret_to if part == "secret" else layout.public_to) in groups
        ]
        result[node.name] = files + own.get(node.name, [])
    return result


def _entries(item, out, pending):
    """[(part, entry)] of one item, ``part`` being ``public`` or ``secret``, in install order."""
    if item.kind == "kubeconfig":
        parts = [("secret", item.path, item.dest, 0o600)]
    else:
        ext = ".pub" if item.kind == "sa" else ".crt"
        parts = [
            ("public", f"{item.path}{ext}", f"{item.dest}{ext}", 0o644),
            ("secret", f"{item.path}.key", f"{item.dest}.key", 0o600),
        ]
        if item.kind == "sa":
            parts.reverse()  # key first, as the role always listed it
    components = list(item.components)
    return [
        (
            part,
            {
                "src": os.path.join(out, src),
                "root": item.root,
                "dest": dest,
                "mode": f"{mode:04o}",
                "secret": mode == 0o600,
                "components": components,
                "pending": src in pending,
                **_entry_extras(item, dest),
            },
        )
        for part, src, dest, mode in parts
    ]


def _entry_extras(item, dest):
    """What the node side needs to know beyond the file: a CA certificate is
    guarded against silent replacement; a kubeconfig's server is checked from
    the node before it changes; a node agent's file goes only where its unit is."""
    if item.kind == "ca" and dest.endswith(".crt"):
        return {"ca": True}
    if item.kind == "kubeconfig":
        extras = {"server": item.server, "server_option": item.server_option}
        if item.layout and item.layout.unit:
            extras.update(agent=item.components[0], unit=item.layout.unit)
        return extras
    return {}


def _cap(now, days, ca_cert):
    wanted = now + datetime.timedelta(days=days)
    if ca_cert is not None and ca_cert.not_valid_after_utc < wanted:
        return ca_cert.not_valid_after_utc
    return wanted


def run(params, check_mode=False, now=None):
    """Bring the PKI tree under ``params['output_dir']`` to the wanted state.

    Returns the module result (without ``diff`` when nothing changed).
    Raises KubeguardError on bad input or a CA that must not be replaced.
    """
    now = now or datetime.datetime.now(datetime.timezone.utc)
    cluster = _inputs.parse_cluster(params)
    agents = _agents.parse(params.get("node_agents"))
    out = os.path.abspath(str(params.get("output_dir") or ""))
    if not params.get("output_dir"):
        raise KubeguardError("output_dir", "is required")
    _files.check_writable(out)
    items = _model.catalogue(cluster) + _agents.catalogue(cluster, agents)
    # A store written before the vault was on: its secrets are encrypted in place (a change).
    secret_files = [
        os.path.join(out, r) for i in items for r in _model.item_files(i) if _wanted_mode(r) == _files.KEY_MODE
    ]
    sealed = vault.seal_in_place(
        secret_files, check_mode, lambda path, data: _files.atomic_write(path, data, _files.KEY_MODE)
    )
    renew = datetime.timedelta(days=cluster.renew_before_days)
    states, warnings, external = {}, [], []

    for item in items:
        state, data = _load(out, item, states)
        states[item.path] = state
        raw = data.get(f"{item.path}.crt") if item.kind == "ca" else None
        if raw and raw.count(b"-----BEGIN CERTIFICATE-----") > 1:
            state.bundle = raw
        if item.kind == "ca":
            if state.obs.files.get(f"{item.path}.crt") and not state.obs.files.get(f"{item.path}.key"):
                _load_partial_ca(out, item, state)
            state.decision, state.mode, ca_warn = _plan.decide_ca(item, state.obs, now, renew)
            warnings += ca_warn
            if state.mode == "external":
                external.append(item.path)
        elif item.kind == "sa":
            state.decision = _plan.decide_sa(state.obs)
        else:
            ca = states[item.signer]
            cap = _cap(now, cluster.leaf_days, None if ca.decision.action == _plan.CREATED else ca.cert)
            state.decision = _plan.decide_leaf(
                item, state.obs, cluster.algorithm, now, renew, cap, ca_replaced=ca.decision.action == _plan.CREATED
            )
            if ca.mode == "external":
                state.report = _plan.external_status(state.decision)
                state.decision = _plan.Decision(_plan.OK)

    changed = [s for s in states.values() if s.decision.changed]
    for state in changed:
        state.written = _written(state)
    modes = _wrong_modes(out, [s for s in states.values() if not s.decision.changed])
    result = {"changed": bool(changed or modes or sealed), "output_dir": out, "warnings": warnings}
    # When the first certificate of the store enters its renewal window: site.yml's fast rerun expires then.
    due = [s.obs.meta["not_after"] - renew for s in states.values() if s.obs.meta.get("not_after")]
    result.update(
        external_ca=external,
        modes_fixed=sorted(modes),
        vault_sealed=[os.path.relpath(p, out) for p in sealed],
        renew_by=min(due).timestamp() if due else None,
    )
    if not check_mode:
        for rel, mode in modes.items():
            try:
                os.chmod(os.path.join(out, rel), mode)
            except OSError as exc:
                raise KubeguardError("output_dir", f"cannot set the mode of {rel}: {exc.strerror}") from None
    diffs, entries = [], []
    if not check_mode and changed:
        need = [s for s in changed if s.decision.new_key or s.key is None]
        keys = _crypto.generate_keys([cluster.algorithm] * len(need), int(params.get("workers") or 0))
        for state, key in zip(need, keys):
            state.key = key
    for state in states.values():
        item = state.item
        before = state.cert
        if state.decision.changed and not check_mode:
            _issue(out, cluster, state, states, now)
        if item.kind == "sa":
            entries.append(_entry(state, None, None))
            continue
        if state.decision.changed and check_mode:
            ca = states.get(item.signer)
            days = cluster.ca_days if item.kind == "ca" else cluster.leaf_days
            not_after = _cap(now, days, ca.cert if ca and ca.decision.action == _plan.OK else None)
            fingerprint = "(new)"
        elif state.cert is not None:
            not_after, fingerprint = state.cert.not_valid_after_utc, _crypto.fingerprint(state.cert)
        else:
            not_after, fingerprint = None, None
        entries.append(_entry(state, not_after, fingerprint))
        if state.decision.changed:
            after = "(to be issued)\n" if check_mode else _meta_text(state.cert)
            path = entries[-1]["path"]
            diffs.append({"before_header": path, "after_header": path, "before": _meta_text(before), "after": after})
    result["certificates"] = entries
    result["summary"] = _summary(entries)
    result["changed_files"] = sorted(f for s in changed for f in s.written)
    result["distribution"] = distribution(cluster, items, out, set(result["changed_files"]))
    ca = states["pki/ca"].cert
    result["ca_certificate"] = _ca_pem(states["pki/ca"]).decode() if ca is not None else ""
    if diffs:
        result["diff"] = diffs
    return result


def _wanted_mode(rel):
    return _files.CERT_MODE if rel.endswith((".crt", ".pub")) else _files.KEY_MODE


def _wrong_modes(out, states):
    """Existing files of unchanged items whose mode is not 0600 (keys, kubeconfigs) / 0644 (certs)."""
    wrong = {}
    for state in states:
        for rel in _model.item_files(state.item):
            try:
                mode = os.stat(os.path.join(out, rel)).st_mode & 0o7777
            except OSError:
                continue
            if mode != _wanted_mode(rel):
                wrong[rel] = _wanted_mode(rel)
    return wrong


def _summary(entries):
    summary = {}
    for entry in entries:
        word = entry["action"].split(":", 1)[0]
        summary[word] = summary.get(word, 0) + 1
    return summary


def _issue(out, cluster, state, states, now):
    item = state.item
    for rel in _model.item_files(item):
        path = os.path.dirname(os.path.join(out, rel))
        parts = os.path.relpath(path, out).split(os.sep)
        for i in range(len(parts) + 1):
            _files.ensure_dir(os.path.join(out, *parts[:i]), _files.PRIVATE_DIR_MODE)
    if item.kind == "sa":
        if f"{item.path}.key" in state.written:
            _files.atomic_write(os.path.join(out, f"{item.path}.key"), _crypto.key_pem(state.key), _files.KEY_MODE)
        _files.atomic_write(os.path.join(out, f"{item.path}.pub"), _crypto.public_pem(state.key), _files.CERT_MODE)
        return
    if item.kind == "ca":
        state.cert = _crypto.build_cert(item, state.key, now, now + datetime.timedelta(days=cluster.ca_days))
    else:
        ca = states[item.signer]
        state.cert = _crypto.build_cert(item, state.key, now, _cap(now, cluster.leaf_days, ca.cert), (ca.cert, ca.key))
    if item.kind == "kubeconfig":
        data = _kubeconfig.render(
            cluster.name,
            item.server,
            item.cn,
            _ca_pem(states[item.signer]),
            _crypto.cert_pem(state.cert),
            _crypto.key_pem(state.key),
        )
        _files.atomic_write(os.path.join(out, item.path), data, _files.KEY_MODE)
        return
    # Key first: a crash in between leaves a mismatched pair, which the next run reissues.
    if f"{item.path}.key" in state.written:
        _files.atomic_write(os.path.join(out, f"{item.path}.key"), _crypto.key_pem(state.key), _files.KEY_MODE)
    _files.atomic_write(os.path.join(out, f"{item.path}.crt"), _crypto.cert_pem(state.cert), _files.CERT_MODE)
