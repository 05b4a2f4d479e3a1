"""lease_lock: the rollout lock as a Lease, against the fake API server (k8s_stub)."""

from __future__ import annotations

import datetime
import json
import threading

import pytest
from k8s_stub import FakeKubeApi, configmap_path, lease_path

from ansible_collections.ceres.rollout.plugins.module_utils.common.retry import Deadline
from ansible_collections.ceres.rollout.plugins.module_utils.lock import lease as lease_lock
from ansible_collections.ceres.rollout.plugins.module_utils.lock import lease_state
from ansible_collections.ceres.rollout.plugins.module_utils.lock.lease import (
    apply_lock,
)
from ansible_collections.ceres.rollout.plugins.module_utils.lock.lease_state import (
    InvalidLockRequest,
    LockError,
    LockLost,
    LockRefused,
    LockRequest,
    TooManyConflicts,
)

START = datetime.datetime(2026, 3, 2, 9, 30, 0, tzinfo=datetime.UTC)


class FakeClock:
    """Wall time (for the lock's expiry) and monotonic time (for the budget), moved by hand or by sleeping."""

    def __init__(self) -> None:
        self.now = START
        self.slept: list[float] = []

    def __call__(self) -> datetime.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += datetime.timedelta(seconds=seconds)

    def monotonic(self) -> float:
        return (self.now - START).total_seconds()

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.advance(seconds)


@pytest.fixture
def api():
    return FakeKubeApi()


@pytest.fixture
def clock():
    return FakeClock()


def request(run_id="pilot-1", holder="alice@ctl", phase="pilot", lease_duration=60, force=False, **overrides):
    values = dict(
        namespace="ceres-system",
        name="ceres-rollout",
        run_id=run_id,
        holder=holder,
        lease_duration=lease_duration,
        phase=phase,
        force=force,
    )
    values.update(overrides)
    return LockRequest(**values)


def lock(api, clock, action="acquired", check_mode=False, **overrides):
    return apply_lock(
        api, request(**overrides), action, check_mode=check_mode, clock=clock, sleep=clock.sleep, rng=lambda: 0.5
    )


def stored(api):
    return api.objects[lease_path()]


# --------------------------------------------------------------------------- acquire


