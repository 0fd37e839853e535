# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: which tasks a run's --tags and --skip-tags select, by Ansible's own
rules (ansible.playbook.taggable.Taggable.evaluate_tags), for the check tasks
that stand for several tasks in one call."""

from __future__ import annotations

from .._errors import KubeguardError


def would_run(tags, run_tags, skip_tags):
    """Whether a task tagged ``tags`` runs under ``run_tags`` (--tags) and ``skip_tags`` (--skip-tags)."""
    # Ansible gives an untagged task the one tag "untagged" (--tags untagged selects it).
    untagged = not tags
    tags = set(tags) or {"untagged"}
    run_tags, skip_tags = set(run_tags or ()), set(skip_tags or ())
    runs = True
    if run_tags:
        runs = (
            "always" in tags
            or ("all" in run_tags and "never" not in tags)
            or bool(tags & run_tags)
            or ("tagged" in run_tags and not untagged and "never" not in tags)
        )
    if runs and skip_tags:
        if "all" in skip_tags:
            runs = "always" in tags and "always" not in skip_tags
        elif tags & skip_tags or ("tagged" in skip_tags and not untagged):
            runs = False
    return runs


def run_by_tags(tags_by_concern, run_tags, skip_tags, enabled=None):
    """The concerns, in order, whose task (tagged with the concern's list) this run would run.

    ``enabled``: each concern's toggle (a bool per concern, every concern named); a concern toggled off is left out
    as its task's ``when`` would leave it out."""
    if enabled is not None:
        if not isinstance(enabled, dict):
            raise KubeguardError("enabled", f"must map each concern to its toggle, got {type(enabled).__name__}")
        missing = [name for name in tags_by_concern if name not in enabled]
        if missing:
            raise KubeguardError("enabled", f"has no toggle for {missing}; give every concern of the tags its toggle")
        wrong = [name for name in tags_by_concern if not isinstance(enabled[name], bool)]
        if wrong:
            raise KubeguardError("enabled", f"the toggles of {wrong} are not booleans")
    return [
        name
        for name, tags in tags_by_concern.items()
        if (enabled is None or enabled[name]) and would_run(tags or (), run_tags, skip_tags)
    ]
