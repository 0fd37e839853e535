"""The network_policy role and network_policy_truth_table on the lab's data plane: the
predicted truth table equals the one real TCP connections between real pods measure.

Namespaces x, y and z with pods a, b and c (one per node in each namespace), each serving
TCP 80 and 81 (agnhost porter). Every case applies policies (through the role where the role
can express them), predicts pods x pods x ports with the module's entry point, waits until
kube-router has programmed the change (the cells whose verdict changed are probed until they
all match, bounded), then probes all 9 x 9 x 2 cells from inside the pods with agnhost
connect and compares. On a mismatch both tables are printed as Cyclonus-style matrices."""

import json
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from ansible_collections.kubeguard.hardening.plugins.module_utils._netpol import runner, truth_table
from apiserver_fixture import REPO, ansible
from kubeguard_test.kube import DNS_EGRESS_RULE, Kubectl

pytestmark = pytest.mark.lab

NAMESPACES = ("x", "y", "z")
PODS = ("a", "b", "c")
PORTS = ("tcp/80", "tcp/81")
CONTAINER_PORTS = [
    {"name": "serve-80-tcp", "containerPort": 80, "protocol": "TCP"},
    {"name": "serve-81-tcp", "containerPort": 81, "protocol": "TCP"},
]
PROGRAMMED_TIMEOUT = 60


class Lab(Kubectl):
    """kubectl against the lab, pod exec, and the probe."""

    def __init__(self, lab, binaries, tmp):
        super().__init__(binaries, lab.kubeconfig)
        self.lab = lab
        self.tmp = tmp
        self.ips = {}
        self.timings = []
        self.retried = 0
        self.phases = []

    def role(self, *extra, **variables):
        """One run of playbooks/network_policy.yml on the lab inventory."""
        # the cases cut the probes' own flows on purpose (test_network_policy_live_flows.py proves the refusal)
        variables.setdefault("network_policy_live_flows_enabled", False)
        varsfile = self.tmp / f"vars-{time.monotonic_ns()}.json"
        varsfile.write_text(json.dumps(variables))
        playbook = REPO / "playbooks/network_policy.yml"
        run, stats, tasks = ansible(playbook, self.lab.inventory, "-e", f"@{varsfile}", *extra)
        failed = [(t["task"], t.get("msg")) for t in tasks if t.get("failed")]
        assert run.returncode == 0, (failed, run.stderr[-2000:])
        return stats, tasks

    def case(self, **variables):
        """The role without its audit (run by the coverage test): the traffic cases only need the policies."""
        return self.role("--skip-tags", "network_policy_audit", **variables)

    def predict(self):
        params = {"kubeconfig": str(self.lab.kubeconfig), "namespaces": list(NAMESPACES), "ports": list(PORTS)}
        return runner.run_truth_table(params, False)["table"]

    def probe(self, cells):
        """Real TCP connections for ``cells`` [(src, dst, port)]: one exec per source pod, its
        connections in parallel inside the pod; {(src, dst, port): connected}."""
        by_source = {}
        for source, destination, port in cells:
            by_source.setdefault(source, []).append((destination, port))

        def from_source(source):
            namespace, name = source.split("/")
            lines = [
                f"(/agnhost connect {self.ips[dst]}:{port.split('/')[1]} --timeout=1s >/dev/null 2>&1;"
                f" echo {dst} {port} $?) &"
                for dst, port in by_source[source]
            ]
            run = self.kubectl("-n", namespace, "exec", name, "--", "/bin/sh", "-c", "\n".join([*lines, "wait"]))
            answers = {}
            for line in run.stdout.splitlines():
                dst, port, status = line.split()
                answers[(source, dst, port)] = status == "0"
            assert len(answers) == len(by_source[source]), run.stdout + run.stderr
            return answers

        found = {}
        with ThreadPoolExecutor(max_workers=len(by_source) or 1) as pool:
            for answers in pool.map(from_source, sorted(by_source)):
                found.update(answers)
        return found

    def probe_table(self, expected):
        """All 9 x 9 x 2 cells. A cell predicted allowed that did not connect is probed again
        (twice at most) before it counts, as the upstream e2e probes do; a cell that connected
        is final, so a leak is never retried away."""
        keys = [f"{ns}/{pod}" for ns in NAMESPACES for pod in PODS]
        started = time.monotonic()
        found = self.probe([(s, d, p) for s in keys for d in keys for p in PORTS])
        self.timings.append(time.monotonic() - started)
        for _ in range(2):
            again = [cell for cell, ok in found.items() if not ok and expected[cell[2]][cell[0]][cell[1]]]
            if not again:
                break
            self.retried += len(again)
            found.update(self.probe(again))
        return {p: {s: {d: found[(s, d, p)] for d in keys} for s in keys} for p in PORTS}

    def wait_programmed(self, expected, previous):
        """Until every cell whose predicted verdict changed since ``previous`` probes as predicted:
        kube-router programs each node on its own, and the changed cells cover every node involved."""
        changed = [
            (s, d, p)
            for p in expected
            for s in expected[p]
            for d in expected[p][s]
            if expected[p][s][d] != previous[p][s][d]
        ]
        deadline = time.monotonic() + PROGRAMMED_TIMEOUT
        while changed:
            found = self.probe(changed)
            wrong = [cell for cell in changed if found[cell] != expected[cell[2]][cell[0]][cell[1]]]
            if not wrong:
                return
            assert time.monotonic() < deadline, f"kube-router did not program {wrong[:5]} within {PROGRAMMED_TIMEOUT}s"

    def resolves(self, pod):
        namespace, name = pod.split("/")
        run = self.kubectl(
            "-n", namespace, "exec", name, "--", "nslookup", "kubernetes.default.svc.cluster.local", check=False
        )
        return run.returncode == 0 and "Address: 10.96.0.1" in run.stdout


