# Private to the kubeguard.hardening collection: no stable API.
"""The one exception of the SSH hardening area."""

from __future__ import annotations


class SshdHardeningError(Exception):
    """A refusal or failure; ``option`` names the role variable or module option to fix."""

    def __init__(self, msg, option=None):
        super().__init__(msg)
        self.option = option
