"""fence: the journal obeys only the run holding the lock (issue 16, fencing), against the stateful fake API."""

from __future__ import annotations

import datetime
import json

import pytest
from k8s_stub import FakeKubeApi, configmap_path, lease_path

from ansible_collections.ceres.rollout.plugins.module_utils.lock import fence as fencing
from ansible_collections.ceres.rollout.plugins.module_utils.lock import journal
from ansible_collections.ceres.rollout.plugins.module_utils.lock.lease import apply_lock
from ansible_collections.ceres.rollout.plugins.module_utils.lock.lease_state import LockLost, LockRequest

START = datetime.datetime(2026, 3, 2, 9, 30, 0, tzinfo=datetime.UTC)


@pytest.fixture
def api():
    return FakeKubeApi()


def clock():
    return START


def request(**overrides):
    values = dict(namespace="ceres-system", name="ceres-rollout", run_id="pilot-1", holder="alice@ctl", phase="pilot")
    values.update(overrides)
    values.setdefault("lease_duration", 60)
    return LockRequest(**values)


ROLLBACK = dict(run_id="rollback-1", holder="bob@ctl", phase="rollback", force=True)


def record(api, run_id="pilot-1", holder="alice@ctl", step_id="pilot/weight-10"):
    return journal.record_step(
        api,
        journal.RecordRequest(
            "ceres-system",
            "ceres-rollout",
            run_id,
            {"step_id": step_id, "outcome": "passed"},
            phase="pilot",
            holder=holder,
        ),
        clock=clock,
    )


def fence_of(api):
    return json.loads(api.objects[configmap_path()]["metadata"]["annotations"][fencing.ANNOTATION_FENCE])


def test_each_new_holding_raises_the_fence_naming_its_run(api):
    apply_lock(api, request(), "acquired", clock=clock)
    assert (fence_of(api)["token"], fence_of(api)["run_id"]) == (1, "pilot-1")
    apply_lock(api, request(), "renewed", clock=clock)  # a renewal is not a new holding
    assert fence_of(api)["token"] == 1
    apply_lock(api, request(**ROLLBACK), "acquired", clock=clock)
    assert (fence_of(api)["token"], fence_of(api)["run_id"], fence_of(api)["holder"]) == (2, "rollback-1", "bob@ctl")


def test_the_holder_writes_the_journal(api):
    apply_lock(api, request(), "acquired", clock=clock)
    assert record(api).step == journal.STEP_APPENDED


def test_a_run_that_lost_the_lock_cannot_write_the_journal(api):
    """Before: the journal accepted any run's record; a cutover that a rollback interrupted recorded
    'completed' after the rollback. Now the write is refused by the journal itself, and nothing is written."""
    apply_lock(api, request(), "acquired", clock=clock)
    apply_lock(api, request(**ROLLBACK), "acquired", clock=clock)
    before = json.dumps(api.objects[configmap_path()], sort_keys=True)
    with pytest.raises(LockLost) as refused:
        record(api)
    assert str(refused.value) == (
        "ceres-system/ceres-rollout-journal: write refused: run pilot-1 (holder alice@ctl) does not hold the rollout "
        "lock (the lock is held by run rollback-1 (holder bob@ctl, phase rollback)); only the run holding it writes "
        "the journal"
    )
    assert refused.value.lock["run_id"] == "rollback-1"
    assert json.dumps(api.objects[configmap_path()], sort_keys=True) == before


def test_a_write_whose_fence_names_another_run_is_refused_even_with_the_lease(api):
    """The Lease deleted and created again by hand for the old run: the journal still obeys the rollback."""
    apply_lock(api, request(), "acquired", clock=clock)
    lease = json.loads(json.dumps(api.objects[lease_path()]))
    apply_lock(api, request(**ROLLBACK), "acquired", clock=clock)
    api.objects[lease_path()] = lease  # the old run's Lease put back (a restore from a stale copy)
    with pytest.raises(LockLost, match="write refused: the journal obeys fence 2 of run rollback-1"):
        record(api)


def test_a_write_racing_a_new_holder_is_refused_after_the_conflict(api):
    """The old holder read the journal, then a rollback took the lock and raised the fence before the old
    holder's write landed: the API server refuses that write (409), and read again, the fence refuses it."""
    apply_lock(api, request(), "acquired", clock=clock)
    taken = []

    def rollback_between_read_and_write(api):  # the next write is the old holder's PUT of the journal
        taken.append(True)
        apply_lock(api, request(**ROLLBACK), "acquired", clock=clock)  # the Lease, then the fence raised

    api.before_write = [rollback_between_read_and_write]
    with pytest.raises(LockLost, match="does not hold the rollout lock"):
        record(api)
    # the refused PUT (409: the rollback's fence landed first), the rollback's, then the old holder's last read
    assert [method for method, path in api.calls if "configmaps" in path][-4:] == ["PUT", "GET", "PUT", "GET"]
    assert taken and fence_of(api)["run_id"] == "rollback-1"
    data = api.objects[configmap_path()].get("data") or {}
    assert not any("pilot/weight-10" in value for value in data.values())


def test_raising_the_fence_for_a_run_that_no_longer_holds_the_lease_is_refused(api):
    apply_lock(api, request(), "acquired", clock=clock)
    apply_lock(api, request(**ROLLBACK), "acquired", clock=clock)
    with pytest.raises(LockLost, match="the fence was not raised: the lock is no longer held by run pilot-1") as lost:
        fencing.raise_fence(api, "ceres-system", "ceres-rollout", "pilot-1", "alice@ctl", "pilot", clock=clock)
    assert lost.value.changed is True
    assert fence_of(api)["run_id"] == "rollback-1"


def test_a_free_lock_nobody_held_since_is_taken_back_on_renewal(api):
    apply_lock(api, request(), "acquired", clock=clock)
    del api.objects[lease_path()]  # an operator deletes the Lease
    result = apply_lock(api, request(), "renewed", clock=clock)
    assert (result.outcome, result.changed) == ("taken_back", True)
    assert result.after["run_id"] == "pilot-1" and result.after["fence"]["token"] == 2
    assert record(api).step == journal.STEP_APPENDED


@pytest.mark.parametrize(
    "how, message",
    [
        ("released by this run", "does not hold the lock (it was released by this run at"),
        ("rollback since, then deleted", "does not hold the lock (it is free)"),
        ("rollback since, released", "lock taken by run rollback-1 (rollback)"),
        ("journal deleted too", "does not hold the lock (it is free)"),
    ],
)
def test_a_free_lock_is_not_taken_back_when_it_cannot_be_shown_nobody_held_it_since(api, how, message):
    apply_lock(api, request(), "acquired", clock=clock)
    if how == "released by this run":
        apply_lock(api, request(), "released", clock=clock)
    elif how.startswith("rollback since"):
        apply_lock(api, request(**ROLLBACK), "acquired", clock=clock)
        if how.endswith("deleted"):
            del api.objects[lease_path()]
        else:
            apply_lock(api, request(**ROLLBACK), "released", clock=clock)
    else:
        del api.objects[lease_path()]
        del api.objects[configmap_path()]
    with pytest.raises(LockLost) as lost:
        apply_lock(api, request(), "renewed", clock=clock)
    assert message in str(lost.value) or message in json.dumps(lost.value.lock), str(lost.value)
    lease = api.objects.get(lease_path())
    assert lease is None or lease["spec"].get("holderIdentity") in (None, "bob@ctl")