def test_a_free_lock_is_acquired_and_read_back(api, clock):
    result = lock(api, clock)
    assert (result.changed, result.outcome) == (True, "acquired")
    lease = stored(api)
    assert lease["spec"] == {
        "holderIdentity": "alice@ctl",
        "leaseDurationSeconds": 60,
        "acquireTime": "2026-03-02T09:30:00.000000Z",
        "renewTime": "2026-03-02T09:30:00.000000Z",
        "leaseTransitions": 0,
    }
    assert lease["metadata"]["annotations"] == {"rollout.ceres.io/run-id": "pilot-1", "rollout.ceres.io/phase": "pilot"}
    assert lease["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "ceres.rollout"}
    # the Lease (read, created, read back), then the journal's fence: its ConfigMap read (none yet), the Lease
    # read again (still this run's), the ConfigMap created with the fence naming this run
    assert [(method, path.rsplit("/", 2)[-1 if method == "POST" else -2]) for method, path in api.calls] == [
        ("GET", "leases"),
        ("POST", "leases"),
        ("GET", "leases"),
        ("GET", "configmaps"),
        ("GET", "leases"),
        ("POST", "configmaps"),
    ]
    fence = json.loads(api.objects[configmap_path()]["metadata"]["annotations"]["rollout.ceres.io/fence"])
    assert fence == {
        "token": 1,
        "run_id": "pilot-1",
        "holder": "alice@ctl",
        "phase": "pilot",
        "at": "2026-03-02T09:30:00.000000Z",
    }
    assert result.after.pop("fence") == fence
    assert result.after == {
        "namespace": "ceres-system",
        "name": "ceres-rollout",
        "exists": True,
        "held": True,
        "holder": "alice@ctl",
        "run_id": "pilot-1",
        "phase": "pilot",
        "acquired_at": "2026-03-02T09:30:00.000000Z",
        "renewed_at": "2026-03-02T09:30:00.000000Z",
        "lease_duration": 60,
        "expires_at": "2026-03-02T09:31:00.000000Z",
        "expired": False,
        "taken_over_from": None,
        "released": None,
        "lease_transitions": 0,
    }
    assert result.before["exists"] is False and result.before["held"] is False


def test_acquiring_a_lock_the_run_holds_renews_it_without_a_change(api, clock):
    lock(api, clock)
    clock.advance(30)
    result = lock(api, clock)
    assert (result.changed, result.outcome) == (False, "renewed")
    assert stored(api)["spec"]["renewTime"] == "2026-03-02T09:30:30.000000Z"
    assert stored(api)["spec"]["acquireTime"] == "2026-03-02T09:30:00.000000Z"


def test_a_renewal_with_another_phase_or_duration_is_a_change(api, clock):
    lock(api, clock)
    result = lock(api, clock, action="renewed", phase="pilot-step-25", lease_duration=120)
    assert (result.changed, result.outcome) == (True, "renewed")
    assert result.after["phase"] == "pilot-step-25" and result.after["lease_duration"] == 120


def test_a_live_lock_of_another_run_is_refused_naming_its_holder(api, clock):
    lock(api, clock)
    clock.advance(20)
    lock(api, clock, action="renewed")
    clock.advance(10)
    before = json.dumps(stored(api))
    with pytest.raises(LockRefused) as refused:
        lock(api, clock, run_id="pilot-2", holder="bob@ctl")
    assert str(refused.value) == (
        "ceres-system/ceres-rollout is held by run pilot-1 (holder alice@ctl, phase pilot), since "
        "2026-03-02T09:30:00.000000Z, last renewed 2026-03-02T09:30:20.000000Z, lease 60 s, expiring at "
        "2026-03-02T09:31:20.000000Z (in 50 s); run pilot-2 refuses to start: wait for that run to end (or for its "
        "lease to expire), or take the lock with force=true as a rollback does"
    )
    assert refused.value.lock["run_id"] == "pilot-1"
    assert json.dumps(stored(api)) == before


def test_a_lock_is_not_expired_at_its_last_second_and_expired_after(api, clock):
    lock(api, clock)
    clock.advance(60)
    with pytest.raises(LockRefused):
        lock(api, clock, run_id="pilot-2")
    clock.advance(0.001)
    assert lock(api, clock, run_id="pilot-2").outcome == "taken_over"


def test_an_expired_lock_is_taken_over_and_its_old_run_is_told(api, clock):
    lock(api, clock)
    clock.advance(61)
    result = lock(api, clock, run_id="pilot-2", holder="bob@ctl", phase="pilot")
    assert (result.changed, result.outcome) == (True, "taken_over")
    assert result.after["taken_over_from"] == {
        "run_id": "pilot-1",
        "holder": "alice@ctl",
        "phase": "pilot",
        "acquired_at": "2026-03-02T09:30:00.000000Z",
        "renewed_at": "2026-03-02T09:30:00.000000Z",
        "lease_duration": 60,
        "how": "expired",
        "at": "2026-03-02T09:31:01.000000Z",
    }
    assert result.after["lease_transitions"] == 1
    assert result.after["acquired_at"] == "2026-03-02T09:31:01.000000Z"
    with pytest.raises(LockLost) as lost:
        lock(api, clock, action="renewed")
    assert str(lost.value) == (
        "ceres-system/ceres-rollout: lock taken by run pilot-2 (pilot) at 2026-03-02T09:31:01.000000Z, after run "
        "pilot-1 stopped renewing it for longer than its lease; run pilot-1 no longer holds it and must stop (start a "
        "new run to go on)"
    )


def test_force_takes_a_live_lock_and_the_rollout_that_lost_it_stops_at_its_next_step(api, clock):
    lock(api, clock)
    clock.advance(5)
    result = lock(api, clock, run_id="rollback-1", holder="oncall@ctl", phase="rollback", force=True)
    assert (result.changed, result.outcome) == (True, "forced")
    assert result.after["taken_over_from"]["run_id"] == "pilot-1"
    assert result.after["taken_over_from"]["how"] == "forced"
    lost_runs = json.loads(stored(api)["metadata"]["annotations"]["rollout.ceres.io/lost-runs"])
    assert lost_runs == {
        "pilot-1": {
            "by_run_id": "rollback-1",
            "by_phase": "rollback",
            "by_holder": "oncall@ctl",
            "at": "2026-03-02T09:30:05.000000Z",
            "how": "forced",
        }
    }
    message = (
        "ceres-system/ceres-rollout: lock taken by run rollback-1 (rollback) at 2026-03-02T09:30:05.000000Z, "
        "by force; run pilot-1 no longer holds it and must stop"
    )
    for action in ("renewed", "acquired"):
        with pytest.raises(LockLost) as lost:
            lock(api, clock, action=action)
        assert str(lost.value).startswith(message)
        assert lost.value.lock["run_id"] == "rollback-1"
    # ... even once the rollback released it
    lock(api, clock, action="released", run_id="rollback-1", holder="oncall@ctl")
    with pytest.raises(LockLost) as lost:
        lock(api, clock)
    assert str(lost.value).startswith(message)
    assert "holderIdentity" not in stored(api)["spec"]


def test_the_same_run_in_another_process_is_refused_while_the_first_lives_and_takes_over_once_it_expired(api, clock):
    lock(api, clock, run_id="pilot-1", holder="alice@ctl/first")
    # a second process resuming the same run id: refused while the first one renews
    with pytest.raises(LockRefused) as refused:
        lock(api, clock, run_id="pilot-1", holder="alice@ctl/second")
    assert "alice@ctl/first" in str(refused.value)
    with pytest.raises(LockLost):
        lock(api, clock, action="renewed", run_id="pilot-1", holder="alice@ctl/second")
    assert (
        lock(api, clock, action="released", run_id="pilot-1", holder="alice@ctl/second").outcome
        == "held_by_another_run"
    )
    # the first process died: once its lease expired, the resumed run takes over and renews
    clock.advance(61)
    taken = lock(api, clock, run_id="pilot-1", holder="alice@ctl/second")
    assert taken.outcome == "taken_over"
    assert "rollout.ceres.io/lost-runs" not in stored(api)["metadata"]["annotations"]  # the run lost nothing
    assert lock(api, clock, action="renewed", run_id="pilot-1", holder="alice@ctl/second").outcome == "renewed"
    with pytest.raises(LockLost):
        lock(api, clock, action="renewed", run_id="pilot-1", holder="alice@ctl/first")


def test_force_on_a_free_lock_just_acquires_it(api, clock):
    result = lock(api, clock, run_id="rollback-1", force=True)
    assert result.outcome == "acquired" and result.after["taken_over_from"] is None


def test_only_the_last_twenty_lost_runs_are_remembered(api, clock):
    for number in range(25):
        lock(api, clock, run_id="run-%d" % number, force=True)
    lost_runs = json.loads(stored(api)["metadata"]["annotations"]["rollout.ceres.io/lost-runs"])
    assert list(lost_runs) == ["run-%d" % number for number in range(4, 24)]


def test_a_lease_held_by_something_else_is_refused_as_not_a_ceres_run(api, clock):
    api.objects[lease_path()] = {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "ceres-rollout", "namespace": "ceres-system", "resourceVersion": "5"},
        "spec": {
            "holderIdentity": "controller-7",
            "leaseDurationSeconds": 15,
            "renewTime": lease_state.micro_time(START),
        },
    }
    with pytest.raises(LockRefused) as refused:
        lock(api, clock)
    assert "is held by controller-7 (not a ceres.rollout run)" in str(refused.value)


