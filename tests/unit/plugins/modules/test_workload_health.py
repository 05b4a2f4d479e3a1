"""workload_health as Ansible runs it, against the fake API server (k8s_stub) served over HTTP."""

from __future__ import annotations

import threading

import pytest
from k8s_stub import FakeKubeApi, Fault, container_status, daemonset, deployment, pod_of, replicaset_of
from k8s_stub import run_module as run_any_module

from ansible_collections.ceres.rollout.plugins.modules import workload_health

TOKEN = "health-token-0123456789"


@pytest.fixture(autouse=True)
def no_k8s_environment(monkeypatch):
    for variable in ("K8S_AUTH_HOST", "K8S_AUTH_API_KEY", "K8S_AUTH_KUBECONFIG", "K8S_AUTH_CONTEXT"):
        monkeypatch.delenv(variable, raising=False)


@pytest.fixture
def api():
    fake = FakeKubeApi()
    for name in ("web", "api"):
        owner = fake.add(deployment("ns", name, labels={"app": name}))
        replicaset = fake.add(replicaset_of(owner))
        fake.add(pod_of(replicaset, "%s-5d8f9-aaaaa" % name))
    agent = fake.add(daemonset("ns", "agent"))
    for node in range(3):
        fake.add(pod_of(agent, "agent-%d" % node))
    fake.serve()
    yield fake
    fake.stop()


def args(api, **overrides):
    module_args = {"host": api.url, "api_key": TOKEN, "namespaces": ["ns"]}
    module_args.update(overrides)
    return module_args


def run_module(capsys, module_args):
    return run_any_module(workload_health, capsys, module_args)


def set_container(api, pod, **status):
    api.object("pods", "ns", pod)["status"]["containerStatuses"] = [container_status(**status)]


def test_healthy(capsys, api):
    failed, result, output = run_module(capsys, args(api, kinds=["Deployment", "DaemonSet"]))
    assert not failed, result
    assert result["changed"] is False
    assert result["healthy"] is True
    assert result["unhealthy"] == []
    assert result["summary"] == {"total": 3, "healthy": 3, "unhealthy": 0}
    assert [workload["name"] for workload in result["workloads"]] == ["api", "web", "agent"]
    assert len(result["workloads"][2]["pods"]) == 3
    assert set(result["baseline"]) == {
        "ns/api-5d8f9-aaaaa",
        "ns/web-5d8f9-aaaaa",
        "ns/agent-0",
        "ns/agent-1",
        "ns/agent-2",
    }
    assert TOKEN not in output


def test_crash_loop_fails_naming_the_workload_and_why(capsys, api):
    set_container(api, "web-5d8f9-aaaaa", restarts=5, waiting="CrashLoopBackOff", message="back-off 5m0s")
    failed, result, _output = run_module(capsys, args(api))
    assert failed
    assert result["msg"] == (
        "1 of 2 workloads unhealthy: Deployment ns/web: pod web-5d8f9-aaaaa: container app is "
        "CrashLoopBackOff: back-off 5m0s; pod web-5d8f9-aaaaa: 5 restarts in its life, more "
        "than max_restarts 0"
    )
    assert result["healthy"] is False and result["changed"] is False
    web = result["workloads"][1]
    assert web["pods"][0]["containers"][0]["waiting_reason"] == "CrashLoopBackOff"


def test_fail_on_unhealthy_false_reports_without_failing(capsys, api):
    set_container(api, "api-5d8f9-aaaaa", waiting="ImagePullBackOff", ready=False)
    failed, result, _output = run_module(capsys, args(api, fail_on_unhealthy=False))
    assert not failed
    assert result["healthy"] is False
    assert result["unhealthy"] == ["Deployment ns/api: pod api-5d8f9-aaaaa: container app is ImagePullBackOff"]


def test_a_baseline_from_an_earlier_call(capsys, api):
    set_container(api, "web-5d8f9-aaaaa", restarts=2)
    _failed, first, _output = run_module(capsys, args(api, max_restarts=5))
    failed, result, _output = run_module(capsys, args(api, baseline=first["baseline"]))
    assert not failed and result["healthy"]
    set_container(api, "web-5d8f9-aaaaa", restarts=3)
    failed, result, _output = run_module(capsys, args(api, baseline=first["baseline"]))
    assert failed
    assert "1 restart since the baseline, more than max_restarts 0" in result["msg"]


def test_since(capsys, api):
    set_container(api, "web-5d8f9-aaaaa", restarts=2, last_finished="2026-01-31T08:00:00Z")
    failed, result, _output = run_module(capsys, args(api, since="2026-01-31T09:00:00Z"))
    assert not failed and result["healthy"]
    failed, result, _output = run_module(capsys, args(api, since="2026-01-31T07:00:00Z", max_restarts=1))
    assert failed and "2 restarts since 2026-01-31T07:00:00Z (at most" in result["msg"]


