"""The one Go-duration parser: what time.ParseDuration accepts, and nothing else."""

import pytest
from ansible_collections.kubeguard.hardening.plugins.module_utils._common import duration
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0", 0.0),
        ("0s", 0.0),
        ("60s", 60.0),
        ("5m", 300.0),
        ("1h30m", 5400.0),
        ("1h30m15s", 5415.0),
        ("500ms", 0.5),
        ("1.5s", 1.5),
        (".5s", 0.5),
        ("1.s", 1.0),
        ("300us", 0.0003),
        ("300µs", 0.0003),  # U+00B5 MICRO SIGN
        ("300μs", 0.0003),  # U+03BC GREEK SMALL LETTER MU, Go accepts both
        ("10ns", 1e-8),
        ("+5s", 5.0),
        ("2h45m30.5s", 9930.5),
    ],
)
def test_go_accepts(text, seconds):
    assert duration.parse(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "invalid"),
        ("5", "missing unit"),
        ("1.5", "missing unit"),
        ("1d", "invalid"),  # Go has no day unit
        ("5 m", "invalid"),
        ("5M", "invalid"),
        ("s", "invalid"),
        (".s", "invalid"),
        ("1h 30m", "invalid"),
        ("-5s", "negative"),
        ("3000000h", "years"),  # over int64 nanoseconds
        ("5s5", "missing unit"),
        (None, "invalid"),
        (5, "invalid"),
    ],
)
def test_go_refuses(text, words):
    with pytest.raises(ValueError, match=words):
        duration.parse(text)


def test_negative_when_allowed():
    assert duration.parse("-1m30s", allow_negative=True) == -90.0


@pytest.mark.parametrize(
    ("value", "minimum", "words"),
    [("five minutes", None, "Go duration"), ("90s", 120, "minimum"), (7, None, "Go duration")],
)
def test_seconds_names_the_option(value, minimum, words):
    with pytest.raises(KubeguardError) as err:
        duration.seconds("some_role_timeout", value, minimum=minimum)
    assert err.value.option == "some_role_timeout"
    assert words in str(err.value)


def test_every_caller_uses_the_one_parser():
    """The three former parsers (control_plane, kubelet, api_access) now agree, multi-unit included."""
    from ansible_collections.kubeguard.hardening.plugins.module_utils._api_access import common
    from ansible_collections.kubeguard.hardening.plugins.module_utils._control_plane import desired

    assert desired.seconds("1m30s") == common.seconds("x", "1m30s") == 90.0
