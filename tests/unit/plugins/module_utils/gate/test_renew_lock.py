"""gate_lock: metric_gate keeps the rollout lock alive between its rounds, and stops as soon as
it is taken. The engine (verdict.run_gate), the keeper and lease_lock run for real against the
fake API server (k8s_stub), on one fake clock, so a soak of minutes takes no time."""

from __future__ import annotations

import datetime

import pytest
from k8s_stub import FakeKubeApi, lease_path

from ansible_collections.ceres.rollout.plugins.action.metric_gate import RoundPrinter
from ansible_collections.ceres.rollout.plugins.module_utils.gate import renew_lock as gate_lock
from ansible_collections.ceres.rollout.plugins.module_utils.gate import verdict
from ansible_collections.ceres.rollout.plugins.module_utils.gate.config import build_checks, build_policy
from ansible_collections.ceres.rollout.plugins.module_utils.gate.prometheus import VALUE, QueryResult
from ansible_collections.ceres.rollout.plugins.module_utils.gate.verdict import GateConfigError
from ansible_collections.ceres.rollout.plugins.module_utils.k8s.errors import K8sConnectionError, ServerError
from ansible_collections.ceres.rollout.plugins.module_utils.lock.lease import apply_lock
from ansible_collections.ceres.rollout.plugins.module_utils.lock.lease_state import LeaseState, LockRequest

START = datetime.datetime(2026, 3, 2, 9, 30, 0, tzinfo=datetime.UTC)
LEASE = 30  # seconds: renewed every 10 s
INTERVAL = 2


