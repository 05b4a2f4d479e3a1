"""metric_gate as Ansible runs it: argument handling, results, failures, check mode, secrets."""

from __future__ import annotations

import json

import pytest
from k8s_stub import run_module as run_any_module
from prometheus_stub import error, refused_url, start_stub, vector

from ansible_collections.ceres.rollout.plugins.modules import metric_gate

TOKEN = "gate-token-0123456789"


@pytest.fixture
def prometheus():
    stub = start_stub()
    yield stub
    stub.stop()


@pytest.fixture(autouse=True)
def no_prometheus_environment(monkeypatch):
    for variable in (
        "CERES_PROMETHEUS_URL",
        "CERES_PROMETHEUS_TOKEN",
        "CERES_PROMETHEUS_USERNAME",
        "CERES_PROMETHEUS_PASSWORD",
    ):
        monkeypatch.delenv(variable, raising=False)


def run_module(capsys, module_args):
    """Run metric_gate's main() with ``module_args``; return (failed, result dict)."""
    failed, result, _output = run_any_module(metric_gate, capsys, module_args)
    return failed, result


def error_rate_check(**overrides):
    check = {"name": "error-rate", "query": "error_rate", "max": 0.01}
    check.update(overrides)
    return check


def test_passing_gate(capsys, prometheus):
    prometheus.answers = lambda promql: vector("0.001")
    failed, result = run_module(
        capsys,
        {
            "prometheus_url": prometheus.url,
            "checks": [
                error_rate_check(),
                {
                    "name": "p99",
                    "template": "istio_latency_p99",
                    "params": {"namespace": "pilot-apps", "workload": "checkout-v3-0-0"},
                    "max": 500,
                },
            ],
            "samples": 2,
            "interval": "1s",
        },
    )
    assert not failed
    assert result["changed"] is False
    assert result["verdict"] == "pass"
    assert result["passed"] is True
    assert isinstance(result["elapsed"], float)
    assert [check["name"] for check in result["checks"]] == ["error-rate", "p99"]
    assert result["checks"][0]["values"] == [0.001, 0.001]
    assert result["checks"][1]["query"].startswith("histogram_quantile(0.99, ")
    assert len(prometheus.requests) == 4


def test_breach_fails_the_task_naming_the_check(capsys, prometheus):
    prometheus.answers = lambda promql: vector("0.2") if promql == "error_rate" else vector("100")
    failed, result = run_module(
        capsys,
        {
            "prometheus_url": prometheus.url,
            "checks": [error_rate_check(), {"name": "p99", "query": "p99", "max": 500}],
            "samples": 5,
            "interval": 1,
        },
    )
    assert failed
    assert result["msg"].startswith("metric gate verdict fail: error-rate fail: 0.2 is above max 0.01")
    assert "p99" not in result["msg"]
    assert result["verdict"] == "fail"
    assert result["passed"] is False
    assert result["changed"] is False
    assert result["checks"][1]["status"] == "incomplete"
    assert len(prometheus.requests) == 2  # stopped after the first round


def test_fail_on_breach_false_returns_the_verdict(capsys, prometheus):
    prometheus.answers = lambda promql: vector("0.2")
    failed, result = run_module(
        capsys,
        {"prometheus_url": prometheus.url, "checks": [error_rate_check()], "fail_on_breach": False},
    )
    assert not failed
    assert result["verdict"] == "fail"
    assert result["passed"] is False
    assert "0.2 is above max 0.01" in result["reason"]


def test_runs_in_check_mode(capsys, prometheus):
    prometheus.answers = lambda promql: vector("0")
    failed, result = run_module(
        capsys,
        {"prometheus_url": prometheus.url, "checks": [error_rate_check()], "_ansible_check_mode": True},
    )
    assert not failed
    assert result["verdict"] == "pass"
    assert len(prometheus.requests) == 1


def test_prometheus_url_and_token_from_the_environment(capsys, prometheus, monkeypatch):
    monkeypatch.setenv("CERES_PROMETHEUS_URL", prometheus.url)
    monkeypatch.setenv("CERES_PROMETHEUS_TOKEN", TOKEN)
    prometheus.answers = lambda promql: vector("0")
    failed, result = run_module(capsys, {"checks": [error_rate_check()], "allow_insecure_auth": True})
    assert not failed
    assert prometheus.requests[-1].headers["authorization"] == "Bearer " + TOKEN


def test_unreachable_prometheus_fails_clearly_without_the_token(capsys):
    failed, result = run_module(
        capsys,
        {
            "prometheus_url": refused_url(),
            "bearer_token": TOKEN,
            "allow_insecure_auth": True,
            "checks": [error_rate_check()],
            "interval": 0,
            "error_limit": 1,
        },
    )
    assert failed
    assert result["verdict"] == "inconclusive"
    assert "2 consecutive query errors (error_limit 1)" in result["msg"]
    assert "connection refused" in result["msg"]
    assert TOKEN not in json.dumps(result)


