# Copyright (c) 2025, CERES platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Routing: where a VirtualService's steady load goes.

Route selection (the first http route a headerless ``GET /`` reaches), resolution of its
destinations to weighted :class:`Target` workloads (or to 503 ``UH`` with the labels Istio's
caller-side proxy reports), :class:`VirtualServicePlan` and the :class:`Planner` that
rebuilds the plans from a cluster snapshot and logs what changed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import partial
from typing import Any

from .cluster import (
    ClusterSnapshot,
    _mapping,
    _sequence,
    _string_labels,
    available_replicas,
    object_key,
    service_account,
    service_for_host,
    service_fqdn,
    subset_labels,
    target_port,
    template_labels,
)
from .faults import DEFAULT_RPS, HEALTHY_PROFILE, FaultProfile, Warn, fault_profile, virtual_service_rps
from .metrics import UNKNOWN, Labels

LOG = logging.getLogger("simulator")

CLUSTER_NAME = "Kubernetes"

# The ingress gateway is the client of every simulated request.
SOURCE_LABELS = (
    ("source_workload", "istio-ingressgateway"),
    ("source_workload_namespace", "istio-system"),
    ("source_app", "istio-ingressgateway"),
    ("source_version", UNKNOWN),
    ("source_canonical_service", "istio-ingressgateway"),
    ("source_canonical_revision", "latest"),
    ("source_principal", "spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account"),
    ("source_cluster", CLUSTER_NAME),
)
CANONICAL_SERVICE_LABELS = ("service.istio.io/canonical-name", "app.kubernetes.io/name", "app")
CANONICAL_REVISION_LABELS = ("service.istio.io/canonical-revision", "app.kubernetes.io/version", "version")


# --- routes -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RouteDestination:
    """One ``route[]`` entry of an http route."""

    host: str
    subset: str
    weight: int


def _matches_plain_request(condition: Any) -> bool:
    """True when a match entry accepts ``GET /`` without headers."""
    condition = _mapping(condition)
    conditions = set(condition) - {"name", "ignoreUriCase"}
    if not conditions:
        return True
    return conditions == {"uri"} and dict(_mapping(condition["uri"])) == {"prefix": "/"}


def is_catch_all(http_route: Mapping) -> bool:
    """True when an http route serves requests without headers (no or an empty ``match``)."""
    matches = _sequence(http_route.get("match"))
    return not matches or any(_matches_plain_request(condition) for condition in matches)


def select_default_route(virtual_service_spec: Mapping) -> Mapping | None:
    """The first http route that serves the headerless steady load, or None."""
    for http_route in _sequence(virtual_service_spec.get("http")):
        if isinstance(http_route, Mapping) and is_catch_all(http_route):
            return http_route
    return None


def _weight(value: Any, default: int) -> int:
    if value is None:
        return default
    try:
        weight = int(value)
    except (TypeError, ValueError):
        return 0
    return max(weight, 0)


def route_destinations(http_route: Mapping) -> list[RouteDestination]:
    """The destinations of an http route with their weights (a lone one defaults to 100)."""
    entries = [entry for entry in _sequence(http_route.get("route")) if isinstance(entry, Mapping)]
    default_weight = 100 if len(entries) == 1 else 0
    destinations = []
    for entry in entries:
        destination = _mapping(entry.get("destination"))
        destinations.append(
            RouteDestination(
                host=str(destination.get("host") or ""),
                subset=str(destination.get("subset") or ""),
                weight=_weight(entry.get("weight"), default_weight),
            )
        )
    return destinations


# --- resolution: route destinations to targets --------------------------------------------


@dataclass(frozen=True)
class PodPeer:
    """The pods of a workload as a NetworkPolicy sees them: namespace, labels, the port a request reaches."""

    namespace: str
    labels: Labels
    port: int
    port_name: str = ""


