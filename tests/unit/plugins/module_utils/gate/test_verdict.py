"""The verdict engine: fail-closed decisions, limits, early stop, timing and concurrency."""

from __future__ import annotations

import threading
from collections import defaultdict

import pytest
from prometheus_stub import CannedAnswer, error, refused_url, scalar, start_stub, success, vector

from ansible_collections.ceres.rollout.plugins.module_utils.gate.config import build_checks
from ansible_collections.ceres.rollout.plugins.module_utils.gate.prometheus import (
    AMBIGUOUS,
    INCONCLUSIVE,
    NO_DATA,
    QUERY_ERROR,
    VALUE,
    PrometheusClient,
    QueryResult,
)
from ansible_collections.ceres.rollout.plugins.module_utils.gate.templates import render_template
from ansible_collections.ceres.rollout.plugins.module_utils.gate.verdict import (
    GateCheck,
    GateConfigError,
    GatePolicy,
    run_gate,
)


class FakeTime:
    """A clock that only moves when the engine sleeps (or a query says it took time)."""

    def __init__(self):
        self.now = 1000.0
        self.sleeps = []

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


class ScriptedPrometheus:
    """Answers each query with the next scripted result; the last one repeats."""

    def __init__(self, fake_time=None, query_seconds=0.0, **scripts):
        self.scripts = {query: list(results) for query, results in scripts.items()}
        self.calls = defaultdict(int)
        self.fake_time = fake_time
        self.query_seconds = query_seconds
        self.lock = threading.Lock()

    def query(self, promql):
        with self.lock:
            index = self.calls[promql]
            self.calls[promql] += 1
            if self.fake_time is not None:
                self.fake_time.now += self.query_seconds
        script = self.scripts[promql]
        return script[min(index, len(script) - 1)]

    @property
    def total_calls(self):
        return sum(self.calls.values())


def value(number):
    return QueryResult(VALUE, value=number)


NO_DATA_RESULT = QueryResult(NO_DATA, message="empty result (no series matched)")
QUERY_ERROR_RESULT = QueryResult(
    QUERY_ERROR, message="cannot reach Prometheus at http://p:9090/api/v1/query: connection refused"
)
AMBIGUOUS_RESULT = QueryResult(AMBIGUOUS, message="the query returned 2 series")
WARNINGS_RESULT = QueryResult(INCONCLUSIVE, value=0.001, message="Prometheus returned warnings")

ERRORS = GateCheck(name="errors", query="error_rate", max=0.01)
LATENCY = GateCheck(name="latency", query="p99", max=500)


def gate(checks, prometheus, fake_time, **policy):
    return run_gate(checks, GatePolicy(**policy), prometheus.query, clock=fake_time.clock, sleep=fake_time.sleep)


def by_name(result):
    return {check["name"]: check for check in result.checks}


# --- every sample good --------------------------------------------------------------------


def test_all_samples_inside_bounds_pass():
    fake_time = FakeTime()
    prometheus = ScriptedPrometheus(error_rate=[value(0.0), value(0.004), value(0.01)], p99=[value(120.0)])
    result = gate([ERRORS, LATENCY], prometheus, fake_time, samples=3, interval_seconds=30)
    assert result.verdict == "pass"
    assert result.passed
    checks = by_name(result)
    assert checks["errors"]["values"] == [0.0, 0.004, 0.01]  # max is inclusive
    assert checks["errors"]["status"] == "pass"
    assert checks["latency"]["values"] == [120.0, 120.0, 120.0]
    assert prometheus.total_calls == 6
    assert fake_time.sleeps == [30, 30]
    assert result.elapsed == 60
    assert result.as_dict()["passed"] is True


def test_min_bound_is_checked():
    fake_time = FakeTime()
    success_rate = GateCheck(name="success", query="success_rate", min=0.99, max=1)
    prometheus = ScriptedPrometheus(success_rate=[value(1.0), value(0.95)])
    result = gate([success_rate], prometheus, fake_time, samples=3)
    assert result.verdict == "fail"
    assert "below min 0.99" in result.reason


