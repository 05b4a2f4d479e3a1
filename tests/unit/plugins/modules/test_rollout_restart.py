"""rollout_restart as Ansible runs it, against the fake API server (k8s_stub) served over HTTP."""

from __future__ import annotations

import pytest
from k8s_stub import FakeKubeApi, Fault, deployment, object_path
from k8s_stub import run_module as run_any_module

from ansible_collections.ceres.rollout.plugins.module_utils.lock.lease import apply_lock
from ansible_collections.ceres.rollout.plugins.module_utils.lock.lease_state import LockRequest
from ansible_collections.ceres.rollout.plugins.module_utils.workloads import restart as workloads_restart
from ansible_collections.ceres.rollout.plugins.modules import rollout_restart

TOKEN = "restart-token-0123456789"
RESTART_ID = workloads_restart.ANNOTATION_RESTART_ID
RESTARTED_AT = workloads_restart.ANNOTATION_RESTARTED_AT


@pytest.fixture(autouse=True)
def no_k8s_environment(monkeypatch):
    for variable in ("K8S_AUTH_HOST", "K8S_AUTH_API_KEY", "K8S_AUTH_KUBECONFIG", "K8S_AUTH_CONTEXT"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr(workloads_restart, "POLL_FIRST", 0.05)
    monkeypatch.setattr(workloads_restart, "POLL_MAX", 0.1)
    monkeypatch.setattr(workloads_restart, "BUDGET_RESERVE", 0.2)


@pytest.fixture
def api():
    fake = FakeKubeApi()
    for namespace in ("ns-a", "ns-b"):
        for name in ("web", "api"):
            fake.add(deployment(namespace, name, labels={"app": name}))
    fake.serve()
    yield fake
    fake.stop()


def args(api, **overrides):
    module_args = {"host": api.url, "api_key": TOKEN, "namespaces": ["ns-a", "ns-b"]}
    module_args.update(overrides)
    return module_args


def run_module(capsys, module_args):
    return run_any_module(rollout_restart, capsys, module_args)


def test_restart_and_wait_reports_every_workload(capsys, api):
    failed, result, output = run_module(capsys, args(api, restart_id="run-1"))
    assert not failed, result
    assert result["changed"] is True
    assert result["summary"] == {"total": 4, "restarted": 4, "unchanged": 0, "ready": 4, "not_ready": 0}
    assert result["restart_id"] == "run-1"
    first = result["workloads"][0]
    assert {key: first[key] for key in ("namespace", "kind", "name", "restarted", "ready", "generation")} == {
        "namespace": "ns-a",
        "kind": "Deployment",
        "name": "api",
        "restarted": True,
        "ready": True,
        "generation": 2,
    }
    assert first["restart_id"] == "run-1" and first["restarted_at"] == result["restarted_at"]
    assert first["message"].startswith("rolled out")
    assert "diff" not in result
    assert TOKEN not in output
    assert len(api.writes()) == 4


def test_a_second_run_with_the_same_restart_id_reports_changed_false(capsys, api):
    run_module(capsys, args(api, restart_id="run-1"))
    failed, result, _output = run_module(capsys, args(api, restart_id="run-1"))
    assert not failed
    assert result["changed"] is False
    assert result["summary"]["restarted"] == 0 and result["summary"]["ready"] == 4
    assert len(api.writes()) == 4


def test_check_mode_changes_nothing(capsys, api):
    failed, result, _output = run_module(capsys, args(api, restart_id="run-1", _ansible_check_mode=True))
    assert not failed
    assert result["changed"] is True
    assert all(workload["restarted"] for workload in result["workloads"])
    assert api.writes() == []
    assert RESTART_ID not in api.template_annotations("deployments", "ns-a", "web")


def test_diff_mode_shows_the_annotations(capsys, api):
    failed, result, _output = run_module(capsys, args(api, restart_id="run-1", names=["web"], _ansible_diff=True))
    assert not failed
    assert result["diff"]["before"] == {"Deployment ns-a/web": {}, "Deployment ns-b/web": {}}
    assert result["diff"]["after"]["Deployment ns-b/web"] == {RESTARTED_AT: result["restarted_at"], RESTART_ID: "run-1"}


def most_polls(seconds):
    """The most polls the wait can make in ``seconds``: each follows a nap of the current interval
    (POLL_FIRST, growing by POLL_GROWTH up to POLL_MAX), the last nap cut to what is left. Naps are
    never shorter than asked, so a loaded machine makes fewer polls, never more."""
    polls, slept, interval = 0, 0.0, workloads_restart.POLL_FIRST
    while slept < seconds:
        slept += min(interval, seconds - slept)
        polls += 1
        interval = min(workloads_restart.POLL_MAX, interval * workloads_restart.POLL_GROWTH)
    return polls


def polls_of(api, namespace):
    """How many times the wait listed the namespace's Deployments (the lists after the last patch)."""
    last_patch = max(index for index, (method, _path) in enumerate(api.calls) if method == "PATCH")
    listing = ("GET", object_path("deployments", namespace))
    return sum(1 for call in api.calls[last_patch + 1 :] if call == listing)


def test_a_workload_that_never_becomes_ready_is_named(capsys, api):
    api.never_ready.add("api")
    api.call_limit = 200  # a wait that never ends fails on a refused list instead of running on
    failed, result, _output = run_module(capsys, args(api, restart_id="run-1", wait_timeout=1))
    assert failed
    assert result["msg"].startswith(
        "2 of 4 workloads did not become ready within wait_timeout (1 s): Deployment ns-a/api ("
    )
    assert "Deployment ns-b/api (" in result["msg"] and "ns-a/web" not in result["msg"]
    assert result["changed"] is True
    assert result["summary"]["not_ready"] == 2
    # the wait ended at wait_timeout: no more polls than fit in its 1 s (one more for a nap ending a hair early)
    assert 1 <= polls_of(api, "ns-a") <= most_polls(1) + 1


def test_the_timeout_budget_bounds_the_whole_task(capsys, api):
    api.never_ready.add("web")
    api.call_limit = 200  # a wait the budget does not end fails on a refused list instead of hanging
    failed, result, _output = run_module(capsys, args(api, restart_id="run-1", timeout=1.5))
    assert failed
    assert "did not become ready within the task's timeout (1.5 s)" in result["msg"]
    # no more polls than fit in what the 1.5 s budget left the wait (it stops BUDGET_RESERVE before the end)
    assert 1 <= polls_of(api, "ns-a") <= most_polls(1.5 - workloads_restart.BUDGET_RESERVE) + 1


def test_the_budget_running_out_during_the_patches(capsys, api):
    api.fault = lambda method, path, number: Fault.delay(1.5) if method == "PATCH" else None
    failed, result, _output = run_module(capsys, args(api, restart_id="run-1", timeout=1))
    assert failed
    # the patches were sent and never answered: they may have landed
    assert result["msg"].startswith(
        "4 of 4 restarts failed (4 sent but unanswered may have landed): Deployment ns-a/api: gave up after 1 attempt"
    )
    assert "the timeout of 1 s leaving no time for another" in result["msg"]
    assert result["changed"] is True


def test_a_409_on_a_patch_is_retried(capsys, api):
    api.conflicts["web"] = 1
    failed, result, _output = run_module(capsys, args(api, restart_id="run-1", names=["web"]))
    assert not failed, result
    assert result["summary"]["restarted"] == 2
    assert len(api.writes()) == 3


def test_conflicts_beyond_max_conflict_retries_fail_naming_the_workload(capsys, api):
    api.conflicts["web"] = 10
    failed, result, _output = run_module(
        capsys, args(api, restart_id="run-1", namespaces=["ns-a"], max_conflict_retries=1)
    )
    assert failed
    assert "Deployment ns-a/web: 409 Conflict on every try, gave up after 2 attempts" in result["msg"]
    assert result["changed"] is True  # ns-a/api was restarted
    by_name = {workload["name"]: workload for workload in result["workloads"]}
    assert by_name["web"]["message"].startswith("not restarted: ")


def test_a_missing_namespace_fails_before_anything_changes(capsys, api):
    failed, result, _output = run_module(capsys, args(api, namespaces=["ns-a", "nope"]))
    assert failed
    assert result["msg"] == "namespace nope does not exist"
    assert result["changed"] is False
    assert api.writes() == []


def test_a_selector_matching_nothing_fails_unless_allow_empty(capsys, api):
    failed, result, _output = run_module(capsys, args(api, selector="app=none"))
    assert failed and result["msg"].startswith(
        "nothing matched: no Deployment in namespaces ns-a, ns-b with selector 'app=none'"
    )
    failed, result, _output = run_module(capsys, args(api, selector="app=none", allow_empty=True))
    assert not failed and result["changed"] is False and result["workloads"] == []


def test_namespaces_or_selector_is_required(capsys, api):
    failed, result, _output = run_module(capsys, {"host": api.url, "api_key": TOKEN})
    assert failed and "one of the following is required: namespaces, selector" in result["msg"]


def test_wait_timeout_longer_than_timeout_is_refused(capsys, api):
    failed, result, _output = run_module(capsys, args(api, wait_timeout=600))
    assert failed and "wait_timeout (600 s) is longer than timeout (120 s)" in result["msg"]
    assert api.calls == []


# --------------------------------------------------------------------------- renew_lock (issue 16)


def pilot_lock_request(**overrides):
    values = dict(namespace="ceres-system", name="ceres-rollout", run_id="pilot-1", holder="alice@ctl", phase="pilot")
    values.update(overrides)
    values.setdefault("lease_duration", 60)
    return LockRequest(**values)


def renew_lock(api):
    return {"run_id": "pilot-1", "holder": "alice@ctl", "lease_duration": 60, "host": api.url, "api_key": TOKEN}


def patches(api):
    return [path for method, path in api.writes() if method == "PATCH"]


def test_renew_lock_fences_the_restart_a_run_that_lost_its_lock_restarts_nothing(capsys, api):
    """Before: a pilot a rollback had taken the lock from still restarted every workload of its namespace."""
    apply_lock(api, pilot_lock_request(), "acquired")
    apply_lock(api, pilot_lock_request(run_id="rollback-1", holder="bob@ctl", phase="rollback", force=True), "acquired")
    failed, result, output = run_module(capsys, args(api, restart_id="run-1", renew_lock=renew_lock(api)))
    assert failed and result["lock_lost"] is True, result
    assert result["msg"].startswith("rollout_restart stopped: the rollout lock ceres-system/ceres-rollout was taken by")
    assert result["changed"] is False and patches(api) == []
    assert result["lock"]["run_id"] == "rollback-1"
    assert TOKEN not in output


def test_renew_lock_stops_the_wait_when_a_rollback_takes_the_lock(capsys, api):
    apply_lock(api, pilot_lock_request(), "acquired")
    api.never_ready.add("web")  # the wait goes on

    def rollback_takes_the_lock(fake):
        rollback = pilot_lock_request(run_id="rollback-1", holder="bob@ctl", phase="rollback", force=True)
        apply_lock(fake, rollback, "acquired")

    # the module's writes: its renewal (the fence) then the four patches; the rollback comes after them
    api.after_write = [lambda fake: None] * 5 + [rollback_takes_the_lock]
    failed, result, _output = run_module(
        capsys, args(api, restart_id="run-1", renew_lock=renew_lock(api), wait_timeout=20, timeout=30)
    )
    assert failed and result["lock_lost"] is True, result
    assert result["changed"] is True and len(patches(api)) == 4  # the restarts were sent before the loss
    assert result["summary"]["restarted"] == 4
    assert "was taken by run rollback-1" in result["msg"]


def test_renew_lock_keeps_the_lock_while_waiting(capsys, api):
    apply_lock(api, pilot_lock_request(), "acquired")
    failed, result, _output = run_module(capsys, args(api, restart_id="run-1", renew_lock=renew_lock(api)))
    assert not failed, result
    assert (result["lock_lost"], result["lock_renewals"]) == (False, 1)
    assert result["lock"]["run_id"] == "pilot-1" and len(patches(api)) == 4


def test_renew_lock_lease_must_cover_three_polls(capsys, api):
    failed, result, _output = run_module(capsys, args(api, renew_lock=dict(renew_lock(api), lease_duration=0)))
    assert failed and "renew_lock.lease_duration" in result["msg"], result
    assert api.writes() == []