@dataclass(frozen=True)
class Target:
    """Where part of a route's requests end up: one workload, or nowhere (503 UH), or a
    workload the NetworkPolicies do not let the request reach (503 UF).

    ``labels`` are the destination labels of the series (everything but ``reporter``,
    ``response_code``, ``response_flags`` and ``connection_security_policy``); ``weight``
    is the target's share of the route (relative to the other targets); ``reason`` says
    why an unhealthy target answers nothing and ``response_flags`` how Istio reports it;
    ``pod`` is the workload's pods (for the NetworkPolicy check).
    """

    labels: Labels
    weight: Fraction
    healthy: bool
    profile: FaultProfile = HEALTHY_PROFILE
    reason: str = ""
    response_flags: str = "UH"
    pod: PodPeer | None = None

    @property
    def workload(self) -> str:
        return dict(self.labels)["destination_workload"]


def _first_label(labels: Mapping[str, str], names: Sequence[str], default: str) -> str:
    for name in names:
        if labels.get(name):
            return labels[name]
    return default


def destination_labels(
    *,
    service_namespace: str,
    service_name: str,
    service_host: str,
    workload: str,
    workload_labels: Mapping[str, str],
    principal: str,
) -> Labels:
    """The destination half of an Istio series' labels.

    ``workload`` is the Deployment name (``unknown`` when there is none);
    ``workload_labels`` are its pod template labels, or the best known hint of them.
    """
    return SOURCE_LABELS + (
        ("destination_workload", workload),
        ("destination_workload_namespace", service_namespace),
        ("destination_service", service_host),
        ("destination_service_name", service_name),
        ("destination_service_namespace", service_namespace),
        ("destination_version", workload_labels.get("version") or UNKNOWN),
        ("destination_app", workload_labels.get("app") or UNKNOWN),
        (
            "destination_canonical_service",
            _first_label(workload_labels, CANONICAL_SERVICE_LABELS, workload if workload != UNKNOWN else UNKNOWN),
        ),
        ("destination_canonical_revision", _first_label(workload_labels, CANONICAL_REVISION_LABELS, "latest")),
        ("destination_principal", principal),
        ("destination_cluster", CLUSTER_NAME),
        ("request_protocol", "http"),
    )


def no_upstream_labels(service: tuple[str, str] | None, host: str) -> Labels:
    """The destination labels Istio's caller-side proxy puts on a request no workload answered.

    Without an upstream pod there is no peer metadata: workload, its namespace, app,
    version, canonical service, principal and cluster are ``unknown``. Only the Service
    is known, from the route's destination host.
    """
    service_namespace, service_name = service if service is not None else (UNKNOWN, host or UNKNOWN)
    service_host = service_fqdn(*service) if service is not None else host or UNKNOWN
    return SOURCE_LABELS + (
        ("destination_workload", UNKNOWN),
        ("destination_workload_namespace", UNKNOWN),
        ("destination_service", service_host),
        ("destination_service_name", service_name),
        ("destination_service_namespace", service_namespace),
        ("destination_version", UNKNOWN),
        ("destination_app", UNKNOWN),
        ("destination_canonical_service", UNKNOWN),
        ("destination_canonical_revision", "latest"),
        ("destination_principal", UNKNOWN),
        ("destination_cluster", UNKNOWN),
        ("request_protocol", "http"),
    )


def _no_healthy_upstream(weight: int, reason: str, *, service: tuple[str, str] | None, host: str) -> Target:
    return Target(labels=no_upstream_labels(service, host), weight=Fraction(weight), healthy=False, reason=reason)


