# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: network_policies
short_description: Default-deny NetworkPolicies for the app namespaces, with the allows the apps need
version_added: 0.5.0
author:
  - CERES platform team (@ceres)
description:
  - Turns the inventory's C(ceres_network_policy) into NetworkPolicy manifests for every app namespace - C(ceres-allow)
    (ingress from the callers of every app; egress to the cluster DNS, the mesh control plane and the extra egress)
    and C(ceres-default-deny) (ingress and egress).
  - An app's own callers (O(_input.app_callers)) get C(ceres-allow-callers-APP) on that app's pods and, when the
    caller lives in an app namespace (whose egress is denied too), C(ceres-allow-to-APP.NAMESPACE-DIGEST) on the
    caller's pods.
  - A NetworkPolicy isolates the pods it selects from everything it does not allow, so each of these carries the base
    rules of its direction, and the list comes in the order to apply them - the narrow ones, C(ceres-allow), the
    default-deny (label C(rollout.ceres.io/apply-order) 1 to 4; remove them in the reverse order). No set of them on
    the way in or out cuts DNS, istiod or a caller (tests/integration/test_network_policies.py asks cyclonus's engine
    about every step).
  - Every field is checked before anything is built; a wrong one is refused naming it (for example
    C(ceres_network_policy.callers[1].pod_labels)).
options:
  _input:
    description:
      - The settings, C(ceres_network_policy). A peer is C(namespace) with optional C(pod_labels) (all its pods when
        empty), or C(cidr) with optional C(except) (outside the cluster). Ports are numbers or C({port, protocol}).
    type: dict
    required: true
    suboptions:
      default_deny:
        description: Build the policies; V(false) builds none (the security role then removes those it applied).
        type: bool
        default: true
      dns:
        description: The cluster DNS peer and C(ports).
        type: dict
        default: {namespace: kube-system, pod_labels: {k8s-app: kube-dns}, ports: [{port: 53, protocol: UDP}, {port: 53, protocol: TCP}]}
      control_plane:
        description: The mesh control plane the sidecars fetch their configuration and certificates from, and C(ports).
        type: dict
        default: {namespace: istio-system, pod_labels: {app: istiod}, ports: [15012]}
      callers:
        description: Peers that may call every app (the ingress gateway, a scraper), each with optional C(ports).
        type: list
        elements: dict
        default: [{namespace: istio-system, pod_labels: {app: istio-ingressgateway}}]
      ports:
        description: The ports of the app pods a caller without C(ports) may reach; any port when empty.
        type: list
        elements: raw
        default: []
      app_callers:
        description:
          - More callers of one app - C(namespace) (an app namespace), C(app) (its C(app) label), C(from) (peers),
            optional C(ports) (O(_input.ports) by default).
        type: list
        elements: dict
        default: []
      egress:
        description: More egress for every app pod (a database, an outside API) - peers with optional C(ports).
        type: list
        elements: dict
        default: []
  namespaces:
    description: The app namespaces (the pilot's and every wave's).
    type: list
    elements: str
    required: true
  labels:
    description: Labels for every NetworkPolicy (the security role adds its own, to find them again).
    type: dict
    default: {}
"""

EXAMPLES = r"""
- name: The policies of the app namespaces
  ansible.builtin.set_fact:
    policies: "{{ ceres_network_policy | ceres.rollout.network_policies(namespaces=['pilot-apps', 'critical']) }}"

# ceres_network_policy with a caller of one app:
#   callers: [{namespace: istio-system, pod_labels: {app: istio-ingressgateway}}]
#   ports: [8080]
#   app_callers:
#     - {namespace: critical, app: billing, from: [{namespace: critical, pod_labels: {app: auth}}]}
"""

RETURN = r"""
_value:
  description: NetworkPolicy manifests (C(networking.k8s.io/v1)) in the order to apply them, each
    C(ceres-default-deny) last.
  type: list
  elements: dict
