"""rollout_journal as Ansible runs it: main() through the real K8sClient and urllib3, against the
fake API server (k8s_stub) served over HTTP."""

from __future__ import annotations

import json

import pytest
from k8s_stub import FakeKubeApi, Fault, configmap_path, lease_path
from k8s_stub import run_module as run_any_module

from ansible_collections.ceres.rollout.plugins.module_utils.k8s import args as k8s_args
from ansible_collections.ceres.rollout.plugins.module_utils.k8s import client as k8s_client
from ansible_collections.ceres.rollout.plugins.module_utils.k8s.library import KUBERNETES
from ansible_collections.ceres.rollout.plugins.module_utils.lock import lease_state
from ansible_collections.ceres.rollout.plugins.modules import rollout_journal

TOKEN = "journal-token-0123456789"


@pytest.fixture
def api():
    fake = FakeKubeApi()
    fake.serve()
    yield fake
    fake.stop()


@pytest.fixture(autouse=True)
def no_k8s_environment(monkeypatch):
    for variable in ("K8S_AUTH_HOST", "K8S_AUTH_API_KEY", "K8S_AUTH_KUBECONFIG", "K8S_AUTH_CONTEXT"):
        monkeypatch.delenv(variable, raising=False)


def args(api, state, **overrides):
    values = {
        "host": api.url,
        "api_key": TOKEN,
        "state": state,
        "run_id": "pilot-1",
        "holder": "alice@ctl",
        "phase": "pilot",
        "lease_duration": 60,
    }
    values.update(overrides)
    return {key: value for key, value in values.items() if value is not None}


def run(capsys, module_args):
    return run_any_module(rollout_journal, capsys, module_args)


def test_acquire_then_a_second_run_is_refused_naming_the_holder(capsys, api):
    failed, result, output = run(capsys, args(api, "acquired"))
    assert not failed, result
    assert (result["changed"], result["lock_outcome"]) == (True, "acquired")
    assert (result["lock"]["holder"], result["lock"]["run_id"], result["lock"]["phase"]) == (
        "alice@ctl",
        "pilot-1",
        "pilot",
    )
    assert "diff" not in result
    assert api.authorizations == {"Bearer %s" % TOKEN}
    assert TOKEN not in output

    failed, result, output = run(capsys, args(api, "acquired", run_id="pilot-2", holder="bob@ctl"))
    assert failed and result["changed"] is False
    assert result["msg"].startswith(
        "ceres-system/ceres-rollout is held by run pilot-1 (holder alice@ctl, phase pilot), since "
    )
    assert "run pilot-2 refuses to start" in result["msg"]
    assert result["lock"]["run_id"] == "pilot-1"
    assert "lock_lost" not in result  # refused to start: it never held the lock
    assert TOKEN not in output


def test_a_second_identical_acquire_reports_no_change(capsys, api):
    run(capsys, args(api, "acquired"))
    failed, result, _output = run(capsys, args(api, "acquired"))
    assert not failed
    assert (result["changed"], result["lock_outcome"]) == (False, "renewed")


def test_force_takes_the_lock_and_the_old_runs_renewal_fails(capsys, api):
    run(capsys, args(api, "acquired"))
    failed, result, _output = run(
        capsys, args(api, "acquired", run_id="rollback-1", holder="oncall@ctl", phase="rollback", force=True)
    )
    assert not failed
    assert result["lock_outcome"] == "forced"
    assert result["lock"]["taken_over_from"]["run_id"] == "pilot-1"
    failed, result, _output = run(capsys, args(api, "renewed"))
    assert failed
    assert "lock taken by run rollback-1 (rollback) at " in result["msg"]
    assert result["msg"].endswith(", by force; run pilot-1 no longer holds it and must stop (start a new run to go on)")
    assert result["lock_lost"] is True  # the canary role's rescue then changes nothing more