def resolve_destination(
    destination: RouteDestination,
    namespace: str,
    snapshot: ClusterSnapshot,
    profile_of: Callable[[Mapping], FaultProfile],
) -> list[Target]:
    """The targets of one route destination of a VirtualService in ``namespace``.

    Healthy targets are the matching Deployments with available replicas, weighted by
    their available replicas (their weights add up to the destination's weight). When
    there is none, a single unhealthy target carries the whole weight.
    """
    service_ref = service_for_host(destination.host, namespace)
    unhealthy = partial(_no_healthy_upstream, destination.weight, service=service_ref, host=destination.host)
    if service_ref is None:
        return [unhealthy("host %r is not a service of this cluster" % destination.host)]
    service = snapshot.service(*service_ref)
    if service is None:
        return [unhealthy("Service %s/%s not found" % service_ref)]
    selector = _string_labels(_mapping(service.get("spec")).get("selector"))
    if not selector:
        return [unhealthy("Service %s/%s has no selector" % service_ref)]
    wanted_subset: dict[str, str] = {}
    if destination.subset:
        rule = snapshot.destination_rule_for(*service_ref)
        if rule is None:
            return [unhealthy("no DestinationRule for %s/%s" % service_ref)]
        found = subset_labels(rule, destination.subset)
        if found is None:
            return [unhealthy("subset %s not in DestinationRule %s/%s" % ((destination.subset,) + object_key(rule)))]
        wanted_subset = found
    deployments = snapshot.deployments_matching(service_ref[0], selector, wanted_subset)
    if not deployments:
        return [unhealthy("no Deployment matches %s" % _describe_labels({**selector, **wanted_subset}))]
    available = [(deployment, available_replicas(deployment)) for deployment in deployments]
    available = [(deployment, replicas) for deployment, replicas in available if replicas > 0]
    if not available:
        names = ", ".join(object_key(deployment)[1] for deployment in deployments)
        return [unhealthy("no available replicas in %s" % names)]
    total_replicas = sum(replicas for unused_deployment, replicas in available)
    return [
        _healthy_target(
            deployment, service, service_ref, Fraction(destination.weight * replicas, total_replicas), profile_of
        )
        for deployment, replicas in available
    ]


def _healthy_target(
    deployment: Mapping,
    service: Mapping,
    service_ref: tuple[str, str],
    weight: Fraction,
    profile_of: Callable[[Mapping], FaultProfile],
) -> Target:
    pod_labels = template_labels(deployment)
    port, port_name = target_port(service, deployment)
    return Target(
        labels=destination_labels(
            service_namespace=service_ref[0],
            service_name=service_ref[1],
            service_host=service_fqdn(*service_ref),
            workload=object_key(deployment)[1],
            workload_labels=pod_labels,
            principal="spiffe://cluster.local/ns/%s/sa/%s" % (service_ref[0], service_account(deployment)),
        ),
        weight=weight,
        healthy=True,
        profile=profile_of(deployment),
        pod=PodPeer(object_key(deployment)[0], tuple(sorted(pod_labels.items())), port, port_name),
    )


def _describe_labels(labels: Mapping[str, str]) -> str:
    return ",".join("%s=%s" % item for item in sorted(labels.items()))


@dataclass(frozen=True)
class VirtualServicePlan:
    """The steady load of one VirtualService: its rate and the targets of its default route."""

    namespace: str
    name: str
    rps: Fraction
    targets: tuple[Target, ...] = ()
    note: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return self.namespace, self.name

    def describe(self) -> str:
        """One line for the log: where the load goes."""
        if not self.targets:
            return "%g rps, no traffic (%s)" % (float(self.rps), self.note or "no destinations")
        total = sum(target.weight for target in self.targets) or 1
        parts = []
        for target in self.targets:
            share = "%g%%" % round(float(100 * target.weight / total), 2)
            if target.healthy:
                parts.append("%s %s" % (target.workload, share))
            else:
                parts.append("503 %s %s (%s)" % (target.response_flags, share, target.reason))
        return "%g rps: %s" % (float(self.rps), ", ".join(parts))


