"""workloads_restart: all patched at once, one wait for all, the restart id, conflicts, time."""

from __future__ import annotations

import threading

import pytest
from k8s_stub import FakeKubeApi, daemonset, deployment, object_path, statefulset

from ansible_collections.ceres.rollout.plugins.module_utils.common.retry import Deadline
from ansible_collections.ceres.rollout.plugins.module_utils.k8s.errors import (
    Conflict,
    DeadlineExceeded,
)
from ansible_collections.ceres.rollout.plugins.module_utils.workloads import restart as workloads_restart
from ansible_collections.ceres.rollout.plugins.module_utils.workloads.restart import (
    ANNOTATION_RESTART_ID,
    ANNOTATION_RESTARTED_AT,
    RestartError,
    RestartRequest,
)
from ansible_collections.ceres.rollout.plugins.module_utils.workloads.selection import Selection, SelectionError

NOW = "2026-01-31T09:30:00Z"


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def api():
    fake = FakeKubeApi()
    for namespace in ("ns-a", "ns-b"):
        for name in ("web", "api", "worker"):
            fake.add(deployment(namespace, name, labels={"app": name}))
    return fake


def run(api, clock, check_mode=False, **options):
    selection = options.pop("selection", None) or Selection(namespaces=["ns-a", "ns-b"])
    request = RestartRequest(selection, **options)
    return workloads_restart.restart_workloads(
        api, request, check_mode=check_mode, sleep=clock.sleep, clock=clock, now=lambda: NOW
    )


def test_every_workload_is_patched_with_only_the_annotations_then_waited_for(api, clock):
    api.rollout_reads = 3
    result = run(api, clock, restart_id="run-1")
    assert result.changed
    assert len(api.writes()) == 6
    for _path, body in api.patches:
        assert body == {
            "spec": {
                "template": {
                    "metadata": {"annotations": {ANNOTATION_RESTARTED_AT: NOW, ANNOTATION_RESTART_ID: "run-1"}}
                }
            }
        }
    assert all(outcome.restarted and outcome.status.ready for outcome in result.outcomes)
    assert result.summary() == {"total": 6, "restarted": 6, "unchanged": 0, "ready": 6, "not_ready": 0}
    assert api.template_annotations("deployments", "ns-b", "worker")[ANNOTATION_RESTART_ID] == "run-1"
    # one list per namespace per poll, not one read per workload
    lists = [call for call in api.calls if call[0] == "GET" and call[1].endswith("/deployments")]
    assert len(lists) == 2 + 2 * 3


def test_the_patches_are_in_flight_together(api, clock):
    barrier = threading.Barrier(6, timeout=5)

    original = api.patch

    def patch(path, body, **kwargs):
        barrier.wait()  # would time out (BrokenBarrierError) were they sent one after another
        return original(path, body, **kwargs)

    api.patch = patch
    result = run(api, clock, restart_id="run-1")
    assert result.summary()["restarted"] == 6


def test_a_second_run_with_the_same_restart_id_changes_nothing(api, clock):
    run(api, clock, restart_id="run-1")
    patches = len(api.writes())
    again = run(api, clock, restart_id="run-1")
    assert not again.changed
    assert len(api.writes()) == patches
    assert again.summary()["unchanged"] == 6 and again.summary()["ready"] == 6
    third = run(api, clock, restart_id="run-2")
    assert third.changed and third.summary()["restarted"] == 6


def test_without_a_restart_id_every_run_restarts_and_clears_an_old_id(api, clock):
    run(api, clock, restart_id="run-1")
    result = run(api, clock)
    assert result.changed and result.summary()["restarted"] == 6
    assert ANNOTATION_RESTART_ID not in api.template_annotations("deployments", "ns-a", "web")
    assert api.patches[-1][1]["spec"]["template"]["metadata"]["annotations"][ANNOTATION_RESTART_ID] is None


