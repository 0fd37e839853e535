# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to kubeguard.hardening: the CA rotation state machine, behind the
``cluster_ca_rotation`` module. Pure logic: no I/O, no cryptography, no clock.

A rotation of one CA moves the cluster from the *old* CA to a *new* one in
steps, each recorded on the controller before the next may begin:

1. ``generate``: the new CA is made in the store (nothing on the nodes yet);
2. ``trust``: every trust bundle and kubeconfig carries old + new, and every
   component that reads them is restarted, one at a time, health-checked;
3. ``pods``: pods started before ``trust`` hold the old root CA in memory; they
   are listed, and restarted when asked, before the API server changes its
   certificate (they would stop trusting it);
4. ``reissue``: the new CA signs, every leaf is reissued from it and installed;
5. ``verify``: no certificate in the store or on the nodes chains only to the
   old CA (recorded only with that evidence);
6. ``remove``: the old CA leaves every bundle.

The service-account key (``sa``) has no certificate: ``trust`` lists both
public keys in ``sa.pub``, ``reissue`` makes the new key sign, and ``pods``
comes after ``reissue`` (a token is re-signed only once the new key signs).

A run killed anywhere resumes at the first unrecorded step; ``remove`` can
never come before a recorded ``verify``. A finished rotation is kept in the
state with its ``round``: asking again for the same round changes nothing.
"""

from __future__ import annotations

from .._errors import KubeguardError

STEPS = ("generate", "trust", "pods", "reissue", "verify", "remove")
# Per CA, when it differs: tokens signed by the old key are replaced only after reissue.
ORDER = {"sa": ("generate", "trust", "reissue", "pods", "verify", "remove")}
ROTATABLE = ("ca", "etcd-ca", "front-proxy-ca", "sa")
OPTION = "rotate"
VERSION = 1


def check_request(rotate, round_):
    """The CAs asked for, validated; raises KubeguardError naming the option."""
    if not isinstance(rotate, list):
        raise KubeguardError(OPTION, "must be a list")
    unknown = [name for name in rotate if name not in ROTATABLE]
    if unknown:
        raise KubeguardError(OPTION, f"unknown CA {', '.join(map(str, unknown))}; choose from {', '.join(ROTATABLE)}")
    if not isinstance(round_, int) or isinstance(round_, bool) or round_ < 1:
        raise KubeguardError("round", "must be an integer >= 1")
    return list(dict.fromkeys(rotate))


def steps(name):
    """The steps of CA ``name``, in order."""
    return ORDER.get(name, STEPS)


def pods_after(name):
    """The step whose time the ``pods`` step lists pods started before."""
    order = steps(name)
    return order[order.index("pods") - 1]


def empty_state():
    return {"version": VERSION, "rotations": {}}


def check_state(state):
    """A state read from the store, or a fresh one; refuses what this code did not write."""
    if state is None:
        return empty_state()
    if not isinstance(state, dict) or state.get("version") != VERSION or not isinstance(state.get("rotations"), dict):
        raise KubeguardError("output_dir", "rotation/state.json is not a CA rotation state of this collection")
    return state


def due(state, name, round_):
    """The steps still to run for CA ``name`` at ``round_``, in order."""
    entry = state["rotations"].get(name)
    if entry is None or entry["round"] < round_:
        return list(steps(name))
    if entry["round"] > round_:
        return []  # a later round ran already: an old inventory changes nothing
    return [step for step in steps(name) if step not in entry["steps"]]


def in_progress(state):
    """The CAs whose rotation started and did not finish."""
    return sorted(name for name, entry in state["rotations"].items() if entry["steps"] and not entry.get("finished"))


def begin(state, name, round_, step):
    """Refuse ``step`` unless every earlier step of this round is recorded; start the round at ``generate``."""
    order = steps(name)
    if step not in order:
        raise KubeguardError("step", f"unknown step {step}; one of {', '.join(order)}")
    entry = state["rotations"].get(name)
    if step == STEPS[0] and (entry is None or entry["round"] < round_):
        # A new round: a finished earlier round is replaced; an unfinished one is refused.
        if entry is not None and not entry.get("finished"):
            raise KubeguardError(
                "round", f"round {entry['round']} of {name} is unfinished (recorded: {', '.join(entry['steps'])})"
            )
        entry = {
            "round": round_,
            "steps": [],
            "finished": False,
            "old": "",
            "new": "",
            "trusted_at": "",
            "pods_since": "",
        }
        state["rotations"][name] = entry
        return entry
    if entry is None or entry["round"] != round_:
        raise KubeguardError("step", f"{step} of {name}: round {round_} has not begun with {STEPS[0]}")
    missing = [s for s in order[: order.index(step)] if s not in entry["steps"]]
    if missing:
        raise KubeguardError("step", f"{step} of {name} refused: {', '.join(missing)} not recorded yet")
    return entry


def record(state, name, round_, step, offenders=None, **facts):
    """Record ``step`` (after ``begin`` allowed it). ``verify`` is recorded only
    when ``offenders`` (certificates that chain only to the old CA) is empty."""
    entry = begin(state, name, round_, step) if step != STEPS[0] else state["rotations"].get(name)
    if entry is None or entry["round"] != round_:
        raise KubeguardError("step", f"{step} of {name}: round {round_} has not begun")
    if step == "verify" and offenders:
        raise KubeguardError(
            "step",
            f"verify of {name} refused: {len(offenders)} certificate(s) in use chain only to the old CA: "
            + "; ".join(offenders[:10])
            + ". The old CA stays in every bundle; reissue or remove them and run again.",
        )
    for key, value in facts.items():
        if key in ("old", "new", "trusted_at", "pods_since") and value:
            entry[key] = value
    if step not in entry["steps"]:
        entry["steps"].append(step)
    entry["finished"] = set(entry["steps"]) == set(steps(name))
    return entry


def describe(state, rotate, round_):
    """Per asked CA: the due steps and the recorded ones (the module's plan)."""
    result = {}
    for name in rotate:
        entry = state["rotations"].get(name) or {}
        result[name] = {
            "due": due(state, name, round_),
            "recorded": list(entry.get("steps") or []) if entry.get("round") == round_ else [],
        }
    return result
