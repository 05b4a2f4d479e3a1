# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The rollout's own state as metrics: route weights and rollout locks, for the alert rules.

The rollout alerts (monitoring/: a canary left part-way, a lock held past its lease) need two
things no exporter of the sandbox has, so the simulator serves them on ``/ceres/metrics``
(scraped as the job ``ceres-rollout-state``, ``honor_labels``):

* ``ceres_virtualservice_route_weight`` {namespace, virtual_service, route, route_index,
  destination_host, destination_subset}: the weight of every destination of every http route of
  every VirtualService (a lone destination without a weight is 100, as Istio reads it; weights are
  relative: the rules turn them into shares). ``route`` is the route's name ("" when it has none),
  ``route_index`` its position. In production, kube-state-metrics' custom resource state
  configuration exports the same series from the VirtualServices (monitoring/README.md).
* ``ceres_rollout_lock_renew_timestamp_seconds`` and ``ceres_rollout_lock_lease_duration_seconds``
  {namespace, lease, holder}: ``spec.renewTime`` (Unix seconds) and ``spec.leaseDurationSeconds`` of
  every rollout lock (Leases labelled ``app.kubernetes.io/managed-by: ceres.rollout``) while it is
  held: a released lock (no holder, no renew time) has no series. In production, the rules read
  kube-state-metrics' own Lease metrics instead (it exports no lease duration).

Pure functions over plain API objects; the watches and the HTTP server are elsewhere.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping, Sequence

from .cluster import _mapping, _sequence
from .metrics import escape_label_value, format_number
from .routing import route_destinations

METRICS_PATH = "/ceres/metrics"
ROUTE_WEIGHT_METRIC = "ceres_virtualservice_route_weight"
LOCK_RENEW_METRIC = "ceres_rollout_lock_renew_timestamp_seconds"
LOCK_DURATION_METRIC = "ceres_rollout_lock_lease_duration_seconds"
# The rollout's locks (plugins/module_utils/lock/lease_state.py MANAGED_BY_LABELS): the only Leases watched.
LOCK_LABEL_SELECTOR = "app.kubernetes.io/managed-by=ceres.rollout"

HELP = {
    ROUTE_WEIGHT_METRIC: "Weight of a destination of an http route of a VirtualService (relative to the route's others).",
    LOCK_RENEW_METRIC: "When the holder of a rollout lock (a Lease) last renewed it, in Unix seconds, while it is held.",
    LOCK_DURATION_METRIC: "The lease duration of a rollout lock (a Lease), in seconds, while it is held.",
}

Series = tuple[str, tuple[tuple[str, str], ...], float]


def route_weight_series(virtual_services: Iterable[Mapping]) -> list[Series]:
    """The weight of every destination of every http route; the same destination twice in a route is summed."""
    series: list[Series] = []
    for virtual_service in virtual_services:
        metadata = _mapping(virtual_service.get("metadata"))
        namespace, name = str(metadata.get("namespace") or ""), str(metadata.get("name") or "")
        for index, http_route in enumerate(_sequence(_mapping(virtual_service.get("spec")).get("http"))):
            if not isinstance(http_route, Mapping):
                continue
            weights: dict[tuple[str, str], int] = {}
            for destination in route_destinations(http_route):
                key = (destination.host, destination.subset)
                weights[key] = weights.get(key, 0) + destination.weight
            for (host, subset), weight in weights.items():
                labels = (
                    ("namespace", namespace),
                    ("virtual_service", name),
                    ("route", str(http_route.get("name") or "")),
                    ("route_index", str(index)),
                    ("destination_host", host),
                    ("destination_subset", subset),
                )
                series.append((ROUTE_WEIGHT_METRIC, labels, float(weight)))
    return series


def parse_micro_time(value: object) -> float | None:
    """Unix seconds of a Kubernetes MicroTime (``2026-01-02T03:04:05.123456Z``); None when it is not one."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None
    return parsed.timestamp()


def lock_series(leases: Iterable[Mapping]) -> list[Series]:
    """The renew time and lease duration of every held lock (a holder, a renew time and a duration)."""
    series: list[Series] = []
    for lease in leases:
        metadata = _mapping(lease.get("metadata"))
        spec = _mapping(lease.get("spec"))
        holder = spec.get("holderIdentity")
        renewed = parse_micro_time(spec.get("renewTime"))
        duration = spec.get("leaseDurationSeconds")
        if not holder or renewed is None or not isinstance(duration, int) or isinstance(duration, bool):
            continue
        labels = (
            ("namespace", str(metadata.get("namespace") or "")),
            ("lease", str(metadata.get("name") or "")),
            ("holder", str(holder)),
        )
        series.append((LOCK_RENEW_METRIC, labels, renewed))
        series.append((LOCK_DURATION_METRIC, labels, float(duration)))
    return series


def slim_lease(lease: Mapping) -> Mapping:
    """What the lock series read of a Lease (it changes at every renewal: keep it small)."""
    metadata = _mapping(lease.get("metadata"))
    spec = _mapping(lease.get("spec"))
    return {
        "metadata": {key: metadata.get(key) for key in ("name", "namespace")},
        "spec": {key: spec.get(key) for key in ("holderIdentity", "renewTime", "leaseDurationSeconds")},
    }


def render(series: Sequence[Series]) -> str:
    """The series in the Prometheus text exposition format (gauges), grouped by metric."""
    by_metric: dict[str, list[Series]] = {}
    for item in series:
        by_metric.setdefault(item[0], []).append(item)
    lines = []
    for name in sorted(by_metric):
        lines.append("# HELP %s %s" % (name, HELP.get(name, name)))
        lines.append("# TYPE %s gauge" % name)
        for unused_name, labels, value in sorted(by_metric[name], key=lambda item: item[1]):
            text = ",".join('%s="%s"' % (key, escape_label_value(val)) for key, val in labels)
            lines.append("%s{%s} %s" % (name, text, format_number(value)))
    return "\n".join(lines) + "\n" if lines else ""


def exposition(virtual_services: Iterable[Mapping], leases: Iterable[Mapping]) -> str:
    """``/ceres/metrics``: the route weights and the held locks."""
    return render(route_weight_series(virtual_services) + lock_series(leases))