# --------------------------------------------------------------------------- renew and release


def test_renewing_a_free_lock_fails(api, clock):
    with pytest.raises(LockLost) as lost:
        lock(api, clock, action="renewed")
    assert str(lost.value) == (
        "ceres-system/ceres-rollout: run pilot-1 does not hold the lock (it is free); acquire it first"
    )
    assert api.writes() == []


def test_renewing_after_releasing_says_so(api, clock):
    lock(api, clock)
    lock(api, clock, action="released")
    with pytest.raises(LockLost) as lost:
        lock(api, clock, action="renewed")
    assert "(it was released by this run at 2026-03-02T09:30:00.000000Z)" in str(lost.value)


def test_an_expired_lock_nobody_took_is_still_this_runs(api, clock):
    lock(api, clock)
    clock.advance(600)
    result = lock(api, clock, action="renewed")
    assert result.outcome == "renewed" and result.after["expired"] is False


def test_release_by_the_owner_frees_the_lock(api, clock):
    lock(api, clock)
    clock.advance(3)
    result = lock(api, clock, action="released")
    assert (result.changed, result.outcome) == (True, "released")
    lease = stored(api)
    assert lease["spec"] == {"leaseDurationSeconds": 60, "leaseTransitions": 0}
    assert json.loads(lease["metadata"]["annotations"]["rollout.ceres.io/released"]) == {
        "run_id": "pilot-1",
        "holder": "alice@ctl",
        "phase": "pilot",
        "at": "2026-03-02T09:30:03.000000Z",
    }
    assert result.after["held"] is False and result.after["released"]["run_id"] == "pilot-1"
    # a new run takes it at once
    assert lock(api, clock, run_id="wave1-1").outcome == "acquired"
    assert stored(api)["spec"]["leaseTransitions"] == 1