def matrices(table):
    keys = sorted(next(iter(table.values())))
    return "\n\n".join(truth_table.render(port, keys, rows) for port, rows in table.items())


def porter(namespace, pod, node, image):
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": pod, "namespace": namespace, "labels": {"pod": pod}},
        "spec": {
            "nodeName": node,
            "automountServiceAccountToken": False,
            "terminationGracePeriodSeconds": 0,
            "containers": [
                {
                    "name": "porter",
                    "image": image,
                    "imagePullPolicy": "Never",
                    "args": ["porter"],
                    "env": [{"name": "SERVE_PORT_80", "value": "80"}, {"name": "SERVE_PORT_81", "value": "81"}],
                    "ports": CONTAINER_PORTS,
                }
            ],
        },
    }


def netpol(name, namespace, spec):
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


EGRESS_TO_X = {
    "name": "allow-egress-to-x",
    "spec": {
        "podSelector": {},
        "policyTypes": ["Egress"],
        "egress": [{"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "x"}}}]}],
    },
}


@pytest.fixture(scope="module")
def lab_pods(lab, lab_binaries, tmp_path_factory):
    cluster = Lab(lab, lab_binaries, tmp_path_factory.mktemp("np-traffic"))
    started = time.monotonic()
    for ns in (*NAMESPACES, "late"):
        cluster.kubectl("delete", "namespace", ns, "--ignore-not-found", "--wait=true", timeout=180)
    cluster.apply(*({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}} for ns in NAMESPACES))
    nodes = sorted(lab.hosts)
    image = lab.vars["kubeguard_lab_images"]["agnhost"]
    cluster.apply(
        *(porter(ns, pod, nodes[index % len(nodes)], image) for ns in NAMESPACES for index, pod in enumerate(PODS))
    )
    for ns in NAMESPACES:
        cluster.kubectl("-n", ns, "wait", "--for=condition=Ready", "pod", "--all", "--timeout=120s", timeout=150)
    for ns in NAMESPACES:
        for item in json.loads(cluster.kubectl("-n", ns, "get", "pods", "-o", "json").stdout)["items"]:
            cluster.ips[f"{ns}/{item['metadata']['name']}"] = item["status"]["podIP"]
    cluster.setup_time = time.monotonic() - started
    yield cluster
    for ns in (*NAMESPACES, "late"):
        cluster.kubectl("delete", "namespace", ns, "--ignore-not-found", "--wait=false", check=False)


def cases(cluster):
    """(name, how to get there): each step starts from the state the previous one left."""
    worker1_cidr = cluster.ips["y/b"].rsplit(".", 1)[0] + ".0/24"  # pods b run on one node
    return [
        ("no policies", lambda: None),
        ("baseline: default-deny ingress and egress, DNS allowed", lambda: cluster.case()),
        ("allow-same-namespace", lambda: cluster.case(network_policy_allow_same_namespace=True)),
        (
            "allow from a namespace label (y is team=blue), port 80; same-namespace toggled off",
            lambda: cluster.case(
                network_policy_custom_rules=[
                    {
                        "name": "allow-from-team-blue",
                        "namespaces": ["x"],
                        "spec": {
                            "podSelector": {},
                            "policyTypes": ["Ingress"],
                            "ingress": [
                                {
                                    "from": [{"namespaceSelector": {"matchLabels": {"team": "blue"}}}],
                                    "ports": [{"port": 80}],
                                }
                            ],
                        },
                    },
                    EGRESS_TO_X,
                ]
            ),
        ),
        (
            "namespaceSelector AND podSelector in one peer, named port serve-81-tcp",
            lambda: cluster.case(
                network_policy_custom_rules=[
                    {
                        "name": "allow-blue-b",
                        "namespaces": ["x"],
                        "spec": {
                            "podSelector": {},
                            "policyTypes": ["Ingress"],
                            "ingress": [
                                {
                                    "from": [
                                        {
                                            "namespaceSelector": {"matchLabels": {"team": "blue"}},
                                            "podSelector": {"matchLabels": {"pod": "b"}},
                                        }
                                    ],
                                    "ports": [{"port": "serve-81-tcp"}],
                                }
                            ],
                        },
                    },
                    EGRESS_TO_X,
                ]
            ),
        ),
        (
            f"ipBlock 10.244.0.0/16 except {worker1_cidr}, ports 80-81 (endPort)",
            lambda: cluster.case(
                network_policy_custom_rules=[
                    {
                        "name": "allow-pod-cidr-but-one-node",
                        "namespaces": ["x"],
                        "spec": {
                            "podSelector": {},
                            "policyTypes": ["Ingress"],
                            "ingress": [
                                {
                                    "from": [{"ipBlock": {"cidr": "10.244.0.0/16", "except": [worker1_cidr]}}],
                                    "ports": [{"port": 80, "endPort": 81}],
                                }
                            ],
                        },
                    },
                    EGRESS_TO_X,
                ]
            ),
        ),
        ("egress-only deny with DNS allowed, in z only", lambda: egress_only_in_z(cluster)),
    ]


def egress_only_in_z(cluster):
    # The role with x, y and z exempt and no custom rules prunes everything it applied there.
    cluster.case(network_policy_exempt_namespaces=["kube-*", *NAMESPACES])
    dns = {
        "podSelector": {},
        "policyTypes": ["Egress"],
        "egress": [DNS_EGRESS_RULE],
    }
    cluster.apply(
        netpol("deny-egress", "z", {"podSelector": {}, "policyTypes": ["Egress"]}), netpol("allow-dns", "z", dns)
    )


@pytest.fixture(scope="module")
def traffic(lab_pods):
    cluster = lab_pods
    cluster.kubectl("label", "namespace", "y", "team=blue", "--overwrite")
    outcomes = []
    previous = None
    for name, step in cases(cluster):
        marks = [time.monotonic()]
        step()
        marks.append(time.monotonic())
        expected = cluster.predict()
        marks.append(time.monotonic())
        if previous is not None:
            cluster.wait_programmed(expected, previous)
        marks.append(time.monotonic())
        probed = cluster.probe_table(expected)
        marks.append(time.monotonic())
        cluster.phases.append((name, [b - a for a, b in zip(marks, marks[1:])]))
        extra = {}
        if name.startswith(("baseline", "egress-only")):
            extra["dns"] = cluster.resolves("z/a")
        outcomes.append((name, expected, probed, extra))
        previous = expected
    return cluster, outcomes


def test_predicted_and_probed_tables_are_equal_in_every_case(traffic, capsys):
    cluster, outcomes = traffic
    report, failures = [], []
    for name, expected, probed, _ in outcomes:
        diff = truth_table.differences(expected, probed)
        if diff:
            failures.append(name)
            report.append(
                f"=== {name}: {len(diff)} cells differ\n--- predicted\n{matrices(expected)}\n"
                f"--- probed\n{matrices(probed)}"
            )
    with capsys.disabled():
        print(f"\nprobe of 9 pods x 9 pods x 2 ports: {', '.join(f'{t:.1f}' for t in cluster.timings)} s")
        print(f"cells predicted allowed probed again after a failed connect: {cluster.retried}")
        print(f"pods x, y, z ready in {cluster.setup_time:.1f} s")
        for name, (apply, predict, wait, probe) in cluster.phases:
            print(
                f"  {name[:50]:50} apply {apply:5.1f}  predict {predict:4.1f}  wait {wait:5.1f}  probe {probe:5.1f} s"
            )
    assert not failures, "\n\n".join(report)


def test_each_case_changed_what_it_should(traffic):
    """Guards the comparison: the cases are not all the same table, and each says what it claims."""
    assert len(traffic[1]) == 7
    open_, base, same_ns, label, peer, ip_block, egress_only = (expected for _, expected, _, _ in traffic[1])
    assert all(open_[p][s][d] for p in PORTS for s in open_[p] for d in open_[p][s])
    assert [c for p in PORTS for s in base[p] for d, c in base[p][s].items() if c] == [True] * 18  # self only
    assert same_ns["tcp/81"]["x/a"]["x/b"] and not same_ns["tcp/81"]["x/a"]["y/b"]
    assert label["tcp/80"]["y/a"]["x/b"] and not label["tcp/81"]["y/a"]["x/b"] and not label["tcp/80"]["z/a"]["x/b"]
    assert not label["tcp/80"]["x/a"]["x/b"]  # the same-namespace allow was pruned
    assert peer["tcp/81"]["y/b"]["x/a"] and not peer["tcp/81"]["y/a"]["x/a"] and not peer["tcp/80"]["y/b"]["x/a"]
    assert ip_block["tcp/81"]["z/a"]["x/b"] and not ip_block["tcp/81"]["z/b"]["x/a"]
    assert egress_only["tcp/80"]["x/a"]["z/b"] and not egress_only["tcp/80"]["z/a"]["x/b"]


def test_dns_resolves_where_egress_is_denied(traffic):
    dns = {name: extra["dns"] for name, _, _, extra in traffic[1] if extra}
    assert dns and all(dns.values()), dns


def test_every_namespace_covered_then_a_new_one_flagged_and_covered_and_rerun_changes_nothing(traffic):
    cluster = traffic[0]
    cluster.kubectl("-n", "z", "delete", "networkpolicy", "deny-egress", "allow-dns")
    stats, tasks = cluster.role()
    audit = next(t for t in tasks if t["task"].endswith("Find the namespaces without default-deny in both directions"))
    assert audit["uncovered"] == [] and {"x", "y", "z", "default"} <= {n["namespace"] for n in audit["namespaces"]}
    cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "late"}})
    stats, tasks = cluster.role("--tags", "network_policy_audit")
    audit = next(t for t in tasks if t["task"].endswith("Find the namespaces without default-deny in both directions"))
    assert audit["uncovered"] == ["late"] and audit["findings"][0]["cis"] == "5.3.2"
    stats, tasks = cluster.role()
    audit = next(t for t in tasks if t["task"].endswith("Find the namespaces without default-deny in both directions"))
    assert audit["uncovered"] == []
    host = cluster.lab.groups["control_plane"][0]
    assert stats[host]["changed"] > 0
    stats, tasks = cluster.role()
    assert stats[host]["changed"] == 0, [t["task"] for t in tasks if t.get("changed")]
