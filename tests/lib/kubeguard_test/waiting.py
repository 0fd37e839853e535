"""Polling for real components that take a moment to come up."""

import time


def wait_for(check, timeout, what, interval=0.5):
    """Call ``check`` until it returns True; fail naming ``what`` and the last answer."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last is True:
            return
        time.sleep(interval)
    raise AssertionError(f"{what} not ready after {timeout}s: {last}")