def test_result_entries_have_the_contract_fields():
    fake_time = FakeTime()
    result = gate([ERRORS], ScriptedPrometheus(error_rate=[value(0.0)]), fake_time)
    assert set(result.checks[0]) >= {"name", "query", "min", "max", "values", "breaches", "errors", "status"}
    assert result.checks[0]["min"] is None
    assert result.checks[0]["max"] == 0.01
    assert result.checks[0]["query"] == "error_rate"


# --- breaches, failure_limit and early stop ----------------------------------------------


def test_a_breach_with_failure_limit_zero_stops_the_gate_at_once():
    fake_time = FakeTime()
    prometheus = ScriptedPrometheus(error_rate=[value(0.0), value(0.02), value(0.0)], p99=[value(100.0)])
    result = gate([ERRORS, LATENCY], prometheus, fake_time, samples=10, interval_seconds=60)
    assert result.verdict == "fail"
    assert prometheus.calls == {"error_rate": 2, "p99": 2}
    assert fake_time.sleeps == [60]
    checks = by_name(result)
    assert checks["errors"]["status"] == "fail"
    assert checks["errors"]["breaches"] == 1
    assert checks["errors"]["values"] == [0.0, 0.02]
    assert checks["latency"]["status"] == "incomplete"
    assert "'errors'" in checks["latency"]["message"]
    assert "errors fail: 0.02 is above max 0.01" in result.reason


def test_breaches_within_failure_limit_are_tolerated():
    fake_time = FakeTime()
    prometheus = ScriptedPrometheus(error_rate=[value(0.05), value(0.0), value(0.0), value(0.0)])
    result = gate([ERRORS], prometheus, fake_time, samples=4, failure_limit=1)
    assert result.verdict == "pass"
    assert result.checks[0]["breaches"] == 1
    assert "within failure_limit" in result.checks[0]["message"]


def test_one_breach_past_failure_limit_fails_and_stops():
    fake_time = FakeTime()
    prometheus = ScriptedPrometheus(error_rate=[value(0.05), value(0.0), value(0.05), value(0.0)])
    result = gate([ERRORS], prometheus, fake_time, samples=10, failure_limit=1)
    assert result.verdict == "fail"
    assert prometheus.total_calls == 3
    assert result.checks[0]["breaches"] == 2


def test_fail_beats_inconclusive_in_the_same_round():
    fake_time = FakeTime()
    prometheus = ScriptedPrometheus(error_rate=[value(0.5)], p99=[NO_DATA_RESULT])
    result = gate([ERRORS, LATENCY], prometheus, fake_time, no_data="inconclusive")
    assert result.verdict == "fail"
    assert by_name(result)["latency"]["status"] == "inconclusive"


# --- no data --------------------------------------------------------------------------------


def test_no_data_fails_by_default():
    fake_time = FakeTime()
    prometheus = ScriptedPrometheus(error_rate=[NO_DATA_RESULT])
    result = gate([ERRORS], prometheus, fake_time, samples=5)
    assert result.verdict == "fail"
    assert result.checks[0]["values"] == [None]
    assert result.checks[0]["breaches"] == 1
    assert "no data" in result.reason
    assert prometheus.total_calls == 1


def test_no_data_fail_counts_against_failure_limit():
    fake_time = FakeTime()
    prometheus = ScriptedPrometheus(error_rate=[NO_DATA_RESULT, value(0.0)])
    result = gate([ERRORS], prometheus, fake_time, samples=3, failure_limit=1)
    assert result.verdict == "pass"
    assert result.checks[0]["values"] == [None, 0.0, 0.0]


def test_no_data_inconclusive_stops_with_inconclusive():
    fake_time = FakeTime()
    prometheus = ScriptedPrometheus(error_rate=[value(0.0), NO_DATA_RESULT])
    result = gate([ERRORS], prometheus, fake_time, samples=5, no_data="inconclusive")
    assert result.verdict == "inconclusive"
    assert not result.passed
    assert result.checks[0]["status"] == "inconclusive"
    assert prometheus.total_calls == 2


