"""Unit tests import the collection as ``ansible_collections.kubeguard.hardening``
through pytest's ``pythonpath`` (pyproject.toml); `make venv` links this
checkout under .collections."""