class Clock:
    """One clock for the gate, the keeper and the lock: monotonic seconds and the UTC time, moved by sleeping."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    def utc(self) -> datetime.datetime:
        return START + datetime.timedelta(seconds=self.now)

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class FlakyApi:
    """The fake API server behind a link that fails while ``down`` (every request, after the client's retries)."""

    def __init__(self, api: FakeKubeApi) -> None:
        self.api = api
        self.down = False
        self.deadline = None
        self.refused = 0

    def _call(self, method, *args, **kwargs):
        if self.down:
            self.refused += 1
            raise ServerError("%s %s: 503 ServiceUnavailable: etcdserver: leader changed" % (method.upper(), args[0]))
        return getattr(self.api, method)(*args, **kwargs)

    def get(self, *args, **kwargs):
        return self._call("get", *args, **kwargs)

    def put(self, *args, **kwargs):
        return self._call("put", *args, **kwargs)

    def post(self, *args, **kwargs):
        return self._call("post", *args, **kwargs)


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def api(clock):
    fake = FakeKubeApi()
    apply_lock(fake, pilot_request(), "acquired", clock=clock.utc)
    fake.calls.clear()
    return fake


def pilot_request(**overrides):
    values = dict(
        namespace="ceres-system",
        name="ceres-rollout",
        run_id="pilot-1",
        holder="alice@ctl",
        lease_duration=LEASE,
        phase="pilot",
    )
    values.update(overrides)
    return LockRequest(**values)


def rollback_takes_the_lock(api, clock):
    apply_lock(
        api,
        pilot_request(run_id="rollback-1", holder="bob@ctl", phase="rollback", force=True),
        "acquired",
        clock=clock.utc,
    )


def keeper_for(client, clock, round_seconds=0.0, renewal_seconds=10.0):
    return gate_lock.LockKeeper(
        pilot_request(),
        lambda seconds: client,
        interval_seconds=INTERVAL,
        round_seconds=round_seconds,
        renewal_seconds=renewal_seconds,
        clock=clock.monotonic,
        wall_clock=clock.utc,
    )


def run(keeper, clock, samples, on_query=None, lines=None):
    """A gate of one always-passing check, ``samples`` rounds ``INTERVAL`` apart, kept by ``keeper``."""
    policy = build_policy(samples=samples, interval=INTERVAL)
    queries = []

    def query(promql):
        queries.append(clock.now)
        if on_query is not None:
            on_query(len(queries))
        return QueryResult(VALUE, value=0.0)

    printer = None
    if lines is not None:
        printer = RoundPrinter(
            "h", policy, lines.append, clock=clock.monotonic, wall_clock=clock.monotonic, round_note=lambda: keeper.note
        )
    gate = verdict.run_gate(
        build_checks([{"name": "error-rate", "query": "error_rate", "max": 0.01}]),
        policy,
        query,
        clock=clock.monotonic,
        sleep=clock.sleep,
        wall_clock=printer.wall_clock if printer else clock.monotonic,
        on_round=printer.on_round if printer else None,
        before_round=keeper.before_round,
    )
    return gate, queries


# --------------------------------------------------------------------------- renewals


def test_renews_on_the_first_round_and_every_third_of_the_lease(api, clock):
    keeper = keeper_for(api, clock)
    renewed_at = []

    def note_the_renewal(fake):
        renewed_at.append((clock.now, fake.objects[lease_path()]["spec"]["renewTime"]))
        fake.after_write.append(note_the_renewal)  # a hook runs once: set it again for the next write

    api.after_write.append(note_the_renewal)
    lines = []
    gate, queries = run(keeper, clock, samples=20, lines=lines)

    assert gate.verdict == "pass" and gate.stopped is None
    assert queries == [2.0 * number for number in range(20)]  # a round every 2 s, at 0 ... 38
    # the first round, then the first round after each third of the 30 s lease
    assert [moment for moment, _renew_time in renewed_at] == [0.0, 10.0, 20.0, 30.0]
    assert [renew_time for _moment, renew_time in renewed_at] == [
        "2026-03-02T09:30:00.000000Z",
        "2026-03-02T09:30:10.000000Z",
        "2026-03-02T09:30:20.000000Z",
        "2026-03-02T09:30:30.000000Z",
    ]
    # every other round only reads the Lease, to check this run still holds it
    assert [method for method, _path in api.calls].count("GET") == 4 * 2 + 16
    assert keeper.result()["lock_renewals"] == 4 and keeper.result()["lock_lost"] is False
    assert keeper.lock["run_id"] == "pilot-1" and keeper.lock["renewed_at"] == "2026-03-02T09:30:30.000000Z"
    assert [number for number, line in enumerate(lines, 1) if "lock renewed" in line] == [1, 6, 11, 16]
    assert lines[0] == "metric_gate [h] round 1 (1/20 samples, lock renewed): error-rate=0 (max 0.01) ok"
    assert lines[1] == "metric_gate [h] round 2 (2/20 samples): error-rate=0 (max 0.01) ok"


def test_the_lease_never_lapses_during_a_soak_many_times_its_duration(api, clock):
    keeper = keeper_for(api, clock)
    lapses = []

    def check_the_lease(_number):
        lease = LeaseState(api.objects[lease_path()])
        if lease.expired(clock.utc()) or not lease.held_by("pilot-1", "alice@ctl"):
            lapses.append(clock.now)

    gate, _queries = run(keeper, clock, samples=100, on_query=check_the_lease)  # 200 s: over 6 leases
    assert gate.verdict == "pass" and lapses == []
    assert keeper.renewals == 20


# --------------------------------------------------------------------------- the lock taken


def test_a_lock_taken_between_renewals_stops_the_gate_at_the_next_round(api, clock):
    keeper = keeper_for(api, clock)

    def rollback_during_round_3(query_number):
        if query_number == 3:
            rollback_takes_the_lock(api, clock)

    gate, queries = run(keeper, clock, samples=20, on_query=rollback_during_round_3)

    assert gate.rounds == 3 and len(queries) == 3  # no query after the round the lock was taken in
    assert clock.now == 6.0  # stopped at the start of round 4, one interval later
    assert gate.verdict == "inconclusive"
    assert gate.stopped == (
        "the rollout lock ceres-system/ceres-rollout was taken by run rollback-1 (holder bob@ctl, phase rollback) at "
        "2026-03-02T09:30:04.000000Z, by force: run pilot-1 (holder alice@ctl) no longer holds it, so this run stops"
    )
    [check] = gate.checks
    assert check["status"] == "incomplete" and check["values"] == [0.0, 0.0, 0.0]
    assert check["message"] == "sampling stopped after 3 of 20 samples: " + gate.stopped
    assert keeper.lost is True and keeper.lock["run_id"] == "rollback-1"
    assert api.object("leases", "ceres-system", "ceres-rollout")["spec"]["holderIdentity"] == "bob@ctl"  # left alone

    outcome = gate_lock.gate_outcome(gate, fail_on_breach=False, keeper=keeper, renew_lock=True)
    assert outcome["failed"] is True  # whatever fail_on_breach
    assert outcome["msg"] == "metric gate stopped after 3 round(s): " + gate.stopped
    assert (outcome["lock_lost"], outcome["lock_renewals"], outcome["lock"]["holder"]) == (True, 1, "bob@ctl")
    assert (outcome["verdict"], outcome["passed"], outcome["reason"]) == ("inconclusive", False, gate.stopped)


def test_a_lock_taken_just_before_a_renewal_is_refused_and_stops_the_gate(api, clock):
    keeper = keeper_for(api, clock)

    def rollback_during_round_5(query_number):  # round 6 (10 s) is a renewal
        if query_number == 5:
            rollback_takes_the_lock(api, clock)

    gate, queries = run(keeper, clock, samples=20, on_query=rollback_during_round_5)
    assert (gate.rounds, len(queries)) == (5, 5)
    assert gate.stopped.startswith("the rollout lock ceres-system/ceres-rollout was taken by run rollback-1 (holder")
    assert api.object("leases", "ceres-system", "ceres-rollout")["metadata"]["annotations"][
        "rollout.ceres.io/run-id"
    ] == ("rollback-1")
    # the first round's renewal and the rollback's write of the Lease (then its fence on the journal): the
    # refused renewal wrote nothing
    assert [path.rsplit("/", 2)[-2] for method, path in api.calls if method == "PUT"] == [
        "leases",
        "leases",
        "configmaps",
    ]


def test_a_lock_taken_before_the_first_round_stops_the_gate_before_any_query(api, clock):
    rollback_takes_the_lock(api, clock)
    keeper = keeper_for(api, clock)
    gate, queries = run(keeper, clock, samples=5)
    assert (gate.rounds, queries, gate.verdict) == (0, [], "inconclusive")
    assert "was taken by run rollback-1 (holder bob@ctl, phase rollback)" in gate.stopped
    assert gate.checks[0]["message"].startswith("sampling stopped after 0 of 5 samples: the rollout lock")


def test_a_lock_this_run_released_stops_the_gate(api, clock):
    keeper = keeper_for(api, clock)

    def release_during_round_2(query_number):
        if query_number == 2:
            apply_lock(api, pilot_request(), "released", clock=clock.utc)

    gate, _queries = run(keeper, clock, samples=5, on_query=release_during_round_2)
    assert gate.rounds == 2
    assert gate.stopped.startswith(
        "the rollout lock ceres-system/ceres-rollout is no longer held by run pilot-1 (it is free, released by run "
        "pilot-1 at 2026-03-02T09:30:02.000000Z)"
    )


def test_a_deleted_lease_nobody_took_since_is_taken_back_and_the_gate_goes_on(api, clock):
    """Issue 16: a deleted Lease stopped the gate and left the canary part-way with no owner. Nobody held
    the lock since (the journal's fence still names this run): the gate takes it back, warns, and goes on."""
    apply_lock(api, pilot_request(), "acquired", clock=clock.utc)
    keeper = keeper_for(api, clock)

    def delete_during_round_2(query_number):
        if query_number == 2:
            api.objects.pop(lease_path(), None)

    gate, _queries = run(keeper, clock, samples=5, on_query=delete_during_round_2)
    assert (gate.stopped, gate.verdict, gate.rounds) == (None, "pass", 5)
    assert keeper.lost is False
    assert keeper.warnings == [
        "the rollout lock ceres-system/ceres-rollout was free (its Lease deleted or released by hand) and nobody had "
        "held it since run pilot-1; the run took it back and carries on"
    ]
    lease = api.object("leases", "ceres-system", "ceres-rollout")
    assert (lease["spec"]["holderIdentity"], lease["metadata"]["annotations"]["rollout.ceres.io/run-id"]) == (
        "alice@ctl",
        "pilot-1",
    )


def test_a_deleted_lease_someone_held_since_stops_the_gate(api, clock):
    """Deleted after another run held the lock (a rollback took it and ended, then the Lease went): the
    journal's fence names that run, so this run has lost the lock and stops."""
    apply_lock(api, pilot_request(), "acquired", clock=clock.utc)
    keeper = keeper_for(api, clock)

    def rollback_then_delete(query_number):
        if query_number == 2:
            rollback = pilot_request(run_id="rollback-1", holder="bob@ctl", phase="rollback", force=True)
            apply_lock(api, rollback, "acquired", clock=clock.utc)
            api.objects.pop(lease_path(), None)

    gate, _queries = run(keeper, clock, samples=5, on_query=rollback_then_delete)
    assert gate.rounds == 2 and keeper.lost is True
    assert "is no longer held by run pilot-1 (the Lease does not exist)" in gate.stopped
    assert lease_path() not in api.objects  # not taken back


def test_a_lock_taken_over_after_it_expired_says_so(api, clock):
    keeper = keeper_for(FlakyApi(api), clock)

    def another_pilot_takes_the_expired_lock(query_number):
        if query_number == 2:
            clock.now += LEASE + 1  # this run stalled past its lease (a frozen controller)
            apply_lock(api, pilot_request(run_id="pilot-2", holder="carol@ctl"), "acquired", clock=clock.utc)

    gate, _queries = run(keeper, clock, samples=5, on_query=another_pilot_takes_the_expired_lock)
    assert gate.stopped.startswith(
        "the rollout lock ceres-system/ceres-rollout was taken by run pilot-2 (holder carol@ctl, phase pilot) at "
    )
    assert "after this run's lease expired: run pilot-1 (holder alice@ctl) no longer holds it" in gate.stopped


# --------------------------------------------------------------------------- a flapping API server


def test_a_transient_error_is_retried_at_the_next_round_with_a_warning(api, clock):
    link = FlakyApi(api)
    keeper = keeper_for(link, clock)

    def api_down_for_round_6(query_number):  # round 6 (10 s) is due to renew
        link.down = query_number == 5

    lines = []
    gate, queries = run(keeper, clock, samples=11, on_query=api_down_for_round_6, lines=lines)

    assert gate.verdict == "pass" and gate.stopped is None and len(queries) == 11
    assert link.refused == 1
    assert lines[5] == (
        "metric_gate [h] round 6 (6/11 samples, lock NOT renewed (retrying next round): GET "
        "/apis/coordination.k8s.io/v1/namespaces/ceres-system/leases/ceres-rollout: 503 ServiceUnavailable: etcdserver: "
        "leader changed): error-rate=0 (max 0.01) ok"
    )
    assert "lock renewed" in lines[6]  # round 7 tried again at once, not a third of the lease later
    assert keeper.renewals == 2
    assert keeper.warnings == [
        "metric_gate round 6: could not renew the rollout lock ceres-system/ceres-rollout (retrying at the next round; "
        "the lease, last renewed 10 s ago, lasts 30 s): GET /apis/coordination.k8s.io/v1/namespaces/ceres-system/"
        "leases/ceres-rollout: 503 ServiceUnavailable: etcdserver: leader changed"
    ]
    outcome = gate_lock.gate_outcome(gate, fail_on_breach=True, keeper=keeper, renew_lock=True)
    assert "failed" not in outcome and outcome["warnings"] == keeper.warnings and outcome["lock_lost"] is False


def test_a_failed_check_between_renewals_is_a_warning(api, clock):
    link = FlakyApi(api)
    keeper = keeper_for(link, clock)
    gate, _queries = run(keeper, clock, samples=4, on_query=lambda number: setattr(link, "down", number == 2))
    assert gate.verdict == "pass"
    assert keeper.warnings[0].startswith("metric_gate round 3: could not check the rollout lock")
    assert keeper.renewals == 1  # a failed check does not make the next round a renewal


def test_renewals_failing_until_the_lease_could_expire_stop_the_gate(api, clock):
    """Fail-closed: the lease (30 s) was last renewed at 0 s; the next renewal could land at
    most one interval (2 s) and one renewal budget (10 s) after a round starts, so the round at
    18 s, whose next renewal could come at 30 s, is the last one that may not stop."""
    link = FlakyApi(api)
    keeper = keeper_for(link, clock)
    gate, queries = run(keeper, clock, samples=20, on_query=lambda number: setattr(link, "down", number >= 5))

    assert queries == [0.0, 2.0, 4.0, 6.0, 8.0, 10.0, 12.0, 14.0, 16.0]
    assert len(keeper.warnings) == 4  # rounds 6 to 9 warned and went on
    assert gate.rounds == 9 and clock.now == 18.0
    assert gate.stopped == (
        "could not renew the rollout lock ceres-system/ceres-rollout (last renewed 18 s ago, lease 30 s): GET "
        "/apis/coordination.k8s.io/v1/namespaces/ceres-system/leases/ceres-rollout: 503 ServiceUnavailable: "
        "etcdserver: leader changed; it could expire before the next renewal, so this run stops"
    )
    assert keeper.lost is True
    outcome = gate_lock.gate_outcome(gate, fail_on_breach=True, keeper=keeper, renew_lock=True)
    assert outcome["failed"] is True and outcome["lock_lost"] is True


def test_slow_rounds_count_in_the_next_possible_renewal(api, clock):
    """With queries that may take 8 s (Prometheus's timeout) the next renewal could be 8 + 10 s away."""
    link = FlakyApi(api)
    keeper = keeper_for(link, clock, round_seconds=8.0)
    gate, queries = run(keeper, clock, samples=20, on_query=lambda number: setattr(link, "down", number >= 5))
    # at 12 s, 18 s of the lease are left: no more than the 8 + 10 s the next renewal may take
    assert queries[-1] == 10.0 and gate.rounds == 6 and gate.stopped.startswith("could not renew")


def test_a_first_renewal_that_fails_stops_the_gate_before_any_query(api, clock):
    link = FlakyApi(api)
    link.down = True
    keeper = keeper_for(link, clock)
    gate, queries = run(keeper, clock, samples=5)
    assert (queries, gate.rounds) == ([], 0)
    assert gate.stopped.startswith(
        "could not renew the rollout lock ceres-system/ceres-rollout before the gate's first round: GET "
    )
    assert gate.stopped.endswith("the gate does not sample without knowing it holds the lock, so this run stops")


def test_a_connection_error_is_transient_too(api, clock):
    link = FlakyApi(api)
    keeper = keeper_for(link, clock)
    original = link._call

    def refuse_once(method, *args, **kwargs):
        if clock.now == 10.0 and method == "get" and not getattr(link, "refused_once", False):
            link.refused_once = True
            raise K8sConnectionError("GET /apis/...: cannot connect to the API server: refused", request_sent=False)
        return original(method, *args, **kwargs)

    link._call = refuse_once
    gate, _queries = run(keeper, clock, samples=8)
    assert gate.verdict == "pass" and keeper.renewals == 2 and len(keeper.warnings) == 1


# --------------------------------------------------------------------------- options


def options(**overrides):
    values = {name: spec.get("default") for name, spec in gate_lock.RENEW_LOCK_OPTIONS.items()}
    values.update(run_id="pilot-1", holder="alice@ctl", lease_duration=60)
    values.update(overrides)
    return values


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"run_id": "bad id!"}, "renew_lock.run_id: must be 1 to 128 letters"),
        ({"name": "Not_A_DNS_Name"}, "renew_lock.name: must be a lowercase DNS name"),
        ({"lease_duration": 0}, "renew_lock.lease_duration: must be a whole number of seconds, at least 1, got 0"),
        ({"lease_duration": 5}, "renew_lock.lease_duration (5 s) must be at least three times interval (2 s)"),
        ({"timeout": 0}, "renew_lock.timeout: must be more than 0 seconds, got 0"),
        ({"namespace": ""}, "renew_lock.namespace: must be a namespace name"),
        ({"host": "http://127.0.0.1:1", "kubeconfig": "/nonexistent/kubeconfig"}, "renew_lock: could not"),
    ],
)
def test_bad_options_name_the_field(overrides, message):
    with pytest.raises(GateConfigError) as raised:
        gate_lock.lock_keeper({"renew_lock": options(**overrides)}, build_policy(samples=3, interval=2), False)
    assert message in str(raised.value)


def test_check_mode_makes_no_keeper_but_checks_the_options():
    policy = build_policy(samples=3, interval=2)
    assert gate_lock.lock_keeper({"renew_lock": options(kubeconfig="/nonexistent")}, policy, check_mode=True) is None
    with pytest.raises(GateConfigError):
        gate_lock.lock_keeper({"renew_lock": options(run_id="")}, policy, check_mode=True)
    assert gate_lock.lock_keeper({"renew_lock": None}, policy, check_mode=False) is None


def test_a_renewal_never_takes_more_than_a_third_of_the_lease():
    assert gate_lock.renewal_budget({"timeout": 30.0}, 45) == 15.0
    assert gate_lock.renewal_budget({"timeout": 5.0}, 600) == 5.0


def test_the_default_holder_is_rollout_journals(monkeypatch):
    from ansible_collections.ceres.rollout.plugins.module_utils.lock import lease_state

    monkeypatch.setattr(lease_state.getpass, "getuser", lambda: "alice")
    monkeypatch.setattr(lease_state.socket, "gethostname", lambda: "ctl-1")
    # one default, lease_state's, which rollout_journal uses too
    assert gate_lock.lock_request(options(holder=None)).holder == "alice@ctl-1"