def test_no_data_pass_accepts_the_sample():
    fake_time = FakeTime()
    prometheus = ScriptedPrometheus(error_rate=[NO_DATA_RESULT])
    result = gate([ERRORS], prometheus, fake_time, samples=2, no_data="pass")
    assert result.verdict == "pass"
    assert result.checks[0]["values"] == [None, None]
    assert result.checks[0]["breaches"] == 0


def test_warnings_make_the_gate_inconclusive():
    fake_time = FakeTime()
    prometheus = ScriptedPrometheus(error_rate=[WARNINGS_RESULT])
    result = gate([ERRORS], prometheus, fake_time, samples=3)
    assert result.verdict == "inconclusive"
    assert result.checks[0]["values"] == [0.001]
    assert prometheus.total_calls == 1


# --- query errors and error_limit ---------------------------------------------------------


def test_errors_within_error_limit_are_retried_without_using_a_sample():
    fake_time = FakeTime()
    prometheus = ScriptedPrometheus(error_rate=[QUERY_ERROR_RESULT, AMBIGUOUS_RESULT, value(0.0), value(0.0)])
    result = gate([ERRORS], prometheus, fake_time, samples=2, error_limit=2, interval_seconds=10)
    assert result.verdict == "pass"
    assert result.checks[0]["errors"] == 2
    assert result.checks[0]["values"] == [0.0, 0.0]
    assert prometheus.total_calls == 4
    assert "2 query error(s) retried" in result.checks[0]["message"]


def test_more_than_error_limit_consecutive_errors_end_the_gate():
    fake_time = FakeTime()
    prometheus = ScriptedPrometheus(error_rate=[QUERY_ERROR_RESULT])
    result = gate([ERRORS], prometheus, fake_time, samples=5, error_limit=2, interval_seconds=30)
    assert result.verdict == "inconclusive"
    assert result.checks[0]["status"] == "error"
    assert result.checks[0]["errors"] == 3
    assert prometheus.total_calls == 3
    assert result.elapsed == 60  # error_limit intervals
    assert "3 consecutive query errors (error_limit 2)" in result.reason
    assert "connection refused" in result.reason


def test_error_limit_zero_ends_at_the_first_error():
    fake_time = FakeTime()
    prometheus = ScriptedPrometheus(error_rate=[AMBIGUOUS_RESULT])
    result = gate([ERRORS], prometheus, fake_time, error_limit=0)
    assert result.checks[0]["status"] == "error"
    assert prometheus.total_calls == 1


def test_a_good_answer_resets_the_consecutive_error_count():
    fake_time = FakeTime()
    script = [QUERY_ERROR_RESULT, value(0.0), QUERY_ERROR_RESULT, value(0.0), QUERY_ERROR_RESULT, value(0.0)]
    prometheus = ScriptedPrometheus(error_rate=script)
    result = gate([ERRORS], prometheus, fake_time, samples=3, error_limit=1)
    assert result.verdict == "pass"
    assert result.checks[0]["errors"] == 3


def test_an_exception_in_the_query_function_is_a_query_error():
    fake_time = FakeTime()

    def broken_query(promql):
        raise RuntimeError("boom")

    result = run_gate([ERRORS], GatePolicy(error_limit=0), broken_query, clock=fake_time.clock, sleep=fake_time.sleep)
    assert result.verdict == "inconclusive"
    assert "boom" in result.reason


def test_a_checked_error_with_samples_one_never_passes_without_a_real_value():
    fake_time = FakeTime()
    prometheus = ScriptedPrometheus(error_rate=[QUERY_ERROR_RESULT, QUERY_ERROR_RESULT, QUERY_ERROR_RESULT])
    result = gate([ERRORS], prometheus, fake_time, samples=1, error_limit=2)
    assert result.verdict != "pass"


# --- timing and concurrency ----------------------------------------------------------------


def test_rounds_start_one_interval_apart_whatever_the_query_time():
    fake_time = FakeTime()
    prometheus = ScriptedPrometheus(fake_time=fake_time, query_seconds=2.0, error_rate=[value(0.0)])
    result = gate([ERRORS], prometheus, fake_time, samples=3, interval_seconds=30)
    assert result.passed
    assert fake_time.sleeps == [28.0, 28.0]


