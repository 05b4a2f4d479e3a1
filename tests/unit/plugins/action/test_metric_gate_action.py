"""The metric_gate action plugin: one line per round through Display while the gate runs,
the module's own result, errors naming the field, and no secret in any line or result.

Prometheus is the stub HTTP server of prometheus_stub.py, so the real client runs."""

from __future__ import annotations

import copy
import json
from unittest import mock

import pytest
from ansible.parsing.dataloader import DataLoader
from ansible.playbook.task import Task
from k8s_stub import run_module as run_any_module
from prometheus_stub import error, start_stub, vector

from ansible_collections.ceres.rollout.plugins.action import metric_gate as gate_action
from ansible_collections.ceres.rollout.plugins.module_utils.gate import metric_gate as gate_work
from ansible_collections.ceres.rollout.plugins.module_utils.gate import verdict
from ansible_collections.ceres.rollout.plugins.module_utils.gate.config import build_checks, build_policy
from ansible_collections.ceres.rollout.plugins.module_utils.gate.prometheus import NO_DATA, VALUE, QueryResult
from ansible_collections.ceres.rollout.plugins.modules import metric_gate as gate_module

TOKEN = "gate-token-0123456789"
PASSWORD = "basic-Pa55word-never-shown"
API_KEY = "key-abcdef-42"
HOST = "canary-host"


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


@pytest.fixture
def shown(monkeypatch):
    """Every line the action plugin displays, with the number of queries made before it."""
    lines = []
    monkeypatch.setattr(gate_action.display, "display", lambda message, *args, **kwargs: lines.append(message))
    return lines


@pytest.fixture
def no_waiting(monkeypatch):
    """Rounds without the interval's sleep, for the module and the action plugin alike."""

    def run_gate_now(*args, **kwargs):
        kwargs.setdefault("sleep", lambda seconds: None)
        return verdict.run_gate(*args, **kwargs)

    monkeypatch.setattr(gate_work, "run_gate", run_gate_now)


class PassThroughTemplar:
    def template(self, value):
        return value


def make_action(args, check_mode=False, environment=None, no_log=False):
    task = Task()
    task.action = "ceres.rollout.metric_gate"
    task.args = copy.deepcopy(args)
    task.check_mode = check_mode
    task.no_log = no_log
    task.environment = environment
    connection = mock.MagicMock()
    connection._shell.tmpdir = "/tmp"
    return gate_action.ActionModule(task, connection, mock.MagicMock(), DataLoader(), PassThroughTemplar(), None)


def run_action(args, **task_settings):
    return make_action(args, **task_settings).run(task_vars={"inventory_hostname": HOST})


def run_module(capsys, args):
    """The module's main() as Ansible runs it on a host; returns its JSON result."""
    capsys.readouterr()
    _failed, result, _output = run_any_module(gate_module, capsys, copy.deepcopy(args))
    return result


def comparable(result):
    """A result with the run's clock readings replaced by their shape."""
    result = copy.deepcopy(result)
    if "elapsed" in result:
        result["elapsed"] = type(result["elapsed"]).__name__
    for check in result.get("checks", []):
        check["times"] = len(check["times"])
    return result


def check(name="error-rate", query="error_rate", **bounds):
    return dict({"name": name, "query": query}, **(bounds or {"max": 0.01}))


# --------------------------------------------------------------------------- lines as the rounds come


def test_one_line_per_round_shown_while_the_gate_samples(prometheus, shown, monkeypatch):
    events = []  # in order: each line shown (with the queries answered by then) and each nap between rounds
    original_display = gate_action.display.display
    now = [0.0]  # the gate's clock: it moves only when the gate naps

    def nap(seconds):
        events.append(("nap", seconds))
        now[0] += seconds

    def run_gate_on_its_own_clock(*args, **kwargs):
        return verdict.run_gate(*args, clock=lambda: now[0], sleep=nap, **kwargs)

    def answers(promql):
        return vector("0.001") if promql == "error_rate" else vector("74.25")

    prometheus.answers = answers
    monkeypatch.setattr(gate_work, "run_gate", run_gate_on_its_own_clock)
    with mock.patch.object(
        gate_action.display,
        "display",
        lambda message, *args, **kwargs: (
            events.append(("line", len(prometheus.requests))),
            original_display(message),
        ),
    ):
        result = run_action(
            {
                "prometheus_url": prometheus.url,
                "checks": [check(), check("p95-ms", "p95", max=100)],
                "samples": 3,
                "interval": 1,
            }
        )
    assert not result.get("failed"), result
    assert shown == [
        "metric_gate [canary-host] round 1 (1/3 samples): error-rate=0.001 (max 0.01) ok; p95-ms=74.25 (max 100) ok",
        "metric_gate [canary-host] round 2 (2/3 samples): error-rate=0.001 (max 0.01) ok; p95-ms=74.25 (max 100) ok",
        "metric_gate [canary-host] round 3 (3/3 samples): error-rate=0.001 (max 0.01) ok -> pass; "
        "p95-ms=74.25 (max 100) ok -> pass",
    ]
    # Each line is shown when its round's two queries are answered, before the next round's,
    # and one interval's nap before the line after it: as the rounds come, not at the end.
    assert events == [("line", 2), ("nap", 1.0), ("line", 4), ("nap", 1.0), ("line", 6)]