def test_check_mode_reports_and_changes_nothing(api, clock):
    run(api, clock, restart_id="run-1", selection=Selection(namespaces=["ns-a"]))
    before = len(api.calls)
    result = run(api, clock, check_mode=True, restart_id="run-1")
    assert [outcome.workload.namespace for outcome in result.outcomes if outcome.restarted] == ["ns-b"] * 3
    assert result.changed
    assert api.writes() == [call for call in api.calls[:before] if call[0] == "PATCH"]
    diff = workloads_restart.diff_of(result.outcomes)
    assert diff["before"]["Deployment ns-b/web"] == {}
    assert diff["after"]["Deployment ns-b/web"] == {ANNOTATION_RESTARTED_AT: NOW, ANNOTATION_RESTART_ID: "run-1"}
    assert "Deployment ns-a/web" not in diff["after"]


def test_diff_shows_the_annotations_before_and_after(api, clock):
    run(api, clock, restart_id="run-1")
    result = run(api, clock, restart_id="run-2")
    diff = workloads_restart.diff_of(result.outcomes)
    assert diff["before"]["Deployment ns-a/api"] == {ANNOTATION_RESTARTED_AT: NOW, ANNOTATION_RESTART_ID: "run-1"}
    assert diff["after"]["Deployment ns-a/api"] == {ANNOTATION_RESTARTED_AT: NOW, ANNOTATION_RESTART_ID: "run-2"}


def test_a_workload_that_never_becomes_ready_is_named_when_the_wait_times_out(api, clock):
    api.never_ready.add("worker")
    with pytest.raises(RestartError) as raised:
        run(api, clock, restart_id="run-1", wait_timeout=30)
    error = raised.value
    assert str(error).startswith("2 of 6 workloads did not become ready within wait_timeout (30 s): ")
    assert "Deployment ns-a/worker (" in str(error) and "Deployment ns-b/worker (" in str(error)
    assert "ns-a/web" not in str(error)
    assert error.changed is True
    assert 30 <= clock.now <= 31
    by_name = {(outcome.workload.namespace, outcome.workload.name): outcome for outcome in error.outcomes}
    assert by_name[("ns-a", "worker")].status.ready is False
    assert by_name[("ns-a", "web")].status.ready is True


def test_the_clients_budget_ends_the_wait(api, clock):
    api.never_ready.add("web")
    api.deadline = Deadline(20, clock=clock)
    with pytest.raises(
        RestartError,
        match=r"did not become ready within the task's timeout \(20 s\): "
        r"Deployment ns-a/web \(.*\), Deployment ns-b/web",
    ):
        run(api, clock, restart_id="run-1")
    assert clock.now <= 20


def test_a_deadline_spent_during_a_poll_is_a_timeout_naming_the_pending(api, clock):
    api.never_ready.add("web")
    original = api.get
    polls = {"n": 0}

    def get(path, query=None):
        if path.endswith("/deployments"):
            polls["n"] += 1
            if polls["n"] > 4:
                raise DeadlineExceeded("GET %s: not sent, the timeout of 9 s is spent" % path)
        return original(path, query)

    api.get = get
    api.deadline = Deadline(9, clock=clock)
    with pytest.raises(RestartError, match="within the task's timeout"):
        run(api, clock, restart_id="run-1")


def test_wait_false_returns_after_the_patches(api, clock):
    result = run(api, clock, restart_id="run-1", wait=False)
    assert result.changed
    assert clock.now == 0
    assert all(not outcome.status.ready for outcome in result.outcomes)  # generation not observed yet


def test_a_409_re_reads_and_patches_again(api, clock):
    api.conflicts["api"] = 2
    result = run(api, clock, restart_id="run-1", selection=Selection(namespaces=["ns-a"], names=["api"]))
    assert result.changed
    assert [call for call in api.calls if call[0] == "PATCH"] == [
        ("PATCH", "/apis/apps/v1/namespaces/ns-a/deployments/api")
    ] * 3
    assert ("GET", "/apis/apps/v1/namespaces/ns-a/deployments/api") in api.calls