def test_slow_queries_longer_than_the_interval_do_not_sleep():
    fake_time = FakeTime()
    prometheus = ScriptedPrometheus(fake_time=fake_time, query_seconds=5.0, error_rate=[value(0.0)])
    gate([ERRORS], prometheus, fake_time, samples=3, interval_seconds=2)
    assert fake_time.sleeps == []


def test_checks_of_one_round_are_queried_concurrently():
    both_queries_running = threading.Barrier(2, timeout=5)

    def query(promql):
        both_queries_running.wait()  # raises BrokenBarrierError if the queries ran one after another
        return value(0.0)

    result = run_gate([ERRORS, LATENCY], GatePolicy(samples=2, interval_seconds=0), query)
    assert result.passed, result.reason


def test_a_round_costs_about_one_query_time():
    """All eight queries of a round are in flight at once, so a round lasts as long as its slowest query."""
    all_eight_running = threading.Barrier(8, timeout=10)

    def query(promql):
        all_eight_running.wait()  # BrokenBarrierError (a query error) unless all eight run at the same time
        return value(0.0)

    checks = [GateCheck(name="check-%d" % index, query="q%d" % index, max=1) for index in range(8)]
    fake_time = FakeTime()  # a failing round is not followed by real waits for the next one
    result = run_gate(checks, GatePolicy(samples=1), query, clock=fake_time.clock, sleep=fake_time.sleep)
    assert result.passed, result.reason


def test_no_checks_is_a_config_error():
    with pytest.raises(GateConfigError):
        run_gate([], GatePolicy(), lambda promql: value(0))


# --- the engine with the real client, for every value class --------------------------------


@pytest.fixture
def prometheus_server():
    stub = start_stub()
    yield stub
    stub.stop()


@pytest.mark.parametrize(
    "answer, verdict, values, errors",
    [
        (vector("0.002"), "pass", [0.002], 0),
        (scalar("0.002"), "pass", [0.002], 0),
        (vector("0.5"), "fail", [0.5], 0),
        (vector("NaN"), "fail", [None], 0),
        (vector("+Inf"), "fail", [None], 0),
        (vector("-Inf"), "fail", [None], 0),
        (vector(), "fail", [None], 0),
        (vector("0.001", "0.002"), "inconclusive", [], 2),
        (error(422, "execution", "query timed out in expression evaluation"), "inconclusive", [], 2),
        (success({"resultType": "vector", "result": []}, warnings=["partial"]), "inconclusive", [None], 0),
        (CannedAnswer(200, b"not json"), "inconclusive", [], 2),
    ],
    ids=[
        "real",
        "scalar",
        "breach",
        "nan",
        "plus-inf",
        "minus-inf",
        "empty",
        "multi-series",
        "status-error",
        "warnings",
        "invalid-json",
    ],
)
def test_engine_with_http_client(prometheus_server, answer, verdict, values, errors):
    prometheus_server.answers = lambda promql: answer
    client = PrometheusClient(prometheus_server.url, timeout=2)
    result = run_gate([ERRORS], GatePolicy(samples=1, interval_seconds=0, error_limit=1), client.query)
    assert result.verdict == verdict, result.reason
    assert result.checks[0]["values"] == values
    assert result.checks[0]["errors"] == errors


def test_engine_with_http_timeout(prometheus_server):
    prometheus_server.answers = lambda promql: CannedAnswer(200, vector("0").body, delay_seconds=2)
    client = PrometheusClient(prometheus_server.url, timeout=1)
    result = run_gate([ERRORS], GatePolicy(samples=1, interval_seconds=0, error_limit=0), client.query)
    assert result.verdict == "inconclusive"
    assert "timeout" in result.reason


def test_engine_with_connection_refused():
    client = PrometheusClient(refused_url(), timeout=2)
    fake_time = FakeTime()
    policy = GatePolicy(samples=3, interval_seconds=15, error_limit=2)
    result = run_gate([ERRORS, LATENCY], policy, client.query, clock=fake_time.clock, sleep=fake_time.sleep)
    assert result.verdict == "inconclusive"
    assert all(check["status"] == "error" for check in result.checks)
    assert fake_time.sleeps == [15, 15]
    assert "connection refused" in result.reason