@pytest.mark.parametrize("option, shown", [("public_headers", True), ("headers", False)])
def test_a_tenant_header_is_shown_only_when_given_as_public(capsys, prometheus, option, shown):
    """A tenant id in `headers` is a secret, masked wherever it occurs (here: in the rendered
    query, whose namespace is the same string); in `public_headers` it is shown."""
    prometheus.answers = lambda promql: vector("0.001")
    check = {
        "name": "error-rate",
        "template": "istio_error_rate",
        "params": {"namespace": "pilot-apps", "workload": "checkout-v3-0-0", "service": "checkout"},
        "max": 0.01,
        "min_requests": 0,
    }
    failed, result = run_module(
        capsys,
        {
            "prometheus_url": prometheus.url,
            option: {"X-Scope-OrgID": "pilot-apps"},
            "checks": [check],
            "allow_insecure_auth": True,
        },
    )
    assert not failed
    assert prometheus.requests[-1].headers["x-scope-orgid"] == "pilot-apps"
    assert ('destination_workload_namespace="pilot-apps"' in result["checks"][0]["query"]) is shown
    assert ("pilot-apps" in json.dumps(result)) is shown


def test_server_error_messages_do_not_leak_header_values(capsys, prometheus):
    prometheus.answers = lambda promql: error(
        403, "forbidden", "tenant key %s is not allowed" % prometheus.requests[-1].headers["x-api-key"]
    )
    failed, result = run_module(
        capsys,
        {
            "prometheus_url": prometheus.url,
            "headers": {"X-Api-Key": "key-abcdef-42"},
            "allow_insecure_auth": True,
            "checks": [error_rate_check()],
            "interval": 0,
            "error_limit": 0,
        },
    )
    assert failed
    assert "key-abcdef-42" not in json.dumps(result)
    assert "forbidden" in result["msg"]


@pytest.mark.parametrize(
    "module_args, expected_message",
    [
        ({"checks": [error_rate_check()]}, "prometheus_url"),
        ({"checks": [{"name": "a", "max": 1}]}, "one of the following is required: query, template found in checks"),
        ({"checks": [{"name": "a", "query": "x"}]}, "one of the following is required: min, max found in checks"),
        (
            {"checks": [{"name": "a", "query": "x", "template": "istio_error_rate", "max": 1}]},
            "mutually exclusive: query|template found in checks",
        ),
        ({"checks": [{"name": "a", "template": "istio_foo", "max": 1}]}, "template must be one of"),
        (
            {"checks": [{"name": "a", "query": "x", "min": 2, "max": 1}]},
            "checks[0] (a).min (2) is greater than max (1)",
        ),
        ({"checks": [{"query": "x", "max": 1}]}, "missing required arguments: name found in checks"),
        (
            {"checks": [{"name": "a", "template": "istio_error_rate", "params": {"namespace": "n"}, "max": 1}]},
            "checks[0] (a).template: template istio_error_rate needs parameter workload",
        ),
        (
            {"checks": [error_rate_check(), error_rate_check()]},
            "checks[1].name: 'error-rate' is used by more than one check",
        ),
        ({"checks": [error_rate_check()], "interval": "5x"}, "interval: invalid duration '5x'"),
        ({"checks": [error_rate_check()], "samples": 0}, "samples must be at least 1"),
        (
            {"checks": [error_rate_check()], "samples": 2, "failure_limit": 2},
            "failure_limit (2) must be lower than samples (2)",
        ),
        (
            {"checks": [error_rate_check()], "samples": 3, "interval": 0},
            "interval must be more than 0 when samples is more than 1",
        ),
        (
            {"checks": [error_rate_check()], "interval": 0, "warmup": "10s"},
            "interval must be more than 0 with a warmup",
        ),
        ({"checks": [error_rate_check()], "warmup": "later"}, "warmup: invalid duration 'later'"),
        ({"checks": [error_rate_check(min_requests=10)]}, "checks[0] (error-rate).min_requests needs requests_query"),
        (
            {
                "checks": [
                    {
                        "name": "a",
                        "template": "istio_error_rate",
                        "params": {"namespace": "n", "workload": "w"},
                        "max": 1,
                    }
                ]
            },
            "checks[0] (a).template: template istio_error_rate needs parameter service",
        ),
        ({"checks": [error_rate_check()], "no_data": "skip"}, "no_data must be one of"),
        (
            {"checks": [error_rate_check()], "bearer_token": TOKEN, "username": "u", "password": "p"},
            "mutually exclusive",
        ),
        ({"checks": [error_rate_check()], "username": "u"}, "parameters are required together: username, password"),
    ],
)
def test_invalid_options_name_the_field(capsys, prometheus, module_args, expected_message):
    if "prometheus_url" != expected_message:
        module_args = dict(module_args, prometheus_url=prometheus.url)
    failed, result = run_module(capsys, module_args)
    assert failed
    assert expected_message in result["msg"]
    assert prometheus.requests == []


def test_a_starved_check_reads_inconclusive_with_its_request_counts(capsys, prometheus):
    prometheus.answers = lambda promql: vector("50") if promql == "requests" else vector("0")
    failed, result = run_module(
        capsys,
        {
            "prometheus_url": prometheus.url,
            "samples": 3,
            "interval": 1,
            "checks": [error_rate_check(max=0.001, min_requests=3000, requests_query="requests")],
        },
    )
    assert failed
    assert result["verdict"] == "inconclusive"
    check = result["checks"][0]
    assert (check["status"], check["requests"], check["min_requests"]) == ("inconclusive", [50.0], 3000.0)
    assert "not enough evidence" in result["msg"]
