# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: Go's ``time.ParseDuration``, the one duration parser of the collection.

Every Kubernetes and etcd duration flag or config field is parsed by Go, so
anything Go refuses is refused here first, naming the variable: ``1h30m``,
``1.5s``, ``.5s``, ``500ms``, ``300us``/``µs``/``μs``, ``0``; never ``5`` or
``1d`` (Go has no day unit) or a sign the caller did not allow.
"""

from __future__ import annotations

import re

from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError

UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
# One "<number><unit>" term: digits, optionally a fraction (".5" and "1." are Go's too).
_TERM = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
# Go's Duration is an int64 of nanoseconds: about 292 years.
MAX_SECONDS = (2**63 - 1) / 1e9


def parse(text, allow_negative=False):
    """Seconds (a float) of a Go duration string; ``ValueError`` with Go's wording otherwise."""
    if not isinstance(text, str):
        raise ValueError(f"time: invalid duration {text!r}")
    body, sign = text, 1
    if body[:1] in "+-" and body:
        sign = -1 if body[0] == "-" else 1
        body = body[1:]
    if body == "0":
        return 0.0
    if not body:
        raise ValueError(f"time: invalid duration {text!r}")
    total, position = 0.0, 0
    for match in _TERM.finditer(body):
        if match.start() != position:
            break
        total += float(match.group(1)) * UNITS[match.group(2)]
        position = match.end()
    if position != len(body):
        missing = re.fullmatch(r"[\d.]+", body[position:])
        raise ValueError(f"time: {'missing unit in' if missing else 'invalid'} duration {text!r}")
    if total > MAX_SECONDS:
        raise ValueError(f"time: invalid duration {text!r} (over {MAX_SECONDS / 31557600:.0f} years)")
    if sign < 0 and total and not allow_negative:
        raise ValueError(f"{text!r} is negative")
    return sign * total


def seconds(option, value, example="30s, 5m or 1h30m", minimum=None):
    """``parse(value)`` for a role variable or module option: refusals name ``option``."""
    text = value.strip() if isinstance(value, str) else value
    try:
        result = parse(text)
    except ValueError as exc:
        raise KubeguardError(option, f"{value!r} is not a Go duration such as {example} ({exc})") from None
    if minimum is not None and result < minimum:
        raise KubeguardError(option, f"{value!r} is below the minimum of {minimum:g} s")
    return result
