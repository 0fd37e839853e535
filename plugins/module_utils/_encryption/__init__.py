# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to the kubeguard.hardening collection (no stable API): encryption at rest.

- ``config``: the EncryptionConfiguration model, rendering, parsing and the
  name-only summaries that diffs show (pure);
- ``keystore``: the controller-side key store and the rotation state file
  (atomic writes, 0600);
- ``machine``: the rotation state machine: plan, begin a step, record a step;
- ``objects``: resources validated against the API server (one discovery) and
  the bulk rewrite of every object (read + replace through ``_k8s``);
- ``etcd``: the proof in etcd: every stored value's encryption prefix, read
  through etcd's v3 JSON API with the apiserver's client certificate;
- ``facts``: what a control-plane node's apiserver is configured with.
"""
