# Copyright (c) 2025, CERES platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The cluster as the simulator sees it: loosely typed API objects, indexed for resolution.

Small helpers read the plain dicts the Kubernetes API returns without trusting their shape;
:class:`ClusterSnapshot` indexes the watched objects; the service and label helpers read
hosts, selectors, pod template labels and DestinationRule subsets the way Istio does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

CLUSTER_DOMAIN_SUFFIX = ".svc.cluster.local"
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"

VIRTUAL_SERVICE = "VirtualService"
DESTINATION_RULE = "DestinationRule"
DEPLOYMENT = "Deployment"
SERVICE = "Service"
NAMESPACE = "Namespace"
NETWORK_POLICY = "NetworkPolicy"
KINDS = (VIRTUAL_SERVICE, DESTINATION_RULE, DEPLOYMENT, SERVICE, NAMESPACE, NETWORK_POLICY)
# What the cost model reads (``cost``), kept apart so that pod churn never rebuilds the traffic plans.
NODE = "Node"
POD = "Pod"
COST_KINDS = (NODE, POD)
# The rollout's locks (``rollout_state``), kept apart too: a Lease changes at every renewal.
LEASE = "Lease"


# --- small helpers for loosely typed API objects ------------------------------------------


def _mapping(value: Any) -> Mapping:
    return value if isinstance(value, Mapping) else {}


def _sequence(value: Any) -> Sequence:
    return value if isinstance(value, list) else []


def _string_labels(value: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in _mapping(value).items()}


def object_key(obj: Mapping) -> tuple[str, str]:
    """(namespace, name) of an API object."""
    metadata = _mapping(obj.get("metadata"))
    return str(metadata.get("namespace") or ""), str(metadata.get("name") or "")


def annotations_of(obj: Mapping) -> dict[str, str]:
    return _string_labels(_mapping(obj.get("metadata")).get("annotations"))


# --- the cluster as the simulator sees it -------------------------------------------------


def _creation_order(obj: Mapping) -> tuple[str, str, str]:
    metadata = _mapping(obj.get("metadata"))
    return str(metadata.get("creationTimestamp") or ""), *object_key(obj)


class ClusterSnapshot:
    """An immutable view of the watched objects, indexed for resolution.

    ``objects`` maps a kind (``VirtualService``, ``DestinationRule``, ``Deployment``,
    ``Service``) to ``{(namespace, name): object}`` with objects as plain API dicts.
    """

    def __init__(self, objects: Mapping[str, Mapping[tuple[str, str], Mapping]]):
        self._objects = {kind: dict(objects.get(kind, {})) for kind in KINDS}
        self._by_namespace: dict[str, dict[str, list[Mapping]]] = {kind: {} for kind in KINDS}
        for kind, by_key in self._objects.items():
            for key in sorted(by_key):
                self._by_namespace[kind].setdefault(key[0], []).append(by_key[key])

    @classmethod
    def from_objects(cls, objects: Iterable[tuple[str, Mapping]]) -> ClusterSnapshot:
        """Build a snapshot from (kind, object) pairs; handy for tests and tools."""
        grouped: dict[str, dict[tuple[str, str], Mapping]] = {kind: {} for kind in KINDS}
        for kind, obj in objects:
            grouped[kind][object_key(obj)] = obj
        return cls(grouped)

    def virtual_services(self) -> list[Mapping]:
        by_key = self._objects[VIRTUAL_SERVICE]
        return [by_key[key] for key in sorted(by_key)]

    def deployments(self) -> list[Mapping]:
        by_key = self._objects[DEPLOYMENT]
        return [by_key[key] for key in sorted(by_key)]

    def service(self, namespace: str, name: str) -> Mapping | None:
        return self._objects[SERVICE].get((namespace, name))

    def network_policies(self) -> list[Mapping]:
        by_key = self._objects[NETWORK_POLICY]
        return [by_key[key] for key in sorted(by_key)]

    def namespace_labels(self, name: str) -> dict[str, str]:
        """A namespace's labels (with the API server's ``kubernetes.io/metadata.name``, also when
        the namespace is not there)."""
        namespace = self._objects[NAMESPACE].get(("", name)) or {}
        return {**_string_labels(_mapping(namespace.get("metadata")).get("labels")), NAMESPACE_NAME_LABEL: name}

    def destination_rule_for(self, namespace: str, service_name: str) -> Mapping | None:
        """The DestinationRule of a service in its namespace (the oldest one if several)."""
        candidates = [
            rule
            for rule in self._by_namespace[DESTINATION_RULE].get(namespace, [])
            if service_for_host(str(_mapping(rule.get("spec")).get("host") or ""), namespace)
            == (namespace, service_name)
        ]
        return min(candidates, key=_creation_order) if candidates else None

    def deployments_matching(self, namespace: str, *label_sets: Mapping[str, str]) -> list[Mapping]:
        """Deployments of a namespace whose pod template labels include every given label set."""
        matching = []
        for deployment in self._by_namespace[DEPLOYMENT].get(namespace, []):
            labels = template_labels(deployment)
            if all(labels_include(labels, wanted) for wanted in label_sets):
                matching.append(deployment)
        return matching


