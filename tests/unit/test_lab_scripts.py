"""The lab's entry points fail early and clearly, before touching anything."""

import os
import subprocess
from pathlib import Path

import pytest

LAB_UP = Path(__file__).resolve().parents[2] / "lab" / "bin" / "lab-up"


def run(argv, **env):
    return subprocess.run(argv, capture_output=True, text=True, env={**os.environ, **env}, timeout=60, check=False)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop to another user")
def test_refuses_to_run_without_root():
    result = run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", str(LAB_UP)])
    assert result.returncode != 0
    assert "must run as root" in result.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="the root check comes first")
def test_rejects_an_unknown_layout_naming_the_variable():
    result = run([str(LAB_UP)], LAYOUT="kind")
    assert result.returncode != 0
    assert "LAYOUT must be hardway or kubeadm, not 'kind'" in result.stderr
