"""metric_gate's renew_lock, as Ansible runs the task: through the action plugin (the controller) and
through the module's main() (a host), with the real K8sClient and urllib3 against the fake API
server (k8s_stub) served over HTTP, and Prometheus the stub HTTP server of prometheus_stub.py.

Both paths renew on the first round, stop at once when another run takes the lock (naming it),
renew nothing in check mode, refuse bad options naming the field, and never show a credential."""

from __future__ import annotations

import copy
import json
from unittest import mock

import pytest
from ansible.parsing.dataloader import DataLoader
from ansible.playbook.task import Task
from k8s_stub import FakeKubeApi, Fault, lease_path
from k8s_stub import run_module as run_any_module
from prometheus_stub import start_stub, vector

from ansible_collections.ceres.rollout.plugins.action import metric_gate as gate_action
from ansible_collections.ceres.rollout.plugins.module_utils.gate import metric_gate as gate_work
from ansible_collections.ceres.rollout.plugins.module_utils.gate import verdict
from ansible_collections.ceres.rollout.plugins.module_utils.lock.lease import apply_lock
from ansible_collections.ceres.rollout.plugins.module_utils.lock.lease_state import LockRequest
from ansible_collections.ceres.rollout.plugins.modules import metric_gate as gate_module

TOKEN = "lease-token-0123456789"
HOST = "canary-host"


@pytest.fixture(autouse=True)
def no_environment(monkeypatch):
    for variable in (
        "CERES_PROMETHEUS_URL",
        "CERES_PROMETHEUS_TOKEN",
        "K8S_AUTH_HOST",
        "K8S_AUTH_API_KEY",
        "K8S_AUTH_KUBECONFIG",
        "K8S_AUTH_CONTEXT",
    ):
        monkeypatch.delenv(variable, raising=False)


@pytest.fixture
def prometheus():
    stub = start_stub()
    stub.answers = lambda promql: vector("0")
    yield stub
    stub.stop()


@pytest.fixture
def api():
    fake = FakeKubeApi()
    fake.serve()
    apply_lock(fake, lock_request(), "acquired")
    fake.calls.clear()
    yield fake
    fake.stop()


@pytest.fixture
def shown(monkeypatch):
    lines = []
    monkeypatch.setattr(gate_action.display, "display", lambda message, *args, **kwargs: lines.append(message))
    return lines


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch):
    def run_gate_now(*args, **kwargs):
        kwargs.setdefault("sleep", lambda seconds: None)
        return verdict.run_gate(*args, **kwargs)

    monkeypatch.setattr(gate_work, "run_gate", run_gate_now)


def lock_request(**overrides):
    values = dict(run_id="pilot-1", holder="alice@ctl", phase="pilot", lease_duration=60)
    values.update(overrides)
    return LockRequest(namespace="ceres-system", name="ceres-rollout", **values)


def gate_args(prometheus, api, samples=4, **renew_lock):
    lock = {"run_id": "pilot-1", "holder": "alice@ctl", "phase": "pilot", "lease_duration": 60}
    if api is not None:
        lock.update(host=api.url, api_key=TOKEN)
    lock.update(renew_lock)
    return {
        "prometheus_url": prometheus.url,
        "checks": [{"name": "error-rate", "query": "error_rate", "max": 0.01}],
        "samples": samples,
        "interval": 1,
        "renew_lock": {key: value for key, value in lock.items() if value is not None},
    }


class PassThroughTemplar:
    def template(self, value):
        return value


def run_action(args, check_mode=False):
    task = Task()
    task.action = "ceres.rollout.metric_gate"
    task.args = copy.deepcopy(args)
    task.check_mode = check_mode
    task.no_log = False
    task.environment = None
    connection = mock.MagicMock()
    connection._shell.tmpdir = "/tmp"
    action = gate_action.ActionModule(task, connection, mock.MagicMock(), DataLoader(), PassThroughTemplar(), None)
    return action.run(task_vars={"inventory_hostname": HOST})


def run_module(capsys, args, check_mode=False):
    capsys.readouterr()
    module_args = copy.deepcopy(args)
    if check_mode:
        module_args["_ansible_check_mode"] = True
    _failed, result, output = run_any_module(gate_module, capsys, module_args)
    return result, output


def rollback_at_query(prometheus, api, number):
    """Prometheus answers; its ``number``-th query comes while a rollback takes the lock with force."""

    def answers(promql):
        if len(prometheus.requests) == number:
            apply_lock(
                api, lock_request(run_id="rollback-1", holder="bob@ctl", phase="rollback", force=True), "acquired"
            )
        return vector("0")

    return answers


# --------------------------------------------------------------------------- renewing


def test_the_action_renews_on_the_first_round_and_shows_it(prometheus, api, shown):
    before = api.object("leases", "ceres-system", "ceres-rollout")["spec"]["renewTime"]
    result = run_action(gate_args(prometheus, api))
    assert not result.get("failed"), result
    assert (result["verdict"], result["lock_lost"], result["lock_renewals"]) == ("pass", False, 1)
    assert (result["lock"]["run_id"], result["lock"]["holder"], result["lock"]["held"]) == (
        "pilot-1",
        "alice@ctl",
        True,
    )
    assert api.object("leases", "ceres-system", "ceres-rollout")["spec"]["renewTime"] > before
    assert shown[0] == "metric_gate [canary-host] round 1 (1/4 samples, lock renewed): error-rate=0 (max 0.01) ok"
    assert all("lock" not in line for line in shown[1:])
    # one renewal (GET, PUT, read back), then one GET per round checking the lock is still this run's
    assert [method for method, _path in api.calls] == ["GET", "PUT", "GET", "GET", "GET", "GET"]
    assert api.authorizations == {"Bearer %s" % TOKEN}
    assert result["invocation"]["module_args"]["renew_lock"]["api_key"] == "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
    assert TOKEN not in json.dumps(result) and all(TOKEN not in line for line in shown)