def plan_virtual_service(
    virtual_service: Mapping,
    snapshot: ClusterSnapshot,
    default_rps: Fraction,
    warn: Warn,
    profile_of: Callable[[Mapping], FaultProfile] | None = None,
) -> VirtualServicePlan:
    """Resolve a VirtualService's default route into weighted targets."""
    namespace, name = object_key(virtual_service)
    if profile_of is None:
        profile_of = partial(fault_profile, warn=warn)
    rps = virtual_service_rps(virtual_service, default_rps, warn)
    spec = _mapping(virtual_service.get("spec"))
    if not _sequence(spec.get("hosts")):
        return VirtualServicePlan(namespace, name, rps, note="a delegate (no hosts): its parent routes to it")
    route = select_default_route(spec)
    if route is None:
        return VirtualServicePlan(namespace, name, rps, note="no http route without match")
    targets: list[Target] = []
    for destination in route_destinations(route):
        if destination.weight > 0:
            targets.extend(resolve_destination(destination, namespace, snapshot, profile_of))
    note = "" if targets else "no destination with weight > 0"
    return VirtualServicePlan(namespace, name, rps, tuple(targets), note)


class Planner:
    """Turns cluster snapshots into traffic plans and logs what changed.

    It remembers which invalid annotations it has reported (each is logged once), the
    last fault profile of every Deployment and the last routing of every VirtualService,
    so the log gets one line per change, not one per rebuild.
    """

    def __init__(
        self,
        default_rps: Fraction = DEFAULT_RPS,
        log: logging.Logger = LOG,
        network_policies: Callable[[list[VirtualServicePlan], ClusterSnapshot], list[VirtualServicePlan]] | None = None,
    ):
        self.default_rps = default_rps
        self._log = log
        self._network_policies = network_policies
        self._warned: set = set()
        self._profiles: dict[tuple[str, str], FaultProfile] = {}
        self._routing: dict[tuple[str, str], str] = {}
        self._failed: set = set()

    def warn_once(self, owner: str, annotation: str, value: str, reason: str) -> None:
        key = (owner, annotation, value)
        if key not in self._warned:
            self._warned.add(key)
            self._log.warning("%s: ignoring %s=%r (%s); using the default", owner, annotation, value, reason)

    def profile_of(self, deployment: Mapping) -> FaultProfile:
        return fault_profile(deployment, self.warn_once)

    def build(self, snapshot: ClusterSnapshot) -> list[VirtualServicePlan]:
        self._log_profile_changes(snapshot)
        plans = []
        for virtual_service in snapshot.virtual_services():
            plan = self._plan_one(virtual_service, snapshot)
            if plan is not None:
                plans.append(plan)
        if self._network_policies is not None:
            plans = self._network_policies(plans, snapshot)
        self._log_routing_changes(plans)
        return plans

    def _plan_one(self, virtual_service: Mapping, snapshot: ClusterSnapshot) -> VirtualServicePlan | None:
        try:
            return plan_virtual_service(virtual_service, snapshot, self.default_rps, self.warn_once, self.profile_of)
        except Exception as error:  # pylint: disable=broad-except  # one odd object must not stop the rest
            key = (object_key(virtual_service), str(error))
            if key not in self._failed:
                self._failed.add(key)
                self._log.warning(
                    "VirtualService %s/%s skipped: %s: %s", *object_key(virtual_service), type(error).__name__, error
                )
            return None

    def _log_profile_changes(self, snapshot: ClusterSnapshot) -> None:
        profiles = {object_key(d): self.profile_of(d) for d in snapshot.deployments()}
        for key, profile in sorted(profiles.items()):
            previous = self._profiles.get(key, HEALTHY_PROFILE)
            if profile != previous:
                self._log.info("profile Deployment %s/%s: %s (was %s)", *key, profile.describe(), previous.describe())
        self._profiles = profiles

    def _log_routing_changes(self, plans: Sequence[VirtualServicePlan]) -> None:
        routing = {plan.key: plan.describe() for plan in plans}
        for key, description in sorted(routing.items()):
            if self._routing.get(key) != description:
                self._log.info("routing VirtualService %s/%s: %s", *key, description)
        for key in sorted(set(self._routing) - set(routing)):
            self._log.info("routing VirtualService %s/%s: removed", *key)
        self._routing = routing