def test_templates_end_to_end_return_the_resolved_query(prometheus_server):
    prometheus_server.answers = lambda promql: vector("0")
    params = {"namespace": "pilot-apps", "workload": "checkout-v3-0-0", "service": "checkout"}
    checks = build_checks(
        [{"name": "errors", "template": "istio_error_rate", "params": params, "max": 0.01, "min_requests": 0}]
    )
    result = run_gate(checks, GatePolicy(), PrometheusClient(prometheus_server.url).query)
    expected_query = render_template(
        "istio_error_rate", {"namespace": "pilot-apps", "workload": "checkout-v3-0-0", "service": "checkout"}
    )
    assert result.checks[0]["query"] == expected_query
    assert prometheus_server.requests[-1].params["query"] == [expected_query]


# --- warm-up ---------------------------------------------------------------------------------


def test_no_data_during_warmup_neither_passes_nor_fails():
    fake_time = FakeTime()
    # A fresh canary: two scrapes without series, then real numbers.
    prometheus = ScriptedPrometheus(error_rate=[NO_DATA_RESULT, NO_DATA_RESULT, value(0.0)])
    result = gate([ERRORS], prometheus, fake_time, samples=3, interval_seconds=10, warmup_seconds=25)
    assert result.verdict == "pass", result.reason
    check = result.checks[0]
    assert check["values"] == [None, None, 0.0, 0.0, 0.0]
    assert check["accepted"] == 3 and check["breaches"] == 0
    assert "2 warm-up sample(s) without data not counted" in check["message"]
    assert prometheus.total_calls == 5


def test_without_warmup_the_fresh_canary_does_not_pass():
    fake_time = FakeTime()
    prometheus = ScriptedPrometheus(error_rate=[NO_DATA_RESULT, NO_DATA_RESULT, value(0.0)])
    result = gate([ERRORS], prometheus, fake_time, samples=3, interval_seconds=10)
    assert result.verdict == "fail"
    assert result.checks[0]["values"] == [None]
    assert "no data" in result.reason


def test_no_data_after_warmup_is_fail_closed_again():
    fake_time = FakeTime()
    prometheus = ScriptedPrometheus(error_rate=[NO_DATA_RESULT, value(0.0), NO_DATA_RESULT])
    result = gate([ERRORS], prometheus, fake_time, samples=3, interval_seconds=10, warmup_seconds=5)
    assert result.verdict == "fail"
    assert result.checks[0]["values"] == [None, 0.0, None]
    assert result.checks[0]["breaches"] == 1


def test_a_breach_during_warmup_fails_at_once():
    fake_time = FakeTime()
    prometheus = ScriptedPrometheus(error_rate=[value(0.5), value(0.0)])
    result = gate([ERRORS], prometheus, fake_time, samples=5, interval_seconds=10, warmup_seconds=60)
    assert result.verdict == "fail"
    assert result.checks[0]["values"] == [0.5]
    assert prometheus.total_calls == 1


def test_samples_carry_their_wall_clock_time():
    fake_time = FakeTime()
    prometheus = ScriptedPrometheus(error_rate=[value(0.0)])
    result = run_gate(
        [ERRORS],
        GatePolicy(samples=3, interval_seconds=10),
        prometheus.query,
        clock=fake_time.clock,
        sleep=fake_time.sleep,
        wall_clock=lambda: fake_time.now + 1_700_000_000,
    )
    assert result.checks[0]["times"] == [1_700_001_000.0, 1_700_001_010.0, 1_700_001_020.0]


def test_every_round_is_reported_as_it_comes():
    fake_time = FakeTime()
    prometheus = ScriptedPrometheus(error_rate=[value(0.0), value(0.002), value(0.02)])
    seen = []
    run_gate(
        [ERRORS],
        GatePolicy(samples=5, interval_seconds=10),
        prometheus.query,
        clock=fake_time.clock,
        sleep=fake_time.sleep,
        on_round=lambda number, progress: seen.append((number, list(progress[0].values))),
    )
    assert seen == [(1, [0.0]), (2, [0.0, 0.002]), (3, [0.0, 0.002, 0.02])]