"""

import hashlib
import json
import re
from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

DEFAULT_DENY = "ceres-default-deny"
# The order the policies are applied in (and removed in, reversed), kept on each as a label: a NetworkPolicy isolates
# the pods it selects from all but what it allows, so every policy carries the base rules of its direction and the
# narrow ones land first - no set of them on the way in or out cuts DNS, istiod or a caller.
ORDER_LABEL = "rollout.ceres.io/apply-order"
ORDER_APP_INGRESS = 1
ORDER_CALLER_EGRESS = 2
ORDER_BASE = 3
ORDER_DENY = 4
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$")
CIDR = re.compile(r"^[0-9a-fA-F.:]+/[0-9]{1,3}$")
PROTOCOLS = ("TCP", "UDP", "SCTP")

DEFAULTS = {
    "default_deny": True,
    "dns": {
        "namespace": "kube-system",
        "pod_labels": {"k8s-app": "kube-dns"},
        "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
    },
    "control_plane": {"namespace": "istio-system", "pod_labels": {"app": "istiod"}, "ports": [15012]},
    "callers": [{"namespace": "istio-system", "pod_labels": {"app": "istio-ingressgateway"}}],
    "ports": [],
    "app_callers": [],
    "egress": [],
}
FIELD = "ceres_network_policy"


class _Refused(AnsibleFilterError):
    def __init__(self, where, problem):
        super().__init__("network_policies: %s %s" % (where, problem))


def _labels(value, where):
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _Refused(where, "must be a mapping of label names to values")
    for key, label_value in value.items():
        if not isinstance(key, str) or not LABEL_KEY.match(key):
            raise _Refused(where, "has %r, which is not a label name" % (key,))
        if not isinstance(label_value, str) or not LABEL_VALUE.match(label_value):
            raise _Refused("%s.%s" % (where, key), "must be a label value (63 characters of A-Z a-z 0-9 - _ .)")
    return dict(value)


def _ports(value, where):
    if value is None:
        return []
    if not isinstance(value, list):
        raise _Refused(where, "must be a list of ports (numbers or {port, protocol})")
    ports = []
    for index, port in enumerate(value):
        here = "%s[%d]" % (where, index)
        protocol = "TCP"
        if isinstance(port, Mapping):
            unknown = sorted(set(port) - {"port", "protocol"})
            if unknown:
                raise _Refused(here, "has unknown keys %s" % ", ".join(unknown))
            protocol = port.get("protocol", "TCP")
            port = port.get("port")
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise _Refused(here, "must be a port number from 1 to 65535, not %r" % (port,))
        if protocol not in PROTOCOLS:
            raise _Refused(here + ".protocol", "must be one of %s, not %r" % (", ".join(PROTOCOLS), protocol))
        ports.append({"port": port, "protocol": protocol})
    return ports


def _peer(value, where, allow_ports=False):
    """A NetworkPolicyPeer (and its ports, when ``allow_ports``) from a settings peer."""
    if not isinstance(value, Mapping):
        raise _Refused(where, "must be a mapping (namespace and pod_labels, or cidr)")
    allowed = {"namespace", "pod_labels", "cidr", "except"} | ({"ports"} if allow_ports else set())
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise _Refused(where, "has unknown keys %s (expected %s)" % (", ".join(unknown), ", ".join(sorted(allowed))))
    ports = _ports(value.get("ports"), where + ".ports") if allow_ports else []
    if value.get("cidr") is not None:
        if value.get("namespace") is not None or value.get("pod_labels"):
            raise _Refused(where, "has a cidr and a namespace or pod_labels; a peer is one or the other")
        cidrs = [value["cidr"]] + list(value.get("except") or [])
        for cidr in cidrs:
            if not isinstance(cidr, str) or not CIDR.match(cidr):
                raise _Refused(where + ".cidr", "%r is not a CIDR (address/prefix)" % (cidr,))
        block = {"cidr": value["cidr"]}
        if value.get("except"):
            block["except"] = list(value["except"])
        return {"ipBlock": block}, ports
    namespace = value.get("namespace")
    if not isinstance(namespace, str) or not DNS_LABEL.match(namespace) or len(namespace) > 63:
        raise _Refused(where + ".namespace", "must be a namespace name, not %r" % (namespace,))
    return {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
        "podSelector": {"matchLabels": _labels(value.get("pod_labels"), where + ".pod_labels")},
    }, ports


def _rule(direction, peers, ports):
    rule = {"to" if direction == "egress" else "from": peers}
    if ports:
        rule["ports"] = ports
    return rule


def _policy(namespace, name, labels, pod_selector, ingress=None, egress=None, order=None):
    spec = {"podSelector": {"matchLabels": dict(pod_selector)} if pod_selector else {}, "policyTypes": []}
    # An empty list of rules is left out (the API server drops it too): the policy type alone denies.
    if ingress is not None:
        spec["policyTypes"].append("Ingress")
        if ingress:
            spec["ingress"] = ingress
    if egress is not None:
        spec["policyTypes"].append("Egress")
        if egress:
            spec["egress"] = egress
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels, **{ORDER_LABEL: str(order)})},
        "spec": spec,
    }


def _settings(value):
    if not isinstance(value, Mapping):
        raise _Refused(FIELD, "must be a mapping, got %r" % (type(value).__name__,))
    unknown = sorted(set(value) - set(DEFAULTS))
    if unknown:
        raise _Refused(FIELD, "has unknown keys %s (expected %s)" % (", ".join(unknown), ", ".join(sorted(DEFAULTS))))
    settings = dict(DEFAULTS)
    settings.update({key: item for key, item in value.items() if item is not None})
    if not isinstance(settings["default_deny"], bool):
        raise _Refused(FIELD + ".default_deny", "must be true or false")
    for key in ("callers", "app_callers", "egress"):
        if not isinstance(settings[key], list):
            raise _Refused("%s.%s" % (FIELD, key), "must be a list")
    return settings


def _app_callers(settings, namespaces, labels, base_ingress, base_egress):
    """(ingress policies, egress policies) for the callers of single apps; each carries the base rules of its direction
    too, so it never takes from its pods what the base policy gives them (a policy isolates what it selects)."""
    ingress, egress = [], []
    default_ports = _ports(settings["ports"], FIELD + ".ports")
    for index, entry in enumerate(settings["app_callers"]):
        where = "%s.app_callers[%d]" % (FIELD, index)
        if not isinstance(entry, Mapping):
            raise _Refused(where, "must be a mapping (namespace, app, from, ports)")
        unknown = sorted(set(entry) - {"namespace", "app", "from", "ports"})
        if unknown:
            raise _Refused(where, "has unknown keys %s" % ", ".join(unknown))
        namespace, app = entry.get("namespace"), entry.get("app")
        if namespace not in namespaces:
            raise _Refused(
                where + ".namespace",
                "must be one of the app namespaces (%s), not %r" % (", ".join(namespaces), namespace),
            )
        if not isinstance(app, str) or not DNS_LABEL.match(app) or len(app) > 40:
            raise _Refused(
                where + ".app", "must be an app name (a DNS label of at most 40 characters), not %r" % (app,)
            )
        callers = entry.get("from")
        if not isinstance(callers, list) or not callers:
            raise _Refused(where + ".from", "must be a non-empty list of peers")
        ports = _ports(entry["ports"], where + ".ports") if "ports" in entry else default_ports
        peers = [_peer(caller, "%s.from[%d]" % (where, number))[0] for number, caller in enumerate(callers)]
        ingress.append(
            _policy(
                namespace,
                "ceres-allow-callers-%s" % app,
                labels,
                {"app": app},
                ingress=base_ingress + [_rule("ingress", peers, ports)],
                order=ORDER_APP_INGRESS,
            )
        )
        callee = {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
            "podSelector": {"matchLabels": {"app": app}},
        }
        for number, caller in enumerate(callers):
            if caller.get("namespace") in namespaces:
                egress.append(
                    _policy(
                        caller["namespace"],
                        "ceres-allow-to-%s.%s-%s" % (app, namespace, _digest(peers[number]["podSelector"])),
                        labels,
                        peers[number]["podSelector"]["matchLabels"],
                        egress=base_egress + [_rule("egress", [callee], ports)],
                        order=ORDER_CALLER_EGRESS,
                    )
                )
    return ingress, egress


def network_policies(settings, namespaces=None, labels=None):
    """The NetworkPolicies of ``settings`` for the app ``namespaces``, in the order to apply them."""
    settings = _settings(settings)
    if (
        not isinstance(namespaces, list)
        or not namespaces
        or not all(isinstance(name, str) and DNS_LABEL.match(name) for name in namespaces)
    ):
        raise _Refused("namespaces", "must be a non-empty list of namespace names, got %r" % (namespaces,))
    labels = _labels(labels, "labels")
    if not settings["default_deny"]:
        return []
    dns_peer, dns_ports = _peer(settings["dns"], FIELD + ".dns", allow_ports=True)
    plane_peer, plane_ports = _peer(settings["control_plane"], FIELD + ".control_plane", allow_ports=True)
    ports = _ports(settings["ports"], FIELD + ".ports")
    callers = []
    for index, peer in enumerate(settings["callers"]):
        caller, caller_ports = _peer(peer, "%s.callers[%d]" % (FIELD, index), allow_ports=True)
        callers.append(_rule("ingress", [caller], caller_ports if "ports" in peer else ports))
    egress = [
        _peer(peer, "%s.egress[%d]" % (FIELD, index), allow_ports=True) for index, peer in enumerate(settings["egress"])
    ]
    base_ingress = callers
    base_egress = [_rule("egress", [dns_peer], dns_ports), _rule("egress", [plane_peer], plane_ports)]
    base_egress += [_rule("egress", [peer], peer_ports) for peer, peer_ports in egress]
    app_ingress, app_egress = _app_callers(settings, namespaces, labels, base_ingress, base_egress)

    base = [
        _policy(namespace, "ceres-allow", labels, {}, ingress=base_ingress, egress=base_egress, order=ORDER_BASE)
        for namespace in namespaces
    ]
    denies = [
        _policy(namespace, DEFAULT_DENY, labels, {}, ingress=[], egress=[], order=ORDER_DENY)
        for namespace in namespaces
    ]
    merged = {}
    for policy in app_ingress + app_egress:
        key = (policy["metadata"]["namespace"], policy["metadata"]["name"])
        if key in merged:  # one app named twice, or one caller twice: one policy with every rule, once each
            for direction in ("ingress", "egress"):
                rules = merged[key]["spec"].setdefault(direction, [])
                rules.extend(rule for rule in policy["spec"].get(direction, []) if rule not in rules)
                if not rules:
                    del merged[key]["spec"][direction]
        else:
            merged[key] = policy
    return list(merged.values()) + base + denies


def _digest(selector):
    """A short, stable name for a pod selector."""
    return hashlib.sha256(json.dumps(selector, sort_keys=True).encode("utf-8")).hexdigest()[:8]


class FilterModule:
    def filters(self):
        return {"network_policies": network_policies}
