# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the rotation state machine, behind the ``encryption_at_rest_state`` module.

A transition moves every object of the encrypted resources from the keys (or
``identity``) it is stored with now, the *retiring* slots, to one *target*
key, in the upstream order:

1. ``secondary``: every apiserver can read the target, still writes the old way;
2. ``primary``: every apiserver writes with the target, still reads the old slots;
3. ``rewrite``: every object is read and replaced through the API;
4. ``verify``: etcd holds no value that is not encrypted with the target;
5. ``remove``: the retiring slots leave the config.

``plan`` decides whether a transition is due (a new generation or provider,
a node that drifted, a resource newly encrypted) and starts it; ``begin``
hands out the configuration of the next step only when every earlier step is
recorded; ``record`` records a step, and records ``verify`` only with the
etcd evidence that nothing needs a retiring slot. A run killed anywhere
resumes at the first unrecorded step, and ``remove`` can never come before a
recorded ``verify``.
"""

from __future__ import annotations

import re

from .._errors import KubeguardError, require_facts
from . import config, keystore, objects

STEPS = ("secondary", "primary", "rewrite", "verify", "remove")
STORE = keystore.STORE_OPTION
ADOPT = "encryption_at_rest_adopt"


def _generation_of(name):
    match = re.match(r"^gen(\d+)-", name)
    return int(match.group(1)) if match else 0


def _effective(facts):
    """A node's slot names in order; no config means the apiserver stores plain text (identity)."""
    slots = [s["name"] for s in facts.get("slots") or []]
    return slots or [config.IDENTITY]


def _label(slot):
    return config.IDENTITY if slot["provider"] == config.IDENTITY else f"{slot['provider']}:{slot['name']}"


def node_keys(nodes):
    """{name: {"provider", "fingerprint", "hosts"}} of every key on the nodes; nodes that disagree stop the run."""
    seen = {}
    for host, facts in sorted(nodes.items()):
        if facts.get("unsupported"):
            raise KubeguardError(
                "encryption_at_rest_provider",
                f"the apiserver config on {host} uses {', '.join(facts['unsupported'])}, which this role does not "
                "manage (KMS v2 is an extension point, see docs/encryption_at_rest.md); nothing was changed",
            )
        for slot in (facts.get("slots") or []) + (facts.get("other_keys") or []):
            if slot["provider"] == config.IDENTITY:
                continue
            known = seen.setdefault(
                slot["name"], {"provider": slot["provider"], "fingerprint": slot.get("fingerprint"), "hosts": []}
            )
            if (known["provider"], known["fingerprint"]) != (slot["provider"], slot.get("fingerprint")):
                raise KubeguardError(
                    STORE,
                    f"the control-plane nodes disagree on key {slot['name']!r}: {', '.join(known['hosts'])} hold "
                    f"{known['provider']} {known['fingerprint']}, {host} holds {slot['provider']} "
                    f"{slot.get('fingerprint')}. Objects written through either apiserver need their own key, so "
                    "no key is chosen for you: make the nodes agree by hand, then rerun; nothing was changed",
                )
            known["hosts"].append(host)
    return seen