def test_releasing_a_free_lock_changes_nothing(api, clock):
    lock(api, clock)
    lock(api, clock, action="released")
    writes = len(api.writes())
    result = lock(api, clock, action="released")
    assert (result.changed, result.outcome) == (False, "already_free")
    assert result.note == "ceres-system/ceres-rollout was already free; nothing released"
    assert len(api.writes()) == writes
    assert lock(api, clock, action="released", run_id="never-held").outcome == "already_free"


def test_releasing_another_runs_lock_steals_nothing(api, clock):
    lock(api, clock)
    before = json.dumps(stored(api))
    result = lock(api, clock, action="released", run_id="pilot-2")
    assert (result.changed, result.outcome) == (False, "held_by_another_run")
    assert result.note == (
        "ceres-system/ceres-rollout is held by run pilot-1 (holder alice@ctl, phase pilot), not by "
        "run pilot-2: left as it is"
    )
    assert json.dumps(stored(api)) == before


def test_the_run_that_lost_the_lock_releasing_it_is_told_who_took_it(api, clock):
    lock(api, clock)
    lock(api, clock, run_id="rollback-1", phase="rollback", force=True)
    result = lock(api, clock, action="released")
    assert result.outcome == "held_by_another_run"
    assert result.note.endswith("; lock taken by run rollback-1 (rollback) at 2026-03-02T09:30:00.000000Z, by force")
    assert stored(api)["metadata"]["annotations"]["rollout.ceres.io/run-id"] == "rollback-1"


# --------------------------------------------------------------------------- check mode


def test_check_mode_predicts_without_writing(api, clock):
    result = lock(api, clock, check_mode=True)
    assert (result.changed, result.outcome) == (True, "acquired")
    assert result.after["run_id"] == "pilot-1"
    assert api.writes() == []
    lock(api, clock)
    result = lock(api, clock, check_mode=True, run_id="rollback-1", force=True)
    assert result.outcome == "forced" and result.after["taken_over_from"]["run_id"] == "pilot-1"
    assert stored(api)["metadata"]["annotations"]["rollout.ceres.io/run-id"] == "pilot-1"
    assert lock(api, clock, action="released", check_mode=True).outcome == "released"
    assert stored(api)["spec"]["holderIdentity"] == "alice@ctl"


def test_check_mode_still_refuses_a_held_lock(api, clock):
    lock(api, clock)
    with pytest.raises(LockRefused):
        lock(api, clock, run_id="pilot-2", check_mode=True)


# --------------------------------------------------------------------------- conflicts and concurrency


