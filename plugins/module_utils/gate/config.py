# Copyright (c) 2025, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Turning a gate's user input (module options, role variables) into checks and a policy.

Every problem is a :class:`GateConfigError` naming the field, raised before any query runs.
Templates are resolved here, and so is the sample-size rule: a check on a built-in error or
success rate template gets, unless it says otherwise, a floor of requests behind each
sample from the rule of three (zero failures in ``n`` requests bound the failure rate at
about ``3 / n`` with 95% confidence, so backing ``max: 0.001`` takes 3,000 requests).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ansible_collections.ceres.rollout.plugins.module_utils.common.durations import (
    DurationError,
    parse_duration_seconds,
)
from ansible_collections.ceres.rollout.plugins.module_utils.gate.templates import (
    ERROR_RATE,
    REQUEST_COUNT,
    SUCCESS_RATE,
    TEMPLATE_DOMAINS,
    TemplateError,
    render_template,
)
from ansible_collections.ceres.rollout.plugins.module_utils.gate.verdict import (
    GateCheck,
    GateConfigError,
    GatePolicy,
    format_number,
)

NO_DATA_POLICIES = ("fail", "inconclusive", "pass")
RULE_OF_THREE = 3


def build_checks(raw_checks: Any) -> list[GateCheck]:
    """Validate check definitions and resolve templates into :class:`GateCheck` objects.

    Each entry needs ``name``, exactly one of ``query`` or ``template`` (with ``params``),
    and ``min`` and/or ``max`` with ``min <= max``; ``min_requests`` and ``requests_query``
    set the evidence a sample needs. Raises :class:`GateConfigError` naming the offending
    field, for example ``checks[1].max``.
    """
    if not isinstance(raw_checks, (list, tuple)) or not raw_checks:
        raise GateConfigError("checks must be a non-empty list of checks")
    gate_checks = []
    seen_names = set()
    for index, raw_check in enumerate(raw_checks):
        gate_check = _build_check(index, raw_check)
        if gate_check.name in seen_names:
            raise GateConfigError("checks[%d].name: %r is used by more than one check" % (index, gate_check.name))
        seen_names.add(gate_check.name)
        gate_checks.append(gate_check)
    return gate_checks


def _build_check(index: int, raw_check: Any) -> GateCheck:
    where = "checks[%d]" % index
    if not isinstance(raw_check, Mapping):
        raise GateConfigError("%s must be a dict with name, query or template, min and/or max" % where)
    name = raw_check.get("name")
    if not isinstance(name, str) or not name.strip():
        raise GateConfigError("%s.name is required (a non-empty string)" % where)
    where = "checks[%d] (%s)" % (index, name)

    query = raw_check.get("query")
    template = raw_check.get("template")
    params = raw_check.get("params")
    if (query is None) == (template is None):
        raise GateConfigError("%s: give exactly one of query or template" % where)
    if query is not None:
        if params:
            raise GateConfigError("%s.params is only used with template, not with query" % where)
        query = _promql(raw_check.get("query"), "%s.query" % where)
    else:
        if params is not None and not isinstance(params, Mapping):
            raise GateConfigError("%s.params must be a dict" % where)
        query = _render(template, params, where)

    lower = _bound(raw_check.get("min"), "%s.min" % where)
    upper = _bound(raw_check.get("max"), "%s.max" % where)
    if lower is None and upper is None:
        raise GateConfigError("%s: set min and/or max" % where)
    if lower is not None and upper is not None and lower > upper:
        raise GateConfigError(
            "%s.min (%s) is greater than max (%s)" % (where, format_number(lower), format_number(upper))
        )
    requests_query, min_requests = _evidence(raw_check, template, params, lower, upper, where)
    return GateCheck(
        name=name,
        query=query,
        min=lower,
        max=upper,
        requests_query=requests_query,
        min_requests=min_requests,
        domain=TEMPLATE_DOMAINS.get(template) if template is not None else None,
        domain_of=template,
    )


def _render(template: Any, params: Mapping[str, Any] | None, where: str) -> str:
    try:
        return render_template(template, params)
    except TemplateError as template_error:
        raise GateConfigError("%s.template: %s" % (where, template_error))