def test_release_by_the_owner_then_again_then_by_another_run(capsys, api):
    run(capsys, args(api, "acquired"))
    failed, result, _output = run(capsys, args(api, "released"))
    assert not failed and (result["changed"], result["lock_outcome"]) == (True, "released")
    assert result["lock"]["held"] is False
    failed, result, _output = run(capsys, args(api, "released"))
    assert not failed and (result["changed"], result["lock_outcome"]) == (False, "already_free")
    run(capsys, args(api, "acquired", run_id="pilot-2"))
    failed, result, _output = run(capsys, args(api, "released"))
    assert not failed and (result["changed"], result["lock_outcome"]) == (False, "held_by_another_run")
    assert result["lock_note"] == (
        "ceres-system/ceres-rollout is held by run pilot-2 (holder alice@ctl, phase pilot), "
        "not by run pilot-1: left as it is"
    )
    # (a warning too; whether it is in the result depends on what else the test process imported)
    assert (
        json.loads(json.dumps(api.objects[lease_path()]))["metadata"]["annotations"]["rollout.ceres.io/run-id"]
        == "pilot-2"
    )


def test_check_mode_writes_nothing(capsys, api):
    failed, result, _output = run(capsys, args(api, "acquired", _ansible_check_mode=True))
    assert not failed and result["changed"] is True and result["lock"]["run_id"] == "pilot-1"
    failed, result, _output = run(
        capsys, args(api, "recorded", record={"phase": "pilot", "outcome": "started"}, _ansible_check_mode=True)
    )
    assert not failed and result["changed"] is True and result["step"] == "appended"
    assert api.writes() == []


def test_diff_shows_the_holder_and_the_appended_record(capsys, api):
    _failed, result, _output = run(capsys, args(api, "acquired", _ansible_diff=True))
    assert result["diff"]["before"]["held"] is False
    assert result["diff"]["after"] == {
        "held": True,
        "holder": "alice@ctl",
        "run_id": "pilot-1",
        "phase": "pilot",
        "lease_duration": 60,
        "acquired_at": result["lock"]["acquired_at"],
    }
    record = {"step_id": "pilot/10/gate", "phase": "pilot", "outcome": "started", "weight": 10}
    _failed, result, _output = run(capsys, args(api, "recorded", record=record, _ansible_diff=True))
    assert result["diff"] == {"before": {}, "after": {"record": result["record"]}}
    _failed, result, _output = run(
        capsys, args(api, "recorded", record=dict(record, outcome="passed"), _ansible_diff=True)
    )
    assert result["step"] == "updated"
    assert result["diff"]["before"]["record"]["outcome"] == "started"
    assert result["diff"]["after"]["record"]["outcome"] == "passed"


def test_record_and_read_round_trip(capsys, api):
    record = {
        "step_id": "pilot/25/gate",
        "app": "checkout",
        "weight": 25,
        "outcome": "passed",
        "verdict": "pass",
        "gate": {"p95-ms": {"max": 100, "values": [41, 44]}},
        "backup_id": "bk-1",
        "data": {"canary_pod_template_hash": "7c9f6d5b8"},
    }
    run(capsys, args(api, "acquired"))  # only the run holding the lock writes the journal
    failed, result, _output = run(capsys, args(api, "recorded", record=record))
    assert not failed, result
    assert (result["changed"], result["step"]) == (True, "appended")
    assert result["record"]["phase"] == "pilot"  # the task's phase
    assert result["journal"]["name"] == "ceres-rollout-journal"
    failed, again, _output = run(capsys, args(api, "recorded", record=record))
    assert (again["changed"], again["step"]) == (False, "unchanged")
    failed, view, _output = run(capsys, {"host": api.url, "api_key": TOKEN, "state": "read"})
    assert not failed and view["changed"] is False
    assert view["records"] == [result["record"]] and view["last"] == result["record"]
    assert view["runs"][0]["run_id"] == "pilot-1" and view["runs"][0]["backup_ids"] == ["bk-1"]
    assert view["lock"]["run_id"] == "pilot-1"
    assert configmap_path() in api.objects