def test_the_module_renews_the_same_way(capsys, prometheus, api):
    result, output = run_module(capsys, gate_args(prometheus, api))
    assert not result.get("failed"), result
    assert (result["verdict"], result["lock_lost"], result["lock_renewals"]) == ("pass", False, 1)
    assert [method for method, _path in api.calls] == ["GET", "PUT", "GET", "GET", "GET", "GET"]
    assert TOKEN not in output


def test_without_renew_lock_nothing_about_a_lock_is_returned(prometheus, shown):
    args = gate_args(prometheus, None)
    del args["renew_lock"]
    result = run_action(args)
    assert result["verdict"] == "pass" and not {"lock", "lock_lost", "lock_renewals"} & set(result)


# --------------------------------------------------------------------------- the lock taken


def test_a_rollback_taking_the_lock_stops_the_gate_at_the_next_round(prometheus, api, shown):
    prometheus.answers = rollback_at_query(prometheus, api, 2)
    result = run_action(gate_args(prometheus, api, samples=10) | {"fail_on_breach": False})

    assert result["failed"] is True  # whatever fail_on_breach
    assert result["msg"].startswith(
        "metric gate stopped after 2 round(s): the rollout lock ceres-system/ceres-rollout was taken by run "
        "rollback-1 (holder bob@ctl, phase rollback) at "
    )
    assert result["msg"].endswith(", by force: run pilot-1 (holder alice@ctl) no longer holds it, so this run stops")
    assert (result["lock_lost"], result["verdict"], result["passed"]) == (True, "inconclusive", False)
    assert result["lock"]["run_id"] == "rollback-1"
    assert result["checks"][0]["status"] == "incomplete" and len(result["checks"][0]["values"]) == 2
    assert len(prometheus.requests) == 2 and len(shown) == 2  # not one query after the takeover's round
    assert api.object("leases", "ceres-system", "ceres-rollout")["spec"]["holderIdentity"] == "bob@ctl"


def test_the_module_stops_the_same_way(capsys, prometheus, api):
    prometheus.answers = rollback_at_query(prometheus, api, 2)
    result, output = run_module(capsys, gate_args(prometheus, api, samples=10))
    assert result["failed"] is True and result["lock_lost"] is True
    assert "was taken by run rollback-1 (holder bob@ctl, phase rollback)" in result["msg"]
    assert len(prometheus.requests) == 2
    assert TOKEN not in output


def test_a_transient_api_error_is_a_warning_of_the_task(prometheus, api, shown):
    # every request after the first renewal answers 503: the next round's check fails, within a 1 s budget
    first_renewal = []

    def fault(method, path, number):
        if len(first_renewal) < 3:  # GET, PUT, GET of the first renewal
            first_renewal.append(method)
            return None
        return Fault.status(503)

    api.fault = fault
    result = run_action(gate_args(prometheus, api, samples=2, timeout=1))
    assert not result.get("failed"), result
    assert result["lock_renewals"] == 1 and result["lock_lost"] is False
    assert result["warnings"] and result["warnings"][0].startswith(
        "metric_gate round 2: could not check the rollout lock ceres-system/ceres-rollout (retrying at the next round"
    )
    assert "503" in result["warnings"][0]
    assert "lock NOT checked (retrying next round)" in shown[1]


# --------------------------------------------------------------------------- check mode


def test_check_mode_renews_nothing(capsys, prometheus, api, shown):
    result = run_action(gate_args(prometheus, api), check_mode=True)
    assert (result["verdict"], result["lock_lost"], result["lock_renewals"], result["lock"]) == ("pass", False, 0, None)
    assert all("lock" not in line for line in shown)
    module_result, _output = run_module(capsys, gate_args(prometheus, api), check_mode=True)
    assert (module_result["lock_lost"], module_result["lock_renewals"], module_result["lock"]) == (False, 0, None)
    assert api.calls == []


# --------------------------------------------------------------------------- bad options


@pytest.mark.parametrize(
    "renew_lock, message",
    [
        ({"run_id": None}, "missing required arguments: run_id found in renew_lock"),
        ({"run_id": "bad id!"}, "renew_lock.run_id: must be 1 to 128 letters"),
        ({"lease_duration": 2}, "renew_lock.lease_duration (2 s) must be at least three times interval (1 s)"),
        ({"lease_duration": "long"}, "argument 'lease_duration' is of type str found in 'renew_lock'"),
        ({"timeout": -1}, "renew_lock.timeout: must be more than 0 seconds"),
        ({"bogus": 1}, "renew_lock.bogus"),
        ({"host": None, "kubeconfig": "/nonexistent/kubeconfig"}, "renew_lock: could not"),
    ],
)
def test_bad_options_fail_naming_the_field_before_any_query_or_request(
    capsys, prometheus, api, shown, renew_lock, message
):
    args = gate_args(prometheus, api, **renew_lock)
    result = run_action(args)
    module_result, output = run_module(capsys, args)
    for outcome in (result, module_result):
        assert outcome["failed"] is True
        assert message in outcome["msg"], outcome["msg"]
    assert prometheus.requests == [] and api.calls == [] and shown == []
    assert TOKEN not in json.dumps(result) and TOKEN not in output


def test_the_lease_stays_untouched_by_a_gate_that_never_ran(prometheus, api):
    lease = copy.deepcopy(api.objects[lease_path()])
    run_action(gate_args(prometheus, api, run_id="bad id!"))
    assert api.objects[lease_path()] == lease
