# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the CIS v1.12 recommendations of section 4 (worker nodes); rows as described in ``catalog``."""

from __future__ import annotations

KFILES = "kubelet_files_enabled (role kubelet)"
KCONF = "kubelet_config_enabled (role kubelet)"

CHECKS = (
    # 4.1 Worker node configuration files
    ("4.1.1", 1, True, "kubelet", "kubelet service file permissions are 600 or more restrictive", KFILES),
    ("4.1.2", 1, True, "kubelet", "kubelet service file ownership is root:root", KFILES),
    ("4.1.3", 1, False, "kube_proxy", "kube-proxy kubeconfig file permissions are 600 or more restrictive", KFILES),
    ("4.1.4", 1, False, "kube_proxy", "kube-proxy kubeconfig file ownership is root:root", KFILES),
    ("4.1.5", 1, True, "kubelet", "--kubeconfig kubelet.conf file permissions are 600 or more restrictive", KFILES),
    ("4.1.6", 1, True, "kubelet", "--kubeconfig kubelet.conf file ownership is root:root", KFILES),
    (
        "4.1.7",
        1,
        False,
        "kubelet",
        "Certificate authorities file permissions are 644 or more restrictive",
        "kubelet_client_ca_mode (role kubelet)",
    ),
    ("4.1.8", 1, False, "kubelet", "Client certificate authorities file ownership is root:root", KFILES),
    ("4.1.9", 1, True, "kubelet", "kubelet config.yaml file permissions are 600 or more restrictive", KFILES),
    ("4.1.10", 1, True, "kubelet", "kubelet config.yaml file ownership is root:root", KFILES),
    # 4.2 Kubelet
    ("4.2.1", 1, True, "kubelet", "Anonymous authentication is disabled", KCONF),
    ("4.2.2", 1, True, "kubelet", "Authorization mode is not AlwaysAllow", KCONF),
    ("4.2.3", 1, True, "kubelet", "Client CA file is set", "kubelet_client_ca_file (role kubelet)"),
    ("4.2.4", 1, False, "kubelet", "Read-only port is 0", "kubelet_read_only_port (role kubelet)"),
    (
        "4.2.5",
        1,
        False,
        "kubelet",
        "Streaming connection idle timeout is not 0",
        "kubelet_streaming_connection_idle_timeout (role kubelet)",
    ),
    ("4.2.6", 1, True, "kubelet", "makeIPTablesUtilChains is true", KCONF),
    (
        "4.2.7",
        1,
        False,
        "kubelet",
        "--hostname-override is not set",
        "kubelet_hostname_override_allowed (role kubelet)",
    ),
    (
        "4.2.8",
        2,
        False,
        "kubelet",
        "eventRecordQPS ensures appropriate event capture",
        "kubelet_event_record_qps (role kubelet)",
    ),
    (
        "4.2.9",
        1,
        False,
        "kubelet",
        "TLS certificate and private key are set",
        "kubelet_tls_cert_file and kubelet_tls_private_key_file (role kubelet)",
    ),
    ("4.2.10", 1, True, "kubelet", "Certificate rotation is not disabled", KCONF),
    ("4.2.11", 1, False, "kubelet", "RotateKubeletServerCertificate is true", KCONF),
    (
        "4.2.12",
        1,
        False,
        "kubelet",
        "Kubelet only uses strong cryptographic ciphers",
        "kubelet_tls_cipher_suites (role kubelet)",
    ),
    ("4.2.13", 1, False, "kubelet", "A limit is set on pod PIDs", "kubelet_pod_pids_limit (role kubelet)"),
    ("4.2.14", 1, False, "kubelet", "seccompDefault is true", "kubelet_seccomp_default (role kubelet)"),
    # 4.3 kube-proxy
    (
        "4.3.1",
        1,
        True,
        "kube_proxy",
        "kube-proxy metrics service is bound to localhost",
        "kubelet_kube_proxy_metrics_bind_address (role kubelet)",
    ),
)
