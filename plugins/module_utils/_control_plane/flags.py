# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: command lines as ordered flag dicts, systemd ExecStart values and
the flag names, admission plugins and cipher suites a binary's ``--help``
advertises. Pure functions, no I/O."""

from __future__ import annotations

import re
import shlex

# A flag line in a cobra/pflag --help text: "      --name string   help" or "  -v, --v Level".
_HELP_FLAG = re.compile(r"^\s+(?:-\w, )?--([a-z0-9][a-z0-9-]*)", re.M)


def parse_argv(argv):
    """``[binary, --a=1, --b, 2, --c]`` -> ``(binary, {"a": "1", "b": "2", "c": "true"})``.

    Later occurrences win, as they do for pflag. A bare flag followed by a
    non-flag word takes that word as its value.
    """
    if not argv:
        return "", {}
    flags = {}
    words = list(argv[1:])
    i = 0
    while i < len(words):
        word = words[i]
        i += 1
        if not word.startswith("-"):
            continue
        name = word.lstrip("-")
        if "=" in name:
            name, value = name.split("=", 1)
        elif i < len(words) and not words[i].startswith("-"):
            value = words[i]
            i += 1
        else:
            value = "true"
        flags[name] = value
    return argv[0], flags


def render_argv(binary, flags):
    """The inverse of :func:`parse_argv`, flags sorted by name (stable diffs)."""
    return [binary, *(f"--{name}={flags[name]}" for name in sorted(flags))]


def logical_lines(text):
    """A unit file's lines with backslash continuations joined, each stripped."""
    lines, current = [], ""
    for raw in text.splitlines():
        line = raw.rstrip()
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        lines.append(current + line)
        current = ""
    if current:
        lines.append(current)
    return [line.strip() for line in lines]


def exec_start(text):
    """The effective ExecStart argv of a unit file plus its drop-ins.

    ``text`` is the concatenation of the unit file and its drop-ins in the
    order systemd reads them (``systemctl cat``); an empty ``ExecStart=``
    resets the list, as in systemd.
    """
    logical = logical_lines(text)
    argv = []
    for line in logical:
        stripped = line.strip()
        if not stripped.startswith("ExecStart="):
            continue
        value = stripped[len("ExecStart=") :].strip()
        argv = [_unescape(w) for w in shlex.split(value.lstrip("-@:+!"))] if value else []
    return argv


def _unescape(word):
    """systemd's ``%%`` and ``$$`` (specifier and variable escapes) back to ``%`` and ``$``."""
    return word.replace("%%", "%").replace("$$", "$")


def _escape(word):
    return shlex.quote(word.replace("%", "%%").replace("$", "$$"))


def render_dropin(argv, header, service_lines=()):
    """A systemd drop-in that replaces ExecStart with ``argv``, one flag a line,
    after ``service_lines`` (further ``[Service]`` settings such as ``User=``)."""
    lines = [header.rstrip("\n"), "[Service]", *service_lines, "ExecStart=", f"ExecStart={_escape(argv[0])} \\"]
    for index, word in enumerate(argv[1:], 1):
        lines.append(f"  {_escape(word)}" + (" \\" if index < len(argv) - 1 else ""))
    return "\n".join(lines) + "\n"


def help_flags(text):
    """Flag names a ``--help`` text advertises."""
    return sorted(set(_HELP_FLAG.findall(text)))


def _help_entry(text, flag):
    """The help paragraph of ``--flag`` (up to the next flag line), on one line."""
    match = re.search(rf"^\s+--{re.escape(flag)}\b.*?(?=^\s+(?:-\w, )?--[a-z0-9]|\Z)", text, re.M | re.S)
    return " ".join(match.group(0).split()) if match else ""


def admission_plugins(text):
    """Admission plugin names from kube-apiserver's ``--enable-admission-plugins`` help."""
    entry = _help_entry(text, "enable-admission-plugins")
    match = re.search(r"list of admission plugins:\s*(.*?)\.\s*The order", entry)
    if not match:
        return []
    return sorted(name.strip() for name in match.group(1).split(",") if name.strip())


def cipher_suites(text):
    """``{"preferred": [...], "insecure": [...]}`` from a ``--tls-cipher-suites`` help."""
    entry = _help_entry(text, "tls-cipher-suites")
    found = {}
    for kind in ("preferred", "insecure"):
        match = re.search(rf"{kind} values:\s*(.*?)(?:\.\s|\.$|$)", entry, re.I)
        found[kind] = sorted(n.strip() for n in match.group(1).split(",") if n.strip()) if match else []
    return found


def diff_lines(before, after):
    """A readable list of flag changes: ``+ --a=1``, ``- --b=2``, ``~ --c: x -> y``."""
    lines = []
    for name in sorted(set(before) | set(after)):
        if name not in after:
            lines.append(f"- --{name}={before[name]}")
        elif name not in before:
            lines.append(f"+ --{name}={after[name]}")
        elif before[name] != after[name]:
            lines.append(f"~ --{name}: {before[name]} -> {after[name]}")
    return lines
