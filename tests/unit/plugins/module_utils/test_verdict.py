"""The verdict engine: fail-closed decisions, limits, early stop, timing and concurrency."""

from __future__ import annotations

import threading
import time
from collections import defaultdict

import pytest
from prometheus_stub import CannedAnswer, error, refused_url, scalar, start_stub, success, vector

from ansible_collections.ceres.rollout.plugins.module_utils.prometheus import (
    AMBIGUOUS,
    INCONCLUSIVE,
    NO_DATA,
    QUERY_ERROR,
    VALUE,
    PrometheusClient,
    QueryResult,
)
from ansible_collections.ceres.rollout.plugins.module_utils.promql_templates import render_template
from ansible_collections.ceres.rollout.plugins.module_utils.verdict import (
    GateCheck,
    GateConfigError,
    GatePolicy,
    build_checks,
    build_policy,
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
QUERY_ERROR_RESULT = QueryResult(QUERY_ERROR, message="cannot reach Prometheus at http://p:9090/api/v1/query: connection refused")
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
    def slow_query(promql):
        time.sleep(0.3)
        return value(0.0)

    checks = [GateCheck(name="check-%d" % index, query="q%d" % index, max=1) for index in range(8)]
    started = time.monotonic()
    result = run_gate(checks, GatePolicy(samples=1), slow_query)
    assert result.passed
    assert time.monotonic() - started < 1.5


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
    ids=["real", "scalar", "breach", "nan", "plus-inf", "minus-inf", "empty", "multi-series", "status-error", "warnings", "invalid-json"],
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
    params = {"namespace": "pilot-apps", "workload": "checkout-v3-0-0"}
    checks = build_checks([{"name": "errors", "template": "istio_error_rate", "params": params, "max": 0.01}])
    result = run_gate(checks, GatePolicy(), PrometheusClient(prometheus_server.url).query)
    expected_query = render_template("istio_error_rate", {"namespace": "pilot-apps", "workload": "checkout-v3-0-0"})
    assert result.checks[0]["query"] == expected_query
    assert prometheus_server.requests[-1].params["query"] == [expected_query]


# --- building checks and policies from user input ------------------------------------------


def test_build_checks_accepts_query_and_template_checks():
    checks = build_checks(
        [
            {"name": "errors", "query": "sum(x)", "max": 0.01},
            {"name": "latency", "template": "istio_latency_p99", "params": {"namespace": "n", "workload": "w", "window": "5m"}, "max": "500"},
            {"name": "success", "template": "istio_success_rate", "params": {"namespace": "n", "workload": "w"}, "min": 0.99, "max": None},
        ]
    )
    assert [check.name for check in checks] == ["errors", "latency", "success"]
    assert checks[1].max == 500.0
    assert "[5m]" in checks[1].query
    assert checks[2].min == 0.99 and checks[2].max is None


@pytest.mark.parametrize(
    "raw_checks, expected_message",
    [
        ([], "non-empty list"),
        ("sum(x)", "non-empty list"),
        (["sum(x)"], "checks[0] must be a dict"),
        ([{"query": "sum(x)", "max": 1}], "checks[0].name is required"),
        ([{"name": " ", "query": "sum(x)", "max": 1}], "checks[0].name is required"),
        ([{"name": "a", "max": 1}], "checks[0] (a): give exactly one of query or template"),
        ([{"name": "a", "query": "x", "template": "istio_error_rate", "max": 1}], "exactly one of query or template"),
        ([{"name": "a", "query": "", "max": 1}], "checks[0] (a).query must be a non-empty"),
        ([{"name": "a", "query": "x", "params": {"namespace": "n"}, "max": 1}], "checks[0] (a).params is only used with template"),
        ([{"name": "a", "query": "x"}], "checks[0] (a): set min and/or max"),
        ([{"name": "a", "query": "x", "min": 2, "max": 1}], "checks[0] (a).min (2) is greater than max (1)"),
        ([{"name": "a", "query": "x", "max": "lots"}], "checks[0] (a).max must be a number"),
        ([{"name": "a", "query": "x", "max": True}], "checks[0] (a).max must be a number"),
        ([{"name": "a", "query": "x", "min": float("nan")}], "checks[0] (a).min must be a finite number"),
        ([{"name": "a", "template": "istio_foo", "params": {}, "max": 1}], "checks[0] (a).template: unknown template 'istio_foo'"),
        ([{"name": "a", "template": "istio_error_rate", "params": {"namespace": "n"}, "max": 1}], "needs parameter workload"),
        ([{"name": "a", "template": "istio_error_rate", "params": "n", "max": 1}], "checks[0] (a).params must be a dict"),
        ([{"name": "a", "query": "x", "max": 1}, {"name": "a", "query": "y", "max": 1}], "checks[1].name: 'a' is used by more than one check"),
    ],
)
def test_build_checks_names_the_bad_field(raw_checks, expected_message):
    with pytest.raises(GateConfigError) as raised:
        build_checks(raw_checks)
    assert expected_message in str(raised.value)


def test_build_policy_parses_duration_intervals():
    assert build_policy(interval="2m").interval_seconds == 120
    assert build_policy(interval=45).interval_seconds == 45
    assert build_policy(interval="1h30m").interval_seconds == 5400
    assert build_policy() == GatePolicy(samples=1, interval_seconds=30, failure_limit=0, error_limit=2, no_data="fail")


@pytest.mark.parametrize(
    "settings, expected_message",
    [
        ({"interval": "5x"}, "interval: invalid duration '5x'"),
        ({"interval": -1}, "interval: a duration cannot be negative"),
        ({"samples": 0}, "samples must be at least 1"),
        ({"samples": "3"}, "samples must be a whole number"),
        ({"failure_limit": -1}, "failure_limit must be at least 0"),
        ({"error_limit": -2}, "error_limit must be at least 0"),
        ({"no_data": "ignore"}, "no_data must be one of fail, inconclusive, pass"),
    ],
)
def test_build_policy_names_the_bad_setting(settings, expected_message):
    with pytest.raises(GateConfigError) as raised:
        build_policy(**settings)
    assert expected_message in str(raised.value)