def test_a_breach_line_is_the_last_and_names_the_decided_check(prometheus, shown, no_waiting):
    prometheus.answers = lambda promql: vector("0.2") if promql == "error_rate" else vector("3")
    result = run_action(
        {"prometheus_url": prometheus.url, "checks": [check(), check("p95", "p95", max=5)], "samples": 5}
    )
    assert result["failed"] is True
    assert shown == [
        "metric_gate [canary-host] round 1 (1/5 samples): error-rate=0.2 (max 0.01) BREACH -> fail; p95=3 (max 5) ok"
    ]


def test_no_line_when_progress_is_off_or_the_task_is_no_log(prometheus, shown, no_waiting):
    prometheus.answers = lambda promql: vector("0")
    args = {"prometheus_url": prometheus.url, "checks": [check()]}
    assert run_action(dict(args, progress=False))["verdict"] == "pass"
    assert run_action(args, no_log=True)["verdict"] == "pass"
    assert shown == []
    run_action(args)
    assert len(shown) == 1


def test_check_mode_samples_and_shows_the_same(prometheus, shown, no_waiting):
    prometheus.answers = lambda promql: vector("0")
    result = run_action({"prometheus_url": prometheus.url, "checks": [check()], "samples": 2}, check_mode=True)
    assert (result["verdict"], result["changed"]) == ("pass", False)
    assert len(prometheus.requests) == 2 and len(shown) == 2


