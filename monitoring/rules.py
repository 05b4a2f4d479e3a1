# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The source of the rollout's alert and recording rules: the plan's metrics, written correctly.

The seed plan's own rules were broken (``histogram_quantile`` over raw buckets, without
``rate`` or ``le``; a cost compared with an undefined ``historical_average``). Here:

* **SLO, per app and version** (Istio's standard metrics, as the destination's sidecar reports
  them): the 5xx share of requests, p95 and p99 latency from the rate of the histogram's buckets
  summed ``by (le, ...)``; and the requests for a Service that no pod answered (503 ``UH``, reported
  by the caller only: a canary without pods), which the per-version series never show.
  No traffic at all is 0/0 = NaN: never an alert.
* **Resources** (the standard exporters: kube-state-metrics, cAdvisor, node exporter, kubelet):
  pod restarts, container CPU and memory use against their limits, node filesystems and volumes.
* **Cost** (OpenCost's metric names): recording rules of the cost per hour of each namespace and
  of the cluster; the alert compares the last ``cost_window`` with the same recorded series over
  ``cost_baseline_window`` ending ``cost_baseline_offset`` ago (a recorded baseline, not an
  undefined series).
* **The rollout itself**: a canary left part-way (a route split strictly between 0 and 100 that
  has not changed for longer than a soak), from ``ceres_virtualservice_route_weight``; a lock
  held past its lease, from kube-state-metrics' Lease metrics (production) or the
  ``ceres_rollout_lock_*`` series (the sandbox's traffic simulator exports them).

:data:`PRODUCTION` holds the plan's thresholds and production windows (the committed files);
:data:`SANDBOX` the same thresholds with windows and ``for:`` durations of seconds (the sandbox's
Prometheus evaluates them). Every alert has a ``severity`` label and ``summary``, ``description``
and ``runbook`` annotations; the runbook names the playbook to run (rollback.yml).
"""

from __future__ import annotations

import dataclasses
import re
import textwrap
from typing import Any

LOCK_FROM_KUBE_STATE_METRICS = "kube-state-metrics"
LOCK_FROM_CERES_EXPORTER = "ceres-exporter"
LOCK_SOURCES = (LOCK_FROM_KUBE_STATE_METRICS, LOCK_FROM_CERES_EXPORTER)

# Istio's labels of one app and version, as the destination's sidecar reports its requests.
APP_VERSION_LABELS = (
    "destination_service_namespace, destination_service_name, destination_workload, destination_version"
)
SERVICE_LABELS = "destination_service_namespace, destination_service_name"
CONTAINER_LABELS = "namespace, pod, container"
ROUTE_LABELS = "namespace, virtual_service, route, route_index"
LOCK_LABELS = "namespace, lease, holder"

_DURATION = re.compile(r"^([0-9]+(ms|s|m|h|d|w|y))+$")


@dataclasses.dataclass(frozen=True)
class Settings:
    """What the rules are made of: the plan's thresholds, the windows and the ``for:`` durations."""

    # The plan's targets ("Key metrics to monitor", the success criteria).
    max_error_ratio: float = 0.001  # < 0.1 % errors
    max_latency_p95_ms: float = 100
    max_latency_p99_ms: float = 200
    max_pod_restarts: int = 0
    max_cpu_ratio: float = 0.70  # of the container's CPU limit
    max_memory_ratio: float = 0.75  # of the container's memory limit
    max_disk_ratio: float = 0.80  # of a node filesystem or a volume
    max_cost_increase_ratio: float = 0.05  # phase 3: "alert on anomalies: cost increase > 5%"
    # The ranges of the rates and of the comparisons.
    rate_window: str = "5m"
    restart_window: str = "15m"
    usage_window: str = "5m"
    cost_window: str = "1h"
    cost_baseline_window: str = "1d"
    cost_baseline_offset: str = "1d"
    canary_soak: str = "6h"  # inventories/production ceres_soak
    # How long each condition must hold before its alert fires.
    error_rate_for: str = "5m"
    latency_for: str = "5m"
    restarts_for: str = "0s"
    usage_for: str = "15m"
    disk_for: str = "15m"
    cost_for: str = "15m"
    canary_left_for: str = "30m"
    lock_for: str = "1m"
    # The lock's Lease: where its renew time comes from, its names, and (kube-state-metrics does not
    # export it) its lease duration.
    lock_source: str = LOCK_FROM_KUBE_STATE_METRICS
    lock_lease_names: tuple[str, ...] = ("ceres-rollout",)
    lock_lease_duration_seconds: int = 900  # inventories/production ceres_rollout_lease_duration
    # How often the groups are evaluated (None: Prometheus' evaluation_interval).
    group_interval: str | None = None
    # The inventory the runbook's commands name.
    inventory: str = "inventories/production"

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if (field.name.endswith(("_window", "_for", "_offset", "_soak")) or field.name == "group_interval") and (
                value is not None and not _DURATION.match(value)
            ):
                raise ValueError("%s must be a Prometheus duration such as 30s, 5m or 1d, got %r" % (field.name, value))
        if self.lock_source not in LOCK_SOURCES:
            raise ValueError("lock_source must be one of %s, got %r" % (", ".join(LOCK_SOURCES), self.lock_source))
        if not self.lock_lease_names or not all(re.fullmatch(r"[a-z0-9.-]+", name) for name in self.lock_lease_names):
            raise ValueError("lock_lease_names must be Lease names, got %r" % (self.lock_lease_names,))


PRODUCTION = Settings()
"""The plan's thresholds with production windows: the committed files."""

SANDBOX = dataclasses.replace(
    PRODUCTION,
    rate_window="30s",
    restart_window="2m",
    usage_window="1m",
    cost_window="1m",
    cost_baseline_window="5m",
    cost_baseline_offset="10m",
    canary_soak="2m",
    error_rate_for="10s",
    latency_for="10s",
    usage_for="1m",
    disk_for="1m",
    cost_for="1m",
    canary_left_for="1m",
    lock_for="10s",
    lock_source=LOCK_FROM_CERES_EXPORTER,
    group_interval="2s",
    inventory="inventories/local",
)
"""The same thresholds with the sandbox's seconds (it scrapes every second): loaded by its Prometheus."""


def _expr(text: str) -> str:
    return textwrap.dedent(text).strip("\n")


def _percent(ratio: float) -> str:
    return "%g%%" % (ratio * 100)


def _rollback(settings: Settings) -> str:
    return "ansible-playbook playbooks/rollback.yml -i %s" % settings.inventory


def _alert(
    name: str, expr: str, duration: str, severity: str, summary: str, description: str, runbook: str
) -> dict[str, Any]:
    return {
        "alert": name,
        "expr": _expr(expr),
        "for": duration,
        "labels": {"severity": severity},
        "annotations": {"summary": summary, "description": description, "runbook": runbook},
    }


def _group(name: str, settings: Settings, rules: list[dict[str, Any]]) -> dict[str, Any]:
    group: dict[str, Any] = {"name": name}
    if settings.group_interval:
        group["interval"] = settings.group_interval
    group["rules"] = rules
    return group


# --------------------------------------------------------------------------- SLO per app and version

APP = "{{ $labels.destination_service_namespace }}/{{ $labels.destination_service_name }}"
VERSION = "{{ $labels.destination_version }}"
WORKLOAD = "{{ $labels.destination_workload }}"


def _rollback_everything(settings: Settings) -> str:
    return "%s (every app back to its stable version; README: 'What rollback guarantees')" % _rollback(settings)


def _latency_alert(settings: Settings, name: str, quantile: float, limit_ms: float, severity: str) -> dict[str, Any]:
    label = "p%d" % round(quantile * 100)
    return _alert(
        name,
        """
        histogram_quantile(%s,
          sum by (le, %s) (
            rate(istio_request_duration_milliseconds_bucket{reporter="destination"}[%s])
          )
        ) > %g
        """
        % (quantile, APP_VERSION_LABELS, settings.rate_window, limit_ms),
        settings.latency_for,
        severity,
        '%s %s: %s latency {{ $value | printf "%%.0f" }} ms (plan: < %g ms)' % (APP, VERSION, label, limit_ms),
        'The %s duration of the requests %s (%s) answered over the last %s is {{ $value | printf "%%.1f" }} ms, '
        "above the plan's %g ms for %s. A canary's gate rolls it back by itself; if the slow version is v3.0.0 "
        "and no gate runs, roll it back."
        % (label, WORKLOAD, VERSION, settings.rate_window, limit_ms, settings.latency_for),
        _rollback_everything(settings),
    )


def slo_rules(settings: Settings) -> list[dict[str, Any]]:
    error_ratio = _alert(
        "CeresHighErrorRate",
        """
        (
          sum by (%(labels)s) (
            rate(istio_requests_total{reporter="destination", response_code=~"5.."}[%(window)s])
          )
          /
          sum by (%(labels)s) (
            rate(istio_requests_total{reporter="destination"}[%(window)s])
          )
        ) > %(max)g
        """
        % {"labels": APP_VERSION_LABELS, "window": settings.rate_window, "max": settings.max_error_ratio},
        settings.error_rate_for,
        "critical",
        "%s %s: {{ $value | humanizePercentage }} of requests fail (plan: < %s)"
        % (APP, VERSION, _percent(settings.max_error_ratio)),
        "{{ $value | humanizePercentage }} of the requests %s (%s) answered over the last %s were 5xx, above the "
        "plan's %s for %s. A canary's gate rolls it back by itself; if the failing version is v3.0.0 and no gate "
        "runs, roll it back."
        % (WORKLOAD, VERSION, settings.rate_window, _percent(settings.max_error_ratio), settings.error_rate_for),
        _rollback_everything(settings),
    )
    unanswered = _alert(
        "CeresRequestsUnanswered",
        """
        (
          sum by (%(labels)s) (
            rate(istio_requests_total{reporter="source", destination_workload="unknown", response_code=~"5.."}[%(window)s])
          )
          /
          sum by (%(labels)s) (
            rate(istio_requests_total{reporter="source"}[%(window)s])
          )
        ) > %(max)g
        """
        % {"labels": SERVICE_LABELS, "window": settings.rate_window, "max": settings.max_error_ratio},
        settings.error_rate_for,
        "critical",
        "%s: {{ $value | humanizePercentage }} of requests reach no pod (plan: < %s errors)"
        % (APP, _percent(settings.max_error_ratio)),
        "{{ $value | humanizePercentage }} of the requests for %s over the last %s got a 5xx from the caller's "
        "proxy because no pod of the version they were routed to answered (no pod left, or a NetworkPolicy in the "
        "way), for %s. The versions' own series do not show these failures."
        % (APP, settings.rate_window, settings.error_rate_for),
        "%s; then find why the pods are gone (kubectl get deploy,pods -n "
        "{{ $labels.destination_service_namespace }})" % _rollback_everything(settings),
    )
    return [
        error_ratio,
        unanswered,
        _latency_alert(settings, "CeresHighLatencyP95", 0.95, settings.max_latency_p95_ms, "warning"),
        _latency_alert(settings, "CeresHighLatencyP99", 0.99, settings.max_latency_p99_ms, "critical"),
    ]


# --------------------------------------------------------------------------- resources

POD = "{{ $labels.namespace }}/{{ $labels.pod }}"


def _restarts(settings: Settings) -> str:
    return "sum by (%s) (increase(kube_pod_container_status_restarts_total[%s])) > %d" % (
        CONTAINER_LABELS,
        settings.restart_window,
        settings.max_pod_restarts,
    )


def resource_rules(settings: Settings) -> list[dict[str, Any]]:
    restarts = _restarts(settings)
    return [
        _alert(
            "CeresPodRestarts",
            # the app and version from kube_pod_labels where kube-state-metrics exports them
            # (--metric-labels-allowlist=pods=[app,version]); the restarts alone where it does not
            """
            (
              (%(restarts)s)
              * on (namespace, pod) group_left (label_app, label_version)
                topk by (namespace, pod) (1, kube_pod_labels)
            )
            or on (%(labels)s)
            (%(restarts)s)
            """
            % {"restarts": restarts, "labels": CONTAINER_LABELS},
            settings.restarts_for,
            "warning",
            '%s container {{ $labels.container }} restarted {{ $value | printf "%%.0f" }} time(s) '
            "(plan: %d)" % (POD, settings.max_pod_restarts),
            "Container {{ $labels.container }} of pod %s{{ with $labels.label_app }} (app {{ . }}"
            "{{ with $labels.label_version }}, version {{ . }}{{ end }}){{ end }} restarted "
            '{{ $value | printf "%%.0f" }} time(s) in the last %s; the '
            "plan's target is %d restarts." % (POD, settings.restart_window, settings.max_pod_restarts),
            "kubectl describe pod -n {{ $labels.namespace }} {{ $labels.pod }} (last state, events); if the restarting "
            "pods are v3.0.0's: %s" % _rollback(settings),
        ),
        _alert(
            "CeresContainerCPUHigh",
            """
            sum by (%(labels)s) (
              rate(container_cpu_usage_seconds_total{container!="", container!="POD"}[%(window)s])
            )
            /
            sum by (%(labels)s) (kube_pod_container_resource_limits{resource="cpu", unit="core"})
            > %(max)g
            """
            % {"labels": CONTAINER_LABELS, "window": settings.usage_window, "max": settings.max_cpu_ratio},
            settings.usage_for,
            "warning",
            "%s container {{ $labels.container }} uses {{ $value | humanizePercentage }} of its CPU limit "
            "(plan: < %s)" % (POD, _percent(settings.max_cpu_ratio)),
            "Container {{ $labels.container }} of pod %s used {{ $value | humanizePercentage }} of its CPU limit "
            "over the last %s, for %s (plan: < %s). Containers without a CPU limit are not judged."
            % (POD, settings.usage_window, settings.usage_for, _percent(settings.max_cpu_ratio)),
            "Scale the Deployment or raise its limit; if v3.0.0 uses more than v2.9 did: %s" % _rollback(settings),
        ),
        _alert(
            "CeresContainerMemoryHigh",
            """
            sum by (%(labels)s) (container_memory_working_set_bytes{container!="", container!="POD"})
            /
            sum by (%(labels)s) (kube_pod_container_resource_limits{resource="memory", unit="byte"})
            > %(max)g
            """
            % {"labels": CONTAINER_LABELS, "max": settings.max_memory_ratio},
            settings.usage_for,
            "warning",
            "%s container {{ $labels.container }} uses {{ $value | humanizePercentage }} of its memory limit "
            "(plan: < %s)" % (POD, _percent(settings.max_memory_ratio)),
            "Container {{ $labels.container }} of pod %s has used {{ $value | humanizePercentage }} of its memory "
            "limit for %s (plan: < %s); at 100%% it is OOM-killed. Containers without a memory limit are not judged."
            % (POD, settings.usage_for, _percent(settings.max_memory_ratio)),
            "Raise the limit or find the leak; if v3.0.0 uses more than v2.9 did: %s" % _rollback(settings),
        ),
        _alert(
            "CeresNodeDiskFull",
            """
            1 - (
              node_filesystem_avail_bytes{fstype!~"tmpfs|ramfs|overlay|squashfs|nsfs", mountpoint!=""}
              /
              node_filesystem_size_bytes{fstype!~"tmpfs|ramfs|overlay|squashfs|nsfs", mountpoint!=""}
            ) > %g
            """
            % settings.max_disk_ratio,
            settings.disk_for,
            "warning",
            "{{ $labels.instance }} {{ $labels.mountpoint }} is {{ $value | humanizePercentage }} full (plan: < %s)"
            % _percent(settings.max_disk_ratio),
            "Filesystem {{ $labels.device }} mounted on {{ $labels.mountpoint }} of {{ $labels.instance }} has been "
            "{{ $value | humanizePercentage }} full for %s (plan: < %s)."
            % (settings.disk_for, _percent(settings.max_disk_ratio)),
            "Free space or grow the disk before the next step; a rollout step (backup, restart) needs room. "
            "Nothing to roll back unless v3.0.0 fills it: %s" % _rollback(settings),
        ),
        _alert(
            "CeresVolumeFull",
            """
            max by (namespace, persistentvolumeclaim) (kubelet_volume_stats_used_bytes)
            /
            max by (namespace, persistentvolumeclaim) (kubelet_volume_stats_capacity_bytes)
            > %g
            """
            % settings.max_disk_ratio,
            settings.disk_for,
            "warning",
            "Volume {{ $labels.namespace }}/{{ $labels.persistentvolumeclaim }} is {{ $value | humanizePercentage }} "
            "full (plan: < %s)" % _percent(settings.max_disk_ratio),
            "PersistentVolumeClaim {{ $labels.namespace }}/{{ $labels.persistentvolumeclaim }} has been "
            "{{ $value | humanizePercentage }} full for %s (plan: < %s). The database's volume must have room for "
            "the backup and restore the rollout runs." % (settings.disk_for, _percent(settings.max_disk_ratio)),
            "Grow the volume or free space; if v3.0.0 writes more than v2.9 did: %s" % _rollback(settings),
        ),
    ]


# --------------------------------------------------------------------------- cost

NAMESPACE_COST = "namespace:ceres_cost_per_hour:sum"
CLUSTER_COST = "cluster:ceres_cost_per_hour:sum"


def _cost_increase(settings: Settings, series: str) -> str:
    return """
        (
          avg_over_time(%(series)s[%(window)s])
          /
          (avg_over_time(%(series)s[%(baseline_window)s] offset %(offset)s) > 0)
        ) > %(max)g
        """ % {
        "series": series,
        "window": settings.cost_window,
        "baseline_window": settings.cost_baseline_window,
        "offset": settings.cost_baseline_offset,
        "max": 1 + settings.max_cost_increase_ratio,
    }


def cost_rules(settings: Settings) -> list[dict[str, Any]]:
    baseline = "the average of the same recorded series over the %s that ended %s ago" % (
        settings.cost_baseline_window,
        settings.cost_baseline_offset,
    )
    runbook = (
        "Compare the cost per request of v3.0.0 and v2.9 (post_deploy's cost report); if v3.0.0 is the "
        "dearer one: %s" % _rollback(settings)
    )
    return [
        {
            # OpenCost's allocation (the larger of request and use) priced at its node's hourly prices.
            "record": NAMESPACE_COST,
            "expr": _expr(
                """
                sum by (namespace) (
                  container_cpu_allocation
                  * on (node) group_left () max by (node) (node_cpu_hourly_cost)
                )
                +
                sum by (namespace) (
                  container_memory_allocation_bytes / 1073741824
                  * on (node) group_left () max by (node) (node_ram_hourly_cost)
                )
                """
            ),
        },
        {"record": CLUSTER_COST, "expr": "sum(node_total_hourly_cost)"},
        _alert(
            "CeresNamespaceCostAnomaly",
            _cost_increase(settings, NAMESPACE_COST),
            settings.cost_for,
            "warning",
            "Namespace {{ $labels.namespace }} costs {{ $value | humanizePercentage }} of its baseline (plan: an "
            "increase of at most %s)" % _percent(settings.max_cost_increase_ratio),
            "The cost per hour of namespace {{ $labels.namespace }} (%s, from OpenCost) over the last %s is "
            "{{ $value | humanizePercentage }} of its baseline, %s, for %s."
            % (NAMESPACE_COST, settings.cost_window, baseline, settings.cost_for),
            runbook,
        ),
        _alert(
            "CeresClusterCostAnomaly",
            _cost_increase(settings, CLUSTER_COST),
            settings.cost_for,
            "warning",
            "The cluster costs {{ $value | humanizePercentage }} of its baseline (plan: an increase of at most %s)"
            % _percent(settings.max_cost_increase_ratio),
            "The cluster's cost per hour (%s: every node's price, from OpenCost) over the last %s is "
            "{{ $value | humanizePercentage }} of its baseline, %s, for %s."
            % (CLUSTER_COST, settings.cost_window, baseline, settings.cost_for),
            runbook,
        ),
    ]


# --------------------------------------------------------------------------- the rollout itself


def _lock_past_lease(settings: Settings) -> str:
    if settings.lock_source == LOCK_FROM_CERES_EXPORTER:
        # the exporter has the Lease's own duration; both series exist only while the lock is held
        return """
            time() - max by (%(labels)s) (ceres_rollout_lock_renew_timestamp_seconds)
            > max by (%(labels)s) (ceres_rollout_lock_lease_duration_seconds)
            """ % {"labels": LOCK_LABELS}
    # kube-state-metrics: kube_lease_renew_time{lease} (no namespace; no series once released) and
    # kube_lease_owner{namespace, lease, lease_holder}; it exports no lease duration: the settings' is used.
    # The names as a regex in a PromQL string: a dot escaped twice (\\. in the string, \. in the regex).
    names = "|".join(name.replace(".", "\\\\.") for name in settings.lock_lease_names)
    return """
        (
          time() - max by (lease) (kube_lease_renew_time{lease=~"%(names)s"})
          > %(duration)d
        )
        * on (lease) group_left (namespace, holder)
          max by (%(labels)s) (
            label_replace(kube_lease_owner{lease=~"%(names)s", lease_holder!=""}, "holder", "$1", "lease_holder", "(.+)")
          )
        """ % {"names": names, "duration": settings.lock_lease_duration_seconds, "labels": LOCK_LABELS}


ROUTE_SHARE = "route_destination:ceres_virtualservice_route_weight:percent"


def rollout_rules(settings: Settings) -> list[dict[str, Any]]:
    route = "{{ $labels.namespace }}/{{ $labels.virtual_service }} route {{ $labels.route }}"
    lock = "{{ $labels.namespace }}/{{ $labels.lease }}"
    lease = (
        "its lease duration"
        if settings.lock_source == LOCK_FROM_CERES_EXPORTER
        else "its lease (%d s)" % settings.lock_lease_duration_seconds
    )
    return [
        {
            # each destination's share of its route in percent (Istio's weights are relative), each
            # weight counted once however many exporters or replicas report it
            "record": ROUTE_SHARE,
            "expr": _expr(
                """
                100 * max by (%(labels)s, destination_host, destination_subset) (
                  ceres_virtualservice_route_weight
                )
                / on (%(labels)s) group_left ()
                  sum by (%(labels)s) (
                    max by (%(labels)s, destination_host, destination_subset) (
                      ceres_virtualservice_route_weight
                    )
                  )
                """
                % {"labels": ROUTE_LABELS}
            ),
        },
        _alert(
            "CeresCanaryLeftPartWay",
            # the smaller share of a route split strictly between 0 and 100 %, its weights unchanged
            # for a soak (a route that was not there a soak ago is still settling)
            """
            min by (%(labels)s) (%(share)s > 0 < 100)
            unless on (%(labels)s) (changes(ceres_virtualservice_route_weight[%(soak)s]) > 0)
            and on (%(labels)s) (ceres_virtualservice_route_weight offset %(soak)s)
            """
            % {"labels": ROUTE_LABELS, "share": ROUTE_SHARE, "soak": settings.canary_soak},
            settings.canary_left_for,
            "warning",
            '%s left part-way: {{ $value | printf "%%.0f" }}%% on its smaller side for longer than a soak' % route,
            '%s sends {{ $value | printf "%%.0f" }}%% of its traffic to one destination and the rest to another, '
            "and its weights have not changed for %s (a soak) and %s more: a canary left part-way (a run that died, "
            "or a phase that ended without its next). A rollout that holds a step on purpose (the pilot ends at "
            "50%% until the waves) should silence this alert for the pause."
            % (route, settings.canary_soak, settings.canary_left_for),
            "Finish the phase (run its playbook again: a new run resumes from the journal) or send every app back "
            "to stable: %s" % _rollback(settings),
        ),
        _alert(
            "CeresRolloutLockPastLease",
            _lock_past_lease(settings),
            settings.lock_for,
            "warning",
            "Rollout lock %s held by {{ $labels.holder }} was last renewed {{ $value | humanizeDuration }} ago" % lock,
            "The rollout lock %s (a Lease) is still held by {{ $labels.holder }}, but was last renewed "
            "{{ $value | humanizeDuration }} ago, longer than %s: the run holding it stopped (killed, or its "
            "controller lost) in the middle of its phase. Another run may take it over; the journal says where the "
            "run stopped." % (lock, lease),
            "%s takes the lock (always) and sends every app back to stable; or run the phase's playbook "
            "again to take the lock over and resume" % _rollback(settings),
        ),
    ]


def rule_groups(settings: Settings = PRODUCTION) -> list[dict[str, Any]]:
    """The rule groups, in the order they are written."""
    return [
        _group("ceres-rollout-slo", settings, slo_rules(settings)),
        _group("ceres-rollout-resources", settings, resource_rules(settings)),
        _group("ceres-rollout-cost", settings, cost_rules(settings)),
        _group("ceres-rollout-progress", settings, rollout_rules(settings)),
    ]


def alert_names(settings: Settings = PRODUCTION) -> list[str]:
    return [rule["alert"] for group in rule_groups(settings) for rule in group["rules"] if "alert" in rule]