def service_for_host(host: str, namespace: str) -> tuple[str, str] | None:
    """(namespace, service name) of a destination host, the way Istio reads Kubernetes hosts.

    A short name (no dot) is relative to ``namespace``; ``<svc>.<ns>.svc.cluster.local`` is
    absolute. Anything else is not a Kubernetes service of this cluster: None.
    """
    host = host.strip().lower()
    if not host or "*" in host:
        return None
    if "." not in host:
        return namespace, host
    if host.endswith(CLUSTER_DOMAIN_SUFFIX):
        parts = host[: -len(CLUSTER_DOMAIN_SUFFIX)].split(".")
        if len(parts) == 2 and all(parts):
            return parts[1], parts[0]
    return None


def service_fqdn(namespace: str, name: str) -> str:
    return "%s.%s%s" % (name, namespace, CLUSTER_DOMAIN_SUFFIX)


def labels_include(labels: Mapping[str, str], wanted: Mapping[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in wanted.items())


def template_labels(deployment: Mapping) -> dict[str, str]:
    template = _mapping(_mapping(deployment.get("spec")).get("template"))
    return _string_labels(_mapping(template.get("metadata")).get("labels"))


def available_replicas(deployment: Mapping) -> int:
    try:
        return max(int(_mapping(deployment.get("status")).get("availableReplicas") or 0), 0)
    except (TypeError, ValueError):
        return 0


def service_account(deployment: Mapping) -> str:
    pod_spec = _mapping(_mapping(_mapping(deployment.get("spec")).get("template")).get("spec"))
    return str(pod_spec.get("serviceAccountName") or pod_spec.get("serviceAccount") or "default")


def target_port(service: Mapping, deployment: Mapping) -> tuple[int, str]:
    """(port number, port name) on the pod that a request to the Service's first port reaches.

    ``targetPort`` may be a number, the name of a container port, or absent (the Service's
    ``port``). (0, "") when it cannot be resolved.
    """
    ports = [port for port in _sequence(_mapping(service.get("spec")).get("ports")) if isinstance(port, Mapping)]
    if not ports:
        return 0, ""
    wanted = ports[0].get("targetPort", ports[0].get("port"))
    pod_spec = _mapping(_mapping(_mapping(deployment.get("spec")).get("template")).get("spec"))
    container_ports = [
        port
        for container in _sequence(pod_spec.get("containers"))
        for port in _sequence(_mapping(container).get("ports"))
        if isinstance(port, Mapping)
    ]
    for port in container_ports:
        if wanted in (port.get("name"), port.get("containerPort")):
            return int(port.get("containerPort") or 0), str(port.get("name") or "")
    return (wanted, "") if isinstance(wanted, int) else (0, str(wanted or ""))


def subset_labels(destination_rule: Mapping, subset: str) -> dict[str, str] | None:
    """The labels of a named subset of a DestinationRule, or None when it has no such subset."""
    for entry in _sequence(_mapping(destination_rule.get("spec")).get("subsets")):
        if isinstance(entry, Mapping) and entry.get("name") == subset:
            return _string_labels(entry.get("labels"))
    return None
