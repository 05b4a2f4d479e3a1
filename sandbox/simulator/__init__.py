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

    python sandbox/simulator --kubeconfig PATH --listen 127.0.0.1:19101 \\
        [--context NAME] [--rps 50] [--tick 0.1] [--seed N] [--netpol-engine PATH]

(or ``python -m simulator`` with ``sandbox/`` on ``sys.path``).

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

NetworkPolicies
---------------
The sandbox has no CNI; the simulator enforces NetworkPolicies instead (``netpol``), asking
``ceres-netpol`` (cyclonus's policy engine, ``--netpol-engine``) about three connections per
workload: the ingress gateway's pods to the workload's pods on the Service's ``targetPort``
(denied: 503 ``response_flags="UF"`` after Istio's 10 s connect timeout, reported like ``UH``:
by the caller only, only the Service known), and the workload's sidecar to istiod (TCP 15012) and
to kube-dns (UDP 53) (denied: the pods never become ready, 503 ``UH`` as above). With no
NetworkPolicy nothing is asked; with some and no answer from the engine, every such connection
is refused (fail closed), the reason in the routing log.

Cost suite
----------
While a Deployment labelled ``app.kubernetes.io/name: opencost`` has an available replica (staging
applies one), ``GET /opencost/metrics`` serves what OpenCost would export for the watched Nodes
and Pods (``cost``): ``node_cpu_hourly_cost``, ``node_ram_hourly_cost``,
``node_total_hourly_cost``, ``container_cpu_allocation``, ``container_memory_allocation_bytes``
and ``kubecost_cluster_info`` with OpenCost's labels and default pricing. Nodes and Pods are held
in a model of their own, so pod churn never rebuilds the traffic plans.

Rollout state
-------------
``GET /ceres/metrics`` serves the rollout's own state for the alert rules (``rollout_state``):
``ceres_virtualservice_route_weight`` (every destination of every http route of every
VirtualService, with its weight) and, while a rollout lock is held,
``ceres_rollout_lock_renew_timestamp_seconds`` and ``ceres_rollout_lock_lease_duration_seconds`` (the
Leases labelled ``app.kubernetes.io/managed-by: ceres.rollout``, watched in a model of their own:
a Lease changes at every renewal). In production, kube-state-metrics exports the equivalents
(monitoring/README.md).

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

Requests failed with ``UH`` take ``NO_HEALTHY_UPSTREAM_LATENCY_MS``, with ``UF``
``CONNECT_TIMEOUT_MS``.

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
the process lives, except that the series of a namespace left without any VirtualService
for ``NAMESPACE_GONE_SECONDS`` (2 minutes) are dropped, as those of proxies that went away
drop out of a real mesh; so ``/metrics`` stays the size of the live world however many
test namespaces came and went.

Design: the pure logic (route selection, resolution, accumulators, latency, metrics
registry, exposition) is importable and tested without a cluster; the watch threads, the
HTTP server and ``main()`` are thin plumbing around it.

Layout
------
One module per part, each importing only the parts before it:

* ``cluster``: helpers for loosely typed API objects, :class:`ClusterSnapshot`, and how
  hosts, selectors, template labels and subsets are read;
* ``faults``: the annotations (rps, error ratio, latency) and :class:`FaultProfile`;
* ``metrics``: Istio's series labels, :class:`MetricsRegistry` and the text exposition;
* ``routing``: route selection, resolution of destinations to :class:`Target` workloads,
  :class:`VirtualServicePlan` and the :class:`Planner`;
* ``watch``: :class:`ClusterModel` and the :class:`ResourceWatcher` threads;
* ``cost``: OpenCost's series for the nodes and pods (:func:`opencost_series`);
* ``rollout_state``: the route weights and the rollout locks' Leases as series (:func:`route_weight_series`,
  :func:`lock_series`);
* ``netpol``: the NetworkPolicy engine (``ceres-netpol``) and :func:`enforce`;
* ``traffic``: the deterministic accumulators, the latency sampler,
  :class:`TrafficGenerator` and :class:`TrafficLoop`;
