# Copyright (c) 2025, CERES platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Traffic simulator of the ceres.rollout sandbox: a stand-in for Istio's data plane.

The sandbox runs a real kube-apiserver with the Istio CRDs but no proxies. This daemon
plays the part of the ingress gateway and the sidecars: it watches VirtualServices,
DestinationRules, Deployments and Services through the Kubernetes API, sends a steady,
synthetic load through every VirtualService and exports what Istio would report about it
(``istio_requests_total`` and ``istio_request_duration_milliseconds``) on ``/metrics``.

Usage::

    python sandbox/simulator.py --kubeconfig PATH --listen 127.0.0.1:19101 \\
        [--context NAME] [--rps 50] [--tick 0.1] [--seed N]

``GET /metrics`` serves the Prometheus text format 0.0.4, ``GET /healthz`` answers 200 once
the initial list of every watched resource is loaded (503 before, naming what is missing).

Traffic
-------
Every tick each VirtualService receives ``rps * elapsed`` requests (``--rps``, or the
VirtualService's ``sandbox.ceres.io/rps`` annotation), carried over as a fraction so the
long-run rate is exact (delegate VirtualServices, without ``hosts``, get none of their
own). The load carries no headers (a plain ``GET /``), so it is served by
the first http route whose ``match`` is absent or empty, or has a condition-free entry or
``uri: {prefix: /}``; a VirtualService without such a route gets no traffic. The route's
requests are split over its destinations by ``weight`` (a lone destination without weight
gets 100) with per-destination fractional accumulators: 30/70 is exactly 30/70 over time,
nothing is random.

A destination ``host`` is a short service name (relative to the VirtualService's namespace)
or ``<svc>.<ns>.svc.cluster.local``; ``subset`` is looked up in the DestinationRule of that
service. Its workloads are the Deployments whose pod template labels include the Service's
selector and the subset's labels; requests are spread over those with available replicas
in proportion to ``status.availableReplicas``. A destination that cannot be resolved, or
whose Deployments have no available replica, answers 503 with ``response_flags="UH"`` (no
healthy upstream), reported the way Istio reports it: only by the caller
(``reporter="source"``), with ``destination_workload``, ``destination_workload_namespace``,
``destination_app``, ``destination_version``, ``destination_canonical_service``,
``destination_principal`` and ``destination_cluster`` all ``unknown`` (no pod answered, so no
peer metadata), and only the Service known from the route (``destination_service``,
``destination_service_name``, ``destination_service_namespace``). A broken canary shows up
as errors of its Service, seen from the caller's side, while its own series stop growing.

Fault profile
-------------
Read from the annotations of a version's Deployment, applied within a tick of the change:

* ``sandbox.ceres.io/error-ratio``: share of responses that are 503 (0..1, default 0),
  applied with a deterministic accumulator, so 0.02 over 5000 requests is exactly 100.
* ``sandbox.ceres.io/latency-ms``: median request duration in ms (> 0, default 20).

An invalid value is logged once and ignored (the healthy default applies); removing an
annotation restores its default.

Latency model
-------------
Request durations are log-normal: ``duration = median * exp(LATENCY_SIGMA * Z)`` with ``Z``
standard normal and ``LATENCY_SIGMA = 0.25``, drawn from a ``random.Random`` seeded with
``--seed``. Hence::

    p50 = median
    p95 = median * exp(1.6449 * LATENCY_SIGMA)   (about 1.509 * median)
    p99 = median * exp(2.3263 * LATENCY_SIGMA)   (about 1.789 * median)

Requests failed with ``UH`` take ``NO_HEALTHY_UPSTREAM_LATENCY_MS``.

Metrics
-------
Both metrics carry Istio's standard labels: ``reporter``, ``source_workload``
(``istio-ingressgateway``), ``source_workload_namespace`` (``istio-system``), ``source_app``,
``source_version``, ``source_canonical_service``, ``source_canonical_revision``,
``source_principal``, ``source_cluster``, ``destination_workload``,
``destination_workload_namespace``, ``destination_service`` (FQDN),
``destination_service_name``, ``destination_service_namespace``, ``destination_version``
(template label ``version``), ``destination_app`` (label ``app``),
``destination_canonical_service``, ``destination_canonical_revision``,
``destination_principal``, ``destination_cluster``, ``request_protocol`` (``http``),
``response_code``, ``response_flags`` and ``connection_security_policy``.

Like Istio with sidecars on both ends, every series of a request that reached a workload
is exported twice with the same numbers: ``reporter="destination"``
(``connection_security_policy="mutual_tls"``) and ``reporter="source"``
(``connection_security_policy="unknown"``), so queries must filter on ``reporter``. A
request that reached no workload (``UH``) has no destination proxy to report it: it is
exported with ``reporter="source"`` only.
Histogram buckets are Istio's defaults (``DURATION_BUCKETS_MS``). Counters only grow while
the process lives.

Design: the pure logic (route selection, resolution, accumulators, latency, metrics
registry, exposition) is importable and tested without a cluster; the watch threads, the
HTTP server and ``main()`` are thin plumbing around it.
"""

from __future__ import annotations

import argparse
import bisect
import json
import logging
import math
import random
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from fractions import Fraction
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple

LOG = logging.getLogger("simulator")

# --- knobs and constants ------------------------------------------------------------------

RPS_ANNOTATION = "sandbox.ceres.io/rps"
ERROR_RATIO_ANNOTATION = "sandbox.ceres.io/error-ratio"
LATENCY_MS_ANNOTATION = "sandbox.ceres.io/latency-ms"

DEFAULT_RPS = Fraction(50)
DEFAULT_TICK_SECONDS = 0.1
DEFAULT_ERROR_RATIO = Fraction(0)
DEFAULT_LATENCY_MS = 20.0
LATENCY_SIGMA = 0.25
"""Shape of the log-normal latency: the standard deviation of ``ln(duration)``."""
NO_HEALTHY_UPSTREAM_LATENCY_MS = 0.2
MAX_TICK_GAP_SECONDS = 10
"""A longer pause of the traffic loop (a suspended machine) is not made up for."""

# Istio's default buckets for istio_request_duration_milliseconds; +Inf is implicit.
DURATION_BUCKETS_MS = (
    0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000,
    300000, 600000, 1800000, 3600000,
)

UNKNOWN = "unknown"
CLUSTER_DOMAIN_SUFFIX = ".svc.cluster.local"
CLUSTER_NAME = "Kubernetes"
ISTIO_GROUP = "networking.istio.io"
ISTIO_VERSIONS = ("v1", "v1beta1")

REQUESTS_METRIC = "istio_requests_total"
DURATION_METRIC = "istio_request_duration_milliseconds"
EXPOSITION_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

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
REPORTERS = (
    # (reporter, connection_security_policy) as Istio reports them with mTLS on.
    ("destination", "mutual_tls"),
    ("source", UNKNOWN),
)
SOURCE_REPORTER_ONLY = REPORTERS[1:]
"""Who reports a request that reached no workload: only the caller's proxy."""
CANONICAL_SERVICE_LABELS = ("service.istio.io/canonical-name", "app.kubernetes.io/name", "app")
CANONICAL_REVISION_LABELS = ("service.istio.io/canonical-revision", "app.kubernetes.io/version", "version")

Labels = Tuple[Tuple[str, str], ...]
"""An ordered tuple of (label name, value) pairs: hashable, renders in a stable order."""


# --- small helpers for loosely typed API objects ------------------------------------------

def _mapping(value: Any) -> Mapping:
    return value if isinstance(value, Mapping) else {}


def _sequence(value: Any) -> Sequence:
    return value if isinstance(value, list) else []


def _string_labels(value: Any) -> Dict[str, str]:
    return {str(k): str(v) for k, v in _mapping(value).items()}


def object_key(obj: Mapping) -> Tuple[str, str]:
    """(namespace, name) of an API object."""
    metadata = _mapping(obj.get("metadata"))
    return str(metadata.get("namespace") or ""), str(metadata.get("name") or "")


def annotations_of(obj: Mapping) -> Dict[str, str]:
    return _string_labels(_mapping(obj.get("metadata")).get("annotations"))


# --- annotation values --------------------------------------------------------------------

def parse_rps(text: str) -> Fraction:
    """Requests per second from an annotation: a finite number >= 0."""
    value = Fraction(str(text).strip())
    if value < 0:
        raise ValueError("must be >= 0")
    return value


def parse_error_ratio(text: str) -> Fraction:
    """Share of 5xx responses from an annotation: a number in 0..1, kept exact."""
    value = Fraction(str(text).strip())
    if not 0 <= value <= 1:
        raise ValueError("must be between 0 and 1")
    return value


def parse_latency_ms(text: str) -> float:
    """Median latency in ms from an annotation: a finite number > 0."""
    value = float(str(text).strip())
    if not math.isfinite(value) or value <= 0:
        raise ValueError("must be a finite number > 0")
    return value


Warn = Callable[[str, str, str, str], None]
"""warn(object description, annotation, value, reason): report an ignored annotation."""


def _annotation_value(annotations: Mapping[str, str], name: str, parse: Callable, default: Any,
                      owner: str, warn: Warn) -> Any:
    text = annotations.get(name)
    if text is None:
        return default
    try:
        return parse(text)
    except (ValueError, ZeroDivisionError, ArithmeticError) as error:
        warn(owner, name, text, str(error) or "not a number")
        return default


@dataclass(frozen=True)
class FaultProfile:
    """How a workload answers: the share of 503s and the median latency."""

    error_ratio: Fraction = DEFAULT_ERROR_RATIO
    latency_ms: float = DEFAULT_LATENCY_MS

    def describe(self) -> str:
        return "error-ratio=%g latency-ms=%g" % (float(self.error_ratio), self.latency_ms)


HEALTHY_PROFILE = FaultProfile()


def fault_profile(deployment: Mapping, warn: Warn) -> FaultProfile:
    """The fault profile set by a Deployment's annotations; invalid values fall back to defaults."""
    annotations = annotations_of(deployment)
    owner = "Deployment %s/%s" % object_key(deployment)
    return FaultProfile(
        error_ratio=_annotation_value(annotations, ERROR_RATIO_ANNOTATION, parse_error_ratio,
                                      DEFAULT_ERROR_RATIO, owner, warn),
        latency_ms=_annotation_value(annotations, LATENCY_MS_ANNOTATION, parse_latency_ms,
                                     DEFAULT_LATENCY_MS, owner, warn),
    )


def virtual_service_rps(virtual_service: Mapping, default_rps: Fraction, warn: Warn) -> Fraction:
    """The steady load of a VirtualService: its rps annotation, else the default."""
    owner = "VirtualService %s/%s" % object_key(virtual_service)
    return _annotation_value(annotations_of(virtual_service), RPS_ANNOTATION, parse_rps, default_rps, owner, warn)


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


def select_default_route(virtual_service_spec: Mapping) -> Optional[Mapping]:
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


def route_destinations(http_route: Mapping) -> List[RouteDestination]:
    """The destinations of an http route with their weights (a lone one defaults to 100)."""
    entries = [entry for entry in _sequence(http_route.get("route")) if isinstance(entry, Mapping)]
    default_weight = 100 if len(entries) == 1 else 0
    destinations = []
    for entry in entries:
        destination = _mapping(entry.get("destination"))
        destinations.append(RouteDestination(
            host=str(destination.get("host") or ""),
            subset=str(destination.get("subset") or ""),
            weight=_weight(entry.get("weight"), default_weight),
        ))
    return destinations


# --- the cluster as the simulator sees it -------------------------------------------------

VIRTUAL_SERVICE = "VirtualService"
DESTINATION_RULE = "DestinationRule"
DEPLOYMENT = "Deployment"
SERVICE = "Service"
KINDS = (VIRTUAL_SERVICE, DESTINATION_RULE, DEPLOYMENT, SERVICE)


def _creation_order(obj: Mapping) -> Tuple[str, str, str]:
    metadata = _mapping(obj.get("metadata"))
    return str(metadata.get("creationTimestamp") or ""), *object_key(obj)


class ClusterSnapshot:
    """An immutable view of the watched objects, indexed for resolution.

    ``objects`` maps a kind (``VirtualService``, ``DestinationRule``, ``Deployment``,
    ``Service``) to ``{(namespace, name): object}`` with objects as plain API dicts.
    """

    def __init__(self, objects: Mapping[str, Mapping[Tuple[str, str], Mapping]]):
        self._objects = {kind: dict(objects.get(kind, {})) for kind in KINDS}
        self._by_namespace: Dict[str, Dict[str, List[Mapping]]] = {kind: {} for kind in KINDS}
        for kind, by_key in self._objects.items():
            for key in sorted(by_key):
                self._by_namespace[kind].setdefault(key[0], []).append(by_key[key])

    @classmethod
    def from_objects(cls, objects: Iterable[Tuple[str, Mapping]]) -> "ClusterSnapshot":
        """Build a snapshot from (kind, object) pairs; handy for tests and tools."""
        grouped: Dict[str, Dict[Tuple[str, str], Mapping]] = {kind: {} for kind in KINDS}
        for kind, obj in objects:
            grouped[kind][object_key(obj)] = obj
        return cls(grouped)

    def virtual_services(self) -> List[Mapping]:
        by_key = self._objects[VIRTUAL_SERVICE]
        return [by_key[key] for key in sorted(by_key)]

    def deployments(self) -> List[Mapping]:
        by_key = self._objects[DEPLOYMENT]
        return [by_key[key] for key in sorted(by_key)]

    def service(self, namespace: str, name: str) -> Optional[Mapping]:
        return self._objects[SERVICE].get((namespace, name))

    def destination_rule_for(self, namespace: str, service_name: str) -> Optional[Mapping]:
        """The DestinationRule of a service in its namespace (the oldest one if several)."""
        candidates = [
            rule for rule in self._by_namespace[DESTINATION_RULE].get(namespace, [])
            if service_for_host(str(_mapping(rule.get("spec")).get("host") or ""), namespace)
            == (namespace, service_name)
        ]
        return min(candidates, key=_creation_order) if candidates else None

    def deployments_matching(self, namespace: str, *label_sets: Mapping[str, str]) -> List[Mapping]:
        """Deployments of a namespace whose pod template labels include every given label set."""
        matching = []
        for deployment in self._by_namespace[DEPLOYMENT].get(namespace, []):
            labels = template_labels(deployment)
            if all(labels_include(labels, wanted) for wanted in label_sets):
                matching.append(deployment)
        return matching


def service_for_host(host: str, namespace: str) -> Optional[Tuple[str, str]]:
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
        parts = host[:-len(CLUSTER_DOMAIN_SUFFIX)].split(".")
        if len(parts) == 2 and all(parts):
            return parts[1], parts[0]
    return None


def service_fqdn(namespace: str, name: str) -> str:
    return "%s.%s%s" % (name, namespace, CLUSTER_DOMAIN_SUFFIX)


def labels_include(labels: Mapping[str, str], wanted: Mapping[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in wanted.items())


def template_labels(deployment: Mapping) -> Dict[str, str]:
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


def subset_labels(destination_rule: Mapping, subset: str) -> Optional[Dict[str, str]]:
    """The labels of a named subset of a DestinationRule, or None when it has no such subset."""
    for entry in _sequence(_mapping(destination_rule.get("spec")).get("subsets")):
        if isinstance(entry, Mapping) and entry.get("name") == subset:
            return _string_labels(entry.get("labels"))
    return None


# --- resolution: route destinations to targets --------------------------------------------

@dataclass(frozen=True)
class Target:
    """Where part of a route's requests end up: one workload, or nowhere (503 UH).

    ``labels`` are the destination labels of the series (everything but ``reporter``,
    ``response_code``, ``response_flags`` and ``connection_security_policy``); ``weight``
    is the target's share of the route (relative to the other targets); ``reason`` says
    why an unhealthy target has no upstream.
    """

    labels: Labels
    weight: Fraction
    healthy: bool
    profile: FaultProfile = HEALTHY_PROFILE
    reason: str = ""

    @property
    def workload(self) -> str:
        return dict(self.labels)["destination_workload"]


def _first_label(labels: Mapping[str, str], names: Sequence[str], default: str) -> str:
    for name in names:
        if labels.get(name):
            return labels[name]
    return default


def destination_labels(*, service_namespace: str, service_name: str, service_host: str, workload: str,
                       workload_labels: Mapping[str, str], principal: str) -> Labels:
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
        ("destination_canonical_service", _first_label(workload_labels, CANONICAL_SERVICE_LABELS,
                                                       workload if workload != UNKNOWN else UNKNOWN)),
        ("destination_canonical_revision", _first_label(workload_labels, CANONICAL_REVISION_LABELS, "latest")),
        ("destination_principal", principal),
        ("destination_cluster", CLUSTER_NAME),
        ("request_protocol", "http"),
    )


def no_upstream_labels(service: Optional[Tuple[str, str]], host: str) -> Labels:
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


def _no_healthy_upstream(weight: int, reason: str, *, service: Optional[Tuple[str, str]], host: str) -> Target:
    return Target(labels=no_upstream_labels(service, host), weight=Fraction(weight), healthy=False, reason=reason)


def resolve_destination(destination: RouteDestination, namespace: str, snapshot: ClusterSnapshot,
                        profile_of: Callable[[Mapping], FaultProfile]) -> List[Target]:
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
    wanted_subset: Dict[str, str] = {}
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
        Target(
            labels=destination_labels(
                service_namespace=service_ref[0], service_name=service_ref[1],
                service_host=service_fqdn(*service_ref), workload=object_key(deployment)[1],
                workload_labels=template_labels(deployment),
                principal="spiffe://cluster.local/ns/%s/sa/%s" % (service_ref[0], service_account(deployment)),
            ),
            weight=Fraction(destination.weight * replicas, total_replicas),
            healthy=True,
            profile=profile_of(deployment),
        )
        for deployment, replicas in available
    ]


def _describe_labels(labels: Mapping[str, str]) -> str:
    return ",".join("%s=%s" % item for item in sorted(labels.items()))


@dataclass(frozen=True)
class VirtualServicePlan:
    """The steady load of one VirtualService: its rate and the targets of its default route."""

    namespace: str
    name: str
    rps: Fraction
    targets: Tuple[Target, ...] = ()
    note: str = ""

    @property
    def key(self) -> Tuple[str, str]:
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
                parts.append("503 UH %s (%s)" % (share, target.reason))
        return "%g rps: %s" % (float(self.rps), ", ".join(parts))


def plan_virtual_service(virtual_service: Mapping, snapshot: ClusterSnapshot, default_rps: Fraction,
                         warn: Warn, profile_of: Optional[Callable[[Mapping], FaultProfile]] = None
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
    targets: List[Target] = []
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

    def __init__(self, default_rps: Fraction = DEFAULT_RPS, log: logging.Logger = LOG):
        self.default_rps = default_rps
        self._log = log
        self._warned: set = set()
        self._profiles: Dict[Tuple[str, str], FaultProfile] = {}
        self._routing: Dict[Tuple[str, str], str] = {}
        self._failed: set = set()

    def warn_once(self, owner: str, annotation: str, value: str, reason: str) -> None:
        key = (owner, annotation, value)
        if key not in self._warned:
            self._warned.add(key)
            self._log.warning("%s: ignoring %s=%r (%s); using the default", owner, annotation, value, reason)

    def profile_of(self, deployment: Mapping) -> FaultProfile:
        return fault_profile(deployment, self.warn_once)

    def build(self, snapshot: ClusterSnapshot) -> List[VirtualServicePlan]:
        self._log_profile_changes(snapshot)
        plans = []
        for virtual_service in snapshot.virtual_services():
            plan = self._plan_one(virtual_service, snapshot)
            if plan is not None:
                plans.append(plan)
        self._log_routing_changes(plans)
        return plans

    def _plan_one(self, virtual_service: Mapping, snapshot: ClusterSnapshot) -> Optional[VirtualServicePlan]:
        try:
            return plan_virtual_service(virtual_service, snapshot, self.default_rps, self.warn_once, self.profile_of)
        except Exception as error:  # pylint: disable=broad-except  # one odd object must not stop the rest
            key = (object_key(virtual_service), str(error))
            if key not in self._failed:
                self._failed.add(key)
                self._log.warning("VirtualService %s/%s skipped: %s: %s", *object_key(virtual_service),
                                  type(error).__name__, error)
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


# --- deterministic accumulators -----------------------------------------------------------

class FractionalCounter:
    """Turns a stream of fractional amounts into whole counts without drift.

    ``take(amount)`` returns the whole part of everything added so far that has not been
    handed out yet; the fraction is carried to the next call. Exact (``Fraction``), so
    0.02 of 5000 requests taken five at a time is 100, not 99.
    """

    __slots__ = ("carry",)

    def __init__(self) -> None:
        self.carry = Fraction(0)

    def take(self, amount: Fraction) -> int:
        total = self.carry + amount
        whole = math.floor(total)
        self.carry = total - whole
        return whole


class WeightedSplitter:
    """Splits request counts over keys by weight, exactly in the long run, without randomness.

    Each key has its own fractional counter: over any run, a key's total is the floor of
    its exact share (so 30/70 of 500 is 150/350), and a key of weight 0 gets nothing.
    Requests not handed out in a tick stay in the counters and come out later.
    """

    def __init__(self) -> None:
        self._counters: Dict[Any, FractionalCounter] = {}

    def split(self, total: int, weights: Iterable[Tuple[Any, Any]]) -> Dict[Any, int]:
        """Share ``total`` requests over ``(key, weight)`` pairs; repeated keys are merged."""
        merged: Dict[Any, Fraction] = {}
        for key, weight in weights:
            merged[key] = merged.get(key, Fraction(0)) + Fraction(weight)
        weight_sum = sum(merged.values())
        counts = {}
        for key, weight in merged.items():
            counter = self._counters.setdefault(key, FractionalCounter())
            counts[key] = counter.take(total * weight / weight_sum) if weight_sum > 0 else 0
        return counts

    def forget_except(self, keys: Iterable[Any]) -> None:
        """Drop the counters of keys that are gone."""
        keep = set(keys)
        for key in list(self._counters):
            if key not in keep:
                del self._counters[key]


# --- latency ------------------------------------------------------------------------------

class LatencySampler:
    """Log-normal request durations: median ``latency_ms``, shape ``LATENCY_SIGMA``."""

    def __init__(self, rng: random.Random, sigma: float = LATENCY_SIGMA):
        self._rng = rng
        self._sigma = sigma

    def draw(self, median_ms: float, count: int) -> List[float]:
        mu = math.log(median_ms)
        sigma = self._sigma
        gauss = self._rng.gauss
        exp = math.exp
        return [exp(mu + sigma * gauss(0.0, 1.0)) for unused_index in range(count)]


def expected_latency_quantile(median_ms: float, z_score: float, sigma: float = LATENCY_SIGMA) -> float:
    """The quantile of the latency model at a standard normal ``z_score`` (1.6449 for p95)."""
    return median_ms * math.exp(z_score * sigma)


# --- metrics ------------------------------------------------------------------------------

def bucket_counts(durations_ms: Iterable[float]) -> List[int]:
    """Per-bucket (not cumulative) counts of durations; the last slot is the +Inf bucket."""
    counts = [0] * (len(DURATION_BUCKETS_MS) + 1)
    locate = bisect.bisect_left
    for duration in durations_ms:
        counts[locate(DURATION_BUCKETS_MS, duration)] += 1
    return counts


def escape_label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def format_labels(labels: Iterable[Tuple[str, str]]) -> str:
    return "{" + ",".join('%s="%s"' % (name, escape_label_value(value)) for name, value in labels) + "}"


def format_bound(bound: float) -> str:
    """A bucket bound as Istio writes it: ``0.5``, ``1``, ``3.6e+06`` -> ``3600000``."""
    return str(int(bound)) if float(bound).is_integer() else repr(float(bound))


def format_number(value: float) -> str:
    return str(int(value)) if isinstance(value, int) else repr(float(value))


class SeriesStats:
    """Counters of one series: requests, duration histogram buckets and duration sum."""

    __slots__ = ("requests", "buckets", "duration_sum", "label_texts")

    def __init__(self, label_texts: Tuple[Tuple[str, str], ...]):
        self.requests = 0
        self.buckets = [0] * (len(DURATION_BUCKETS_MS) + 1)
        self.duration_sum = 0.0
        # (label text for istio_requests_total, label prefix for the histogram) per reporter
        self.label_texts = label_texts


def _series_label_texts(labels: Labels, response_code: str, response_flags: str,
                        reporters: Sequence[Tuple[str, str]]) -> Tuple[Tuple[str, str], ...]:
    texts = []
    for reporter, security_policy in reporters:
        full = (("reporter", reporter),) + labels + (
            ("response_code", response_code),
            ("response_flags", response_flags),
            ("connection_security_policy", security_policy),
        )
        text = format_labels(full)
        texts.append((text, text[:-1] + ","))
    return tuple(texts)


class MetricsRegistry:
    """Istio request metrics, keyed by (destination labels, response code, response flags).

    Thread-safe: the traffic loop records, the HTTP server renders.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._series: Dict[Tuple[Labels, str, str], SeriesStats] = {}

    def observe(self, labels: Labels, response_code: str, response_flags: str,
                durations_ms: Sequence[float], reporters: Sequence[Tuple[str, str]] = REPORTERS) -> None:
        """Record ``len(durations_ms)`` requests of one series, as reported by ``reporters``."""
        if not durations_ms:
            return
        counts = bucket_counts(durations_ms)
        total = math.fsum(durations_ms)
        key = (labels, response_code, response_flags, tuple(reporters))
        with self._lock:
            stats = self._series.get(key)
            if stats is None:
                stats = self._series[key] = SeriesStats(_series_label_texts(*key))
            stats.requests += len(durations_ms)
            stats.duration_sum += total
            for index, count in enumerate(counts):
                if count:
                    stats.buckets[index] += count

    def requests(self, **label_filter: str) -> int:
        """Total requests of the series whose labels match ``label_filter`` (for tests and tools)."""
        with self._lock:
            items = list(self._series.items())
        total = 0
        for (labels, code, flags, reporters), stats in items:
            values = dict(labels, response_code=code, response_flags=flags)
            reporter_filter = label_filter.get("reporter")
            if reporter_filter is not None and reporter_filter not in {name for name, unused in reporters}:
                continue
            if all(values.get(name) == value for name, value in label_filter.items() if name != "reporter"):
                total += stats.requests
        return total

    def render(self) -> str:
        """The metrics in the Prometheus text exposition format 0.0.4."""
        with self._lock:
            rows = [
                (stats.label_texts, stats.requests, list(stats.buckets), stats.duration_sum)
                for unused_key, stats in sorted(self._series.items(), key=lambda item: item[0])
            ]
        return render_exposition(rows)


def render_exposition(rows: Sequence[Tuple[Tuple[Tuple[str, str], ...], int, List[int], float]]) -> str:
    """Text exposition of (label texts per reporter, requests, bucket counts, duration sum) rows."""
    lines = [
        "# HELP %s Total number of requests handled by an Istio proxy (simulated)." % REQUESTS_METRIC,
        "# TYPE %s counter" % REQUESTS_METRIC,
    ]
    for label_texts, requests, unused_buckets, unused_sum in rows:
        for text, unused_prefix in label_texts:
            lines.append("%s%s %d" % (REQUESTS_METRIC, text, requests))
    lines.append("# HELP %s Duration of requests in milliseconds (simulated)." % DURATION_METRIC)
    lines.append("# TYPE %s histogram" % DURATION_METRIC)
    bounds = [format_bound(bound) for bound in DURATION_BUCKETS_MS] + ["+Inf"]
    for label_texts, requests, buckets, duration_sum in rows:
        for text, prefix in label_texts:
            cumulative = 0
            for bound, count in zip(bounds, buckets):
                cumulative += count
                lines.append('%s_bucket%sle="%s"} %d' % (DURATION_METRIC, prefix, bound, cumulative))
            lines.append("%s_sum%s %s" % (DURATION_METRIC, text, format_number(duration_sum)))
            lines.append("%s_count%s %d" % (DURATION_METRIC, text, requests))
    return "\n".join(lines) + "\n"


# --- traffic ------------------------------------------------------------------------------

class TrafficGenerator:
    """Sends the planned steady load for a stretch of time into a MetricsRegistry."""

    def __init__(self, registry: MetricsRegistry, rng: Optional[random.Random] = None):
        self.registry = registry
        self._latency = LatencySampler(rng or random.Random(0))
        self._arrivals: Dict[Tuple[str, str], FractionalCounter] = {}
        self._splitter = WeightedSplitter()
        self._errors: Dict[Labels, FractionalCounter] = {}

    def advance(self, plans: Sequence[VirtualServicePlan], elapsed_seconds: Fraction) -> None:
        """Generate ``elapsed_seconds`` worth of requests for every plan."""
        for plan in plans:
            self._serve(plan, elapsed_seconds)
        self._forget_gone(plans)

    def _serve(self, plan: VirtualServicePlan, elapsed_seconds: Fraction) -> None:
        arrivals = self._arrivals.setdefault(plan.key, FractionalCounter())
        requests = arrivals.take(plan.rps * elapsed_seconds)
        if requests <= 0 or not plan.targets:
            return
        counts = self._splitter.split(requests, [((plan.key, target.labels), target.weight) for target in plan.targets])
        served = set()
        for target in plan.targets:
            key = (plan.key, target.labels)
            if key not in served:
                served.add(key)
                self.serve_target(target, counts[key])

    def serve_target(self, target: Target, requests: int) -> None:
        """Answer ``requests`` requests sent to one target, following its fault profile."""
        if requests <= 0:
            return
        if not target.healthy:
            self.registry.observe(target.labels, "503", "UH", [NO_HEALTHY_UPSTREAM_LATENCY_MS] * requests,
                                  reporters=SOURCE_REPORTER_ONLY)
            return
        profile = target.profile
        errors = self._errors.setdefault(target.labels, FractionalCounter()).take(requests * profile.error_ratio)
        errors = min(errors, requests)
        durations = self._latency.draw(profile.latency_ms, requests)
        self.registry.observe(target.labels, "503", "-", durations[:errors])
        self.registry.observe(target.labels, "200", "-", durations[errors:])

    def _forget_gone(self, plans: Sequence[VirtualServicePlan]) -> None:
        current = {plan.key for plan in plans}
        for key in list(self._arrivals):
            if key not in current:
                del self._arrivals[key]
        self._splitter.forget_except((plan.key, target.labels) for plan in plans for target in plan.targets)
        targets = {target.labels for plan in plans for target in plan.targets}
        for labels in list(self._errors):
            if labels not in targets:
                del self._errors[labels]


# --- the live model fed by the watches ----------------------------------------------------

class ClusterModel:
    """The watched objects, kept current by the watch threads; thread-safe.

    ``generation`` increases on every change, so the traffic loop rebuilds its plans
    only when something changed.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._objects: Dict[str, Dict[Tuple[str, str], Mapping]] = {kind: {} for kind in KINDS}
        self._loaded: set = set()
        self.generation = 0

    def replace(self, kind: str, objects: Iterable[Mapping]) -> None:
        """Replace every object of a kind (after a list) and mark the kind loaded."""
        fresh = {object_key(obj): _slim(obj) for obj in objects}
        with self._lock:
            self._objects[kind] = fresh
            self._loaded.add(kind)
            self.generation += 1

    def apply(self, kind: str, event_type: str, obj: Mapping) -> None:
        """Apply one watch event (ADDED, MODIFIED or DELETED)."""
        key = object_key(obj)
        with self._lock:
            if event_type == "DELETED":
                self._objects[kind].pop(key, None)
            else:
                self._objects[kind][key] = _slim(obj)
            self.generation += 1

    def missing_kinds(self) -> List[str]:
        with self._lock:
            return [kind for kind in KINDS if kind not in self._loaded]

    def is_loaded(self) -> bool:
        return not self.missing_kinds()

    def counts(self) -> Dict[str, int]:
        with self._lock:
            return {kind: len(objects) for kind, objects in self._objects.items()}

    def snapshot(self) -> Tuple[int, ClusterSnapshot]:
        with self._lock:
            generation = self.generation
            objects = {kind: dict(by_key) for kind, by_key in self._objects.items()}
        return generation, ClusterSnapshot(objects)


def _slim(obj: Mapping) -> Mapping:
    """Drop managedFields: the bulk of an object, and never read here."""
    metadata = obj.get("metadata")
    if isinstance(metadata, dict) and "managedFields" in metadata:
        obj = dict(obj)
        obj["metadata"] = {key: value for key, value in metadata.items() if key != "managedFields"}
    return obj


# --- watching the API server --------------------------------------------------------------

LIST_PAGE_SIZE = 500
LIST_TIMEOUT = (5, 30)
WATCH_SECONDS = 240
INITIAL_BACKOFF_SECONDS = 0.5
MAX_BACKOFF_SECONDS = 10.0


class ResourceGone(Exception):
    """The watch's resourceVersion is too old (410 Gone): list again."""


class ResourceNotServed(Exception):
    """None of the API versions of a resource is served (its CRD is not installed)."""


@dataclass(frozen=True)
class WatchedResource:
    """A resource to list and watch: ``list_calls`` are the kubernetes client list
    functions of its API versions, preferred first; a 404 moves to the next one."""

    kind: str
    name: str
    list_calls: Tuple[Tuple[str, Callable[..., Any]], ...] = field(default=())


def watched_resources(api_client: Any) -> List[WatchedResource]:
    """The four resources the simulator watches, across all namespaces."""
    from kubernetes import client  # pylint: disable=import-outside-toplevel

    custom = client.CustomObjectsApi(api_client)

    def istio(plural: str) -> Tuple[Tuple[str, Callable[..., Any]], ...]:
        return tuple(
            ("%s/%s" % (ISTIO_GROUP, version), partial(custom.list_cluster_custom_object, ISTIO_GROUP, version, plural))
            for version in ISTIO_VERSIONS
        )

    return [
        WatchedResource(VIRTUAL_SERVICE, "virtualservices", istio("virtualservices")),
        WatchedResource(DESTINATION_RULE, "destinationrules", istio("destinationrules")),
        WatchedResource(DEPLOYMENT, "deployments",
                        (("apps/v1", client.AppsV1Api(api_client).list_deployment_for_all_namespaces),)),
        WatchedResource(SERVICE, "services",
                        (("v1", client.CoreV1Api(api_client).list_service_for_all_namespaces),)),
    ]


def iter_lines(response: Any) -> Iterator[bytes]:
    """The newline-terminated lines of a streaming HTTP response, as they arrive."""
    pending = b""
    for chunk in response.stream(amt=None, decode_content=False):
        pending += chunk if isinstance(chunk, bytes) else str(chunk).encode("utf-8")
        *lines, pending = pending.split(b"\n")
        for line in lines:
            if line.strip():
                yield line
    if pending.strip():
        yield pending


def _status_of(error: BaseException) -> Optional[int]:
    status = getattr(error, "status", None)
    return status if isinstance(status, int) else None


def short_error(error: BaseException) -> str:
    """One line about an error, without a traceback or a response body."""
    status = _status_of(error)
    if status is not None:
        return "HTTP %s %s" % (status, getattr(error, "reason", "") or "")
    text = " ".join(str(error).split())
    return "%s: %s" % (type(error).__name__, text[:200])


class ResourceWatcher(threading.Thread):
    """List, then watch one resource from the list's resourceVersion; keeps the model current.

    A watch that ends normally resumes from the last resourceVersion (bookmarks included);
    410 Gone re-lists at once; any other error re-lists after a backoff (0.5 s doubling
    to 10 s). Each restart is one log line.
    """

    def __init__(self, resource: WatchedResource, model: ClusterModel, stop: threading.Event,
                 log: logging.Logger = LOG):
        super().__init__(name="watch-%s" % resource.name, daemon=True)
        self.resource = resource
        self.model = model
        self._stop_event = stop
        self._log = log
        self._api_version = ""
        self._list_call: Optional[Callable[..., Any]] = None
        self._not_served_logged = False

    def run(self) -> None:
        backoff = INITIAL_BACKOFF_SECONDS
        while not self._stop_event.is_set():
            try:
                resource_version = self.list_into_model()
                backoff = INITIAL_BACKOFF_SECONDS
                self.watch_from(resource_version)
            except ResourceGone:
                self._log.info("watch %s: resourceVersion expired (410 Gone), listing again", self.resource.name)
                continue
            except ResourceNotServed:
                if not self._not_served_logged:
                    self._not_served_logged = True
                    self._log.warning("watch %s: not served by the API server (CRD not installed?); waiting for it",
                                      self.resource.name)
            except Exception as error:  # pylint: disable=broad-except  # the watch must outlive any error
                self._log.warning("watch %s: %s; listing again in %.1fs", self.resource.name, short_error(error), backoff)
            self._stop_event.wait(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)

    def list_into_model(self) -> str:
        """List every object of the resource (page by page) into the model; return the resourceVersion."""
        for api_version, list_call in self.resource.list_calls:
            try:
                items, resource_version = self._list_all(list_call)
            except Exception as error:  # pylint: disable=broad-except
                if _status_of(error) == 404:
                    continue
                raise
            if api_version != self._api_version:
                self._api_version = api_version
                self._log.info("watch %s: using %s (%d objects)", self.resource.name, api_version, len(items))
            self._not_served_logged = False
            self.model.replace(self.resource.kind, items)
            self._list_call = list_call
            return resource_version
        raise ResourceNotServed(self.resource.name)

    @staticmethod
    def _list_all(list_call: Callable[..., Any]) -> Tuple[List[Mapping], str]:
        items: List[Mapping] = []
        continue_token = None
        while True:
            kwargs = {"limit": LIST_PAGE_SIZE, "_preload_content": False, "_request_timeout": LIST_TIMEOUT}
            if continue_token:
                kwargs["_continue"] = continue_token
            response = list_call(**kwargs)
            try:
                body = json.loads(response.data)
            finally:
                response.release_conn()
            items.extend(item for item in body.get("items") or [] if isinstance(item, Mapping))
            metadata = _mapping(body.get("metadata"))
            continue_token = metadata.get("continue")
            if not continue_token:
                return items, str(metadata.get("resourceVersion") or "")

    def watch_from(self, resource_version: str) -> None:
        """Follow watch streams from ``resource_version`` until stopped or an error."""
        while not self._stop_event.is_set():
            try:
                response = self._list_call(
                    watch=True, resource_version=resource_version, allow_watch_bookmarks=True,
                    timeout_seconds=WATCH_SECONDS, _preload_content=False,
                    _request_timeout=(LIST_TIMEOUT[0], WATCH_SECONDS + 30),
                )
            except Exception as error:  # pylint: disable=broad-except
                if _status_of(error) == 410:
                    raise ResourceGone(str(error)) from None
                raise
            try:
                for line in iter_lines(response):
                    resource_version = self.apply_event(json.loads(line), resource_version)
                    if self._stop_event.is_set():
                        return
            finally:
                response.close()
                response.release_conn()

    def apply_event(self, event: Mapping, resource_version: str) -> str:
        """Apply one watch event to the model; return the resourceVersion to resume from."""
        event_type = event.get("type")
        obj = _mapping(event.get("object"))
        if event_type == "ERROR":
            if obj.get("code") == 410:
                raise ResourceGone(obj.get("message", ""))
            raise RuntimeError("watch error %s: %s" % (obj.get("code"), obj.get("message")))
        new_version = str(_mapping(obj.get("metadata")).get("resourceVersion") or resource_version)
        if event_type in ("ADDED", "MODIFIED", "DELETED"):
            self.model.apply(self.resource.kind, event_type, obj)
        return new_version


# --- HTTP ---------------------------------------------------------------------------------

class SimulatorHTTPServer(ThreadingHTTPServer):
    """Serves /metrics from a registry and /healthz from a readiness callable."""

    daemon_threads = True

    def __init__(self, address: Tuple[str, int], registry: MetricsRegistry,
                 pending: Callable[[], List[str]]):
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.registry = registry
        self.pending = pending
        super().__init__(address, MetricsHandler)


class MetricsHandler(BaseHTTPRequestHandler):
    """GET /metrics and GET /healthz."""

    server: SimulatorHTTPServer
    server_version = "ceres-sandbox-simulator/1"

    def do_GET(self) -> None:  # noqa: N802  # name set by BaseHTTPRequestHandler
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            self._reply(200, self.server.registry.render(), EXPOSITION_CONTENT_TYPE)
        elif path == "/healthz":
            pending = self.server.pending()
            if pending:
                self._reply(503, "waiting for the initial list of: %s\n" % ", ".join(pending))
            else:
                self._reply(200, "ok\n")
        else:
            self._reply(404, "not found; try /metrics or /healthz\n")

    def _reply(self, status: int, text: str, content_type: str = "text/plain; charset=utf-8") -> None:
        body = text.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args) -> None:  # pylint: disable=redefined-builtin
        """Scrapes come every second: do not log them."""


def parse_listen(text: str) -> Tuple[str, int]:
    """``host:port`` (or ``[v6]:port``) into a bind address."""
    host, separator, port = text.rpartition(":")
    if not separator or not port.isdigit():
        raise argparse.ArgumentTypeError("expected HOST:PORT, got %r" % text)
    host = host.strip("[]") or "127.0.0.1"
    return host, int(port)


def start_http_server(address: Tuple[str, int], registry: MetricsRegistry,
                      pending: Callable[[], List[str]]) -> SimulatorHTTPServer:
    """Bind and serve in a daemon thread; ``server.server_address`` has the bound port."""
    server = SimulatorHTTPServer(address, registry, pending)
    threading.Thread(target=server.serve_forever, name="http", daemon=True).start()
    return server


# --- the traffic loop and main ------------------------------------------------------------

class TrafficLoop:
    """Every tick: rebuild the plans if the model changed, then generate the elapsed load."""

    def __init__(self, model: ClusterModel, planner: Planner, generator: TrafficGenerator,
                 tick_seconds: float, log: logging.Logger = LOG):
        self.model = model
        self.planner = planner
        self.generator = generator
        self.tick_ns = max(int(tick_seconds * 1e9), 1_000_000)
        self._log = log
        self._generation = -1
        self._plans: List[VirtualServicePlan] = []
        self._reported_errors: set = set()

    def run(self, stop: threading.Event) -> None:
        last = time.monotonic_ns()
        next_tick = last
        while not stop.is_set():
            next_tick += self.tick_ns
            delay = (next_tick - time.monotonic_ns()) / 1e9
            if delay > 0 and stop.wait(delay):
                return
            now = time.monotonic_ns()
            if now - next_tick > self.tick_ns:  # late by more than a tick: do not try to catch up
                next_tick = now
            self.tick(now - last)
            last = now

    def tick(self, elapsed_ns: int) -> None:
        """One step; errors are logged once per message and never stop the loop."""
        try:
            if not self.model.is_loaded():
                return
            if self.model.generation != self._generation:
                self._generation, snapshot = self.model.snapshot()
                self._plans = self.planner.build(snapshot)
            if elapsed_ns > MAX_TICK_GAP_SECONDS * 1_000_000_000:
                self._log.warning("traffic loop paused for %.1fs; not making up for it", elapsed_ns / 1e9)
                elapsed_ns = self.tick_ns
            self.generator.advance(self._plans, Fraction(elapsed_ns, 1_000_000_000))
        except Exception as error:  # pylint: disable=broad-except  # keep simulating
            message = short_error(error)
            if message not in self._reported_errors:
                self._reported_errors.add(message)
                self._log.error("traffic tick failed: %s", message)


def _rps_argument(text: str) -> Fraction:
    try:
        return parse_rps(text)
    except (ValueError, ZeroDivisionError) as error:
        raise argparse.ArgumentTypeError("invalid rps %r: %s" % (text, error)) from None


def _tick_argument(text: str) -> float:
    value = float(text)
    if not 0.001 <= value <= 10:
        raise argparse.ArgumentTypeError("tick must be between 0.001 and 10 seconds")
    return value


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="simulator.py",
        description="Simulated Istio data plane: steady load through every VirtualService, "
                    "Istio's standard metrics on /metrics.")
    parser.add_argument("--kubeconfig", required=True, help="kubeconfig of the API server to watch")
    parser.add_argument("--context", default=None, help="kubeconfig context (default: the current one)")
    parser.add_argument("--listen", type=parse_listen, default=("127.0.0.1", 19101),
                        help="HOST:PORT to serve /metrics and /healthz on (default 127.0.0.1:19101)")
    parser.add_argument("--rps", type=_rps_argument, default=DEFAULT_RPS,
                        help="requests per second per VirtualService (default 50; annotation %s overrides)"
                        % RPS_ANNOTATION)
    parser.add_argument("--tick", type=_tick_argument, default=DEFAULT_TICK_SECONDS,
                        help="seconds between traffic steps (default 0.1)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the latency draws (default 0)")
    return parser.parse_args(argv)


