# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""site.yml's fast rerun on the controller (docs/fast-rerun.md): compare this
run with the recorded converged one, or record this run as converged.
Runs on the controller only; the fingerprints come from node_fingerprint and
api_fingerprint, registered earlier in the play; the logic is
module_utils/_common/fast_rerun.py."""

from __future__ import annotations

import os
import pathlib
import time

from ansible.errors import AnsibleActionFail, AnsibleError
from ansible.plugins.action import ActionBase
from ansible.release import __version__ as ansible_version
from ansible_collections.kubeguard.hardening.plugins.module_utils._common import fast_rerun
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import role_variable
from ansible_collections.kubeguard.hardening.plugins.module_utils._node.fingerprint import tree

ARGS = {"state", "stamp", "api", "controller_paths", "check", "max_age_hours", "renew_by", "role_vars"}
COLLECTION = pathlib.Path(__file__).resolve().parents[2]
# The variables that are this run's input: every role's own (named after the role) and the shared contract's.
# What of the collection decides what a run does (a checkout also holds tests, labs and virtualenvs).
PARTS = ("roles", "plugins", "playbooks", "meta")
# Registered by roles/kubeguard/tasks/fast_rerun_fingerprint.yml before the check: this run's, not an input.
NODE_RESULT = "kubeguard_fast_rerun_node"
OWN_RESULTS = {NODE_RESULT, "kubeguard_fast_rerun_api"}
STORE = "the controller store"
PREFIXES = (
    *(f"{name}_" for name in sorted(os.listdir(COLLECTION / "roles")) if (COLLECTION / "roles" / name).is_dir()),
    "ansible_host",
)


def host_inputs(hostvars, host):
    """The host's kubeguard variables, templated (a value that does not template is taken as written),
    and its groups."""
    raw = hostvars.raw_get(host)
    view = hostvars[host]
    found = {"group_names": sorted(raw.get("group_names") or [])}
    for name in sorted(key for key in raw if key.startswith(PREFIXES) and key not in OWN_RESULTS):
        try:
            found[name] = view[name]
        except AnsibleError:
            found[name] = repr(raw[name])
    return found


def store_digest(paths):
    return fast_rerun.digest({path: tree(path) for path in paths})


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        args = self._task.args
        role_vars = args.get("role_vars") or {}

        def refuse(option, message):
            raise AnsibleActionFail(f"{role_variable(option, role_vars)}: {message}")

        unknown = sorted(set(args) - ARGS)
        if unknown:
            raise AnsibleActionFail(f"unsupported option(s): {', '.join(unknown)}")
        state = args.get("state")
        if state not in ("check", "record", "forget"):
            refuse("state", f"must be check, record or forget, not {state!r}")
        if not args.get("stamp"):
            refuse("stamp", "is required")
        stamp_path = os.path.abspath(os.path.expanduser(str(args["stamp"])))
        controller_paths = [os.path.abspath(os.path.expanduser(str(p))) for p in args.get("controller_paths") or []]
        inside = [p for p in controller_paths if stamp_path == p or stamp_path.startswith(p.rstrip("/") + "/")]
        if inside:
            refuse("stamp", f"{stamp_path} is inside {inside[0]}, an input of the run: every record would move it")
        try:
            max_age = float(args.get("max_age_hours", 24))
        except (TypeError, ValueError):
            max_age = 0
        if max_age <= 0:
            refuse("max_age_hours", f"must be a positive number of hours, not {args.get('max_age_hours')!r}")
        if state == "forget":
            result.update(changed=False, forgot=not self._task.check_mode and fast_rerun.forget(stamp_path))
            return result
        hosts = list(task_vars.get("ansible_play_hosts_all") or [])
        active = set(task_vars.get("ansible_play_hosts") or [])
        hostvars = task_vars["hostvars"]
        nodes = {}
        for host in hosts:
            registered = hostvars.raw_get(host).get(NODE_RESULT) if host in active else None
            nodes[host] = (registered or {}).get("fingerprint") if isinstance(registered, dict) else None
        api = (args.get("api") or {}).get("fingerprint") or {}
        if state == "check":
            inputs = {
                "the kubeguard variables": fast_rerun.digest({host: host_inputs(hostvars, host) for host in hosts}),
                "the collection": fast_rerun.digest(
                    [ansible_version] + [fast_rerun.collection_digest(str(COLLECTION / part)) for part in PARTS]
                ),
                STORE: store_digest(controller_paths),
            }
            reasons = fast_rerun.compare(fast_rerun.load(stamp_path), inputs, nodes, api, time.time())
            # Removed before a full run changes anything: a run killed half-way leaves no stamp.
            forgotten = bool(reasons) and not self._task.check_mode and fast_rerun.forget(stamp_path)
            result.update(
                changed=False, converged=not reasons, reasons=reasons, inputs=inputs, nodes=hosts, forgot=forgotten
            )
            return result
        check = args.get("check") or {}
        missing = sorted(set(check.get("nodes") or ()) - {host for host, found in nodes.items() if found is not None})
        if not check.get("inputs") or missing:
            # A node that failed or left the run: the next run checks every role again.
            reason = f"no fingerprint of {', '.join(missing)}" if missing else "no check ran at the start of this run"
            result.update(changed=False, recorded=False, reason=reason)
            return result
        now = time.time()
        valid_until = now + max_age * 3600
        if args.get("renew_by"):
            valid_until = min(valid_until, float(args["renew_by"]))
        # The store as this run leaves it (the run may have written it: the first run creates it).
        inputs = {**check["inputs"], STORE: store_digest(controller_paths)}
        if not self._task.check_mode:
            fast_rerun.record(stamp_path, inputs, nodes, api, valid_until)
        result.update(changed=False, recorded=True, valid_until=valid_until)
        return result
