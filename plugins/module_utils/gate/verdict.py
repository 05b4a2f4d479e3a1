# Copyright (c) 2025, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The metric gate's verdict engine: sample PromQL checks over time, decide pass/fail/inconclusive.

Rules (fail-closed):

* Every check collects ``samples`` samples, one round every ``interval`` seconds, the first
  round at once. The queries of one round (values and request counts) run concurrently.
* A sample is *accepted* when it is a finite number inside ``[min, max]`` (bounds inclusive)
  backed by at least ``min_requests`` requests (when the check has a floor).
* A number outside the bounds is a *breach*, whatever the number of requests behind it.
* *No data* (empty result, NaN, +/-Inf) follows ``no_data``: ``fail`` counts it as a breach,
  ``inconclusive`` makes the check inconclusive, ``pass`` accepts it.
* An in-bound number with fewer than ``min_requests`` requests behind it is *not enough
  evidence*: never accepted.
* During ``warmup`` (seconds from the first round), a sample without data or without
  enough evidence neither passes nor fails: it is shown in ``values`` but not counted, and
  the check takes another sample. A breach during warm-up counts at once.
* ``pass`` needs ``samples - failure_limit`` accepted samples per check: more than
  ``failure_limit`` breaches fail the check; more than ``failure_limit`` samples that were
  breaches or not enough evidence make it inconclusive ("not enough evidence").
* A response with warnings (possibly partial) makes the check inconclusive.
* A *query error* (unreachable server, timeout, ``status: error``, more than one series)
  does not use up a sample: the sample is taken again in the next round. More than
  ``error_limit`` consecutive errors end the check with status ``error``.
* Sampling stops as soon as one check can no longer pass, so a breach is acted on at once
  instead of after the soak. Checks still sampling at that moment are ``incomplete``.
* The verdict is ``fail`` when a check failed, else ``inconclusive`` when a check is
  inconclusive or in error, else ``pass`` (every check collected all its samples).
* A caller's ``before_round`` hook may stop the gate before a round (:class:`GateStopped`,
  for example when the run lost its lock): no more rounds; the checks still sampling are
  ``incomplete`` and the verdict is ``inconclusive``, never ``pass``.

