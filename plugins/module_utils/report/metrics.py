# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What the report asks Prometheus, over the rollout window only (never "now"), so the same window
gives the same numbers:

* instant queries evaluated *at the window's end* (``time=``) over a range as long as the window,
  classified as a gate's are (:func:`gate.prometheus.classify_response`: one finite number, or
  no data / ambiguous / error - never a guess);
* range queries (``/api/v1/query_range``) for the charts, one series per version.

:class:`ReportPrometheus` reuses a :class:`PrometheusClient` (its URL checks, TLS context,
credentials and redaction) by composition and only adds the two endpoints' parameters.
"""

from __future__ import annotations

import json
import math
import re

from ansible_collections.ceres.rollout.plugins.module_utils.gate.prometheus import (
    QUERY_ERROR,
    QUERY_PATH,
    VALUE,
    PrometheusClient,
    QueryResult,
    TransportError,
    classify_response,
)

RANGE_PATH = "/api/v1/query_range"
MAX_CHART_POINTS = 240  # points per series at most: the step is the window over this, in whole seconds

REQUESTS = "istio_requests_total"
BUCKETS = "istio_request_duration_milliseconds_bucket"


def promql_string(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def namespaces_regex(namespaces: list[str]) -> str:
    return promql_string("|".join(re.escape(namespace) for namespace in namespaces))


class ReportPrometheus:
    """Instant queries at a given time and range queries, through ``client``'s connection (its ``request``)."""

    def __init__(self, client: PrometheusClient):
        self.client = client

    def instant(self, promql: str, at: float) -> QueryResult:
        """``promql`` evaluated at ``at`` (seconds since the epoch), classified; never raises for server trouble."""
        parameters = {"query": promql, "time": "%.3f" % at, "timeout": "%ds" % max(1, int(self.client.timeout))}
        try:
            status, body = self.client.request(QUERY_PATH, parameters)
        except TransportError as error:  # it names the server and why
            return QueryResult(QUERY_ERROR, message=self.client.redact(str(error)))
        return classify_response(status, body, redact=self.client.redact)

    def series(self, promql: str, start: float, end: float, step: int, label: str) -> dict:
        """``promql`` from ``start`` to ``end`` every ``step`` seconds: ``{"series": {label value: [[t, v], ...]}}``
        (non-finite values left out), or ``{"error": message}``."""
        parameters = {
            "query": promql,
            "start": "%.3f" % start,
            "end": "%.3f" % end,
            "step": "%ds" % step,
            "timeout": "%ds" % max(1, int(self.client.timeout)),
        }
        try:
            status, body = self.client.request(RANGE_PATH, parameters)
            envelope = json.loads(body.decode("utf-8"))
        except Exception as error:  # pylint: disable=broad-except
            return {"error": self.client.redact("range query failed: %s" % error)}
        if not isinstance(envelope, dict) or envelope.get("status") != "success" or (status or 0) >= 400:
            message = envelope.get("error") if isinstance(envelope, dict) else None
            return {"error": self.client.redact("range query failed (HTTP %s): %s" % (status, message or "no message"))}
        data = envelope.get("data") or {}
        if data.get("resultType") != "matrix" or not isinstance(data.get("result"), list):
            return {"error": "range query did not return a matrix"}
        found = {}
        for entry in data["result"]:
            name = str((entry.get("metric") or {}).get(label, "")) or "(none)"
            points = []
            for moment, text in entry.get("values") or []:
                try:
                    number = float(text)
                except (TypeError, ValueError):
                    continue
                if math.isfinite(number):
                    points.append([round(float(moment), 3), number])
            found[name] = points
        return {"series": dict(sorted(found.items()))}


def chart_step(start: float, end: float) -> int:
    return max(1, int(math.ceil((end - start) / MAX_CHART_POINTS)))


class Queries:
    """The PromQL of the report for the rollout's namespaces, over a window of ``seconds``."""

    def __init__(self, namespaces: list[str], target_version: str, rate_window: str):
        self.selector = 'reporter="destination",destination_workload_namespace=~%s' % namespaces_regex(namespaces)
        self.unanswered = (
            'reporter="source",destination_service_namespace=~%s,destination_workload="unknown",'
            'response_code=~"5.."' % namespaces_regex(namespaces)
        )
        self.target = "destination_version=%s" % promql_string(target_version)
        self.rate_window = rate_window

    def _increase(self, seconds: int, *matchers: str, metric: str = REQUESTS) -> str:
        return "sum(increase(%s{%s}[%ds]))" % (metric, ",".join((self.selector,) + matchers), seconds)

    def target_requests(self, seconds: int) -> str:
        return self._increase(seconds, self.target)

    def target_error_rate(self, seconds: int) -> str:
        failures = "(%s or vector(0))" % self._increase(seconds, self.target, 'response_code=~"5.."')
        return "%s / %s" % (failures, self.target_requests(seconds))

    def target_latency(self, quantile: float, seconds: int) -> str:
        return "histogram_quantile(%s, sum by (le) (increase(%s{%s,%s}[%ds])))" % (
            quantile,
            BUCKETS,
            self.selector,
            self.target,
            seconds,
        )

    def all_requests(self, seconds: int) -> str:
        unanswered = "(sum(increase(%s{%s}[%ds])) or vector(0))" % (REQUESTS, self.unanswered, seconds)
        return "(%s + %s)" % (self._increase(seconds), unanswered)

    def availability(self, seconds: int) -> str:
        answered = "(%s or vector(0))" % self._increase(seconds, 'response_code!~"5.."')
        return "%s / %s" % (answered, self.all_requests(seconds))

    def restarts(self, namespaces: list[str], seconds: int) -> str:
        return "sum(increase(kube_pod_container_status_restarts_total{namespace=~%s}[%ds]))" % (
            namespaces_regex(namespaces),
            seconds,
        )

    def error_rate_by_version(self) -> str:
        # a version without any 5xx series has an error rate of 0, not no line at all
        requests = self.requests_by_version()
        failures = 'sum by (destination_version) (rate(%s{%s,response_code=~"5.."}[%s]))' % (
            REQUESTS,
            self.selector,
            self.rate_window,
        )
        return "(%s or 0 * %s) / %s" % (failures, requests, requests)

    def requests_by_version(self) -> str:
        return "sum by (destination_version) (rate(%s{%s}[%s]))" % (REQUESTS, self.selector, self.rate_window)

    def latency_by_version(self, quantile: float) -> str:
        return "histogram_quantile(%s, sum by (destination_version, le) (rate(%s{%s}[%s])))" % (
            quantile,
            BUCKETS,
            self.selector,
            self.rate_window,
        )


def instant_value(result: QueryResult) -> dict:
    """A classified answer as the report keeps it: ``kind``, ``value`` (only for a real number), ``message``."""
    return {
        "kind": result.kind,
        "value": result.value if result.kind == VALUE else None,
        "message": result.message or None,
    }