def check_store(store, found, nodes, params):
    """Compare the store with the nodes; stop, or adopt the nodes' keys when asked. Returns (store, adopted)."""
    path = params["key_store"]
    missing = sorted(name for name in found if store is None or name not in store)
    differ = sorted(
        name
        for name in found
        if store is not None
        and name in store
        and (config.fingerprint(store[name]["secret"]), store[name]["provider"])
        != (found[name]["fingerprint"], found[name]["provider"])
    )
    if not (missing or differ):
        return store, []
    if not params.get("adopt"):
        held = "; ".join(
            f"{name} ({found[name]['provider']} {found[name]['fingerprint']}) on {', '.join(found[name]['hosts'])}"
            for name in missing + differ
        )
        if store is None:
            theirs = f"the key store {path} does not exist"
        elif missing:
            theirs = f"the key store {path} holds only {', '.join(sorted(store)) or 'no key'}"
        else:
            theirs = "the key store {} holds {}".format(
                path,
                ", ".join(
                    f"{name} as {store[name]['provider']} {config.fingerprint(store[name]['secret'])}"
                    for name in differ
                ),
            )
        raise KubeguardError(
            STORE,
            f"{theirs}, but the apiserver configuration on the nodes holds {held}. Objects in etcd may be "
            "encrypted with those keys, so no replacement key is generated and nothing was changed. Restore the "
            f"key store to {path} (from your backup or vault), or set {ADOPT}: true to take the nodes' keys "
            "into the store.",
        )
    store = dict(store or {})
    adopted = []
    for name in missing + differ:
        secret = None
        for host in found[name]["hosts"]:
            secret = ((nodes[host].get("secrets") or {}).get(name)) or secret
        if not secret:
            raise KubeguardError(ADOPT, f"the nodes' facts carry no secret for key {name!r} (gather with secrets)")
        store[name] = {
            "provider": found[name]["provider"],
            "generation": _generation_of(name),
            "secret": secret,
            "created": keystore.now(),
            "adopted": True,
        }
        adopted.append(name)
    return store, adopted


def _initial_current(nodes):
    """The key objects are written with when no state is recorded: the nodes' common primary, if any."""
    primaries = {_effective(facts)[0] for facts in nodes.values()}
    if len(primaries) == 1:
        primary = primaries.pop()
        return None if primary == config.IDENTITY else primary
    return None


def _retiring(current, target, nodes, add_identity):
    out = []
    for slot in [current or config.IDENTITY] + [s for f in nodes.values() for s in _effective(f)]:
        if slot != target and slot not in out:
            out.append(slot)
    if add_identity and config.IDENTITY not in out:
        out.append(config.IDENTITY)
    # identity is only a read fallback: last, unless it is what the apiservers write with now
    if config.IDENTITY in out[1:]:
        out.remove(config.IDENTITY)
        out.append(config.IDENTITY)
    return out


def configs(transition, step):
    """The slot order every apiserver runs with once ``step`` is applied."""
    target, retiring = transition["target"], transition["retiring"]
    if step == "secondary":
        return [*retiring, target]
    if step in ("primary", "rewrite", "verify"):
        return [target, *retiring]
    return [target]


def _diff(nodes, store, after_slots):
    before = "".join(
        f"{host}: {', '.join(_label(s) for s in facts.get('slots') or []) or 'no encryption (identity)'}\n"
        for host, facts in sorted(nodes.items())
    )
    after_summary = ", ".join(config.summary(after_slots, store))
    after = "".join(f"{host}: {after_summary}\n" for host in sorted(nodes))
    return {
        "before_header": "encryption providers (key names only)",
        "after_header": "after",
        "before": before,
        "after": after,
    }


def served_resources(params, client=None):
    """With ``kubeconfig``: every resource checked against the API server in one discovery (as
    encryption_at_rest_objects' validate), before any plan; refused naming ``resources``."""
    try:
        found = objects.run(
            {**params, "action": "validate", "etcd_prefix": "/registry"},
            client=client or objects.connect(params),
        )
    except KubeguardError as exc:
        if exc.option != objects.OPTION:
            raise
        raise KubeguardError("resources", exc.message) from None
    return found["resources"]


