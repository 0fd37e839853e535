# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: which tasks a run's --tags and --skip-tags select, by Ansible's own
rules (ansible.playbook.taggable.Taggable.evaluate_tags), for the check tasks
that stand for several tasks in one call."""

from __future__ import annotations


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


def run_by_tags(tags_by_concern, run_tags, skip_tags):
    """The concerns, in order, whose task (tagged with the concern's list) this run would run."""
    return [name for name, tags in tags_by_concern.items() if would_run(tags or (), run_tags, skip_tags)]