def test_a_conflict_during_acquire_is_reread_and_decided_again(api, clock):
    """A rival run takes the free Lease between our GET and our PUT: our PUT gets a 409, we read
    again and now refuse, naming the rival; the rival's holding is untouched."""
    lock(api, clock, run_id="old-1")
    lock(api, clock, action="released", run_id="old-1")

    def rival_acquires(fake):
        def take(lease):
            lease["spec"]["holderIdentity"] = "rival@ctl"
            lease["spec"]["renewTime"] = lease_state.micro_time(START)
            lease["spec"]["leaseDurationSeconds"] = 60
            lease["metadata"]["annotations"]["rollout.ceres.io/run-id"] = "rival-1"

        fake.rival_put(lease_path(), take)

    api.before_write.append(rival_acquires)
    api.calls.clear()
    with pytest.raises(LockRefused) as refused:
        lock(api, clock)
    assert "held by run rival-1 (holder rival@ctl)" in str(refused.value)
    assert [method for method, _path in api.calls] == ["GET", "PUT", "GET"]
    assert stored(api)["metadata"]["annotations"]["rollout.ceres.io/run-id"] == "rival-1"


def test_a_conflict_with_an_unrelated_write_is_reapplied(api, clock):
    lock(api, clock)
    api.before_write.append(
        lambda fake: fake.rival_put(
            lease_path(), lambda lease: lease["metadata"].setdefault("labels", {}).update({"team": "payments"})
        )
    )
    api.calls.clear()
    result = lock(api, clock, action="renewed", phase="pilot-25")
    assert result.conflicts == 1 and result.changed
    assert [method for method, _path in api.calls] == ["GET", "PUT", "GET", "PUT", "GET"]
    assert stored(api)["metadata"]["labels"]["team"] == "payments"
    assert stored(api)["metadata"]["annotations"]["rollout.ceres.io/phase"] == "pilot-25"


def test_a_create_race_is_reread_as_the_other_runs_lock(api, clock):
    def rival_creates(fake):
        fake.objects[lease_path()] = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": "ceres-rollout",
                "namespace": "ceres-system",
                "resourceVersion": "7",
                "annotations": {"rollout.ceres.io/run-id": "rival-1"},
            },
            "spec": {
                "holderIdentity": "rival@ctl",
                "leaseDurationSeconds": 60,
                "renewTime": lease_state.micro_time(START),
            },
        }

    api.before_write.append(rival_creates)
    with pytest.raises(LockRefused):
        lock(api, clock)


