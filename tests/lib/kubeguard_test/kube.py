"""kubectl against a lab kubeconfig, and the objects several data-plane tests share."""

import json
import subprocess

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