# --------------------------------------------------------------------------- what each sample did, in words


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def monotonic(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def printed_rounds(checks, answers_by_round, **policy_options):
    """Run the engine on a fake clock with ``answers_by_round[round][promql]``; return the lines."""
    clock = FakeClock()
    lines = []
    policy = build_policy(**policy_options)
    printer = gate_action.RoundPrinter("h", policy, lines.append, clock=clock.monotonic, wall_clock=clock.monotonic)

    def query(promql):
        return answers_by_round[min(len(lines), len(answers_by_round) - 1)][promql]

    verdict.run_gate(
        build_checks(checks),
        policy,
        query,
        clock=clock.monotonic,
        sleep=clock.sleep,
        wall_clock=printer.wall_clock,
        on_round=printer.on_round,
    )
    return lines


def value(number):
    return QueryResult(VALUE, value=number)


NO_DATA_ANSWER = QueryResult(NO_DATA, message="empty result (no series matched)")


def test_warm_up_rounds_and_samples_not_counted():
    lines = printed_rounds(
        [check()],
        [{"error_rate": NO_DATA_ANSWER}, {"error_rate": value(0.001)}, {"error_rate": value(0.0)}],
        samples=2,
        interval=10,
        warmup=20,
    )
    assert lines == [
        "metric_gate [h] round 1 (0/2 samples, warm-up): error-rate=no data (max 0.01) warm-up, not counted",
        "metric_gate [h] round 2 (1/2 samples, warm-up): error-rate=0.001 (max 0.01) ok",
        "metric_gate [h] round 3 (2/2 samples): error-rate=0 (max 0.01) ok -> pass",
    ]


def test_request_counts_and_too_few_requests():
    checks = [check(max=0.001, min_requests=3000, requests_query="requests")]
    enough = printed_rounds(checks, [{"error_rate": value(0.0), "requests": value(4210.4)}])
    assert enough == ["metric_gate [h] round 1 (1/1 samples): error-rate=0 (max 0.001, 4210 req) ok -> pass"]
    starved = printed_rounds(checks, [{"error_rate": value(0.0), "requests": value(50)}], samples=3, interval=1)
    assert starved == [
        "metric_gate [h] round 1 (1/3 samples): error-rate=0 (max 0.001, 50 req) too few requests (min 3000)"
        " -> inconclusive"
    ]


def test_query_errors_retried_then_a_decided_check_is_shown_by_its_status():
    broken = QueryResult(verdict.QUERY_ERROR, message="cannot reach Prometheus at http://p:9090: connection refused")
    lines = printed_rounds(
        [check("a", "a", min=0, max=5), check("b", "b", max=5)],
        [{"a": value(1), "b": broken}, {"a": value(2), "b": value(1)}, {"a": value(3), "b": value(1)}],
        samples=2,
        interval=1,
    )
    assert lines == [
        "metric_gate [h] round 1 (0/2 samples): a=1 (min 0, max 5) ok; b: query error (1 in a row, error_limit 2):"
        " cannot reach Prometheus at http://p:9090: connection refused",
        "metric_gate [h] round 2 (1/2 samples): a=2 (min 0, max 5) ok -> pass; b=1 (max 5) ok",
        "metric_gate [h] round 3 (2/2 samples): a pass; b=1 (max 5) ok -> pass",
    ]
    gave_up = printed_rounds([check("b", "b", max=5)], [{"b": broken}], samples=2, interval=1, error_limit=0)
    assert gave_up == [
        "metric_gate [h] round 1 (0/2 samples): b: 1 consecutive query errors (error_limit 0): cannot reach"
        " Prometheus at http://p:9090: connection refused -> error"
    ]


def test_a_line_that_cannot_be_made_does_not_stop_the_gate():
    lines = []
    policy = build_policy()
    printer = gate_action.RoundPrinter("h", policy, lines.append)
    with mock.patch.object(printer, "format_round", side_effect=ValueError("odd")):
        printer.on_round(1, [])
    assert lines == ["metric_gate [h] round 1: (cannot show this round: odd)"]
    failing = gate_action.RoundPrinter("h", policy, mock.Mock(side_effect=OSError("closed")))
    failing.on_round(1, [])  # does not raise


# --------------------------------------------------------------------------- the module's result


def starved_check():
    return check(max=0.001, min_requests=3000, requests_query="requests")


@pytest.mark.parametrize(
    "args",
    [
        {"checks": [check(), check("p99", "p99", max=500)], "samples": 2},
        {
            "checks": [check(), check("p99", "p99", max=500)],
            "samples": 3,
            "bearer_token": TOKEN,
            "allow_insecure_auth": True,
        },
        {"checks": [check(max=0.0001)], "samples": 3},
        {"checks": [check(max=0.0001)], "fail_on_breach": False},
        {
            "checks": [starved_check()],
            "samples": 3,
            "username": "gate",
            "password": PASSWORD,
            "allow_insecure_auth": True,
        },
        {
            "checks": [check(query='sum(x{namespace="%s"})' % API_KEY)],
            "headers": {"X-Api-Key": API_KEY},
            "allow_insecure_auth": True,
        },
        {"checks": [check()], "samples": 0},
        {"checks": [check(), check()]},
        {"checks": [check()], "no_data": "skip"},
    ],
    ids=["pass", "pass-token", "breach", "no-fail-on-breach", "starved", "masked-header", "samples", "dup", "choice"],
)
def test_the_result_is_the_modules(capsys, prometheus, shown, no_waiting, args):
    def answers(promql):
        return vector("50") if promql == "requests" else vector("0.001")

    prometheus.answers = answers
    args = dict(args, prometheus_url=prometheus.url)
    module_result = run_module(capsys, args)
    action_result = run_action(args)
    # A module's warnings reach its stdout only with what else the test process imported (see the
    # rollout_journal tests); the action's are checked on their own.
    warnings = action_result.pop("warnings", [])
    module_result.pop("warnings", None)
    assert comparable(action_result) == comparable(module_result)
    sent_in_clear = [name for name in ("bearer_token", "password", "headers") if args.get(name)]
    assert [warning.split(" is sent in clear text")[0] for warning in warnings] == (
        [" and ".join(sent_in_clear)] if sent_in_clear else []
    )
    assert action_result.get("changed", False) is False
    assert bool(action_result.get("failed")) == bool(module_result.get("failed"))


def test_a_failure_reads_as_the_modules(prometheus, shown, no_waiting):
    prometheus.answers = lambda promql: vector("0.2") if promql == "error_rate" else vector("100")
    result = run_action(
        {"prometheus_url": prometheus.url, "checks": [check(), check("p99", "p99", max=500)], "samples": 5}
    )
    assert result["failed"] is True
    assert result["msg"].startswith("metric gate verdict fail: error-rate fail: 0.2 is above max 0.01")
    assert (result["verdict"], result["passed"], result["changed"]) == ("fail", False, False)
    assert result["checks"][1]["status"] == "incomplete"
    assert set(result) == {
        "failed",
        "msg",
        "changed",
        "verdict",
        "passed",
        "checks",
        "elapsed",
        "reason",
        "invocation",
    }


# --------------------------------------------------------------------------- bad input names the field


@pytest.mark.parametrize(
    "args, expected_message",
    [
        ({"checks": [check()]}, "missing required arguments: prometheus_url"),
        ({"checks": [{"name": "a", "max": 1}]}, "one of the following is required: query, template found in checks"),
        ({"checks": [{"name": "a", "query": "x"}]}, "one of the following is required: min, max found in checks"),
        ({"checks": [{"query": "x", "max": 1}]}, "missing required arguments: name found in checks"),
        (
            {"checks": [{"name": "a", "query": "x", "min": 2, "max": 1}]},
            "checks[0] (a).min (2) is greater than max (1)",
        ),
        ({"checks": [check()], "interval": "5x"}, "interval: invalid duration '5x'"),
        ({"checks": [check()], "progress": "sometimes"}, "progress"),
        ({"checks": [check()], "samples": 2, "failure_limit": 2}, "failure_limit (2) must be lower than samples (2)"),
        ({"checks": [check()], "bearer_token": TOKEN, "username": "u", "password": PASSWORD}, "mutually exclusive"),
        ({"checks": [check()], "username": "u"}, "parameters are required together: username, password"),
        ({"checks": [check()], "bogus": 1}, "Unsupported parameters for (ceres.rollout.metric_gate) module: bogus"),
        ({"checks": [check()], "headers": "X-Api-Key=%s,broken" % API_KEY}, "argument 'headers' is of type str"),
    ],
)
def test_bad_input_fails_naming_the_field_before_any_query(prometheus, shown, args, expected_message):
    if "prometheus_url" not in expected_message:
        args = dict(args, prometheus_url=prometheus.url)
    result = run_action(args)
    assert result["failed"] is True
    assert expected_message in result["msg"]
    assert prometheus.requests == [] and shown == []
    for secret in (TOKEN, PASSWORD, API_KEY):
        assert secret not in json.dumps(result)


# --------------------------------------------------------------------------- secrets


def test_no_secret_in_any_line_or_result(prometheus, shown, no_waiting):
    """The API key is also the namespace in the query and in a check's name, and the server
    echoes it in an error: it is masked everywhere, as the module masks its result."""
    answers = iter([error(403, "forbidden", "tenant key %s is not allowed" % API_KEY)] + [vector("0")] * 10)
    prometheus.answers = lambda promql: next(answers)
    result = run_action(
        {
            "prometheus_url": prometheus.url,
            "username": "gate",
            "password": PASSWORD,
            "headers": {"X-Api-Key": API_KEY},
            "allow_insecure_auth": True,
            "checks": [check("%s/error-rate" % API_KEY, 'sum(x{namespace="%s"})' % API_KEY)],
            "samples": 2,
        }
    )
    assert result["verdict"] == "pass", result
    assert prometheus.requests[0].headers["x-api-key"] == API_KEY
    assert len(shown) == 3
    assert "forbidden" in shown[0] and "********" in shown[0]
    for text in shown + [json.dumps(result)]:
        assert API_KEY not in text and PASSWORD not in text


def test_credentials_from_the_task_environment_are_used_and_never_shown(prometheus, shown, no_waiting):
    """As the module read CERES_PROMETHEUS_* from the host's environment, which a task's
    ``environment`` sets, the action plugin reads them from the task's environment."""
    prometheus.answers = lambda promql: error(401, "unauthorized", "bad token %s" % TOKEN)
    result = run_action(
        {"checks": [check()], "samples": 2, "error_limit": 0, "allow_insecure_auth": True},
        environment=[{"CERES_PROMETHEUS_URL": prometheus.url}, {"CERES_PROMETHEUS_TOKEN": TOKEN}],
    )
    assert prometheus.requests[0].headers["authorization"] == "Bearer " + TOKEN
    assert result["verdict"] == "inconclusive" and "unauthorized" in result["msg"]
    assert result["invocation"]["module_args"]["bearer_token"] == "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
    assert shown and all(TOKEN not in line for line in shown)
    assert TOKEN not in json.dumps(result)


def test_an_option_given_wins_over_the_task_environment(prometheus, shown, no_waiting, monkeypatch):
    monkeypatch.setenv("CERES_PROMETHEUS_TOKEN", "from-the-controller")
    prometheus.answers = lambda promql: vector("0")
    run_action(
        {"prometheus_url": prometheus.url, "bearer_token": TOKEN, "checks": [check()], "allow_insecure_auth": True},
        environment={"CERES_PROMETHEUS_TOKEN": "from-the-task"},
    )
    run_action(
        {"prometheus_url": prometheus.url, "checks": [check()], "allow_insecure_auth": True}, environment={"OTHER": "x"}
    )
    run_action(
        {"prometheus_url": prometheus.url, "checks": [check()], "allow_insecure_auth": True},
        environment={"CERES_PROMETHEUS_TOKEN": "t"},
    )
    assert [request.headers["authorization"] for request in prometheus.requests] == [
        "Bearer " + TOKEN,
        "Bearer from-the-controller",
        "Bearer t",
    ]
