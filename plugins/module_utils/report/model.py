# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The report's model: built once from the journal, Prometheus and (optionally) the cluster's health
and a cost report, then rendered as Markdown, JSON and HTML. A plain, JSON-serialisable dict whose
content depends only on its inputs (no "generated at" time), so the same rollout and window give
the same bytes.

The cost section is a slot: ``cost`` is NOT MEASURED until a cost report gives its numbers
(``monthly_cost_before`` / ``monthly_cost_after`` and ``cost_per_request_before`` /
``cost_per_request_after``, in one currency), then both cost criteria are judged from them.
"""

from __future__ import annotations

import hashlib
import json
import math
import typing as t
from collections.abc import Mapping

from ansible_collections.ceres.rollout.plugins.module_utils.gate.prometheus import VALUE
from ansible_collections.ceres.rollout.plugins.module_utils.report import journal
from ansible_collections.ceres.rollout.plugins.module_utils.report.criteria import (
    DEFAULT_TARGETS,
    FAIL,
    NOT_MEASURED,
    PASS,
    criterion,
    format_number,
    overall,
    percent,
    real,
)
from ansible_collections.ceres.rollout.plugins.module_utils.report.metrics import (
    Queries,
    chart_step,
    instant_value,
)

SCHEMA_VERSION = 1
CUTOVER_PHASE = "cutover"
COST_KEYS = ("monthly_cost_before", "monthly_cost_after", "cost_per_request_before", "cost_per_request_after")


def journal_digest(records: list) -> str:
    canonical = json.dumps(records, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def build_report(
    records: list,
    prometheus=None,
    prometheus_error: str | None = None,
    health: Mapping | None = None,
    cost: Mapping | None = None,
    cluster: str = "",
    target_version: str = "v3.0.0",
    stable_version: str = "v2.9",
    rate_window: str = "1m",
    targets: Mapping | None = None,
) -> dict:
    """The model of the latest rollout in ``records``. ``prometheus`` is a ReportPrometheus, or None with
    ``prometheus_error`` saying why there is none (every metric criterion is then NOT MEASURED)."""
    targets = dict(DEFAULT_TARGETS, **{key: value for key, value in (targets or {}).items() if value is not None})
    rollout = journal.latest_rollout(records)
    start, end = journal.window(rollout)
    apps = journal.apps(rollout)
    namespaces = sorted({app.split("/", 1)[0] for app in apps})
    model: dict[str, t.Any] = {
        "schema_version": SCHEMA_VERSION,
        "cluster": cluster or next((record.get("cluster") for record in rollout if record.get("cluster")), ""),
        "stable_version": stable_version,
        "target_version": target_version,
        "selection": {
            "rule": journal.SELECTION_RULE,
            "records": len(rollout),
            "journal_records": len(records),
            "journal_sha256": journal_digest(rollout),
        },
        "window": {
            "start": journal.format_time(start),
            "end": journal.format_time(end),
            "seconds": round(end - start, 3),
        },
        "apps": apps,
        "namespaces": namespaces,
        "runs": journal.runs(rollout),
        "weights": journal.weight_changes(rollout),
        "rollbacks": journal.rollbacks(rollout),
        "gates": journal.gates(rollout),
        "backups": journal.backups(rollout),
        "approvals": journal.approvals(rollout),
        "targets": targets,
    }
    model["metrics"] = _metrics(prometheus, prometheus_error, namespaces, target_version, rate_window, start, end)
    model["health"] = _health(health)
    model["cost"] = _cost(cost)
    model["criteria"] = _criteria(model, rollout, targets)
    model["verdict"] = overall(model["criteria"])
    return model


# -- Prometheus


def _metrics(prometheus, prometheus_error, namespaces, target_version, rate_window, start, end) -> dict:
    seconds = max(1, int(math.ceil(end - start)))
    metrics: dict[str, t.Any] = {"source": None, "error": None, "instant": {}, "charts": {}}
    if prometheus is None:
        metrics["error"] = prometheus_error or "no Prometheus was given"
        return metrics
    if not namespaces:
        metrics["error"] = "the journal names no app (namespace/name), so no metric can be scoped to the rollout"
        return metrics
    metrics["source"] = prometheus.client.display_url
    queries = Queries(namespaces, target_version, rate_window)
    instant = {
        "target_requests": queries.target_requests(seconds),
        "target_error_rate": queries.target_error_rate(seconds),
        "target_latency_p95": queries.target_latency(0.95, seconds),
        "target_latency_p99": queries.target_latency(0.99, seconds),
        "all_requests": queries.all_requests(seconds),
        "availability": queries.availability(seconds),
        "pod_restarts": queries.restarts(namespaces, seconds),
    }
    for name, promql in instant.items():
        metrics["instant"][name] = dict(instant_value(prometheus.instant(promql, end)), query=promql, at=end)
    step = chart_step(start, end)
    charts = {
        "error_rate": ("Error rate per version", "%", 100.0, queries.error_rate_by_version()),
        "latency_p95": ("p95 latency per version", "ms", 1.0, queries.latency_by_version(0.95)),
        "latency_p99": ("p99 latency per version", "ms", 1.0, queries.latency_by_version(0.99)),
        "requests": ("Requests per second per version", "req/s", 1.0, queries.requests_by_version()),
    }
    for name, (title, unit, scale, promql) in charts.items():
        answer = prometheus.series(promql, start, end, step, "destination_version")
        series = {
            version: [[moment, value * scale] for moment, value in points]
            for version, points in (answer.get("series") or {}).items()
        }
        metrics["charts"][name] = {
            "title": title,
            "unit": unit,
            "query": promql,
            "step": step,
            "series": series,
            "error": answer.get("error"),
        }
    return metrics


def _instant(model, name):
    return (model["metrics"].get("instant") or {}).get(name) or {}


def _not_measured_metric(model, answer, what):
    if model["metrics"].get("error"):
        return "Prometheus not queried: %s" % model["metrics"]["error"]
    return "%s: %s (%s)" % (what, (answer.get("kind") or "no answer").replace("_", " "), answer.get("message") or "")


# -- the cluster and the cost report (optional inputs)


def _health(health):
    if not isinstance(health, Mapping) or "workloads" not in health:
        return None
    workloads = [
        {
            "namespace": workload.get("namespace"),
            "kind": workload.get("kind"),
            "name": workload.get("name"),
            "healthy": workload.get("healthy"),
            "restarts": workload.get("restarts"),
            "reasons": list(workload.get("reasons") or []),
        }
        for workload in health.get("workloads") or []
        if isinstance(workload, Mapping)
    ]
    return {"healthy": health.get("healthy"), "workloads": workloads}


def _cost(cost):
    section = {key: None for key in COST_KEYS}
    section.update(status=NOT_MEASURED, why="no cost report was given (the cost report of issue 19 fills this)")
    if isinstance(cost, Mapping):
        for key in COST_KEYS:
            if real(cost.get(key)):
                section[key] = float(cost[key])
        section["source"] = cost.get("source")
        if any(section[key] is not None for key in COST_KEYS):
            section.update(status="MEASURED", why=None)
    return section


# -- the criteria


def _criteria(model, rollout, targets):
    return [
        _services_running(model, rollout),
        _error_rate(model, targets),
        _latency(model, targets, "latency_p95", "p95", targets["latency_p95_max_ms"]),
        _latency(model, targets, "latency_p99", "p99", targets["latency_p99_max_ms"]),
        _pod_restarts(model, targets),
        _zero_data_loss(model),
        _sla(model, targets),
        _monthly_cost(model, targets),
        _cost_per_request(model, targets),
        _security(rollout),
        criterion(
            "user_satisfaction",
            "User satisfaction",
            "> %s" % percent(targets["user_satisfaction_min"], 1),
            NOT_MEASURED,
            None,
            "not observable by this collection: no survey or feedback source is connected",
            "none",
        ),
    ]


def _last_weights(model):
    last = {}
    for change in model["weights"]:
        for app in change["apps"]:
            last[app] = change["weight"]
    return last


def _services_running(model, rollout):
    name = "All services running"
    target = "every app at 100%% %s after the cutover" % model["target_version"]
    source = "journal"
    if model["rollbacks"]:
        last = model["rollbacks"][-1]
        return criterion(
            "services_running",
            name,
            target,
            FAIL,
            "rolled back",
            "the rollout was rolled back (%s %s at %s)" % (last["step_id"], last["outcome"], last["at"]),
            source,
        )
    cutover_done = any(
        record.get("phase") == CUTOVER_PHASE
        and str(record.get("step_id", "")).endswith("/done")
        and record.get("outcome") == "completed"
        for record in rollout
    )
    last = _last_weights(model)
    at_full = sorted(app for app, weight in last.items() if weight == 100)
    measured = "%d of %d apps at 100%%" % (len(at_full), len(last))
    if not last:
        return criterion("services_running", name, target, NOT_MEASURED, None, "the journal records no weight", source)
    if not cutover_done:
        phases = [run["phase"] for run in model["runs"]]
        return criterion(
            "services_running",
            name,
            target,
            FAIL,
            measured,
            "the rollout has not been cut over yet (runs: %s)" % ", ".join(phases),
            source,
        )
    if len(at_full) != len(last):
        behind = sorted(app for app in last if app not in at_full)
        return criterion(
            "services_running", name, target, FAIL, measured, "not at 100%%: %s" % ", ".join(behind), source
        )
    health = model["health"]
    if health is not None:
        unhealthy = ["%s/%s" % (item["namespace"], item["name"]) for item in health["workloads"] if not item["healthy"]]
        if unhealthy:
            return criterion(
                "services_running",
                name,
                target,
                FAIL,
                measured,
                "unhealthy now: %s" % ", ".join(unhealthy),
                "journal + cluster",
            )
        return criterion(
            "services_running",
            name,
            target,
            PASS,
            measured,
            "cut over, and every workload healthy now",
            "journal + cluster",
        )
    return criterion("services_running", name, target, PASS, measured, "cut over (the cluster was not checked)", source)


def _error_rate(model, targets):
    name = "Error rate (%s)" % model["target_version"]
    maximum = targets["error_rate_max"]
    target = "< %s" % percent(maximum)
    answer = _instant(model, "target_error_rate")
    requests = _instant(model, "target_requests")
    if answer.get("kind") != VALUE or requests.get("kind") != VALUE:
        bad = answer if answer.get("kind") != VALUE else requests
        return criterion(
            "error_rate", name, target, NOT_MEASURED, None, _not_measured_metric(model, bad, "query"), "prometheus"
        )
    rate, count = answer["value"], requests["value"]
    measured = "%s of %s requests" % (percent(rate), format_number(count, 0))
    needed = int(math.ceil(3 / maximum))  # the rule of three: 0 errors in n requests bounds the rate by 3/n
    if rate >= maximum:
        return criterion("error_rate", name, target, FAIL, measured, "at or above the target", "prometheus")
    if count < needed:
        return criterion(
            "error_rate",
            name,
            target,
            NOT_MEASURED,
            measured,
            "too few requests to show a rate below %s (the rule of three needs %d)" % (percent(maximum), needed),
            "prometheus",
        )
    return criterion("error_rate", name, target, PASS, measured, "below the target over the window", "prometheus")


def _latency(model, targets, identifier, label, maximum):
    name = "Latency %s (%s)" % (label, model["target_version"])
    target = "< %s ms" % format_number(maximum)
    answer = _instant(model, "target_" + identifier)
    if answer.get("kind") != VALUE:
        return criterion(
            identifier, name, target, NOT_MEASURED, None, _not_measured_metric(model, answer, "query"), "prometheus"
        )
    measured = "%s ms" % format_number(answer["value"], 1)
    verdict = PASS if answer["value"] < maximum else FAIL
    why = "over the whole window" if verdict == PASS else "at or above the target over the window"
    return criterion(identifier, name, target, verdict, measured, why, "prometheus")


def _pod_restarts(model, targets):
    name = "No pod restarts"
    maximum = targets["max_restarts"]
    target = "<= %d restarts" % maximum
    answer = _instant(model, "pod_restarts")
    if answer.get("kind") == VALUE:
        count = answer["value"]
        verdict = PASS if count <= maximum else FAIL
        return criterion(
            "pod_restarts",
            name,
            target,
            verdict,
            format_number(count, 0),
            "kube-state-metrics over the window",
            "prometheus",
        )
    health = model["health"]
    if health is not None and health["workloads"]:
        counts = [item["restarts"] for item in health["workloads"]]
        if not all(real(count) for count in counts):
            return criterion(
                "pod_restarts",
                name,
                target,
                NOT_MEASURED,
                None,
                "the cluster's restart counts are incomplete",
                "cluster",
            )
        total = sum(counts)
        verdict = PASS if total <= maximum else FAIL
        return criterion(
            "pod_restarts",
            name,
            target,
            verdict,
            "%d over %d workloads" % (total, len(counts)),
            "restarts of the rollout's workloads' current pods (their whole life: fail-closed)",
            "cluster",
        )
    return criterion(
        "pod_restarts",
        name,
        target,
        NOT_MEASURED,
        None,
        "no kube_pod_container_status_restarts_total series in Prometheus and no cluster health was given",
        "none",
    )


def _zero_data_loss(model):
    name = "Zero data loss"
    target = "a verified backup before the migration"
    backups = model["backups"]
    if not backups:
        return criterion(
            "zero_data_loss",
            name,
            target,
            NOT_MEASURED,
            None,
            "the rollout recorded no backup (run without one?)",
            "journal",
        )
    unverified = [item["backup_id"] for item in backups if item["complete"] not in (True, "true", "True")]
    measured = ", ".join(item["backup_id"] for item in backups)
    if unverified:
        return criterion(
            "zero_data_loss", name, target, FAIL, measured, "not complete: %s" % ", ".join(unverified), "journal"
        )
    unsigned = [item["backup_id"] for item in backups if not item["manifest_sha256"]]
    if unsigned:
        return criterion(
            "zero_data_loss",
            name,
            target,
            NOT_MEASURED,
            measured,
            "no manifest checksum recorded for %s" % ", ".join(unsigned),
            "journal",
        )
    return criterion(
        "zero_data_loss",
        name,
        target,
        PASS,
        measured,
        "verified backup(s) recorded with their manifest's sha256",
        "journal",
    )


def _sla(model, targets):
    name = "SLA (availability)"
    minimum = targets["availability_min"]
    target = ">= %s" % percent(minimum)
    answer = _instant(model, "availability")
    if answer.get("kind") != VALUE:
        return criterion(
            "sla", name, target, NOT_MEASURED, None, _not_measured_metric(model, answer, "query"), "prometheus"
        )
    measured = "%s of requests without a 5xx" % percent(answer["value"])
    verdict = PASS if answer["value"] >= minimum else FAIL
    return criterion("sla", name, target, verdict, measured, "all versions, over the window", "prometheus")


def _change(before, after):
    if before is None or after is None or before <= 0:
        return None
    return (after - before) / before


def _monthly_cost(model, targets):
    name = "Cost reduction (monthly)"
    low, high = targets["monthly_cost_reduction_min"], targets["monthly_cost_reduction_max"]
    target = "%s to %s less" % (percent(low, 0), percent(high, 0))
    cost = model["cost"]
    change = _change(cost["monthly_cost_before"], cost["monthly_cost_after"])
    if change is None:
        return criterion(
            "cost_reduction", name, target, NOT_MEASURED, None, cost["why"] or "no before/after spend", "cost report"
        )
    measured = "%s" % percent(change, 1)
    return criterion(
        "cost_reduction",
        name,
        target,
        PASS if -change >= low else FAIL,
        measured,
        "monthly spend after against before",
        "cost report",
    )


def _cost_per_request(model, targets):
    name = "Cost per request"
    maximum = targets["cost_per_request_change_max"]
    target = "<= %s" % percent(maximum, 0)
    cost = model["cost"]
    change = _change(cost["cost_per_request_before"], cost["cost_per_request_after"])
    if change is None:
        return criterion(
            "cost_per_request",
            name,
            target,
            NOT_MEASURED,
            None,
            cost["why"] or "no before/after cost per request",
            "cost report",
        )
    return criterion(
        "cost_per_request",
        name,
        target,
        PASS if change <= maximum else FAIL,
        percent(change, 1),
        "cost per request after against before",
        "cost report",
    )


def _security(rollout):
    name = "Security policies enforced"
    target = "staging's security checks passed"
    checks = [
        record
        for record in rollout
        if record.get("phase") == "staging" and "security" in str(record.get("step_id", ""))
    ]
    if not checks:
        return criterion(
            "security_policies",
            name,
            target,
            NOT_MEASURED,
            None,
            "the journal holds no security-policy record of a staging run",
            "journal",
        )
    failed = [record["step_id"] for record in checks if record.get("outcome") not in ("passed", "completed")]
    measured = "%d record(s)" % len(checks)
    if failed:
        return criterion(
            "security_policies", name, target, FAIL, measured, "not passed: %s" % ", ".join(failed), "journal"
        )
    return criterion(
        "security_policies", name, target, PASS, measured, "every staging security check passed", "journal"
    )