# --- the sample-size rule --------------------------------------------------------------------

ERRORS_WITH_FLOOR = GateCheck(
    name="errors", query="error_rate", max=0.001, requests_query="requests", min_requests=3000
)


def test_a_starved_canary_never_passes():
    fake_time = FakeTime()
    # "0 errors" behind 50 requests bounds the error rate at ~6%, not at 0.1%.
    prometheus = ScriptedPrometheus(error_rate=[value(0.0)], requests=[value(50.0)])
    result = gate([ERRORS_WITH_FLOOR], prometheus, fake_time, samples=3, interval_seconds=10)
    assert result.verdict == "inconclusive"
    check = result.checks[0]
    assert check["status"] == "inconclusive"
    assert check["accepted"] == 0
    assert check["requests"] == [50.0]
    assert "not enough evidence: 50 request(s) behind 0, at least 3000 needed (min_requests)" in result.reason


def test_the_same_canary_with_enough_traffic_passes():
    fake_time = FakeTime()
    prometheus = ScriptedPrometheus(error_rate=[value(0.0)], requests=[value(3100.0)])
    result = gate([ERRORS_WITH_FLOOR], prometheus, fake_time, samples=3, interval_seconds=10)
    assert result.verdict == "pass", result.reason
    assert result.checks[0]["requests"] == [3100.0, 3100.0, 3100.0]
    assert result.checks[0]["accepted"] == 3


def test_a_breach_counts_whatever_the_number_of_requests():
    fake_time = FakeTime()
    prometheus = ScriptedPrometheus(error_rate=[value(0.02)], requests=[value(50.0)])
    result = gate([ERRORS_WITH_FLOOR], prometheus, fake_time, samples=3, interval_seconds=10)
    assert result.verdict == "fail"
    assert "0.02 is above max 0.001" in result.reason


def test_a_missing_request_count_is_no_evidence():
    fake_time = FakeTime()
    prometheus = ScriptedPrometheus(error_rate=[value(0.0)], requests=[NO_DATA_RESULT])
    result = gate([ERRORS_WITH_FLOOR], prometheus, fake_time, samples=1, interval_seconds=10)
    assert result.verdict == "inconclusive"
    assert result.checks[0]["requests"] == [0.0]


def test_a_failing_request_count_query_is_a_query_error_and_retried():
    fake_time = FakeTime()
    prometheus = ScriptedPrometheus(error_rate=[value(0.0)], requests=[QUERY_ERROR_RESULT, value(4000.0)])
    result = gate([ERRORS_WITH_FLOOR], prometheus, fake_time, samples=2, interval_seconds=10, error_limit=1)
    assert result.verdict == "pass", result.reason
    check = result.checks[0]
    assert check["errors"] == 1
    assert check["values"] == [0.0, 0.0]


def test_not_enough_evidence_during_warmup_is_not_counted():
    fake_time = FakeTime()
    # The window fills with the canary's traffic during the warm-up.
    prometheus = ScriptedPrometheus(error_rate=[value(0.0)], requests=[value(500.0), value(2000.0), value(3500.0)])
    result = gate([ERRORS_WITH_FLOOR], prometheus, fake_time, samples=2, interval_seconds=10, warmup_seconds=20)
    assert result.verdict == "pass", result.reason
    assert result.checks[0]["requests"] == [500.0, 2000.0, 3500.0, 3500.0]
    assert result.checks[0]["accepted"] == 2


def test_evidence_shortfalls_within_failure_limit_still_need_enough_accepted_samples():
    fake_time = FakeTime()
    prometheus = ScriptedPrometheus(error_rate=[value(0.0)], requests=[value(100.0), value(5000.0)])
    result = gate([ERRORS_WITH_FLOOR], prometheus, fake_time, samples=3, failure_limit=1, interval_seconds=10)
    assert result.verdict == "pass", result.reason
    check = result.checks[0]
    assert check["accepted"] == 2  # samples - failure_limit
    assert "1 sample(s) without enough evidence within failure_limit" in check["message"]


