"""Unit tests import the collection as ``ansible_collections.kubeguard.hardening``
(`make venv` links this checkout under .collections)."""

import pathlib
import sys

REPO = pathlib.Path(__file__).resolve().parents[2]
if str(REPO / ".collections") not in sys.path:
    sys.path.insert(0, str(REPO / ".collections"))
