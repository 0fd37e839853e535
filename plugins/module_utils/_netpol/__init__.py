# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to the kubeguard.hardening collection: NetworkPolicy semantics, coverage audit and truth tables.

Nothing in this package is a public API; it may change without notice. It owns
the exact NetworkPolicy evaluation (``policy``: label selectors, policy types,
peers, ipBlock, named ports, endPort), the pods x pods x ports prediction and
its Cyclonus-style matrix (``truth_table``), the CIS 5.3.2 coverage audit
(``audit``), the cluster reads of the modules (``runner``), a node's live flows
from its conntrack table (``flows``) and which of them the role's next policies
would cut (``live``).
"""
