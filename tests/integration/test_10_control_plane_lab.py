"""playbooks/control_plane.yml against the hard-way lab (systemd units, etcd
on plain HTTP until the role moves it to TLS). The proofs are shared with the
kubeadm layout (test_zz): tests/integration/control_plane_proofs.py."""

import pytest
from control_plane_proofs import ControlPlaneProofs, ControlPlaneSafety

pytestmark = pytest.mark.lab


class TestHardwayControlPlane(ControlPlaneSafety, ControlPlaneProofs):
    @pytest.fixture(scope="class")
    def cp_lab(self, lab):
        return lab
