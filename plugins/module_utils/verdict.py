# Copyright (c) 2025, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The metric gate's verdict engine: sample PromQL checks over time, decide pass/fail/inconclusive.

Rules (fail-closed):

* Every check is sampled ``samples`` times, one round every ``interval`` seconds, the first
  round at once. The checks of one round are queried concurrently.
* A sample is *good* when it is a finite number inside ``[min, max]`` (bounds inclusive).
* A number outside the bounds is a *breach*. More than ``failure_limit`` breaches fail the
  check.
* *No data* (empty result, NaN, +/-Inf) follows ``no_data``: ``fail`` counts it as a breach,
  ``inconclusive`` makes the check inconclusive, ``pass`` accepts it as a good sample.
* A response with warnings (possibly partial) makes the check inconclusive.
* A *query error* (unreachable server, timeout, ``status: error``, more than one series)
  does not use up a sample: the sample is taken again in the next round. More than
  ``error_limit`` consecutive errors end the check with status ``error``.
* Sampling stops as soon as one check can no longer pass, so a breach is acted on at once
  instead of after the soak. Checks still sampling at that moment are ``incomplete``.
* The verdict is ``fail`` when a check failed, else ``inconclusive`` when a check is
  inconclusive or in error, else ``pass`` (every check collected all its samples).
"""

from __future__ import annotations

import math
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

from ansible_collections.ceres.rollout.plugins.module_utils.durations import (
    DurationError,
    parse_duration_seconds,
)
from ansible_collections.ceres.rollout.plugins.module_utils.prometheus import (
    INCONCLUSIVE,
    NO_DATA,
    QUERY_ERROR,
    VALUE,
    QueryResult,
)
from ansible_collections.ceres.rollout.plugins.module_utils.promql_templates import (
    TemplateError,
    render_template,
)

VERDICT_PASS = "pass"
VERDICT_FAIL = "fail"
VERDICT_INCONCLUSIVE = "inconclusive"

# Per-check status.
STATUS_PASS = "pass"
STATUS_FAIL = "fail"
STATUS_INCONCLUSIVE = "inconclusive"
STATUS_ERROR = "error"
STATUS_INCOMPLETE = "incomplete"
_STATUS_SAMPLING = "sampling"
# A check in one of these can no longer pass, so the gate stops sampling.
_DECIDING_STATUSES = (STATUS_FAIL, STATUS_INCONCLUSIVE, STATUS_ERROR)

NO_DATA_POLICIES = ("fail", "inconclusive", "pass")
MAX_CONCURRENT_QUERIES = 16


class GateConfigError(ValueError):
    """Gate settings or a check definition that cannot be used; the message names the field."""


@dataclass(frozen=True)
class GateCheck:
    """One PromQL expression and the bounds its value must stay within."""

    name: str
    query: str
    min: Optional[float] = None
    max: Optional[float] = None

    def breach_of(self, value: float) -> Optional[str]:
        """Describe how ``value`` breaks the bounds, or None when it is inside them."""
        if self.min is not None and value < self.min:
            return "%s is below min %s" % (_number(value), _number(self.min))
        if self.max is not None and value > self.max:
            return "%s is above max %s" % (_number(value), _number(self.max))
        return None


@dataclass(frozen=True)
class GatePolicy:
    """How many samples, how often, and how much trouble is tolerated."""

    samples: int = 1
    interval_seconds: float = 30
    failure_limit: int = 0
    error_limit: int = 2
    no_data: str = "fail"


@dataclass
class CheckProgress:
    """What one check has seen so far; becomes the check's entry in the result."""

    check: GateCheck
    values: List[Optional[float]] = field(default_factory=list)
    breaches: int = 0
    errors: int = 0
    consecutive_errors: int = 0
    status: str = _STATUS_SAMPLING
    message: str = ""

    @property
    def sampling(self) -> bool:
        return self.status == _STATUS_SAMPLING

    def record(self, outcome: QueryResult, policy: GatePolicy) -> None:
        """Fold one classified query answer into this check's state."""
        if outcome.is_error:
            self._record_error(outcome, policy)
            return
        self.consecutive_errors = 0
        self.values.append(outcome.value if outcome.kind in (VALUE, INCONCLUSIVE) else None)
        if outcome.kind == VALUE:
            breach = self.check.breach_of(outcome.value)
            if breach:
                self._record_breach(breach, policy)
        elif outcome.kind == NO_DATA:
            self._record_no_data(outcome, policy)
        else:
            self.status = STATUS_INCONCLUSIVE
            self.message = outcome.message
        if self.sampling and len(self.values) >= policy.samples:
            self.status = STATUS_PASS
            self.message = self._pass_summary()

    def _pass_summary(self) -> str:
        summary = "%d of %d samples accepted" % (len(self.values) - self.breaches, len(self.values))
        tolerated = []
        if self.breaches:
            tolerated.append("%d breaching sample(s) within failure_limit" % self.breaches)
        if self.errors:
            tolerated.append("%d query error(s) retried" % self.errors)
        return summary + (" (%s)" % ", ".join(tolerated) if tolerated else "")

    def _record_error(self, outcome: QueryResult, policy: GatePolicy) -> None:
        self.errors += 1
        self.consecutive_errors += 1
        self.message = outcome.message
        if self.consecutive_errors > policy.error_limit:
            self.status = STATUS_ERROR
            self.message = "%d consecutive query errors (error_limit %d): %s" % (
                self.consecutive_errors,
                policy.error_limit,
                outcome.message,
            )

    def _record_breach(self, breach: str, policy: GatePolicy) -> None:
        self.breaches += 1
        self.message = "%s (%d breaching sample(s), failure_limit %d)" % (breach, self.breaches, policy.failure_limit)
        if self.breaches > policy.failure_limit:
            self.status = STATUS_FAIL

    def _record_no_data(self, outcome: QueryResult, policy: GatePolicy) -> None:
        if policy.no_data == "fail":
            self._record_breach("no data: %s" % outcome.message, policy)
        elif policy.no_data == "inconclusive":
            self.status = STATUS_INCONCLUSIVE
            self.message = "no data (no_data=inconclusive): %s" % outcome.message

    def as_result(self) -> Dict[str, Any]:
        return {
            "name": self.check.name,
            "query": self.check.query,
            "min": self.check.min,
            "max": self.check.max,
            "values": list(self.values),
            "breaches": self.breaches,
            "errors": self.errors,
            "status": self.status,
            "message": self.message,
        }