def test_since_and_baseline_are_mutually_exclusive(capsys, api):
    failed, result, _output = run_module(capsys, args(api, since="2026-01-31T07:00:00Z", baseline={}))
    assert failed and "mutually exclusive" in result["msg"]


def test_a_bad_since_is_refused(capsys, api):
    failed, result, _output = run_module(capsys, args(api, since="an hour ago"))
    assert failed and "since: 'an hour ago' is not an RFC 3339 timestamp" in result["msg"]
    assert api.calls == []


def test_check_mode_runs_the_same(capsys, api):
    set_container(api, "web-5d8f9-aaaaa", waiting="ErrImagePull", ready=False)
    failed, result, _output = run_module(capsys, args(api, _ansible_check_mode=True))
    assert failed and result["changed"] is False and "ErrImagePull" in result["msg"]
    assert api.writes() == []


def test_a_missing_namespace_is_an_error(capsys, api):
    failed, result, _output = run_module(capsys, args(api, namespaces=["ns", "nope"]))
    assert failed and result["msg"] == "namespace nope does not exist"


def test_a_hung_api_server_ends_within_the_timeout(capsys, api):
    """The pod lists are never answered until the test lets them go: the task must end on its own."""
    release = threading.Event()
    hang = Fault.hold(release, timeout=60)  # a task that does not give up fails here rather than hanging
    api.fault = lambda method, path, number: hang if "/pods" in path else None
    try:
        failed, result, _output = run_module(capsys, args(api, timeout=1))
        still_held = hang.held
    finally:
        release.set()
    assert failed
    assert "the timeout of 1 s" in result["msg"]
    assert still_held >= 1 and hang.expired == 0  # the task ended while the API server still held its list


# --------------------------------------------------------------------------- wait_timeout and renew_lock (issue 16)


@pytest.fixture
def quick_waits(monkeypatch):
    from ansible_collections.ceres.rollout.plugins.module_utils.workloads import workload_health as health_module

    monkeypatch.setattr(health_module, "WAIT_INTERVAL", 0.05)


def lock_of(run_id="pilot-1", holder="alice@ctl", phase="pilot", force=False):
    from ansible_collections.ceres.rollout.plugins.module_utils.lock.lease_state import LockRequest

    return LockRequest("ceres-system", "ceres-rollout", run_id, holder, lease_duration=60, phase=phase, force=force)


def test_wait_timeout_looks_again_until_healthy(capsys, api, quick_waits):
    """Before: one look per task (callers looped with until, each look a new module run and no lock kept)."""
    set_container(api, "web-5d8f9-aaaaa", waiting="ImagePullBackOff", ready=False)
    healed = threading.Timer(0.4, lambda: set_container(api, "web-5d8f9-aaaaa"))
    healed.start()
    failed, result, _output = run_module(capsys, args(api, wait_timeout=20, timeout=30))
    healed.join()
    assert not failed, result
    assert result["healthy"] is True and result["looks"] > 1


def test_wait_timeout_ends_unhealthy_when_the_time_is_up(capsys, api, quick_waits):
    set_container(api, "web-5d8f9-aaaaa", waiting="ImagePullBackOff", ready=False)
    failed, result, _output = run_module(capsys, args(api, wait_timeout=0.3, timeout=30))
    assert failed and result["healthy"] is False and result["looks"] >= 2, result


def test_wait_timeout_longer_than_the_task_budget_is_refused(capsys, api):
    failed, result, _output = run_module(capsys, args(api, wait_timeout=300, timeout=60))
    assert failed and "wait_timeout must be more than 0 seconds and at most timeout (60 s)" in result["msg"]


def test_renew_lock_keeps_the_lock_while_waiting_and_stops_when_a_rollback_takes_it(capsys, api, quick_waits):
    from ansible_collections.ceres.rollout.plugins.module_utils.lock.lease import apply_lock

    apply_lock(api, lock_of(), "acquired")
    renew = {"run_id": "pilot-1", "holder": "alice@ctl", "lease_duration": 60, "host": api.url, "api_key": TOKEN}
    failed, result, _output = run_module(capsys, args(api, wait_timeout=5, timeout=30, renew_lock=renew))
    assert not failed and (result["lock_lost"], result["lock_renewals"]) == (False, 1), result

    set_container(api, "web-5d8f9-aaaaa", waiting="ImagePullBackOff", ready=False)
    taken = threading.Timer(
        0.3, lambda: apply_lock(api, lock_of("rollback-1", "bob@ctl", "rollback", True), "acquired")
    )
    taken.start()
    failed, result, _output = run_module(capsys, args(api, wait_timeout=20, timeout=30, renew_lock=renew))
    taken.join()
    assert failed and result["lock_lost"] is True, result
    assert result["msg"].startswith("workload_health stopped waiting: the rollout lock ceres-system/ceres-rollout was")
    assert result["lock"]["run_id"] == "rollback-1"