@pytest.mark.parametrize("existing", [False, True], ids=["no-lease-yet", "released-lease"])
def test_two_concurrent_acquirers_exactly_one_wins(api, existing):
    """Both reads are held at a barrier until both have read: both decide "free" on the same
    state, both write, and the API server lets only one write through (AlreadyExists or a stale
    resourceVersion); the loser reads again and is refused."""
    clock = FakeClock()
    if existing:
        lock(api, clock, run_id="earlier-1")
        lock(api, clock, action="released", run_id="earlier-1")
    api.hold_reads(threading.Barrier(2, timeout=10))
    outcomes: dict[str, object] = {}

    def acquire(run_id):
        try:
            outcomes[run_id] = apply_lock(
                api, request(run_id=run_id, holder=run_id + "@ctl"), "acquired", clock=clock, sleep=lambda seconds: None
            )
        except LockError as error:
            outcomes[run_id] = error

    threads = [threading.Thread(target=acquire, args=(run_id,)) for run_id in ("run-a", "run-b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    winners = [run_id for run_id, outcome in outcomes.items() if not isinstance(outcome, LockError)]
    losers = [outcome for outcome in outcomes.values() if isinstance(outcome, LockRefused)]
    assert len(winners) == 1 and len(losers) == 1, outcomes
    assert "is held by run %s" % winners[0] in str(losers[0])
    assert stored(api)["metadata"]["annotations"]["rollout.ceres.io/run-id"] == winners[0]
    writes = [method for method, _path in api.calls[-6:] if method in ("POST", "PUT")]
    assert writes == (["PUT", "PUT"] if existing else ["POST", "POST"])


def test_conflicts_stop_at_max_conflict_retries(api, clock):
    lock(api, clock)
    api.before_write.extend([lambda fake: fake.rival_put(lease_path(), lambda lease: None)] * 3)
    with pytest.raises(TooManyConflicts) as failed:
        lock(api, clock, action="renewed", max_conflict_retries=2)
    assert str(failed.value) == (
        "max_conflict_retries: the Lease ceres-system/ceres-rollout was changed by another "
        "writer during each of 3 attempts; giving up"
    )


def test_conflicts_stop_when_the_time_budget_is_spent(api, clock):
    """The conflict re-reads draw on the client's one deadline: with 0.2 s left no backoff fits."""
    lock(api, clock)
    api.deadline = Deadline(0.2, clock=clock.monotonic)
    api.before_write.extend([lambda fake: fake.rival_put(lease_path(), lambda lease: None)] * 50)
    with pytest.raises(TooManyConflicts) as failed:
        apply_lock(api, request(), "renewed", clock=clock, sleep=clock.sleep, rng=lambda: 1.0)
    message = str(failed.value)
    assert message.startswith("timeout: gave up after ")
    assert "the timeout of 0.2 s leaving no time for another" in message
    assert "the Lease ceres-system/ceres-rollout was changed by another writer during each attempt" in message
    assert sum(clock.slept) < 0.2


# --------------------------------------------------------------------------- options and odd states


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"run_id": "pilot 1"}, "run_id: must be 1 to 128 letters, digits, '.', '_' or '-'"),
        ({"run_id": ""}, "run_id: must be"),
        ({"lease_duration": 0}, "lease_duration: must be a whole number of seconds, at least 1, got 0"),
        ({"name": "Ceres_Rollout"}, "name: must be a lowercase DNS name"),
        ({"holder": ""}, "holder: must be a non-empty string"),
        ({"max_conflict_retries": -1}, "max_conflict_retries: must not be negative"),
    ],
)
def test_invalid_requests_fail_before_any_call(api, clock, overrides, message):
    with pytest.raises(InvalidLockRequest) as invalid:
        lock(api, clock, **overrides)
    assert str(invalid.value).startswith(message)
    assert api.calls == []


def test_a_missing_namespace_is_named(clock):
    api = FakeKubeApi(namespaces=())
    with pytest.raises(LockError) as failed:
        lock(api, clock)
    assert str(failed.value) == (
        "ceres-system/ceres-rollout: namespace ceres-system does not exist; create it first "
        "(the lock never creates namespaces)"
    )


def test_a_held_lease_without_times_cannot_prove_it_is_alive(api, clock):
    api.objects[lease_path()] = {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {
            "name": "ceres-rollout",
            "namespace": "ceres-system",
            "resourceVersion": "5",
            "annotations": {"rollout.ceres.io/run-id": "ghost-1"},
        },
        "spec": {"holderIdentity": "ghost@ctl"},
    }
    result = lock(api, clock)
    assert result.outcome == "taken_over" and result.after["taken_over_from"]["run_id"] == "ghost-1"


def test_read_lock_reports_the_lock_without_writing(api, clock):
    assert lease_lock.read_lock(api, "ceres-system", "ceres-rollout", clock=clock)["exists"] is False
    lock(api, clock)
    clock.advance(61)
    summary = lease_lock.read_lock(api, "ceres-system", "ceres-rollout", clock=clock)
    assert summary["run_id"] == "pilot-1" and summary["expired"] is True
    assert len(api.writes()) == 2  # the lock's: the Lease and the journal's fence


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2026-03-02T09:30:00.123456Z", datetime.datetime(2026, 3, 2, 9, 30, 0, 123456, tzinfo=datetime.UTC)),
        ("2026-03-02T09:30:00Z", START),
        ("2026-03-02T10:30:00.5+01:00", START + datetime.timedelta(seconds=0.5)),
        ("2026-03-02T09:30:00.123456789Z", START + datetime.timedelta(microseconds=123456)),
        ("yesterday", None),
        (None, None),
    ],
)
def test_parse_time(text, expected):
    assert lease_state.parse_time(text) == expected


