"""journal: recording and reading the rollout journal ConfigMap, against the stateful fake API."""

from __future__ import annotations

import datetime
import json
import threading

import pytest
from k8s_stub import FakeKubeApi, configmap_path

from ansible_collections.ceres.rollout.plugins.module_utils.common.retry import Deadline
from ansible_collections.ceres.rollout.plugins.module_utils.lock import journal
from ansible_collections.ceres.rollout.plugins.module_utils.lock.journal import JournalError, JournalFull, RecordRequest
from ansible_collections.ceres.rollout.plugins.module_utils.lock.journal_records import JournalCorrupt, RecordError

START = datetime.datetime(2026, 3, 2, 9, 30, 0, tzinfo=datetime.UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += datetime.timedelta(seconds=seconds)


@pytest.fixture
def api():
    return FakeKubeApi()


@pytest.fixture
def clock():
    return Clock()


def gate_record(**overrides):
    record = {
        "step_id": "pilot/25/gate",
        "phase": "pilot",
        "cluster": "local",
        "namespace": "pilot-apps",
        "app": "checkout",
        "weight": 25,
        "outcome": "passed",
        "verdict": "pass",
        "gate": {"error-rate": {"max": 0.001, "values": [0.0, 0.0002]}},
        "backup_id": "bk-20260302",
        "approvals": [{"by": "alice", "decision": "approved"}],
        "data": {"canary_pod_template_hash": "7c9f6d5b8", "virtual_service_resource_version": "48211"},
    }
    record.update(overrides)
    return {key: value for key, value in record.items() if value is not None}


def record(api, clock, run_id="pilot-1", check_mode=False, **kwargs):
    body = kwargs.pop("body", None) or gate_record()
    limits = {key: kwargs.pop(key) for key in ("limit", "record_limit") if key in kwargs}
    return journal.record_step(
        api,
        RecordRequest("ceres-system", "ceres-rollout", run_id, body, **kwargs),
        check_mode=check_mode,
        clock=clock,
        sleep=lambda seconds: None,
        **limits,
    )


def stored_lines(api, run_id="pilot-1"):
    return [json.loads(line) for line in api.objects[configmap_path()]["data"]["run." + run_id].splitlines()]


def test_the_first_record_creates_the_journal_beside_the_lease(api, clock):
    result = record(api, clock)
    assert (result.changed, result.step) == (True, "appended")
    configmap = api.objects[configmap_path()]
    assert configmap["metadata"]["labels"] == {
        "app.kubernetes.io/managed-by": "ceres.rollout",
        "rollout.ceres.io/lock": "ceres-rollout",
    }
    assert configmap["metadata"]["annotations"] == {
        "rollout.ceres.io/journal-format": "1",
        "rollout.ceres.io/order": "1",  # the journal's last order
    }
    assert list(configmap["data"]) == ["run.pilot-1"]
    assert result.record == {
        "seq": 1,
        "order": 1,
        "step_id": "pilot/25/gate",
        "run_id": "pilot-1",
        "phase": "pilot",
        "outcome": "passed",
        "cluster": "local",
        "namespace": "pilot-apps",
        "apps": ["checkout"],
        "weight": 25,
        "verdict": "pass",
        "gate": {"error-rate": {"max": 0.001, "values": [0.0, 0.0002]}},
        "backup_id": "bk-20260302",
        "approvals": [{"by": "alice", "decision": "approved"}],
        "data": {"canary_pod_template_hash": "7c9f6d5b8", "virtual_service_resource_version": "48211"},
        "recorded_at": "2026-03-02T09:30:00.000Z",
    }
    assert stored_lines(api) == [result.record]
    assert [method for method, _path in api.calls] == ["GET", "POST", "GET"]
    assert result.info == {
        "namespace": "ceres-system",
        "name": "ceres-rollout-journal",
        "exists": True,
        "runs": 1,
        "bytes": journal.records_layout.journal_bytes(configmap["data"]),
        "limit_bytes": 1000000,
    }


def test_records_are_appended_in_order(api, clock):
    record(api, clock, body=gate_record(step_id="pilot/10/gate", weight=10))
    clock.advance(60)
    result = record(api, clock, body=gate_record(step_id="pilot/25/gate"))
    assert result.record["seq"] == 2
    assert [line["step_id"] for line in stored_lines(api)] == ["pilot/10/gate", "pilot/25/gate"]


def test_recording_the_same_step_again_changes_nothing(api, clock):
    first = record(api, clock)
    writes = len(api.writes())
    clock.advance(5)
    again = record(api, clock)
    assert (again.changed, again.step) == (False, "unchanged")
    assert again.record == first.record
    assert len(api.writes()) == writes


def test_recording_a_step_with_other_content_updates_it_in_place(api, clock):
    record(api, clock, body=gate_record(step_id="pilot/10/gate", outcome="started", verdict=None))
    record(api, clock, body=gate_record(step_id="pilot/10/shift", outcome="passed"))
    clock.advance(30)
    result = record(api, clock, body=gate_record(step_id="pilot/10/gate", outcome="failed", verdict="fail"))
    assert (result.changed, result.step) == (True, "updated")
    assert result.previous["outcome"] == "started"
    lines = stored_lines(api)
    assert [(line["seq"], line["step_id"], line["outcome"]) for line in lines] == [
        (1, "pilot/10/gate", "failed"),
        (2, "pilot/10/shift", "passed"),
    ]
    assert lines[0]["recorded_at"] == "2026-03-02T09:30:00.000Z"
    assert lines[0]["updated_at"] == "2026-03-02T09:30:30.000Z"


def test_a_record_without_step_id_gets_one_and_is_always_appended(api, clock):
    body = {"phase": "pilot", "outcome": "started"}
    first = record(api, clock, body=body)
    second = record(api, clock, body=body)
    assert first.record["step_id"].startswith("step-") and first.record["step_id"] != second.record["step_id"]
    assert len(stored_lines(api)) == 2


def test_each_run_has_its_own_key(api, clock):
    record(api, clock, run_id="pilot-1")
    record(api, clock, run_id="pilot-2")
    assert sorted(api.objects[configmap_path()]["data"]) == ["run.pilot-1", "run.pilot-2"]


def test_an_invalid_record_is_refused_before_any_call(api, clock):
    with pytest.raises(RecordError, match="record.outcome: must be one of"):
        record(api, clock, body=gate_record(outcome="great"))
    assert api.calls == []


def test_a_record_too_large_is_refused_before_writing(api, clock):
    with pytest.raises(JournalFull) as full:
        record(api, clock, body=gate_record(data={"series": "x" * 70000}))
    assert "more than the 65536 a record may take" in str(full.value)
    assert api.writes() == []


def test_a_journal_about_to_pass_its_limit_is_refused_and_left_as_it_is(api, clock):
    """The default limit keeps the ConfigMap below the API server's 1 MiB: the refusal comes
    from the journal, with what to do, not as a 422 from the API server."""
    for number in range(16):
        record(api, clock, run_id="old-%d" % number, body=gate_record(data={"notes": "n" * 60000}))
    before = json.dumps(api.objects[configmap_path()])
    with pytest.raises(JournalFull) as full:
        record(api, clock, run_id="pilot-9", body=gate_record(data={"notes": "n" * 60000}))
    message = str(full.value)
    assert message.startswith("journal ceres-system/ceres-rollout-journal would hold ")
    assert "more than its limit of 1000000 (a ConfigMap holds at most 1 MiB); nothing was written" in message
    assert json.dumps(api.objects[configmap_path()]) == before


def test_a_journal_filling_up_warns(api, clock):
    result = record(api, clock, limit=2500)
    assert result.warnings == []
    result = record(api, clock, limit=2500, body=gate_record(step_id="second", data={"n": "x" * 1300}))
    assert result.warnings and "holds %d of its 2500 bytes" % result.info["bytes"] in result.warnings[0]


def test_a_conflict_is_reread_and_both_records_survive(api, clock):
    record(api, clock, run_id="pilot-1")

    def rival_records(fake):
        fake.rival_put(
            configmap_path(),
            lambda configmap: configmap["data"].update(
                {
                    "run.rollback-1": '{"seq":1,"step_id":"rb","run_id":"rollback-1","phase":"rollback",'
                    '"outcome":"started","recorded_at":"2026-03-02T09:30:01.000Z"}\n'
                }
            ),
        )

    api.before_write.append(rival_records)
    result = record(api, clock, run_id="pilot-1", body=gate_record(step_id="pilot/50/gate"))
    assert result.step == "appended"
    data = api.objects[configmap_path()]["data"]
    assert sorted(data) == ["run.pilot-1", "run.rollback-1"]
    assert [line["step_id"] for line in stored_lines(api)] == ["pilot/25/gate", "pilot/50/gate"]


def test_concurrent_recorders_lose_no_record(api, clock):
    """Both reads are held until both have read the same resourceVersion; one write gets a 409,
    is re-read and merged again: both records are in the journal."""
    record(api, clock, run_id="pilot-1", body=gate_record(step_id="first"))
    api.hold_reads(threading.Barrier(2, timeout=10))
    errors = []

    def append(step_id):
        try:
            journal.record_step(
                api,
                RecordRequest("ceres-system", "ceres-rollout", "pilot-1", gate_record(step_id=step_id)),
                clock=clock,
                sleep=lambda seconds: None,
            )
        except Exception as error:  # pylint: disable=broad-except
            errors.append(error)

    threads = [threading.Thread(target=append, args=(step_id,)) for step_id in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert errors == []
    assert sorted(line["step_id"] for line in stored_lines(api)) == ["a", "b", "first"]
    assert sorted(line["seq"] for line in stored_lines(api)) == [1, 2, 3]


def test_conflicts_stop_when_the_time_budget_is_spent(api, clock):
    record(api, clock)
    ticks = iter(range(1000))
    api.deadline = Deadline(1.0, clock=lambda: next(ticks) * 0.3)
    api.before_write.extend([lambda fake: fake.rival_put(configmap_path(), lambda configmap: None)] * 50)
    with pytest.raises(JournalError) as failed:
        record(api, clock, body=gate_record(step_id="late"))
    assert str(failed.value).startswith("timeout: gave up after ")
    assert "the timeout of 1 s leaving no time for another" in str(failed.value)


def test_check_mode_predicts_without_writing(api, clock):
    result = record(api, clock, check_mode=True)
    assert (result.changed, result.step, result.record["seq"]) == (True, "appended", 1)
    assert api.writes() == [] and configmap_path() not in api.objects
    record(api, clock)
    result = record(api, clock, check_mode=True, body=gate_record(outcome="failed"))
    assert (result.changed, result.step) == (True, "updated")
    assert stored_lines(api)[0]["outcome"] == "passed"


def test_a_missing_namespace_is_named(clock):
    with pytest.raises(JournalError) as failed:
        record(FakeKubeApi(namespaces=()), clock)
    assert str(failed.value) == (
        "ceres-system/ceres-rollout-journal: namespace ceres-system does not exist; create it "
        "first (the journal never creates namespaces)"
    )


def test_a_record_changed_right_after_the_write_fails_as_written(api, clock):
    record(api, clock)

    class RivalAfterWrite:
        def __init__(self):
            self.puts = 0

        def get(self, path, query=None):
            return api.get(path)

        def post(self, path, body, query=None):
            return api.post(path, body)

        def put(self, path, body, query=None):
            answer = api.put(path, body)
            api.rival_put(path, lambda configmap: configmap["data"].update({"run.pilot-1": ""}))
            return answer

    with pytest.raises(JournalError) as failed:
        journal.record_step(
            RivalAfterWrite(),
            RecordRequest("ceres-system", "ceres-rollout", "pilot-1", gate_record(step_id="x")),
            clock=clock,
        )
    assert failed.value.changed is True
    assert "step x reads back missing" in str(failed.value)


def test_a_corrupt_journal_is_not_written_over(api, clock):
    record(api, clock)
    api.rival_put(configmap_path(), lambda configmap: configmap["data"].update({"run.pilot-1": "not json\n"}))
    writes = len(api.writes())
    with pytest.raises(JournalCorrupt, match="journal key run.pilot-1, line 1 is not JSON"):
        record(api, clock, body=gate_record(step_id="next"))
    assert len(api.writes()) == writes


# --------------------------------------------------------------------------- reading


def test_reading_a_missing_journal_is_empty(api):
    view = journal.read_journal(api, "ceres-system", "ceres-rollout")
    assert (view.records, view.last, view.runs) == ([], None, [])
    assert view.info["exists"] is False


def test_read_returns_records_last_and_run_summaries(api, clock):
    record(api, clock, run_id="pilot-1", body=gate_record(step_id="backup", phase="backup", backup_id="bk-1"))
    clock.advance(10)
    record(api, clock, run_id="pilot-1", body=gate_record(step_id="pilot/10/gate", outcome="failed"))
    clock.advance(10)
    record(
        api, clock, run_id="rollback-1", body=gate_record(step_id="rollback", phase="rollback", outcome="rolled_back")
    )
    view = journal.read_journal(api, "ceres-system", "ceres-rollout")
    assert [(entry["run_id"], entry["step_id"]) for entry in view.records] == [
        ("pilot-1", "backup"),
        ("pilot-1", "pilot/10/gate"),
        ("rollback-1", "rollback"),
    ]
    assert view.last["step_id"] == "rollback"
    assert [(run["run_id"], run["records"], run["last_outcome"]) for run in view.runs] == [
        ("pilot-1", 2, "failed"),
        ("rollback-1", 1, "rolled_back"),
    ]
    only = journal.read_journal(api, "ceres-system", "ceres-rollout", run_id="pilot-1")
    assert [entry["step_id"] for entry in only.records] == ["backup", "pilot/10/gate"]
    assert only.last["step_id"] == "pilot/10/gate" and len(only.runs) == 2
    assert [method for method, _path in api.calls[-2:]] == ["GET", "GET"]


def test_records_are_ordered_by_the_journal_not_by_the_controllers_clocks(api, clock):
    """Issue 16: a rollback from a laptop two minutes behind sorted before the pilot it rolled back, so the
    pilot's run looked like the last writer (and a later pilot could skip gates). The journal orders records by
    the order it accepted them (``order``, one more than its last, under the ConfigMap's resourceVersion)."""
    record(api, clock, run_id="pilot-1", body=gate_record(step_id="pilot/weight-10"))
    clock.advance(30)
    record(api, clock, run_id="pilot-1", body=gate_record(step_id="pilot/weight-25"))
    clock.advance(-150)  # the rollback's controller is two minutes behind
    record(
        api,
        clock,
        run_id="rollback-1",
        body=gate_record(step_id="rollback/done", phase="rollback", outcome="completed"),
    )

    view = journal.read_journal(api, "ceres-system", "ceres-rollout")
    assert [(r["run_id"], r["step_id"], r["order"]) for r in view.records] == [
        ("pilot-1", "pilot/weight-10", 1),
        ("pilot-1", "pilot/weight-25", 2),
        ("rollback-1", "rollback/done", 3),
    ]
    assert view.last["run_id"] == "rollback-1"
    assert [run["run_id"] for run in view.runs] == ["pilot-1", "rollback-1"]
    assert view.records[2]["recorded_at"] < view.records[0]["recorded_at"]  # its clock was behind, all the same

    # an update takes a new order: it is the latest write
    clock.advance(200)
    record(api, clock, run_id="pilot-1", body=gate_record(step_id="pilot/weight-10", outcome="failed"))
    assert journal.read_journal(api, "ceres-system", "ceres-rollout").last["step_id"] == "pilot/weight-10"


def test_an_order_annotation_deleted_by_hand_does_not_send_orders_back(api, clock):
    record(api, clock, body=gate_record(step_id="a"))
    record(api, clock, body=gate_record(step_id="b"))
    del api.objects[configmap_path()]["metadata"]["annotations"]["rollout.ceres.io/order"]
    record(api, clock, body=gate_record(step_id="c"))
    assert [line["order"] for line in stored_lines(api)] == [1, 2, 3]