Turning module options into checks and a policy is :mod:`gate_config`'s job.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.ceres.rollout.plugins.module_utils.common.errors import CeresError
from ansible_collections.ceres.rollout.plugins.module_utils.gate.prometheus import (
    INCONCLUSIVE,
    NO_DATA,
    QUERY_ERROR,
    VALUE,
    QueryResult,
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

MAX_CONCURRENT_QUERIES = 16


class GateConfigError(CeresError, ValueError):
    """Gate settings or a check definition that cannot be used; the message names the field."""


class GateStopped(CeresError):
    """Raised by a ``before_round`` hook of :func:`run_gate` to stop sampling; the message says why."""


@dataclass(frozen=True)
class GateCheck:
    """One PromQL expression, the bounds its value must stay within, and the evidence it needs.

    ``requests_query`` answers how many requests are behind a value; a sample is accepted
    only when that is at least ``min_requests`` (no floor when ``min_requests`` is None).
    """

    name: str
    query: str
    min: float | None = None
    max: float | None = None
    requests_query: str | None = None
    min_requests: float | None = None
    # The values the metric can take, (lowest, highest) with None for unbounded, and what names it
    # (a built-in template); None for a user's query, whose values are the user's to judge.
    domain: tuple[float | None, float | None] | None = None
    domain_of: str | None = None

    @property
    def needs_evidence(self) -> bool:
        return self.min_requests is not None and self.requests_query is not None

    def outside_domain(self, value: float) -> str | None:
        """Describe how ``value`` cannot be a value of the metric, or None when it can (or no domain is known)."""
        if self.domain is None:
            return None
        lowest, highest = self.domain
        if (lowest is None or value >= lowest) and (highest is None or value <= highest):
            return None
        return "%s returned %s, outside the domain [%s, %s] of %s: the query or its metrics are wrong" % (
            self.name,
            format_number(value),
            "-inf" if lowest is None else format_number(lowest),
            "inf" if highest is None else format_number(highest),
            self.domain_of or "the metric",
        )

    def breach_of(self, value: float) -> str | None:
        """Describe how ``value`` breaks the bounds, or None when it is inside them."""
        if self.min is not None and value < self.min:
            return "%s is below min %s" % (format_number(value), format_number(self.min))
        if self.max is not None and value > self.max:
            return "%s is above max %s" % (format_number(value), format_number(self.max))
        return None


@dataclass(frozen=True)
class GatePolicy:
    """How many samples, how often, and how much trouble is tolerated."""

    samples: int = 1
    interval_seconds: float = 30
    failure_limit: int = 0
    error_limit: int = 2
    no_data: str = "fail"
    warmup_seconds: float = 0


@dataclass(frozen=True)
class Sample:
    """One round's answers for one check: its value and, when it needs evidence, the request count."""

    outcome: QueryResult
    requests: QueryResult | None = None
    at: float = 0.0
    in_warmup: bool = False

    @property
    def is_error(self) -> bool:
        return self.outcome.is_error or (self.requests is not None and self.requests.is_error)

    @property
    def error_message(self) -> str:
        if self.outcome.is_error:
            return self.outcome.message
        return "request count: %s" % self.requests.message

    @property
    def request_count(self) -> float | None:
        if self.requests is None:
            return None
        return self.requests.value if self.requests.kind == VALUE else 0.0


@dataclass
class CheckProgress:
    """What one check has seen so far; becomes the check's entry in the result."""

    check: GateCheck
    values: list[float | None] = field(default_factory=list)
    requests: list[float | None] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    accepted: int = 0
    breaches: int = 0
    short_of_evidence: int = 0
    warmup_ignored: int = 0
    errors: int = 0
    consecutive_errors: int = 0
    status: str = _STATUS_SAMPLING
    message: str = ""

    @property
    def sampling(self) -> bool:
        return self.status == _STATUS_SAMPLING

    @property
    def counted(self) -> int:
        """Samples that count towards ``samples`` (warm-up ones without data do not)."""
        return self.accepted + self.breaches + self.short_of_evidence

    def record(self, sample: Sample, policy: GatePolicy) -> None:
        """Fold one round's answers into this check's state."""
        if sample.is_error:
            self._record_error(sample.error_message, policy)
            return
        impossible = self.check.outside_domain(sample.outcome.value) if sample.outcome.kind == VALUE else None
        if impossible:  # a query error, not a sample: retried up to error_limit, then the check errs
            self._record_error(impossible, policy)
            return
        self.consecutive_errors = 0
        outcome = sample.outcome
        self.values.append(outcome.value if outcome.kind in (VALUE, INCONCLUSIVE) else None)
        self.times.append(round(sample.at, 3))
        if self.check.needs_evidence:
            self.requests.append(sample.request_count)
        if outcome.kind == VALUE:
            self._record_value(outcome.value, sample, policy)
        elif outcome.kind == NO_DATA:
            self._record_no_data(outcome, sample, policy)
        else:
            self.status = STATUS_INCONCLUSIVE
            self.message = outcome.message
        self._settle(policy)

    def _record_value(self, value: float, sample: Sample, policy: GatePolicy) -> None:
        breach = self.check.breach_of(value)
        if breach:
            self.breaches += 1
            self.message = "%s (%d breaching sample(s), failure_limit %d)" % (
                breach,
                self.breaches,
                policy.failure_limit,
            )
            return
        if self.check.needs_evidence and sample.request_count < self.check.min_requests:
            shortfall = "not enough evidence: %s request(s) behind %s, at least %s needed (min_requests)" % (
                format_number(sample.request_count),
                format_number(value),
                format_number(self.check.min_requests),
            )
            if sample.in_warmup:
                self.warmup_ignored += 1
                self.message = "during warm-up, " + shortfall
                return
            self.short_of_evidence += 1
            self.message = shortfall
            return
        self.accepted += 1

    def _record_no_data(self, outcome: QueryResult, sample: Sample, policy: GatePolicy) -> None:
        if sample.in_warmup:
            self.warmup_ignored += 1
            self.message = "no data during warm-up (not counted): %s" % outcome.message
        elif policy.no_data == "fail":
            self.breaches += 1
            self.message = "no data: %s (%d breaching sample(s), failure_limit %d)" % (
                outcome.message,
                self.breaches,
                policy.failure_limit,
            )
        elif policy.no_data == "inconclusive":
            self.status = STATUS_INCONCLUSIVE
            self.message = "no data (no_data=inconclusive): %s" % outcome.message
        else:
            self.accepted += 1

    def _settle(self, policy: GatePolicy) -> None:
        if not self.sampling:
            return
        if self.breaches > policy.failure_limit:
            self.status = STATUS_FAIL
        elif self.breaches + self.short_of_evidence > policy.failure_limit:
            self.status = STATUS_INCONCLUSIVE
        elif self.counted >= policy.samples:
            self.status = STATUS_PASS
            self.message = self._pass_summary()

    def _pass_summary(self) -> str:
        summary = "%d of %d samples accepted" % (self.accepted, self.counted)
        tolerated = []
        if self.breaches:
            tolerated.append("%d breaching sample(s) within failure_limit" % self.breaches)
        if self.short_of_evidence:
            tolerated.append("%d sample(s) without enough evidence within failure_limit" % self.short_of_evidence)
        if self.warmup_ignored:
            tolerated.append("%d warm-up sample(s) without data not counted" % self.warmup_ignored)
        if self.errors:
            tolerated.append("%d query error(s) retried" % self.errors)
        return summary + (" (%s)" % ", ".join(tolerated) if tolerated else "")

    def _record_error(self, message: str, policy: GatePolicy) -> None:
        self.errors += 1
        self.consecutive_errors += 1
        self.message = message
        if self.consecutive_errors > policy.error_limit:
            self.status = STATUS_ERROR
            self.message = "%d consecutive query errors (error_limit %d): %s" % (
                self.consecutive_errors,
                policy.error_limit,
                message,
            )

    def as_result(self) -> dict[str, Any]:
        result = {
            "name": self.check.name,
            "query": self.check.query,
            "min": self.check.min,
            "max": self.check.max,
            "values": list(self.values),
            "times": list(self.times),
            "accepted": self.accepted,
            "breaches": self.breaches,
            "errors": self.errors,
            "status": self.status,
            "message": self.message,
            "min_requests": self.check.min_requests,
            "requests_query": self.check.requests_query,
        }
        if self.check.needs_evidence:
            result["requests"] = list(self.requests)
        return result


@dataclass
class GateResult:
    verdict: str
    checks: list[dict[str, Any]]
    elapsed: float
    reason: str
    rounds: int
    stopped: str | None = None  # why a before_round hook stopped the gate, or None

    @property
    def passed(self) -> bool:
        return self.verdict == VERDICT_PASS

    def as_dict(self) -> dict[str, Any]:
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
    wall_clock: Callable[[], float] = time.time,
    on_round: Callable[[int, Sequence[CheckProgress]], None] | None = None,
    before_round: Callable[[int], None] | None = None,
) -> GateResult:
    """Sample ``checks`` with ``query`` under ``policy`` and return the verdict.

    ``query`` is usually :meth:`PrometheusClient.query`; ``clock``, ``sleep`` and
    ``wall_clock`` (the time stamped on samples) are injectable so tests run without
    waiting. ``on_round`` is called after every round with the round number and the checks'
    progress, for callers that show samples as they come. ``before_round`` is called with
    the round's number at the start of every round, before its queries (within the round's
    interval); raising :class:`GateStopped` ends the gate there, with ``stopped`` set to why.
    """
    if not checks:
        raise GateConfigError("checks must contain at least one check")
    started_at = clock()
    progress = [CheckProgress(check) for check in checks]
    rounds = 0
    stopped = None
    worker_count = min(2 * len(progress), MAX_CONCURRENT_QUERIES)
    with ThreadPoolExecutor(max_workers=worker_count, thread_name_prefix="metric-gate") as executor:
        while True:
            round_started_at = clock()
            in_warmup = round_started_at - started_at < policy.warmup_seconds
            if before_round is not None:
                try:
                    before_round(rounds + 1)
                except GateStopped as stop:
                    stopped = str(stop)
                    break
            _sample_round(executor, query, progress, policy, wall_clock(), in_warmup)
            rounds += 1
            if on_round is not None:
                on_round(rounds, progress)
            if _cannot_pass(progress) or not any(check_progress.sampling for check_progress in progress):
                break
            wait_seconds = round_started_at + policy.interval_seconds - clock()
            if wait_seconds > 0:
                sleep(wait_seconds)
    _mark_unfinished_checks(progress, policy, stopped)
    verdict = _verdict(progress)  # a stopped gate has a check left incomplete: never pass
    return GateResult(
        verdict=verdict,
        checks=[check_progress.as_result() for check_progress in progress],
        elapsed=clock() - started_at,
        reason=stopped if stopped is not None else _reason(verdict, progress, policy),
        rounds=rounds,
        stopped=stopped,
    )