def configure_logging() -> None:
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="%(asctime)s simulator %(levelname)s %(message)s")


def install_signal_handlers(stop: threading.Event) -> None:
    def handle(signum: int, _frame: Any) -> None:
        LOG.info("received %s, stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)


def _log_when_ready(model: ClusterModel, stop: threading.Event) -> None:
    while not stop.wait(0.1):
        if model.is_loaded():
            counts = model.counts()
            LOG.info("initial lists loaded: %s; healthy", ", ".join("%d %ss" % (counts[k], k) for k in KINDS))
            return


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    configure_logging()
    from kubernetes import client, config  # pylint: disable=import-outside-toplevel

    config.load_kube_config(config_file=args.kubeconfig, context=args.context)
    api_client = client.ApiClient()
    stop = threading.Event()
    install_signal_handlers(stop)

    model = ClusterModel()
    registry = MetricsRegistry()
    try:
        server = start_http_server(args.listen, registry, model.missing_kinds)
    except OSError as error:
        LOG.error("cannot listen on %s:%d: %s", args.listen[0], args.listen[1], error)
        return 1
    host, port = server.server_address[:2]
    LOG.info("started: serving http://%s:%d/metrics, watching %s, %g rps per VirtualService, tick %gs, seed %d",
             host, port, api_client.configuration.host, float(args.rps), args.tick, args.seed)
    for resource in watched_resources(api_client):
        ResourceWatcher(resource, model, stop).start()
    threading.Thread(target=_log_when_ready, args=(model, stop), name="ready", daemon=True).start()

    loop = TrafficLoop(model, Planner(args.rps), TrafficGenerator(registry, random.Random(args.seed)), args.tick)
    try:
        loop.run(stop)
    finally:
        server.shutdown()
        server.server_close()
        LOG.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
