# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: which live flows would the policies the role is about to apply cut?

The entry point of ``network_policy_live_flows``. It reads namespaces, pods (where
policies change) and NetworkPolicies once, builds the policy set the run would leave (today's
policies, minus the role's own sets it replaces, plus what it renders), and:

- without ``gathered``: names the namespaces whose policies would change and
  whether running pods live there (only then are the nodes' flows worth
  reading; a rerun with nothing to change reads no node);
- with ``gathered`` (the ``network_policy_flows`` results of the nodes): maps
  each flow's addresses to pods and keeps the flows today's policies allow and
  the new ones block (policy.verdict, the truth table's engine). A flow already
  blocked today is a stale conntrack entry, not traffic the run would cut.

Each cut flow is accepted when its source or destination namespace matches
``allow_cut``; the others are refused, with allow rules in the role's
``network_policy_custom_rules`` format that keep them.

With ``audit`` it also reports CIS 5.3.2 coverage from the same read, as
``network_policy_audit`` would (``exclude_namespaces`` being the exempt ones),
and whether the run leaves it so (the policies it would leave give the same
report): a rerun's coverage audit costs no call of its own.
"""

from __future__ import annotations

import hashlib
import json

from .._errors import KubeguardError
from .._k8s.objects import expand, namespace_selected, validate_namespaces
from .._k8s.runner import connect, owned
from .._k8s.service import ApplyService
from . import validate
from .policy import Pod, policy_types, verdict
from .runner import NETWORKING_V1, _active_namespaces, coverage_report, pod_from_api
from .truth_table import port_label

# Labels that differ between the replicas of one workload: never part of a suggested selector.
INSTANCE_LABELS = {
    "pod-template-hash",
    "controller-revision-hash",
    "pod-template-generation",
    "statefulset.kubernetes.io/pod-name",
    "apps.kubernetes.io/pod-index",
    "job-name",
    "controller-uid",
    "batch.kubernetes.io/job-name",
    "batch.kubernetes.io/controller-uid",
    "batch.kubernetes.io/job-completion-index",
}
NAME_LABEL = "kubernetes.io/metadata.name"


def _labels_match(labels, wanted):
    return all(labels.get(key) == value for key, value in wanted.items())


def proposed_policies(current, namespaces, params):
    """(policies after the run, sorted names of the namespaces whose policies change)."""
    excluded = params.get("exclude_namespaces") or ()
    replace = params.get("replace_labels") or []
    templates = list(params.get("namespace_objects") or [])
    objects = list(params.get("objects") or [])
    selected = sorted(name for name in namespaces if namespace_selected(name, excluded))
    rendered = expand(templates, selected) + [
        obj for obj in objects if namespace_selected(obj["metadata"]["namespace"], excluded)
    ]
    kept = [
        policy
        for policy in current
        if not any(_labels_match((policy.get("metadata") or {}).get("labels") or {}, wanted) for wanted in replace)
    ]
    after = kept + rendered

    def by_namespace(policies):
        out = {}
        for policy in policies:
            meta = policy.get("metadata") or {}
            out.setdefault(meta.get("namespace"), {})[meta.get("name")] = json.dumps(policy.get("spec"), sort_keys=True)
        return out

    before_map, after_map = by_namespace(current), by_namespace(after)
    changed = sorted(ns for ns in set(before_map) | set(after_map) if before_map.get(ns) != after_map.get(ns))
    return after, changed


def check_params(params):
    """The policies and flows given, before any request (the API would refuse a bad policy only later)."""
    for index, template in enumerate(params.get("namespace_objects") or []):
        name = ((template.get("metadata") or {}) if isinstance(template, dict) else {}).get("name")
        if not isinstance(template, dict) or template.get("kind") != "NetworkPolicy":
            raise KubeguardError("namespace_objects", f"item {index} is not a NetworkPolicy")
        validate.spec(template.get("spec") or {}, "namespace_objects", f"NetworkPolicy {name}: spec")
    validate.policies(params.get("objects") or [], "objects")
    validate_namespaces(params.get("exclude_namespaces"), "exclude_namespaces", patterns=True)
    if params.get("gathered") is not None:
        _check_gathered(params["gathered"])


def _running_pods(items):
    """(pods, ip -> pod) of the running pods on the pod network (hostNetwork pods share their node's IP)."""
    pods, by_ip = [], {}
    for item in items:
        spec, status = item.get("spec") or {}, item.get("status") or {}
        if status.get("phase") != "Running" or spec.get("hostNetwork") or not status.get("podIP"):
            continue
        pod = pod_from_api(item)
        pod.node = spec.get("nodeName")
        pods.append(pod)
        for address in [status["podIP"], *(entry.get("ip") for entry in status.get("podIPs") or [])]:
            if address:
                by_ip[address] = pod
    return pods, by_ip


def _check_gathered(gathered):
    if not isinstance(gathered, list):
        raise KubeguardError(
            "gathered", "must be the list of registered results of kubeguard.hardening.network_policy_flows"
        )
    out = []
    for index, result in enumerate(gathered):
        if not isinstance(result, dict):
            raise KubeguardError("gathered", f"item {index}: must be a registered result of network_policy_flows")
        if result.get("skipped"):
            continue
        flows = result.get("flows")
        if not isinstance(flows, list) or not all(isinstance(f, dict) for f in flows):
            raise KubeguardError("gathered", f"item {index}: has no list of flows (network_policy_flows' result)")
        for number, flow in enumerate(flows):
            if not isinstance(flow.get("port"), int) or flow.get("protocol") not in ("TCP", "UDP", "SCTP"):
                raise KubeguardError("gathered", f"item {index}.flows[{number}]: needs protocol and port")
        out.append((str(result.get("item") or result.get("node") or index), flows))
    return out


def selector_labels(pods):
    """The labels every pod of ``pods`` shares, without the per-replica ones."""
    common = None
    for pod in pods:
        labels = _stable_labels(pod.labels)
        common = labels if common is None else {k: v for k, v in common.items() if labels.get(k) == v}
    return dict(sorted((common or {}).items()))


def _peer(namespace, labels, own_namespace, address=None):
    if namespace is None:
        return {"ipBlock": {"cidr": f"{address}/{128 if ':' in address else 32}"}}
    peer = {"podSelector": {"matchLabels": labels} if labels else {}}
    if namespace != own_namespace:
        peer["namespaceSelector"] = {"matchLabels": {NAME_LABEL: namespace}}
    return peer


def _rule(name, namespace, labels, direction, peer, ports):
    """One rule of network_policy_custom_rules: ``direction`` of the pods with ``labels``, to or from ``peer``."""
    field, peers = ("egress", "to") if direction == "Egress" else ("ingress", "from")
    return {
        "name": name,
        "namespaces": [namespace],
        "spec": {
            "podSelector": {"matchLabels": labels} if labels else {},
            "policyTypes": [direction],
            field: [{peers: [peer], "ports": ports}],
        },
    }


def suggest(flows):
    """Allow rules ({name, namespaces, spec}) keeping ``flows``: egress in the source's namespace and
    ingress in the destination's, each only where the new policies block that direction."""
    groups = {}
    for flow in flows:
        src, dst = flow["_source"], flow["_destination"]
        # an outside destination is grouped by its address (namespace "")
        dst_id = json.dumps(flow["_destination_labels"]) if dst.namespace else dst.ip
        key = (src.namespace, json.dumps(flow["_source_labels"]), dst.namespace or "", dst_id)
        group = groups.setdefault(key, {"ports": set(), "egress": False, "ingress": False})
        group["ports"].add((flow["protocol"], flow["port_number"]))
        group["egress"] |= "egress" in flow["blocked_by"]
        group["ingress"] |= "ingress" in flow["blocked_by"]
    rules = []
    for (src_ns, src_json, dst_ns, dst_json), group in sorted(groups.items()):
        src_labels = json.loads(src_json)
        dst_labels = json.loads(dst_json) if dst_ns else {}
        digest = hashlib.sha256(f"{src_ns}|{src_json}|{dst_ns}|{dst_json}".encode()).hexdigest()[:6]
        ports = [{"protocol": protocol, "port": port} for protocol, port in sorted(group["ports"])]
        base = f"allow-live-{src_ns}-to-{dst_ns or 'outside'}-{digest}"
        if group["egress"]:
            peer = _peer(dst_ns or None, dst_labels, src_ns, dst_json)
            rules.append(_rule(f"{base}-egress", src_ns, src_labels, "Egress", peer, ports))
        if group["ingress"]:
            rules.append(
                _rule(f"{base}-ingress", dst_ns, dst_labels, "Ingress", _peer(src_ns, src_labels, dst_ns), ports)
            )
    return rules


def evaluate(gathered, pods, by_ip, before, after, changed, namespace_labels, allow_cut):
    """The cut flows, deduplicated over nodes: (cut, unjudged)."""
    at_risk = set(changed)
    cut, unjudged = {}, 0
    for node, flows in gathered:
        for flow in flows:
            source, destination = by_ip.get(flow.get("source")), by_ip.get(flow.get("destination"))
            ends = [pod for pod in (source, destination) if pod is not None]
            if not any(pod.namespace in at_risk for pod in ends):
                continue
            if source is None:
                # from a node or an outside address: kube-router and most enforcers let a node reach its
                # pods (kubelet probes), so this is left unjudged rather than guessed
                unjudged += 1
                continue
            if destination is None:
                # to a node or an outside address (the API server, a hostNetwork pod): egress, by ipBlock only
                destination = Pod(None, flow["destination"], {}, flow["destination"])
            if source is destination:
                continue  # a pod reaching itself through its Service
            protocol, port = flow["protocol"], flow["port"]
            if not verdict(before, source, destination, port, protocol, namespace_labels)["allowed"]:
                continue  # blocked today: a stale entry, nothing for this run to cut
            result = verdict(after, source, destination, port, protocol, namespace_labels)
            if result["allowed"]:
                continue
            target = destination.key if destination.namespace else destination.ip
            key = (source.key, target, port_label(protocol, port))
            entry = cut.setdefault(
                key,
                {
                    "source": source.key,
                    "destination": target,
                    "port": key[2],
                    "protocol": protocol,
                    "via": [],
                    "nodes": [],
                    "blocked_by": [d for d in ("egress", "ingress") if not result[d]],
                    "accepted": not (
                        namespace_selected(source.namespace, allow_cut)
                        and namespace_selected(destination.namespace or "", allow_cut)
                    ),
                    "_source": source,
                    "_destination": destination,
                },
            )
            entry["port_number"] = port
            entry["nodes"] = sorted(set(entry["nodes"]) | {node})
            entry["via"] = sorted(set(entry["via"]) | set(flow.get("via") or []))
    return [cut[key] for key in sorted(cut)], unjudged


def _describe(flow):
    via = f" via {', '.join(flow['via'])}" if flow["via"] else ""
    return (
        f"{flow['source']} -> {flow['destination']} {flow['port']}{via}"
        f" (blocked by {' and '.join(flow['blocked_by'])}, seen on {', '.join(flow['nodes'])})"
    )


TRANSITION_LABELS = {"app.kubernetes.io/managed-by": "kubeguard", "kubeguard.io/set": "network-policy-transition"}


def _is_transition(policy):
    labels = (policy.get("metadata") or {}).get("labels") or {}
    return labels.get("kubeguard.io/set") == TRANSITION_LABELS["kubeguard.io/set"]


def transition(current, namespaces):
    """Allow-all policies for the directions no policy isolates yet in ``namespaces``: they change nothing
    there (those directions are open today), but while the run applies its policies one by one, no allow
    rule or DNS policy isolates a pod before the rest of the set is in place. Removed once all are applied."""
    isolated = {}
    for policy in current:
        if _is_transition(policy):
            continue
        isolated.setdefault(policy["metadata"].get("namespace"), set()).update(policy_types(policy))
    out = []
    for namespace in namespaces:
        directions = [d for d in ("Ingress", "Egress") if d not in isolated.get(namespace, set())]
        if not directions:
            continue
        spec = {"podSelector": {}, "policyTypes": directions}
        spec.update({field: [{}] for field, d in (("ingress", "Ingress"), ("egress", "Egress")) if d in directions})
        out.append(
            {
                "apiVersion": NETWORKING_V1,
                "kind": "NetworkPolicy",
                "metadata": {
                    "name": "kubeguard-transition-allow-all",
                    "namespace": namespace,
                    "labels": TRANSITION_LABELS,
                },
                "spec": spec,
            }
        )
    return out


def run(params, check_mode, service=None):
    check_params(params)
    service = service or ApplyService(connect(params))
    service.discover({"v1", NETWORKING_V1})
    namespace_labels = _active_namespaces(service)
    current = service.list(service.resource(NETWORKING_V1, "NetworkPolicy"))
    after, changed = proposed_policies(current, namespace_labels, params)
    # pods matter only where policies change (none on a rerun: no LIST)
    pods, by_ip = _running_pods(service.list(service.resource("v1", "Pod"))) if changed else ([], {})
    pods_in_changed = sorted(pod.key for pod in pods if pod.namespace in set(changed))
    result = {
        "changed": False,
        "namespaces": changed,
        "running_pods": pods_in_changed,
        "needs_flows": bool(pods_in_changed),
        "transition": transition(current, sorted({key.split("/")[0] for key in pods_in_changed})),
        # Left by a run that stopped before live_flows_close.yml (ours: applied by our field manager, as the
        # prune there requires): only then has that task anything to prune.
        "transition_present": any(_is_transition(policy) and owned(policy, "kubeguard") for policy in current),
        "cut": [],
        "refused": [],
        "accepted": [],
        "refused_namespaces": [],
        "suggested_rules": [],
        "unjudged": 0,
        "api_requests": {"total": service.client.requests, "discovery": service.client.discovery_requests},
    }
    if params.get("audit"):
        # network_policy_audit's report of today's policies, and whether the run leaves it so: the same report of
        # the policies the run would leave (a spec the API server completes with its defaults may read as a change
        # above, yet leave the coverage as it is)
        exempt = params.get("exclude_namespaces")
        now = coverage_report(namespace_labels, current, exempt)
        after_run = now == coverage_report(namespace_labels, after, exempt)
        result["audit"] = {"changed": False, **now, "after_run": after_run}
    if params.get("gathered") is None or not pods_in_changed:
        return result
    gathered = _check_gathered(params["gathered"])
    cut, unjudged = evaluate(
        gathered, pods, by_ip, current, after, changed, namespace_labels, params.get("allow_cut") or ()
    )
    refused = [flow for flow in cut if not flow["accepted"]]
    for flow in refused:
        flow["_source_labels"] = selector_labels([p for p in pods if _same_workload(p, flow["_source"])])
        outside = flow["_destination"].namespace is None
        flow["_destination_labels"] = (
            {} if outside else selector_labels([p for p in pods if _same_workload(p, flow["_destination"])])
        )
    suggested = suggest(refused)
    public = [{k: v for k, v in flow.items() if not k.startswith("_")} for flow in cut]
    for flow in public:
        flow["text"] = _describe(flow)
    result.update(
        cut=public,
        refused=[flow for flow in public if not flow["accepted"]],
        accepted=[flow for flow in public if flow["accepted"]],
        refused_namespaces=sorted(
            {pod.namespace for flow in refused for pod in (flow["_source"], flow["_destination"])} & set(changed)
        ),
        suggested_rules=suggested,
        unjudged=unjudged,
        flows_read=sum(len(flows) for _node, flows in gathered),
    )
    return result


def _stable_labels(labels):
    return {key: value for key, value in labels.items() if key not in INSTANCE_LABELS}


def _same_workload(pod, other):
    """Pods of one workload: same namespace, same labels once the per-replica ones are dropped."""
    return pod.namespace == other.namespace and _stable_labels(pod.labels) == _stable_labels(other.labels)