@dataclass
class GateResult:
    verdict: str
    checks: List[Dict[str, Any]]
    elapsed: float
    reason: str
    rounds: int

    @property
    def passed(self) -> bool:
        return self.verdict == VERDICT_PASS

    def as_dict(self) -> Dict[str, Any]:
        return {
            "verdict": self.verdict,
            "passed": self.passed,
            "checks": self.checks,
            "elapsed": round(self.elapsed, 3),
            "reason": self.reason,
        }


def run_gate(
    checks: Sequence[GateCheck],
    policy: GatePolicy,
    query: Callable[[str], QueryResult],
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> GateResult:
    """Sample ``checks`` with ``query`` under ``policy`` and return the verdict.

    ``query`` is usually :meth:`PrometheusClient.query`; ``clock`` and ``sleep`` are
    injectable so tests run without waiting.
    """
    if not checks:
        raise GateConfigError("checks must contain at least one check")
    started_at = clock()
    progress = [CheckProgress(check) for check in checks]
    rounds = 0
    worker_count = min(len(progress), MAX_CONCURRENT_QUERIES)
    with ThreadPoolExecutor(max_workers=worker_count, thread_name_prefix="metric-gate") as executor:
        while True:
            round_started_at = clock()
            _sample_round(executor, query, progress, policy)
            rounds += 1
            if _cannot_pass(progress) or not any(check_progress.sampling for check_progress in progress):
                break
            wait_seconds = round_started_at + policy.interval_seconds - clock()
            if wait_seconds > 0:
                sleep(wait_seconds)
    _mark_unfinished_checks(progress, policy)
    verdict = _verdict(progress)
    return GateResult(
        verdict=verdict,
        checks=[check_progress.as_result() for check_progress in progress],
        elapsed=clock() - started_at,
        reason=_reason(verdict, progress, policy),
        rounds=rounds,
    )


def _sample_round(executor: ThreadPoolExecutor, query, progress: Sequence[CheckProgress], policy: GatePolicy) -> None:
    """Query every check still sampling, all at once, and record the answers."""
    due = [check_progress for check_progress in progress if check_progress.sampling]
    outcomes = list(executor.map(lambda check_progress: _safe_query(query, check_progress.check.query), due))
    for check_progress, outcome in zip(due, outcomes):
        check_progress.record(outcome, policy)


def _mark_unfinished_checks(progress: Sequence[CheckProgress], policy: GatePolicy) -> None:
    deciders = [check_progress.check.name for check_progress in progress if check_progress.status in _DECIDING_STATUSES]
    for check_progress in progress:
        if check_progress.sampling:
            check_progress.status = STATUS_INCOMPLETE
            check_progress.message = "sampling stopped after %d of %d samples: %s decided the verdict" % (
                len(check_progress.values),
                policy.samples,
                ", ".join(repr(name) for name in deciders),
            )


def _safe_query(query: Callable[[str], QueryResult], promql: str) -> QueryResult:
    # Fail closed on anything unexpected from the query function: it is a query error.
    try:
        return query(promql)
    except Exception as unexpected:  # pylint: disable=broad-except
        return QueryResult(QUERY_ERROR, message="unexpected error while querying: %r" % (unexpected,))


def _cannot_pass(progress: Sequence[CheckProgress]) -> bool:
    return any(check_progress.status in _DECIDING_STATUSES for check_progress in progress)


def _verdict(progress: Sequence[CheckProgress]) -> str:
    statuses = {check_progress.status for check_progress in progress}
    if STATUS_FAIL in statuses:
        return VERDICT_FAIL
    if statuses == {STATUS_PASS}:
        return VERDICT_PASS
    return VERDICT_INCONCLUSIVE


def _reason(verdict: str, progress: Sequence[CheckProgress], policy: GatePolicy) -> str:
    if verdict == VERDICT_PASS:
        return "all %d check(s) passed %d sample(s) each" % (len(progress), policy.samples)
    deciding = [
        "%s %s: %s" % (check_progress.check.name, check_progress.status, check_progress.message)
        for check_progress in progress
        if check_progress.status in _DECIDING_STATUSES
    ]
    return "; ".join(deciding) or "not every check completed its samples"


def _number(value: float) -> str:
    return "%g" % value


# ---------------------------------------------------------------------------------------
# Turning user input (module options, role variables) into checks and a policy.


def build_checks(raw_checks: Any) -> List[GateCheck]:
    """Validate check definitions and resolve templates into :class:`GateCheck` objects.

    Each entry needs ``name``, exactly one of ``query`` or ``template`` (with ``params``),
    and ``min`` and/or ``max`` with ``min <= max``. Raises :class:`GateConfigError`
    naming the offending field, for example ``checks[1].max``.
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
        if not isinstance(query, str) or not query.strip():
            raise GateConfigError("%s.query must be a non-empty PromQL string" % where)
    else:
        if params is not None and not isinstance(params, Mapping):
            raise GateConfigError("%s.params must be a dict" % where)
        try:
            query = render_template(template, params)
        except TemplateError as template_error:
            raise GateConfigError("%s.template: %s" % (where, template_error))

    lower = _bound(raw_check.get("min"), "%s.min" % where)
    upper = _bound(raw_check.get("max"), "%s.max" % where)
    if lower is None and upper is None:
        raise GateConfigError("%s: set min and/or max" % where)
    if lower is not None and upper is not None and lower > upper:
        raise GateConfigError("%s.min (%s) is greater than max (%s)" % (where, _number(lower), _number(upper)))
    return GateCheck(name=name, query=query, min=lower, max=upper)


def _bound(raw_bound: Any, field_name: str) -> Optional[float]:
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


def build_policy(samples: Any = 1, interval: Any = 30, failure_limit: Any = 0, error_limit: Any = 2, no_data: str = "fail") -> GatePolicy:
    """Validate the sampling settings; ``interval`` is seconds or a duration string (``30s``, ``2m``)."""
    try:
        interval_seconds = parse_duration_seconds(interval)
    except DurationError as duration_error:
        raise GateConfigError("interval: %s" % duration_error)
    samples = _whole_number(samples, "samples", minimum=1)
    failure_limit = _whole_number(failure_limit, "failure_limit", minimum=0)
    error_limit = _whole_number(error_limit, "error_limit", minimum=0)
    if no_data not in NO_DATA_POLICIES:
        raise GateConfigError("no_data must be one of %s, got %r" % (", ".join(NO_DATA_POLICIES), no_data))
    return GatePolicy(
        samples=samples,
        interval_seconds=interval_seconds,
        failure_limit=failure_limit,
        error_limit=error_limit,
        no_data=no_data,
    )


def _whole_number(value: Any, field_name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise GateConfigError("%s must be a whole number, got %r" % (field_name, value))
    if value < minimum:
        raise GateConfigError("%s must be at least %d, got %d" % (field_name, minimum, value))
    return value
