"""The lab's entry points fail early and clearly, before touching anything."""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

LAB = Path(__file__).resolve().parents[2] / "lab"
LAB_UP = LAB / "bin" / "lab-up"


def run(argv, **env):
    return subprocess.run(argv, capture_output=True, text=True, env={**os.environ, **env}, timeout=60, check=False)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop to another user")
def test_refuses_to_run_without_root():
    # The checkout may sit in a directory other users cannot enter (a clone
    # under /root, or mktemp -d): run a world-readable copy of the script.
    copy = Path(tempfile.mkdtemp(prefix="kubeguard-lab-"))
    try:
        for part in ("bin/lab-up", "lib/common.sh"):
            (copy / part).parent.mkdir(exist_ok=True)
            shutil.copy(LAB / part, copy / part)
        for path in (copy, copy / "bin", copy / "lib", copy / "bin/lab-up"):
            path.chmod(0o755)
        result = run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", str(copy / "bin/lab-up")])
    finally:
        shutil.rmtree(copy)
    assert result.returncode != 0
    assert "must run as root" in result.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="the root check comes first")
def test_rejects_an_unknown_layout_naming_the_variable():
    result = run([str(LAB_UP)], LAYOUT="kind")
    assert result.returncode != 0
    assert "LAYOUT must be hardway or kubeadm, not 'kind'" in result.stderr
