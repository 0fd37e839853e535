"""Make ``ansible_collections.kubeguard.hardening`` importable (make venv links it under .collections)."""

import pathlib
import sys

REPO = pathlib.Path(__file__).resolve().parents[5]
if str(REPO / ".collections") not in sys.path:
    sys.path.insert(0, str(REPO / ".collections"))
