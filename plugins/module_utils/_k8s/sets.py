# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the entry point of ``k8s_bulk_apply``: one call, one or several object sets.

Without ``sets`` it is the plain bulk apply (``runner.run``). With ``sets``,
each set is what one call would be on its own (its objects, templates,
namespaces, exclusions, state and prune), and the sets run in the order given,
one after the other, so a role that used to make one call per concern makes
one call for all of them and keeps their order: the allow rules before the
default-deny, a set's prune before the next set's applies.

Every set is validated and resolved before the first write (one discovery for
the whole call); each set reads its current objects and prune candidates just
before it runs, so it sees what the earlier sets wrote. A set with a failed
object stops the call: the later sets are not run (``skipped``), as a failed
task stops the play. Errors name the set: ``sets.<name>.<option>``, which a
role's ``role_vars`` maps to its variable.
"""

from __future__ import annotations

from .._errors import KubeguardError
from . import runner

# The options of one call that a set carries, with their defaults.
SET_OPTIONS = {
    "objects": [],
    "namespace_objects": [],
    "namespaces": [],
    "exclude_namespaces": [],
    "state": "present",
    "prune": False,
    "prune_labels": {},
    "prune_kinds": [],
}


def _in_set(name, exc):
    """``exc`` renamed into set ``name`` when it names a set option (a kubeconfig error stays as it is)."""
    head = (exc.option or "").split(".")[0].split("[")[0]
    if head in SET_OPTIONS:
        return KubeguardError(f"sets.{name}.{exc.option}", exc.message)
    return exc


def split(params):
    """[(name, params of that set alone)], validated without a request."""
    given = [option for option, default in SET_OPTIONS.items() if params.get(option) not in (None, default)]
    if given:
        raise KubeguardError("sets", f"{', '.join(given)} go in each set when sets is given, not at the top level")
    out, names = [], set()
    for index, entry in enumerate(params["sets"]):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not entry["name"]:
            raise KubeguardError(f"sets[{index}]", "needs a name (a non-empty string)")
        name = entry["name"]
        if name in names:
            raise KubeguardError(f"sets[{index}].name", f"{name} is the name of an earlier set; give each its own")
        names.add(name)
        unknown = sorted(set(entry) - set(SET_OPTIONS) - {"name"})
        if unknown:
            raise KubeguardError(f"sets.{name}", f"unknown options {unknown}; a set takes {sorted(SET_OPTIONS)}")
        one = dict(params, sets=None)
        one.update({option: entry.get(option, default) for option, default in SET_OPTIONS.items()})
        one["state"] = one["state"] or "present"
        if one["state"] not in ("present", "absent"):
            raise KubeguardError(f"sets.{name}.state", f"must be present or absent, not {one['state']}")
        try:
            runner.validate_inputs(one)
            runner.prune_kinds(one)
        except KubeguardError as exc:
            raise _in_set(name, exc) from None
        out.append((name, one))
    return out


def _api_versions(one):
    versions = {obj["apiVersion"] for obj in [*(one["objects"] or []), *(one["namespace_objects"] or [])]}
    versions |= {api_version for api_version, _unused in runner.prune_kinds(one)}
    return versions | {"v1"} if one["namespace_objects"] else versions


def _sum(summaries):
    total = dict.fromkeys(runner.ACTIONS, 0)
    for summary in summaries:
        for action, count in summary.items():
            total[action] += count
    return total


def run(params, check_mode, service=None):
    if not params.get("sets"):
        return runner.run(params, check_mode, service)
    sets = split(params)
    service = service or runner.make_service(params)
    service.discover(set().union(*(_api_versions(one) for _unused, one in sets)))
    # every set planned (resources resolved, namespaces read) before the first write
    planned, created = [], []
    for name, one in sets:
        try:
            planned.append(runner.plan(one, service, created))
        except KubeguardError as exc:
            raise _in_set(name, exc) from None
        if one["state"] == "present":
            created += [o for o in one["objects"] or [] if o["kind"] == "Namespace" and o["apiVersion"] == "v1"]
    pending = set()
    by_set, results, diffs, failed = {}, [], [], None
    for (name, one), (items, namespaces, _unused) in zip(sets, planned):
        if failed:
            by_set[name] = {"changed": False, "skipped": True, "results": [], "summary": _sum([]), "namespaces": []}
            continue
        done = runner.execute(service, one, check_mode, items, one["state"], pending)
        set_results, set_diffs, failures, summary = done
        if check_mode:  # namespaces this set would create: a later set's objects there are predicted
            pending |= {
                r["name"]
                for r in set_results
                if (r["apiVersion"], r["kind"], r["action"]) == ("v1", "Namespace", "created")
            }
        by_set[name] = {
            "changed": bool(set_diffs),
            "results": set_results,
            "summary": summary,
            "namespaces": namespaces,
        }
        results += set_results
        diffs += set_diffs
        if failures:
            failed = runner.report(service, set_results, summary, namespaces, set_diffs, failures, len(set_results))
    namespaces = sorted({ns for entry in by_set.values() for ns in entry["namespaces"]})
    result = runner.report(service, results, _sum(e["summary"] for e in by_set.values()), namespaces, diffs, [], 0)
    result["sets"] = by_set
    if failed:
        result.update(failed=True, msg=failed["msg"])
    return result
