# Copyright (c) 2025, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Built-in PromQL for Istio's standard metrics, written so a dead, fresh or idle canary cannot fool a gate.

Parameters (every template takes the same set; each uses what it needs):

``namespace``, ``workload`` (required)
    the canary workload (its Deployment's name) and its namespace.
``service``
    the Kubernetes Service the canary sits behind (its VirtualService's destination host).
    Required by the ratio templates and used by ``istio_request_count``: without it the
    caller-side failures of a canary with no pod left cannot be seen.
``window``
    the PromQL range of the rates (default ``1m``).
``scrape_interval``
    how often Prometheus scrapes the proxies (default ``15s``); ``window`` and ``freshness``
    must each cover at least two scrapes, or ``rate()`` has nothing to work with.
``freshness``
    the short range of the freshness guard (default four scrape intervals).

What the queries read, and why:

* the canary's own requests, as **its sidecar** reports them: ``istio_requests_total`` and
  ``istio_request_duration_milliseconds_bucket`` with ``reporter="destination"``,
  ``destination_workload_namespace`` and ``destination_workload``;
* the failures **no canary pod answered**: when every pod of a subset is gone, the caller's
  proxy answers 503 ``UH`` (no healthy upstream; ``UF`` and ``UO`` likewise) and, with no
  peer to ask, reports it with ``reporter="source"``, ``destination_workload="unknown"``,
  and only the Service known (``destination_service_namespace``,
  ``destination_service_name``). Those requests never reach the canary's own series, which
  simply stop growing. The ratio templates count them as the canary's failed requests. The
  subset is not among Istio's labels, so such a failure of another subset of the same
  Service counts too: the safe side, since the stable having no pod is no time to go on.

So:

* a canary **with traffic and no 5xx** gives ``istio_error_rate`` 0 and
  ``istio_success_rate`` 1, never an empty result (absent terms count as 0);
* a **dead** canary (all pods gone) gives an error rate that climbs towards 1 from the first
  scrapes of the caller's 503s, not the 0 of its stale series; its latency is "no data";
* a canary that **served nothing in the last** ``freshness`` (no request, no failure) gives
  "no data" from every ratio and latency template, never the stale number of an older part
  of the window; and a **fresh** canary, whose series do not exist yet, gives "no data" too
  (the gate's ``warmup`` covers that stretch);
* ``istio_request_count`` is the number of requests behind a ratio (the canary's plus the
  caller-side failures) in the window, for the sample-size rule.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ansible_collections.ceres.rollout.plugins.module_utils.common.durations import (
    DurationError,
    prometheus_duration_seconds,
    prometheus_duration_text,
)
from ansible_collections.ceres.rollout.plugins.module_utils.common.errors import CeresError

DEFAULT_WINDOW = "1m"
DEFAULT_SCRAPE_INTERVAL = "15s"
FRESHNESS_SCRAPES = 4
"""The freshness guard's default range, in scrape intervals."""
MIN_SCRAPES_PER_RANGE = 2
TEMPLATE_PARAMETERS = ("namespace", "workload", "service", "window", "scrape_interval", "freshness")
REQUIRED_TEMPLATE_PARAMETERS = ("namespace", "workload")

ERROR_RATE = "istio_error_rate"
SUCCESS_RATE = "istio_success_rate"
REQUEST_COUNT = "istio_request_count"
LATENCY_P95 = "istio_latency_p95"
LATENCY_P99 = "istio_latency_p99"


class TemplateError(CeresError, ValueError):
    """A template name or parameter that cannot be rendered; the message names it."""


@dataclass(frozen=True)
class TemplateParams:
    """Validated template parameters; ranges are PromQL duration strings."""

    namespace: str
    workload: str
    service: str | None
    window: str
    freshness: str


def _promql_string(value: str) -> str:
    # PromQL string literals use Go escaping; JSON's escaping of \\, \" and control
    # characters is a subset of it.
    return json.dumps(value, ensure_ascii=False)


def _selector(*matchers: str) -> str:
    return "{%s}" % ",".join(matchers)


def _canary_selector(params: TemplateParams, *extra: str) -> str:
    """The canary's requests as its own sidecar reports them."""
    return _selector(
        'reporter="destination"',
        "destination_workload_namespace=%s" % _promql_string(params.namespace),
        "destination_workload=%s" % _promql_string(params.workload),
        *extra,
    )


def _unanswered_selector(params: TemplateParams) -> str:
    """Requests for the canary's Service that no pod answered, as the caller reports them."""
    return _selector(
        'reporter="source"',
        "destination_service_namespace=%s" % _promql_string(params.namespace),
        "destination_service_name=%s" % _promql_string(params.service),
        'destination_workload="unknown"',
        'response_code=~"5.."',
    )


def _summed(function: str, selector: str, window: str) -> str:
    """``sum(function(istio_requests_total{...}[window])) or vector(0)``: 0 when no series match."""
    return "(sum(%s(istio_requests_total%s[%s])) or vector(0))" % (function, selector, window)


def _canary_and_unanswered(params: TemplateParams, function: str, window: str, *canary_extra: str) -> str:
    canary = _summed(function, _canary_selector(params, *canary_extra), window)
    if params.service is None:
        return canary
    return "(%s + %s)" % (canary, _summed(function, _unanswered_selector(params), window))


def _fresh(params: TemplateParams, include_unanswered: bool) -> str:
    """Keeps a result only while the canary's requests (or its unanswered ones) still grow."""
    if include_unanswered:
        recent = _canary_and_unanswered(params, "increase", params.freshness)
    else:
        recent = _summed("increase", _canary_selector(params), params.freshness)
    return "on() (%s > 0)" % recent


def _share(params: TemplateParams, numerator: str) -> str:
    # 0/0 is NaN: no data when there was no request at all in the window.
    requests = _canary_and_unanswered(params, "rate", params.window)
    return "(%s / %s) and %s" % (numerator, requests, _fresh(params, include_unanswered=True))


def _istio_error_rate(params: TemplateParams) -> str:
    failures = _canary_and_unanswered(params, "rate", params.window, 'response_code=~"5.."')
    return _share(params, failures)


def _istio_success_rate(params: TemplateParams) -> str:
    answered = _summed("rate", _canary_selector(params, 'response_code!~"5.."'), params.window)
    return _share(params, answered)


def _istio_request_count(params: TemplateParams) -> str:
    # No series at all (a typo, a canary never routed to): no data rather than a made-up 0.
    canary = "sum(increase(istio_requests_total%s[%s]))" % (_canary_selector(params), params.window)
    if params.service is None:
        return canary
    unanswered = "sum(increase(istio_requests_total%s[%s]))" % (_unanswered_selector(params), params.window)
    return "(%s + (%s or vector(0))) or %s" % (canary, unanswered, unanswered)


def _latency_quantile(quantile: float) -> Callable[[TemplateParams], str]:
    def render(params: TemplateParams) -> str:
        buckets = "sum by (le) (rate(istio_request_duration_milliseconds_bucket%s[%s]))" % (
            _canary_selector(params),
            params.window,
        )
        return "histogram_quantile(%s, %s) and %s" % (quantile, buckets, _fresh(params, include_unanswered=False))

    return render


TEMPLATES: dict[str, Callable[[TemplateParams], str]] = {
    # Share of requests answered without a 5xx, 0..1.
    SUCCESS_RATE: _istio_success_rate,
    # Share of requests answered with a 5xx or not answered by any pod, 0..1.
    ERROR_RATE: _istio_error_rate,
    # Requests behind the ratios in the window.
    REQUEST_COUNT: _istio_request_count,
    # 95th / 99th percentile request duration in milliseconds.
    LATENCY_P95: _latency_quantile(0.95),
    LATENCY_P99: _latency_quantile(0.99),
}
NEEDS_SERVICE = (ERROR_RATE, SUCCESS_RATE)
# The values each template's metric can take (None: unbounded). A value outside them is a broken query
# or broken metrics (a counter reset summed wrongly, buckets in the wrong unit), never a value to compare:
# a negative error ratio or latency would pass any max.
TEMPLATE_DOMAINS = {
    SUCCESS_RATE: (0.0, 1.0),
    ERROR_RATE: (0.0, 1.0),
    REQUEST_COUNT: (0.0, None),
    LATENCY_P95: (0.0, None),
    LATENCY_P99: (0.0, None),
}

TEMPLATE_NAMES = tuple(sorted(TEMPLATES))


def render_template(name: str, params: Mapping[str, Any] | None = None) -> str:
    """Return the PromQL of built-in template ``name`` for ``params``.

    Raises :class:`TemplateError` naming the template or parameter that is wrong.
    """
    validated = template_params(name, params)
    return TEMPLATES[name](validated)


def template_params(name: str, params: Mapping[str, Any] | None) -> TemplateParams:
    """Validate ``params`` for template ``name`` and fill in the defaults."""
    if name not in TEMPLATES:
        raise TemplateError("unknown template %r; known templates: %s" % (name, ", ".join(TEMPLATE_NAMES)))
    params = dict(params or {})
    unknown = sorted(set(params) - set(TEMPLATE_PARAMETERS))
    if unknown:
        raise TemplateError(
            "unknown parameter(s) %s for template %s; it takes %s"
            % (", ".join(unknown), name, ", ".join(TEMPLATE_PARAMETERS))
        )
    required = REQUIRED_TEMPLATE_PARAMETERS + (("service",) if name in NEEDS_SERVICE else ())
    for parameter in required:
        _name_parameter(name, parameter, params.get(parameter))
    service = params.get("service")
    if service is not None:
        _name_parameter(name, "service", service)

    scrape_seconds = _range_seconds(name, "scrape_interval", params.get("scrape_interval"), DEFAULT_SCRAPE_INTERVAL)
    window = params.get("window")
    if window is None:
        window = DEFAULT_WINDOW
    freshness = params.get("freshness")
    if freshness is None:
        freshness = prometheus_duration_text(FRESHNESS_SCRAPES * scrape_seconds)
    for parameter, value in (("window", window), ("freshness", freshness)):
        seconds = _range_seconds(name, parameter, value, None)
        if seconds < MIN_SCRAPES_PER_RANGE * scrape_seconds:
            raise TemplateError(
                "parameter %s (%s) of template %s must cover at least %d scrape intervals (scrape_interval %s): "
                "rate() needs two samples in the range"
                % (parameter, value, name, MIN_SCRAPES_PER_RANGE, prometheus_duration_text(scrape_seconds))
            )
    return TemplateParams(
        namespace=params["namespace"],
        workload=params["workload"],
        service=service,
        window=window,
        freshness=freshness,
    )


def _name_parameter(template: str, parameter: str, value: Any) -> None:
    if not isinstance(value, str) or not value.strip():
        raise TemplateError("template %s needs parameter %s (a non-empty string)" % (template, parameter))


def _range_seconds(template: str, parameter: str, value: Any, default: str | None) -> float:
    if value is None:
        value = default
    try:
        return prometheus_duration_seconds(value)
    except DurationError:
        raise TemplateError(
            "parameter %s of template %s must be a PromQL duration such as 30s, 1m or 5m, got %r"
            % (parameter, template, value)
        )