def test_read_is_safe_in_check_mode_and_on_an_empty_namespace(capsys, api):
    failed, view, _output = run(
        capsys, {"host": api.url, "api_key": TOKEN, "state": "read", "_ansible_check_mode": True}
    )
    assert not failed
    assert (view["records"], view["last"], view["runs"]) == ([], None, [])
    assert view["lock"]["exists"] is False
    assert api.writes() == []


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"run_id": None}, "state is acquired but all of the following are missing: run_id"),
        ({"run_id": "bad id"}, "run_id: must be 1 to 128 letters"),
        ({"lease_duration": 0}, "lease_duration: must be a whole number of seconds, at least 1, got 0"),
    ],
)
def test_invalid_options_fail_before_any_request(capsys, api, overrides, message):
    failed, result, _output = run(capsys, args(api, "acquired", **overrides))
    assert failed and message in result["msg"]
    assert api.calls == []


def test_a_recorded_state_needs_a_record(capsys, api):
    failed, result, _output = run(capsys, args(api, "recorded"))
    assert failed and "missing: record" in result["msg"]


def test_an_invalid_record_names_its_field(capsys, api):
    failed, result, _output = run(capsys, args(api, "recorded", record={"outcome": "passed", "colour": "red"}))
    assert failed and result["msg"].startswith("record.colour: is not a record field")


def test_a_hanging_api_server_fails_the_task_at_its_timeout(capsys, api):
    api.fault = lambda method, path, number: Fault.delay(5.0)
    failed, result, output = run(capsys, args(api, "acquired", force=True, timeout=0.5))
    assert failed and result["changed"] is False
    assert result["msg"].startswith("gave up after 1 attempt in ")
    assert (
        ", the timeout of 0.5 s leaving no time for another: GET %s: no answer from the API server" % lease_path()
        in result["msg"]
    )
    assert TOKEN not in output


def test_a_flapping_api_server_is_retried_within_the_budget(capsys, api, monkeypatch):
    monkeypatch.setattr(k8s_client.time, "sleep", lambda seconds: None)
    first_of_each_method = set()

    def fault(method, path, number):
        """The first GET and the first POST are answered 503: the client retries the GET; the POST,
        which may have landed, is re-read and decided again."""
        if method in first_of_each_method:
            return None
        first_of_each_method.add(method)
        return Fault.status(503)

    api.fault = fault
    failed, result, _output = run(capsys, args(api, "acquired", timeout=30))
    assert not failed, result
    assert result["lock_outcome"] == "acquired"
    # the Lease: GET (503, retried), GET, POST (503: read again), GET, POST, read back; then the fence on the
    # journal's ConfigMap: GET (none yet), the Lease again (still this run's), POST
    assert [(method, "leases" if "/leases" in path else "configmaps") for method, path in api.calls] == [
        ("GET", "leases"),
        ("GET", "leases"),
        ("POST", "leases"),
        ("GET", "leases"),
        ("POST", "leases"),
        ("GET", "leases"),
        ("GET", "configmaps"),
        ("GET", "leases"),
        ("POST", "configmaps"),
    ]


def test_missing_kubernetes_library_is_reported(capsys, api, monkeypatch):
    monkeypatch.setattr(KUBERNETES, "found", False)
    failed, result, _output = run(capsys, args(api, "acquired"))
    assert failed and "kubernetes" in result["msg"]


def test_the_holder_defaults_to_user_at_host(capsys, api, monkeypatch):
    monkeypatch.setattr(lease_state.getpass, "getuser", lambda: "deploy")
    monkeypatch.setattr(lease_state.socket, "gethostname", lambda: "controller-1")
    _failed, result, _output = run(capsys, args(api, "acquired", holder=None))
    assert result["lock"]["holder"] == "deploy@controller-1"


def test_argument_spec_has_the_connection_options():
    spec = rollout_journal.argument_spec()
    for option, option_spec in k8s_args.K8S_CONNECTION_ARG_SPEC.items():
        assert spec[option] == option_spec
    assert spec["namespace"]["default"] == "ceres-system"
    assert spec["name"]["default"] == "ceres-rollout"