def test_a_409_after_a_concurrent_run_of_the_same_id_is_not_patched_again(api, clock):
    original = api.patch

    def racing_patch(path, body, **kwargs):
        if not api.conflicts.get("done"):
            api.conflicts["done"] = 1
            original(path, body, **kwargs)  # the other run's patch lands first ...
            raise Conflict("PATCH %s: 409 Conflict" % path, status=409)  # ... and ours meets it
        return original(path, body, **kwargs)

    api.patch = racing_patch
    result = run(api, clock, restart_id="run-1", selection=Selection(namespaces=["ns-a"], names=["web"]))
    assert not result.changed  # the other run restarted it
    assert result.outcomes[0].status.ready
    assert api.object("deployments", "ns-a", "web")["metadata"]["generation"] == 2


def test_conflicts_on_every_try_fail_naming_the_workload(api, clock):
    api.conflicts["api"] = 100
    with pytest.raises(RestartError) as raised:
        run(api, clock, restart_id="run-1", max_conflict_retries=2)
    message = str(raised.value)
    assert message.startswith("2 of 6 restarts failed (the others were restarted): ")
    assert "Deployment ns-a/api: 409 Conflict on every try, gave up after 3 attempts" in message
    assert raised.value.changed is True
    failed = [outcome for outcome in raised.value.outcomes if outcome.error]
    assert [outcome.workload.name for outcome in failed] == ["api", "api"]


def test_a_patch_refused_by_the_deadline_is_reported(api, clock):
    def no_time(path, body, **kwargs):
        raise DeadlineExceeded("PATCH %s: not sent, the timeout of 5 s is spent" % path)

    api.patch = no_time
    with pytest.raises(RestartError, match="6 of 6 restarts failed: .*not sent, the timeout of 5 s") as raised:
        run(api, clock)
    assert raised.value.changed is False


def test_paused_and_ondelete_workloads_are_refused_before_any_patch(clock):
    api = FakeKubeApi()
    api.add(deployment("ns", "web"))
    api.add(deployment("ns", "held", paused=True))
    api.add(statefulset("ns", "db", strategy="OnDelete"))
    api.add(daemonset("ns", "agent", strategy="OnDelete"))
    with pytest.raises(RestartError) as raised:
        run(api, clock, selection=Selection(namespaces=["ns"], kinds=["Deployment", "StatefulSet", "DaemonSet"]))
    message = str(raised.value)
    assert "Deployment ns/held is paused" in message
    assert "StatefulSet ns/db has the OnDelete update strategy" in message
    assert "DaemonSet ns/agent has the OnDelete" in message
    assert api.writes() == []


def test_statefulsets_and_daemonsets_roll_out(clock):
    api = FakeKubeApi()
    api.add(statefulset("ns", "db", replicas=3))
    api.add(daemonset("ns", "agent"))
    api.rollout_reads = 2
    result = run(api, clock, restart_id="r", selection=Selection(namespaces=["ns"], kinds=["StatefulSet", "DaemonSet"]))
    assert [(outcome.workload.kind, outcome.status.ready) for outcome in result.outcomes] == [
        ("StatefulSet", True),
        ("DaemonSet", True),
    ]


def test_a_missing_namespace_changes_nothing(api, clock):
    with pytest.raises(SelectionError, match="namespace nope does not exist"):
        run(api, clock, selection=Selection(namespaces=["ns-a", "nope"]))
    assert api.writes() == []


def test_a_workload_deleted_while_waiting_is_reported(api, clock):
    api.never_ready.add("web")
    original = api.get

    def get(path, query=None):
        if len(api.writes()) == 6:  # the restarts are sent: someone deletes one
            api.objects.pop(object_path("deployments", "ns-a", "web"), None)
        return original(path, query)

    api.get = get
    with pytest.raises(RestartError, match=r"Deployment ns-a/web \(deleted"):
        run(api, clock, restart_id="run-1", wait_timeout=10)


def test_wait_timeout_longer_than_timeout_is_refused():
    request = RestartRequest(Selection(namespaces=["a"]), wait_timeout=600)
    with pytest.raises(RestartError, match=r"wait_timeout \(600 s\) is longer than timeout \(120 s\)"):
        request.validate(client_timeout=120)