def plan(params, check_mode):
    provider, generation, resources = params["provider"], params["generation"], list(params["resources"])
    config.validate_inputs(provider, generation, resources)
    # an empty kubeconfig is kubectl's default, as in every API module; omitted (None): no request
    served = served_resources(params) if params.get("kubeconfig") is not None else None
    nodes = params.get("nodes") or {}
    if not nodes:
        raise KubeguardError("encryption_at_rest_control_plane_group", "no control-plane node was gathered")
    for facts in nodes.values():
        require_facts(facts, "encryption_at_rest_facts", option="nodes")
    store = keystore.load_store(params["key_store"])
    state = keystore.load_state(params["state_file"])
    found = node_keys(nodes)
    store, adopted = check_store(store, found, nodes, params)
    store_changed = bool(adopted)
    known = set(store or {}) | {config.IDENTITY}
    if state is not None:
        needed = [state.get("current")] if state.get("current") else []
        if state.get("transition"):
            needed += [state["transition"]["target"], *state["transition"]["retiring"]]
        lost = sorted(set(needed) - known)
        if lost:
            raise KubeguardError(
                STORE,
                f"the state file {params['state_file']} says objects are (or are being) encrypted with "
                f"{', '.join(lost)}, but the key store {params['key_store']} "
                f"{'does not exist' if store is None else 'lacks ' + ('it' if len(lost) == 1 else 'them')}. "
                "No replacement key is generated and nothing was changed: restore the key store.",
            )
    state = state or {"current": _initial_current(nodes), "transition": None, "history": []}
    state_changed = False
    warnings = [f"adopted key {name} from the nodes into {params['key_store']}" for name in adopted]
    transition = state.get("transition")
    current_key = (store or {}).get(state.get("current") or "")
    if current_key and current_key.get("generation", 0) > generation:
        # generations never go back: an older inventory keeps the newer key instead of reviving a retired one
        warnings.append(
            f"encryption_at_rest_key_generation is {generation}, but objects are encrypted with generation "
            f"{current_key['generation']} ({state['current']}); keeping generation {current_key['generation']}"
        )
        generation = current_key["generation"]
    want = config.key_name(provider, generation)
    if not transition and want != state.get("current") and (store or {}).get(want, {}).get("retired"):
        raise KubeguardError(
            "encryption_at_rest_key_generation",
            f"key {want} was retired on {store[want]['retired']}; a retired key is never used again: "
            f"raise encryption_at_rest_key_generation above {generation}",
        )
    if transition:
        if transition["target"] != want or sorted(transition["resources"]) != sorted(resources):
            warnings.append(
                f"a transition to {transition['target']} is in progress; it completes first, and a later run "
                f"moves to {want}"
            )
    else:
        configured = {r for f in nodes.values() for r in (f.get("resources") or [])}
        dropped = sorted(configured - set(resources))
        if dropped:
            raise KubeguardError(
                "encryption_at_rest_resources",
                f"the nodes encrypt {', '.join(dropped)}, which the list no longer names; decrypting them needs "
                "a rewrite with identity first, which this role does not do. Keep them listed",
            )
        new_resources = not all(set(resources) <= set(f.get("resources") or []) for f in nodes.values())
        drifted = any(_effective(f) != [want] for f in nodes.values())
        if state.get("current") != want or drifted or new_resources:
            if store is None:
                store = {}
            if want not in store:
                store = dict(store)
                store[want] = {
                    "provider": provider,
                    "generation": generation,
                    "secret": keystore.new_secret(),
                    "created": keystore.now(),
                }
                store_changed = True
            transition = {
                "target": want,
                "retiring": _retiring(state.get("current"), want, nodes, new_resources),
                "resources": resources,
                "done": [],
                "started": keystore.now(),
            }
            state = dict(state, transition=transition)
            state["history"] = [*state["history"], {"event": "start", "target": want, "at": keystore.now()}]
            if len(nodes) == 1:
                # upstream: with a single kube-apiserver the secondary step may be skipped; no other
                # apiserver has to read what this one writes, and it saves a restart
                transition["done"] = ["secondary"]
                state["history"].append({"event": "secondary skipped (one apiserver)", "at": keystore.now()})
            state_changed = True
    if not check_mode:
        if store_changed:
            keystore.save_store(params["key_store"], store)  # first: the state never names a key not stored
        if state_changed:
            keystore.save_state(params["state_file"], state)
    steps = [s for s in STEPS if s not in (transition or {}).get("done", [])] if transition else []
    result = {
        "changed": bool(steps) or store_changed or state_changed,
        "steps": steps,
        "current": state.get("current"),
        "target": transition["target"] if transition else state.get("current"),
        "retiring": transition["retiring"] if transition else [],
        "resources": transition["resources"] if transition else resources,
        "adopted": adopted,
        "warnings": warnings,
    }
    if served is not None:
        result["served"] = served
    if transition:
        labels = dict.fromkeys(transition["retiring"] + [transition["target"]])
        result["providers"] = {s: config.summary(configs(transition, s), store) for s in STEPS}
        result["target_prefix"] = config.etcd_value_prefix(
            store[transition["target"]]["provider"], transition["target"]
        )
        result["slots"] = list(labels)
        result["diff"] = _diff(nodes, store, [transition["target"]])
        result["diff"]["after"] += f"steps due: {', '.join(steps)}\n"
    return result