# --------------------------------------------------------------------------- a holder killed on this machine


def _a_process():
    import subprocess
    import sys

    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])


def test_a_run_killed_on_this_machine_is_taken_over_at_once_by_the_next_run_from_it(api, clock):
    import os
    import signal

    first = _a_process()
    try:
        first_process = lease_state.process_identity(first.pid)
        me = lease_state.process_identity(os.getpid())
        assert first_process and me and first_process["pid"] == first.pid
        lock(api, clock, run_id="pilot-1", holder="alice@ctl/first", process=first_process)
        annotations = stored(api)["metadata"]["annotations"]
        assert json.loads(annotations[lease_state.ANNOTATION_HOLDER_PROCESS]) == first_process
        # alive: the next run is refused, as before
        with pytest.raises(LockRefused):
            lock(api, clock, run_id="pilot-1", holder="alice@ctl/second", process=me)
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
        # gone (its pid no longer runs): taken over at once, long before the lease expires
        taken = lock(api, clock, run_id="pilot-1", holder="alice@ctl/second", process=me)
        assert taken.outcome == "taken_over"
        taken_from = json.loads(stored(api)["metadata"]["annotations"]["rollout.ceres.io/taken-over-from"])
        assert taken_from["how"] == "holder_gone" and taken_from["holder"] == "alice@ctl/first"
        assert json.loads(stored(api)["metadata"]["annotations"][lease_state.ANNOTATION_HOLDER_PROCESS]) == me
    finally:
        if first.poll() is None:
            first.kill()


def test_a_zombie_holder_is_gone_and_a_reused_pid_is_not_the_holder():
    import os
    import signal

    child = _a_process()
    recorded = lease_state.process_identity(child.pid)
    me = lease_state.process_identity(os.getpid())
    assert lease_state.holder_process_gone(recorded, me) is False
    os.kill(child.pid, signal.SIGKILL)
    import time

    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not lease_state.holder_process_gone(recorded, me):
        time.sleep(0.01)  # not reaped yet: a zombie, gone all the same
    assert lease_state.holder_process_gone(recorded, me) is True
    child.wait()
    # the same pid started at another time is another process
    assert lease_state.holder_process_gone(dict(me, start=me["start"] + 1), me) is True
    assert lease_state.holder_process_gone(me, me) is False


@pytest.mark.parametrize(
    "change",
    [
        {"host": "other-host"},  # another machine: its processes cannot be seen from here
        {"boot_id": "00000000-0000-0000-0000-000000000000"},  # another boot or another machine
        {"pid_ns": "pid:[1]"},  # another container on this machine
        {"pid": None},
        {"start": "soon"},
    ],
)
def test_a_holder_that_cannot_be_seen_from_here_is_never_declared_gone(change):
    import os

    me = lease_state.process_identity(os.getpid())
    dead = dict(me, pid=2**22 + 7)  # no such pid
    assert lease_state.holder_process_gone(dead, me) is True
    assert lease_state.holder_process_gone(dict(dead, **change), me) is False


def test_without_a_process_identity_the_lock_waits_for_its_lease_as_before(api, clock):
    import os

    me = lease_state.process_identity(os.getpid())
    lock(api, clock, run_id="pilot-1", holder="alice@ctl/first")  # a module run: no process recorded
    with pytest.raises(LockRefused):
        lock(api, clock, run_id="pilot-1", holder="alice@ctl/second", process=me)
    # a new holder without an identity drops the old holder's, so nobody judges it by another process
    gone = dict(me, pid=2**22 + 7)
    lock(api, clock, run_id="rollback-1", holder="oncall@ctl", force=True, process=gone)
    lock(api, clock, run_id="rollback-2", holder="oncall@ctl/2", force=True)
    assert lease_state.ANNOTATION_HOLDER_PROCESS not in stored(api)["metadata"]["annotations"]
    with pytest.raises(LockRefused):
        lock(api, clock, run_id="pilot-9", holder="alice@ctl/third", process=me)
