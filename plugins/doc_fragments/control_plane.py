# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The node options of the control_plane modules (control_plane_component, control_plane_plan)."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  node_name:
    description: The node name (etcd member name when the current flags have none).
    type: str
    required: true
  node_ip:
    description: The node's cluster IP; etcd listens on it and 127.0.0.1 only.
    type: str
    required: true
  kubernetes_dir:
    description: Kubernetes configuration directory holding the kubeconfigs.
    type: path
    default: /etc/kubernetes
  pki_dir:
    description: Directory of the certificates and keys the cluster_pki role installs.
    type: path
    default: /etc/kubernetes/pki
  config_dir:
    description: Directory of the audit policy and admission configuration.
    type: path
    default: /etc/kubernetes/kubeguard
  state_dir:
    description: Directory of the rollback state.
    type: path
    default: /var/lib/kubeguard/control_plane
  etcd_servers:
    description: The etcd client URLs kube-apiserver uses.
    type: list
    elements: str
    default: []
  etcd_data_dir:
    description: etcd data directory when the current flags have none.
    type: path
    default: /var/lib/etcd
  etcd_non_root:
    description:
      - Run etcd (systemd layout) as the C(etcd) system user, created when missing. systemd copies its certificates
        and keys into the service's private credentials directory (C(LoadCredential=)) and the flags point there, so
        the files under I(pki_dir) stay root-owned. The data directory is given to C(etcd) before the restart.
      - A throwaway C(systemd-run) service first shows whether this systemd can hand credentials to a non-root
        service; where it cannot, etcd stays root and the module warns.
    type: bool
    default: true
  service_cidr:
    description: The service CIDR; its first IP must be a SAN of the apiserver certificate.
    type: str
    default: 10.96.0.0/12
  service_account_issuer:
    description: Issuer when the current flags have none.
    type: str
    default: https://kubernetes.default.svc.cluster.local
  tls_min_version:
    description: Minimum TLS version.
    type: str
    default: VersionTLS12
  tls_cipher_suites:
    description: TLS cipher suites (Go names), checked against the binary's list.
    type: list
    elements: str
    default: []
  authorization_modes:
    description: kube-apiserver authorization modes, in order.
    type: list
    elements: str
    default: [Node, RBAC]
  allow_always_allow:
    description: Accept AlwaysAllow in I(authorization_modes).
    type: bool
    default: false
  admission_plugins:
    description: Admission plugins to enable, checked against the binary's list.
    type: list
    elements: str
    default: [NodeRestriction, EventRateLimit, DenyServiceExternalIPs]
  always_pull_images:
    description: Also enable AlwaysPullImages.
    type: bool
    default: false
  event_rate_limits:
    description: The EventRateLimit limits (C(type), C(qps), C(burst), C(cacheSize)).
    type: list
    elements: dict
    default: []
  audit_policy:
    description: The audit policy (YAML text).
    type: str
    default: ""
  audit_log_path:
    description: Audit log file.
    type: path
    default: /var/log/kubernetes/audit/audit.log
  audit_log_maxage:
    description: Days to keep rotated audit logs.
    type: int
    default: 30
  audit_log_maxbackup:
    description: Rotated audit logs to keep.
    type: int
    default: 10
  audit_log_maxsize:
    description: Megabytes before an audit log is rotated.
    type: int
    default: 100
  request_timeout:
    description: kube-apiserver C(--request-timeout).
    type: str
    default: 60s
  shutdown_watch_termination_grace_period:
    description:
      - kube-apiserver C(--shutdown-watch-termination-grace-period). Without it a restart waits for open watches
        until C(--request-timeout), which is that long an outage.
    type: str
    default: 5s
  shutdown_delay_duration:
    description:
      - kube-apiserver C(--shutdown-delay-duration); C(0s) removes it. From SIGTERM on, C(/readyz) fails
        while the apiserver keeps serving this long, so a load balancer checking C(/readyz) takes it out of
        rotation before it stops listening. The restart waits this much longer for the old process, and a
        kubeadm static pod's C(terminationGracePeriodSeconds) is raised when it would not cover the delay
        and the drain.
    type: str
    default: 0s
  terminated_pod_gc_threshold:
    description: kube-controller-manager C(--terminated-pod-gc-threshold).
    type: int
    default: 10
  health_timeout:
    description: Seconds to wait for the restarted component to be healthy before rolling back.
    type: int
    default: 120
"""