# --- verdict arithmetic ------------------------------------------------------------------------


@pytest.mark.parametrize("failure_limit", [0, 1, 2])
def test_pass_needs_samples_minus_failure_limit_accepted_samples(failure_limit):
    samples = 3
    for breaching in range(samples + 1):
        fake_time = FakeTime()
        script = [value(0.5)] * breaching + [value(0.0)] * (samples - breaching)
        prometheus = ScriptedPrometheus(error_rate=script)
        result = gate(
            [ERRORS], prometheus, fake_time, samples=samples, failure_limit=failure_limit, interval_seconds=10
        )
        accepted = result.checks[0]["accepted"]
        assert (result.verdict == "pass") == (accepted >= samples - failure_limit and breaching <= failure_limit)
        if result.verdict == "pass":
            assert accepted >= samples - failure_limit


# A built-in template's value outside its metric's domain is a query error, not a number to compare:
# a negative error ratio or latency would pass any max, an error ratio above 1 is a broken query.
DOMAIN_PARAMS = {"namespace": "wave1-apps", "workload": "checkout-v3-0-0", "service": "checkout"}


def _template_check(template, **bounds):
    (check,) = build_checks([{"name": template, "template": template, "params": DOMAIN_PARAMS, **bounds}])
    return check


@pytest.mark.parametrize(
    "template, bounds, sampled, domain",
    [
        ("istio_error_rate", {"max": 0.001, "min_requests": 0}, -0.5, "[0, 1]"),
        ("istio_error_rate", {"max": 0.001, "min_requests": 0}, 1.5, "[0, 1]"),
        ("istio_success_rate", {"min": 0.999, "min_requests": 0}, 1.25, "[0, 1]"),
        ("istio_latency_p95", {"max": 100}, -3.0, "[0, inf]"),
        ("istio_latency_p99", {"max": 200}, -0.001, "[0, inf]"),
    ],
)
def test_a_template_value_outside_its_metrics_domain_is_a_query_error(template, bounds, sampled, domain):
    check = _template_check(template, **bounds)
    fake_time = FakeTime()
    prometheus = ScriptedPrometheus(**{check.query: [value(sampled)]})
    result = gate([check], prometheus, fake_time, samples=3, error_limit=1)
    assert result.verdict == "inconclusive" and not result.passed, result  # as every query error: never a pass
    (outcome,) = result.checks
    assert outcome["status"] == "error" and outcome["accepted"] == 0 and outcome["errors"] == 2, outcome
    assert "outside the domain %s of %s" % (domain, template) in outcome["message"], outcome["message"]
    assert outcome["values"] == []  # a query error is not a sample


@pytest.mark.parametrize(
    "template, bounds, sampled",
    [
        ("istio_error_rate", {"max": 1, "min_requests": 0}, 0.0),
        ("istio_error_rate", {"max": 1, "min_requests": 0}, 1.0),
        ("istio_latency_p95", {"max": 100}, 0.0),
        ("istio_latency_p95", {"max": 100}, float("inf")),  # histogram_quantile in the +Inf bucket: a breach
    ],
)
def test_a_template_value_at_the_edge_of_its_domain_is_compared(template, bounds, sampled):
    check = _template_check(template, **bounds)
    prometheus = ScriptedPrometheus(**{check.query: [value(sampled)]})
    result = gate([check], prometheus, FakeTime(), samples=1)
    assert result.checks[0]["errors"] == 0 and result.checks[0]["values"] == [sampled], result.checks[0]


def test_a_query_check_has_no_domain_a_negative_value_is_compared():
    check = GateCheck(name="delta", query="deriv_of_something", min=-1, max=1)
    prometheus = ScriptedPrometheus(deriv_of_something=[value(-0.5)])
    result = gate([check], prometheus, FakeTime(), samples=1)
    assert result.verdict == "pass" and result.checks[0]["values"] == [-0.5]