* ``http_server``: ``/metrics`` and ``/healthz``;
* ``main``: the command line, logging, signals and :func:`main`; ``__main__`` runs it.

The public names of every module are importable from the package itself.
"""

from __future__ import annotations

from .cluster import (
    CLUSTER_DOMAIN_SUFFIX,
    COST_KINDS,
    DEPLOYMENT,
    DESTINATION_RULE,
    KINDS,
    LEASE,
    NAMESPACE,
    NETWORK_POLICY,
    NODE,
    POD,
    SERVICE,
    VIRTUAL_SERVICE,
    ClusterSnapshot,
    annotations_of,
    available_replicas,
    labels_include,
    object_key,
    service_account,
    service_for_host,
    service_fqdn,
    subset_labels,
    target_port,
    template_labels,
)
from .cost import METRICS_PATH as OPENCOST_METRICS_PATH
from .cost import cost_suite_running, opencost_series, parse_quantity
from .faults import (
    DEFAULT_ERROR_RATIO,
    DEFAULT_LATENCY_MS,
    DEFAULT_RPS,
    ERROR_RATIO_ANNOTATION,
    HEALTHY_PROFILE,
    LATENCY_MS_ANNOTATION,
    RPS_ANNOTATION,
    FaultProfile,
    Warn,
    fault_profile,
    parse_error_ratio,
    parse_latency_ms,
    parse_rps,
    virtual_service_rps,
)
from .http_server import (
    MetricsHandler,
    SimulatorHTTPServer,
    parse_listen,
    start_http_server,
)
from .main import (
    DEFAULT_TICK_SECONDS,
    LOG,
    configure_logging,
    install_signal_handlers,
    main,
    parse_args,
)
from .metrics import (
    DURATION_BUCKETS_MS,
    DURATION_METRIC,
    EXPOSITION_CONTENT_TYPE,
    REPORTERS,
    REQUESTS_METRIC,
    SOURCE_REPORTER_ONLY,
    UNKNOWN,
    Labels,
    MetricsRegistry,
    SeriesStats,
    bucket_counts,
    escape_label_value,
    format_bound,
    format_labels,
    format_number,
    render_exposition,
)
from .netpol import (
    INGRESS_GATEWAY,
    ISTIOD,
    KUBE_DNS,
    PolicyEngine,
    PolicyEngineError,
    enforce,
)
from .rollout_state import (
    LOCK_DURATION_METRIC,
    LOCK_LABEL_SELECTOR,
    LOCK_RENEW_METRIC,
    ROUTE_WEIGHT_METRIC,
    lock_series,
    parse_micro_time,
    route_weight_series,
)
from .rollout_state import METRICS_PATH as ROLLOUT_STATE_METRICS_PATH
from .routing import (
    CANONICAL_REVISION_LABELS,
    CANONICAL_SERVICE_LABELS,
    CLUSTER_NAME,
    SOURCE_LABELS,
    Planner,
    PodPeer,
    RouteDestination,
    Target,
    VirtualServicePlan,
    destination_labels,
    is_catch_all,
    no_upstream_labels,
    plan_virtual_service,
    resolve_destination,
    route_destinations,
    select_default_route,
)
from .traffic import (
    CONNECT_TIMEOUT_MS,
    LATENCY_SIGMA,
    MAX_TICK_GAP_SECONDS,
    NO_HEALTHY_UPSTREAM_LATENCY_MS,
    FractionalCounter,
    LatencySampler,
    TrafficGenerator,
    TrafficLoop,
    WeightedSplitter,
    expected_latency_quantile,
)
from .watch import (
    INITIAL_BACKOFF_SECONDS,
    ISTIO_GROUP,
    ISTIO_VERSIONS,
    LIST_PAGE_SIZE,
    LIST_TIMEOUT,
    MAX_BACKOFF_SECONDS,
    WATCH_SECONDS,
    ClusterModel,
    ResourceGone,
    ResourceNotServed,
    ResourceWatcher,
    WatchedResource,
    cost_resources,
    iter_lines,
    lock_resources,
    short_error,
    watched_resources,
)

__all__ = [
    "CANONICAL_REVISION_LABELS",
    "CANONICAL_SERVICE_LABELS",
    "CLUSTER_DOMAIN_SUFFIX",
    "CLUSTER_NAME",
    "CONNECT_TIMEOUT_MS",
    "COST_KINDS",
    "ClusterModel",
    "ClusterSnapshot",
    "DEFAULT_ERROR_RATIO",
    "DEFAULT_LATENCY_MS",
    "DEFAULT_RPS",
    "DEFAULT_TICK_SECONDS",
    "DEPLOYMENT",
    "DESTINATION_RULE",
    "DURATION_BUCKETS_MS",
    "DURATION_METRIC",
    "ERROR_RATIO_ANNOTATION",
    "EXPOSITION_CONTENT_TYPE",
    "FaultProfile",
    "FractionalCounter",
    "HEALTHY_PROFILE",
    "INGRESS_GATEWAY",
    "INITIAL_BACKOFF_SECONDS",
    "ISTIOD",
    "ISTIO_GROUP",
    "ISTIO_VERSIONS",
    "KINDS",
    "KUBE_DNS",
    "LATENCY_MS_ANNOTATION",
    "LATENCY_SIGMA",
    "LEASE",
    "LIST_PAGE_SIZE",
    "LIST_TIMEOUT",
    "LOCK_DURATION_METRIC",
    "LOCK_LABEL_SELECTOR",
    "LOCK_RENEW_METRIC",
    "LOG",
    "Labels",
    "LatencySampler",
    "MAX_BACKOFF_SECONDS",
    "MAX_TICK_GAP_SECONDS",
    "MetricsHandler",
    "MetricsRegistry",
    "NAMESPACE",
    "NETWORK_POLICY",
    "NODE",
    "NO_HEALTHY_UPSTREAM_LATENCY_MS",
    "OPENCOST_METRICS_PATH",
    "POD",
    "Planner",
    "PodPeer",
    "PolicyEngine",
    "PolicyEngineError",
    "REPORTERS",
    "REQUESTS_METRIC",
    "RPS_ANNOTATION",
    "ROLLOUT_STATE_METRICS_PATH",
    "ROUTE_WEIGHT_METRIC",
    "ResourceGone",
    "ResourceNotServed",
    "ResourceWatcher",
    "RouteDestination",
    "SERVICE",
    "SOURCE_LABELS",
    "SOURCE_REPORTER_ONLY",
    "SeriesStats",
    "SimulatorHTTPServer",
    "Target",
    "TrafficGenerator",
    "TrafficLoop",
    "UNKNOWN",
    "VIRTUAL_SERVICE",
    "VirtualServicePlan",
    "WATCH_SECONDS",
    "Warn",
    "WatchedResource",
    "WeightedSplitter",
    "annotations_of",
    "available_replicas",
    "bucket_counts",
    "configure_logging",
    "cost_resources",
    "cost_suite_running",
    "destination_labels",
    "enforce",
    "escape_label_value",
    "expected_latency_quantile",
    "fault_profile",
    "format_bound",
    "format_labels",
    "format_number",
    "install_signal_handlers",
    "is_catch_all",
    "iter_lines",
    "labels_include",
    "lock_resources",
    "lock_series",
    "main",
    "no_upstream_labels",
    "object_key",
    "opencost_series",
    "parse_args",
    "parse_error_ratio",
    "parse_latency_ms",
    "parse_listen",
    "parse_micro_time",
    "parse_quantity",
    "parse_rps",
    "plan_virtual_service",
    "render_exposition",
    "resolve_destination",
    "route_destinations",
    "route_weight_series",
    "select_default_route",
    "service_account",
    "service_for_host",
    "service_fqdn",
    "short_error",
    "start_http_server",
    "subset_labels",
    "target_port",
    "template_labels",
    "virtual_service_rps",
    "watched_resources",
]
