"""kubectl against a lab kubeconfig, and the objects several data-plane tests share."""

import json
import subprocess
import time

# Egress to the cluster DNS only: what a default-deny-egress namespace still needs.
DNS_EGRESS_RULE = {
    "to": [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
        }
    ],
    "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
}


class Kubectl:
    """``kubectl(*args)`` as a process; ``check`` asserts success with its stderr."""

    def __init__(self, binaries, kubeconfig):
        self.base = [str(binaries / "kubectl"), "--kubeconfig", str(kubeconfig)]

    def kubectl(self, *args, stdin=None, check=True, timeout=120):
        run = subprocess.run(
            [*self.base, *args], input=stdin, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check:
            assert run.returncode == 0, (args, run.stderr)
        return run

    __call__ = kubectl

    def apply(self, *docs):
        self.kubectl("apply", "-f", "-", stdin="\n---\n".join(json.dumps(d) for d in docs))

    def get(self, *args):
        return json.loads(self.kubectl("get", "-o", "json", *args).stdout)

    def fresh_namespace(self, name, timeout=240):
        """Deletes and recreates the namespace, then waits for its default ServiceAccount: the
        controller-manager makes it a moment later, and admission refuses a bare pod until then.
        Right after an apiserver restart on one control plane that takes longer: a lease renewal
        the new apiserver refused before its RBAC caches synced costs the controller-manager its
        leadership, and it restarts (68 s from the namespace to its ServiceAccount seen in CI)."""
        self.kubectl("delete", "namespace", name, "--ignore-not-found", "--wait=true", timeout=300)
        self.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
        deadline = time.monotonic() + timeout
        while self.kubectl("-n", name, "get", "serviceaccount", "default", check=False).returncode != 0:
            assert time.monotonic() < deadline, f"no default ServiceAccount in namespace {name} after {timeout} s"
            time.sleep(0.5)