def _transition(params):
    state = keystore.load_state(params["state_file"])
    transition = (state or {}).get("transition")
    if not transition:
        raise KubeguardError(
            "encryption_at_rest_state_file",
            f"{params['state_file']} records no transition in progress; run the plan first",
        )
    step = params["step"]
    if step not in STEPS:
        raise KubeguardError("step", f"must be one of {', '.join(STEPS)}")
    due = next((s for s in STEPS if s not in transition["done"]), None)
    return state, transition, step, due


def begin(params, check_mode):
    """The configuration of ``step``, only when it is the next step due."""
    _state, transition, step, due = _transition(params)
    if step != due:
        raise KubeguardError(
            "step", f"{step} is not due: the steps recorded are {', '.join(transition['done']) or 'none'}"
        )
    store = keystore.load_store(params["key_store"]) or {}
    slots = configs(transition, step)
    lost = [s for s in slots if s != config.IDENTITY and s not in store]
    if lost:
        raise KubeguardError(STORE, f"{params['key_store']} lacks {', '.join(lost)}; restore it")
    return {
        "changed": False,
        "step": step,
        "providers": config.summary(slots, store),
        "resources": transition["resources"],
        "config": config.render(transition["resources"], slots, store),
        "target_prefix": config.etcd_value_prefix(store[transition["target"]]["provider"], transition["target"]),
    }


def record(params, check_mode):
    """Record ``step`` as done; ``verify`` only with etcd evidence that no value needs a retiring slot."""
    state, transition, step, due = _transition(params)
    if step != due:
        if step in transition["done"]:
            return {"changed": False, "done": transition["done"]}
        raise KubeguardError("step", f"{step} cannot be recorded before {due}")
    if step == "verify":
        store = keystore.load_store(params["key_store"]) or {}
        evidence = params.get("evidence") or {}
        expected = config.etcd_value_prefix(store[transition["target"]]["provider"], transition["target"])
        missing = set(transition["resources"]) - set(evidence.get("resources") or [])
        if evidence.get("expected_prefix") != expected or missing or evidence.get("stale", 1) != 0:
            raise KubeguardError(
                "evidence",
                f"etcd does not prove that every object is encrypted with {transition['target']} "
                f"(expected prefix {expected}, stale values {evidence.get('stale')}, resources not checked "
                f"{sorted(missing)}); the retiring keys stay",
            )
    transition = dict(transition, done=[*transition["done"], step])
    history = [*state.get("history", []), {"event": step, "target": transition["target"], "at": keystore.now()}]
    if step == "remove":
        state = dict(state, current=transition["target"], transition=None, history=history)
        # retired keys stay in the store (etcd backups taken before may need them), never to be primary again
        store = keystore.load_store(params["key_store"]) or {}
        retired = [name for name in transition["retiring"] if name in store and not store[name].get("retired")]
        if retired and not check_mode:
            for name in retired:
                store[name] = dict(store[name], retired=keystore.now())
            keystore.save_store(params["key_store"], store)
    else:
        state = dict(state, transition=transition, history=history)
    if not check_mode:
        keystore.save_state(params["state_file"], state)
    return {"changed": True, "done": transition["done"]}


ACTIONS = {"plan": plan, "begin": begin, "record": record}


def run(params, check_mode=False):
    sealed = keystore.seal_store(params["key_store"], check_mode)
    result = ACTIONS[params["action"]](params, check_mode)
    return dict(result, changed=True, vault_sealed=sealed) if sealed else result
