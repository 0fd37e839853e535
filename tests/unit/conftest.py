"""Unit tests import the collection as ``ansible_collections.kubeguard.hardening``
through pytest's ``pythonpath`` (pyproject.toml); `make venv` links this
checkout under .collections."""

import pytest
from ansible_collections.kubeguard.hardening.plugins.module_utils._node import binaries


@pytest.fixture(autouse=True)
def _binaries_cache_in_tmp(tmp_path, monkeypatch):
    """The node-side cache of binaries' answers goes to the test's own directory, never to this machine's /var."""
    monkeypatch.setattr(binaries, "CACHE_PATH", str(tmp_path / "binaries.json"))