def _sample_round(
    executor: ThreadPoolExecutor,
    query,
    progress: Sequence[CheckProgress],
    policy: GatePolicy,
    sampled_at: float,
    in_warmup: bool,
) -> None:
    """Query every check still sampling (and its request count), all at once, and record the answers."""
    due = [check_progress for check_progress in progress if check_progress.sampling]
    futures = []
    for check_progress in due:
        check = check_progress.check
        value_future = executor.submit(_safe_query, query, check.query)
        requests_future = executor.submit(_safe_query, query, check.requests_query) if check.needs_evidence else None
        futures.append((check_progress, value_future, requests_future))
    for check_progress, value_future, requests_future in futures:
        sample = Sample(
            outcome=value_future.result(),
            requests=requests_future.result() if requests_future is not None else None,
            at=sampled_at,
            in_warmup=in_warmup,
        )
        check_progress.record(sample, policy)


def _mark_unfinished_checks(progress: Sequence[CheckProgress], policy: GatePolicy, stopped: str | None) -> None:
    deciders = [check_progress.check.name for check_progress in progress if check_progress.status in _DECIDING_STATUSES]
    why = stopped if stopped is not None else "%s decided the verdict" % ", ".join(repr(name) for name in deciders)
    for check_progress in progress:
        if check_progress.sampling:
            check_progress.status = STATUS_INCOMPLETE
            check_progress.message = "sampling stopped after %d of %d samples: %s" % (
                check_progress.counted,
                policy.samples,
                why,
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


def format_number(value: float) -> str:
    """A number for messages: whole numbers without a decimal point or exponent."""
    if float(value).is_integer() and abs(value) < 1e15:
        return "%d" % value
    return "%g" % value
