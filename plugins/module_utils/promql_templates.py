# Copyright (c) 2025, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Built-in PromQL for Istio's standard metrics, so a gate does not hand-write ratios.

Each template takes ``namespace`` and ``workload`` (the destination workload, usually the
canary Deployment's name) and an optional ``window`` (a PromQL range, default ``1m``), and
looks only at what the receiving side reports (``reporter="destination"``).

The queries are written so their answer means what a gate needs:

* a workload **with traffic and no 5xx** gives ``error_rate`` 0 and ``success_rate`` 1,
  not an empty result: when no 5xx series exist the numerator falls back to
  ``total * 0``, which exists only where the denominator has series;
* a workload **without traffic** gives no data (an empty vector when no series exist,
  NaN for 0/0 or for a histogram without observations), so a gate fails closed instead of
  passing on silence.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Dict, Mapping, Optional

from ansible_collections.ceres.rollout.plugins.module_utils.durations import is_prometheus_duration

DEFAULT_WINDOW = "1m"
TEMPLATE_PARAMETERS = ("namespace", "workload", "window")
REQUIRED_TEMPLATE_PARAMETERS = ("namespace", "workload")


class TemplateError(ValueError):
    """A template name or parameter that cannot be rendered; the message names it."""


def _promql_string(value: str) -> str:
    # PromQL string literals use Go escaping; JSON's escaping of \\, \" and control
    # characters is a subset of it.
    return json.dumps(value, ensure_ascii=False)


def _destination_selector(namespace: str, workload: str, extra_matcher: str = "") -> str:
    matchers = [
        'reporter="destination"',
        "destination_workload_namespace=%s" % _promql_string(namespace),
        "destination_workload=%s" % _promql_string(workload),
    ]
    if extra_matcher:
        matchers.append(extra_matcher)
    return "{%s}" % ",".join(matchers)


def _request_rate(namespace: str, workload: str, window: str, extra_matcher: str = "") -> str:
    selector = _destination_selector(namespace, workload, extra_matcher)
    return "sum(rate(istio_requests_total%s[%s]))" % (selector, window)


def _share_of_requests(namespace: str, workload: str, window: str, response_matcher: str) -> str:
    matching = _request_rate(namespace, workload, window, response_matcher)
    total = _request_rate(namespace, workload, window)
    # "or (total * 0)": 0 when nothing matches but there is traffic; still empty without traffic.
    return "(%s or (%s * 0)) / %s" % (matching, total, total)


def _istio_success_rate(namespace: str, workload: str, window: str) -> str:
    return _share_of_requests(namespace, workload, window, 'response_code!~"5.."')


def _istio_error_rate(namespace: str, workload: str, window: str) -> str:
    return _share_of_requests(namespace, workload, window, 'response_code=~"5.."')


def _latency_quantile(quantile: float) -> Callable[[str, str, str], str]:
    def render(namespace: str, workload: str, window: str) -> str:
        selector = _destination_selector(namespace, workload)
        return "histogram_quantile(%s, sum by (le) (rate(istio_request_duration_milliseconds_bucket%s[%s])))" % (
            quantile,
            selector,
            window,
        )

    return render


TEMPLATES: Dict[str, Callable[[str, str, str], str]] = {
    # Share of requests answered without a 5xx, 0..1.
    "istio_success_rate": _istio_success_rate,
    # Share of requests answered with a 5xx, 0..1.
    "istio_error_rate": _istio_error_rate,
    # 95th / 99th percentile request duration in milliseconds.
    "istio_latency_p95": _latency_quantile(0.95),
    "istio_latency_p99": _latency_quantile(0.99),
}

TEMPLATE_NAMES = tuple(sorted(TEMPLATES))


def render_template(name: str, params: Optional[Mapping[str, Any]] = None) -> str:
    """Return the PromQL of built-in template ``name`` for ``params``.

    ``params`` needs ``namespace`` and ``workload``; ``window`` defaults to ``1m``.
    Raises :class:`TemplateError` naming the template or parameter that is wrong.
    """
    if name not in TEMPLATES:
        raise TemplateError("unknown template %r; known templates: %s" % (name, ", ".join(TEMPLATE_NAMES)))
    params = dict(params or {})
    unknown = sorted(set(params) - set(TEMPLATE_PARAMETERS))
    if unknown:
        raise TemplateError(
            "unknown parameter(s) %s for template %s; it takes %s"
            % (", ".join(unknown), name, ", ".join(TEMPLATE_PARAMETERS))
        )
    for required in REQUIRED_TEMPLATE_PARAMETERS:
        value = params.get(required)
        if not isinstance(value, str) or not value.strip():
            raise TemplateError("template %s needs parameter %s (a non-empty string)" % (name, required))
    window = params.get("window")
    if window is None:
        window = DEFAULT_WINDOW
    if not is_prometheus_duration(window):
        raise TemplateError(
            "parameter window of template %s must be a PromQL duration such as 30s, 1m or 5m, got %r" % (name, window)
        )
    return TEMPLATES[name](params["namespace"], params["workload"], window)
