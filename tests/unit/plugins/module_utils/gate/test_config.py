"""Turning gate options into checks and a policy: templates, the sample-size rule, refusals naming the field."""

from __future__ import annotations

import pytest

from ansible_collections.ceres.rollout.plugins.module_utils.gate.config import (
    build_checks,
    build_policy,
    default_min_requests,
)
from ansible_collections.ceres.rollout.plugins.module_utils.gate.templates import render_template
from ansible_collections.ceres.rollout.plugins.module_utils.gate.verdict import GateConfigError, GatePolicy

# --- building checks and policies from user input ------------------------------------------


def test_build_checks_accepts_query_and_template_checks():
    checks = build_checks(
        [
            {"name": "errors", "query": "sum(x)", "max": 0.01},
            {
                "name": "latency",
                "template": "istio_latency_p99",
                "params": {"namespace": "n", "workload": "w", "window": "5m"},
                "max": "500",
            },
            {
                "name": "success",
                "template": "istio_success_rate",
                "params": {"namespace": "n", "workload": "w", "service": "s"},
                "min": 0.99,
                "max": None,
            },
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
        (
            [{"name": "a", "query": "x", "params": {"namespace": "n"}, "max": 1}],
            "checks[0] (a).params is only used with template",
        ),
        ([{"name": "a", "query": "x"}], "checks[0] (a): set min and/or max"),
        ([{"name": "a", "query": "x", "min": 2, "max": 1}], "checks[0] (a).min (2) is greater than max (1)"),
        ([{"name": "a", "query": "x", "max": "lots"}], "checks[0] (a).max must be a number"),
        ([{"name": "a", "query": "x", "max": True}], "checks[0] (a).max must be a number"),
        ([{"name": "a", "query": "x", "min": float("nan")}], "checks[0] (a).min must be a finite number"),
        (
            [{"name": "a", "template": "istio_foo", "params": {}, "max": 1}],
            "checks[0] (a).template: unknown template 'istio_foo'",
        ),
        (
            [{"name": "a", "template": "istio_error_rate", "params": {"namespace": "n"}, "max": 1}],
            "needs parameter workload",
        ),
        (
            [{"name": "a", "template": "istio_error_rate", "params": "n", "max": 1}],
            "checks[0] (a).params must be a dict",
        ),
        (
            [{"name": "a", "query": "x", "max": 1}, {"name": "a", "query": "y", "max": 1}],
            "checks[1].name: 'a' is used by more than one check",
        ),
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


def test_build_policy_takes_a_warmup_duration():
    assert build_policy(samples=3, interval="10s", warmup="1m").warmup_seconds == 60
    assert build_policy().warmup_seconds == 0


@pytest.mark.parametrize(
    "settings, expected_message",
    [
        ({"samples": 2, "failure_limit": 2}, "failure_limit (2) must be lower than samples (2)"),
        ({"samples": 2, "failure_limit": 5}, "failure_limit (5) must be lower than samples (2)"),
        ({"samples": 1, "failure_limit": 1}, "failure_limit (1) must be lower than samples (1)"),
        ({"samples": 3, "interval": 0}, "interval must be more than 0 when samples is more than 1 (samples 3)"),
        ({"samples": 3, "interval": "0s"}, "interval must be more than 0 when samples is more than 1"),
        ({"samples": 1, "interval": 0, "warmup": "30s"}, "interval must be more than 0 with a warmup"),
        ({"warmup": "soon"}, "warmup: invalid duration 'soon'"),
        ({"warmup": -5}, "warmup: a duration cannot be negative"),
    ],
)
def test_build_policy_refuses_arithmetic_that_could_pass_on_nothing(settings, expected_message):
    with pytest.raises(GateConfigError) as raised:
        build_policy(**settings)
    assert expected_message in str(raised.value)


def test_one_sample_without_wait_is_still_allowed():
    assert build_policy(samples=1, interval=0) == GatePolicy(samples=1, interval_seconds=0)


# --- the sample-size rule ---------------------------------------------------------------------

CANARY = {"namespace": "pilot-apps", "workload": "checkout-v3-0-0", "service": "checkout", "window": "5m"}


@pytest.mark.parametrize(
    "template, lower, upper, floor",
    [
        ("istio_error_rate", None, 0.001, 3000),
        ("istio_error_rate", None, 0.003, 1000),  # 3 / 0.003 is 1000.0000000000001 in binary
        ("istio_error_rate", None, 0.01, 300),
        ("istio_error_rate", None, 0.0007, 4286),
        ("istio_success_rate", 0.999, None, 3000),
        ("istio_success_rate", 0.99, 1, 300),
        ("istio_error_rate", None, 0, None),  # no room for a failure: no finite floor
        ("istio_success_rate", 1, None, None),
        ("istio_latency_p95", None, 100, None),
        (None, None, 0.001, None),  # a hand-written query
    ],
)
def test_default_floor_is_the_rule_of_three(template, lower, upper, floor):
    assert default_min_requests(template, lower, upper) == floor


def test_an_error_rate_check_counts_its_requests_with_the_same_params():
    (check,) = build_checks([{"name": "errors", "template": "istio_error_rate", "params": CANARY, "max": 0.001}])
    assert check.min_requests == 3000
    assert check.requests_query == render_template("istio_request_count", CANARY)
    assert check.needs_evidence


def test_min_requests_zero_turns_the_floor_off():
    (check,) = build_checks(
        [{"name": "errors", "template": "istio_error_rate", "params": CANARY, "max": 0.001, "min_requests": 0}]
    )
    assert check.min_requests is None and check.requests_query is None
    assert not check.needs_evidence


def test_an_explicit_floor_for_a_latency_template_counts_the_canarys_own_requests():
    params = {"namespace": "pilot-apps", "workload": "checkout-v3-0-0", "window": "5m"}
    (check,) = build_checks(
        [{"name": "p95", "template": "istio_latency_p95", "params": params, "max": 100, "min_requests": 500}]
    )
    assert check.min_requests == 500
    assert check.requests_query == render_template("istio_request_count", params)


def test_a_query_check_with_a_floor_and_its_count_query():
    (check,) = build_checks(
        [
            {
                "name": "errors",
                "query": "sum(x)",
                "max": 0.01,
                "min_requests": 100,
                "requests_query": "sum(increase(requests[5m]))",
            }
        ]
    )
    assert (check.min_requests, check.requests_query) == (100, "sum(increase(requests[5m]))")


@pytest.mark.parametrize(
    "extra, expected_message",
    [
        ({"min_requests": 100}, "checks[0] (a).min_requests needs requests_query"),
        ({"min_requests": -1, "requests_query": "x"}, "checks[0] (a).min_requests must be at least 0"),
        ({"min_requests": "many", "requests_query": "x"}, "checks[0] (a).min_requests must be a number"),
        (
            {"min_requests": 0, "requests_query": "x"},
            "checks[0] (a).requests_query is only used with min_requests above 0",
        ),
        ({"min_requests": 10, "requests_query": " "}, "checks[0] (a).requests_query must be a non-empty PromQL string"),
    ],
)
def test_evidence_settings_name_the_bad_field(extra, expected_message):
    with pytest.raises(GateConfigError) as raised:
        build_checks([dict({"name": "a", "query": "sum(x)", "max": 1}, **extra)])
    assert expected_message in str(raised.value)