def _promql(value: Any, field_name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise GateConfigError("%s must be a non-empty PromQL string" % field_name)
    return value


def _evidence(
    raw_check: Mapping[str, Any],
    template: str | None,
    params: Mapping[str, Any] | None,
    lower: float | None,
    upper: float | None,
    where: str,
):
    """The request-count query and the floor of requests a sample needs, or (None, None)."""
    raw_floor = raw_check.get("min_requests")
    raw_requests_query = raw_check.get("requests_query")
    if raw_floor is None:
        min_requests = default_min_requests(template, lower, upper)
    else:
        min_requests = _bound(raw_floor, "%s.min_requests" % where)
        if min_requests < 0:
            raise GateConfigError("%s.min_requests must be at least 0, got %s" % (where, format_number(min_requests)))
    if not min_requests:
        if raw_requests_query is not None and raw_floor is not None:
            raise GateConfigError("%s.requests_query is only used with min_requests above 0" % where)
        return None, None
    if raw_requests_query is not None:
        return _promql(raw_requests_query, "%s.requests_query" % where), min_requests
    if template is None:
        raise GateConfigError(
            "%s.min_requests needs requests_query (a PromQL count of the requests behind the query's value)" % where
        )
    request_params = dict(params or {})
    return _render(REQUEST_COUNT, request_params, where), min_requests


def default_min_requests(template: str | None, lower: float | None, upper: float | None) -> float | None:
    """The rule-of-three floor for an error or success rate template, or None.

    ``istio_error_rate`` with ``max: m`` needs ``ceil(3 / m)`` requests; ``istio_success_rate``
    with ``min: s`` needs ``ceil(3 / (1 - s))``. No floor when the bound leaves no room for a
    failure (``max: 0``, ``min: 1``) or for any other check.
    """
    if template == ERROR_RATE and upper is not None and upper > 0:
        tolerated = upper
    elif template == SUCCESS_RATE and lower is not None and lower < 1:
        tolerated = 1 - lower
    else:
        return None
    # Rounded first, so 3 / 0.003 (1000.0000000000001 in binary) is 1000.
    return float(math.ceil(round(RULE_OF_THREE / tolerated, 6)))


def _bound(raw_bound: Any, field_name: str) -> float | None:
    if raw_bound is None:
        return None
    if isinstance(raw_bound, bool):
        raise GateConfigError("%s must be a number, got a boolean" % field_name)
    try:
        bound = float(raw_bound)
    except (TypeError, ValueError):
        raise GateConfigError("%s must be a number, got %r" % (field_name, raw_bound))
    if not math.isfinite(bound):
        raise GateConfigError("%s must be a finite number, got %r" % (field_name, raw_bound))
    return bound


def build_gate(params: Mapping[str, Any]) -> tuple[list[GateCheck], GatePolicy]:
    """The checks and the policy of metric_gate's validated options (the module's and its action's)."""
    checks = build_checks(params["checks"])
    policy = build_policy(
        samples=params["samples"],
        interval=params["interval"],
        failure_limit=params["failure_limit"],
        error_limit=params["error_limit"],
        no_data=params["no_data"],
        warmup=params["warmup"],
    )
    return checks, policy


def build_policy(
    samples: Any = 1,
    interval: Any = 30,
    failure_limit: Any = 0,
    error_limit: Any = 2,
    no_data: str = "fail",
    warmup: Any = 0,
) -> GatePolicy:
    """Validate the sampling settings; ``interval`` and ``warmup`` are seconds or duration strings (``30s``, ``2m``)."""
    interval_seconds = _duration(interval, "interval")
    warmup_seconds = _duration(warmup, "warmup")
    samples = _wholeformat_number(samples, "samples", minimum=1)
    failure_limit = _wholeformat_number(failure_limit, "failure_limit", minimum=0)
    error_limit = _wholeformat_number(error_limit, "error_limit", minimum=0)
    if no_data not in NO_DATA_POLICIES:
        raise GateConfigError("no_data must be one of %s, got %r" % (", ".join(NO_DATA_POLICIES), no_data))
    if failure_limit >= samples:
        raise GateConfigError(
            "failure_limit (%d) must be lower than samples (%d): pass needs samples - failure_limit accepted "
            "samples, so with failure_limit >= samples a gate could pass on no accepted sample at all"
            % (failure_limit, samples)
        )
    if interval_seconds == 0 and samples > 1:
        raise GateConfigError(
            "interval must be more than 0 when samples is more than 1 (samples %d): the soak would take "
            "milliseconds and every sample would see the same data" % samples
        )
    if interval_seconds == 0 and warmup_seconds > 0:
        raise GateConfigError(
            "interval must be more than 0 with a warmup (warmup %ds): the gate would query "
            "in a busy loop until the warm-up ends" % warmup_seconds
        )
    return GatePolicy(
        samples=samples,
        interval_seconds=interval_seconds,
        failure_limit=failure_limit,
        error_limit=error_limit,
        no_data=no_data,
        warmup_seconds=warmup_seconds,
    )


def _duration(value: Any, field_name: str) -> int:
    try:
        return parse_duration_seconds(value)
    except DurationError as duration_error:
        raise GateConfigError("%s: %s" % (field_name, duration_error))


def _wholeformat_number(value: Any, field_name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise GateConfigError("%s must be a whole number, got %r" % (field_name, value))
    if value < minimum:
        raise GateConfigError("%s must be at least %d, got %d" % (field_name, minimum, value))
    return value
