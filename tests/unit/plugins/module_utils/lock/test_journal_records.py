"""journal_records: record validation, the one-key-per-run JSON lines layout, summaries. Pure."""

from __future__ import annotations

import pytest

from ansible_collections.ceres.rollout.plugins.module_utils.lock import journal_records as records
from ansible_collections.ceres.rollout.plugins.module_utils.lock.journal_records import JournalCorrupt, RecordError


def test_a_record_is_normalized_in_field_order_without_empty_fields():
    record = records.normalize_record(
        {
            "outcome": "passed",
            "app": "checkout",
            "weight": 25,
            "phase": "pilot",
            "gate": {"p95-ms": {"max": 100, "values": [41.5, 44]}},
            "message": None,
            "data": {},
            "step_id": "pilot/25/gate",
        },
        "pilot-1",
    )
    assert list(record) == ["step_id", "run_id", "phase", "outcome", "apps", "weight", "gate"]
    assert record["apps"] == ["checkout"] and record["run_id"] == "pilot-1"


def test_the_tasks_phase_is_the_default():
    assert records.normalize_record({"outcome": "started"}, "r-1", default_phase="wave1")["phase"] == "wave1"
    assert records.normalize_record({"outcome": "started", "phase": "pilot"}, "r-1", "wave1")["phase"] == "pilot"


@pytest.mark.parametrize(
    "record, message",
    [
        ({"outcome": "passed"}, "record.phase: is required"),
        (
            {"phase": "pilot"},
            "record.outcome: must be one of started, passed, failed, inconclusive, rolled_back, "
            "completed, aborted, skipped, got None",
        ),
        ({"phase": "pilot", "outcome": "ok"}, "record.outcome: must be one of"),
        (
            {"phase": "pilot", "outcome": "passed", "verdict": "green"},
            "record.verdict: must be one of pass, fail, inconclusive, got 'green'",
        ),
        ({"phase": "pilot", "outcome": "passed", "weight": 101}, "record.weight: must be an integer from 0 to 100"),
        ({"phase": "pilot", "outcome": "passed", "weight": True}, "record.weight: must be an integer"),
        (
            {"phase": "pilot", "outcome": "passed", "colour": "red"},
            "record.colour: is not a record field (fields: step_id, run_id, phase",
        ),
        ({"phase": "pilot", "outcome": "passed", "seq": 4}, "record.seq: is set by the journal, not by the caller"),
        (
            {"phase": "pilot", "outcome": "passed", "run_id": "other"},
            "record.run_id: is 'other', but the task's run_id is 'r-1'",
        ),
        ({"phase": "pilot", "outcome": "passed", "app": "a", "apps": ["b"]}, "record.app: give app or apps, not both"),
        ({"phase": "pilot", "outcome": "passed", "apps": "checkout"}, "record.apps: must be a list of app names"),
        ({"phase": "pilot", "outcome": "passed", "data": ["x"]}, "record.data: must be a dict, got list"),
        ({"phase": "pilot", "outcome": "passed", "approvals": ["yes"]}, "record.approvals: must be a list of dicts"),
        (
            {"phase": "pilot", "outcome": "passed", "gate": {"p95": float("nan")}},
            "record.gate: holds a value that is not JSON",
        ),
        ({"phase": "pilot", "outcome": "passed", "step_id": "has space"}, "record.step_id: must be 1 to 253"),
        ({"phase": "", "outcome": "passed"}, "record.phase: must be a non-empty string"),
    ],
)
def test_invalid_records_name_the_field(record, message):
    with pytest.raises(RecordError) as invalid:
        records.normalize_record(record, "r-1")
    assert str(invalid.value).startswith(message)


def test_runs_are_json_lines_under_one_key_each():
    first = {
        "seq": 1,
        "step_id": "s1",
        "run_id": "r-1",
        "phase": "pilot",
        "outcome": "started",
        "recorded_at": "2026-03-02T09:30:00.000Z",
    }
    text = records.encode_run([first, dict(first, seq=2, step_id="s2", outcome="passed")])
    assert text == (
        '{"seq":1,"step_id":"s1","run_id":"r-1","phase":"pilot","outcome":"started",'
        '"recorded_at":"2026-03-02T09:30:00.000Z"}\n'
        '{"seq":2,"step_id":"s2","run_id":"r-1","phase":"pilot","outcome":"passed",'
        '"recorded_at":"2026-03-02T09:30:00.000Z"}\n'
    )
    assert records.decode_journal({"run.r-1": text, "other": "x"}) == {"r-1": records.decode_run("run.r-1", text)}
    assert records.run_key("r-1") == "run.r-1"


def test_a_line_that_is_not_a_record_is_reported_not_skipped():
    with pytest.raises(JournalCorrupt) as corrupt:
        records.decode_run("run.r-1", '{"seq":1}\n{"seq":\n')
    assert str(corrupt.value).startswith("journal key run.r-1, line 2 is not JSON")
    with pytest.raises(JournalCorrupt, match="line 1 is not a record"):
        records.decode_run("run.r-1", "[1, 2]\n")


def test_sizes_count_keys_and_values_in_utf8_bytes():
    assert records.journal_bytes({"run.a": "é\n"}) == 5 + 3
    assert records.record_bytes({"seq": 1}) == len('{"seq":1}') + 1


def test_records_are_ordered_by_run_start_then_seq_and_last_is_the_latest_change():
    runs = {
        "b": [
            {"seq": 2, "step_id": "b2", "recorded_at": "2026-03-02T10:05:00.000Z"},
            {"seq": 1, "step_id": "b1", "recorded_at": "2026-03-02T10:00:00.000Z"},
        ],
        "a": [
            {
                "seq": 1,
                "step_id": "a1",
                "recorded_at": "2026-03-02T09:00:00.000Z",
                "updated_at": "2026-03-02T11:00:00.000Z",
            }
        ],
    }
    ordered = records.ordered_records(runs)
    assert [record["step_id"] for record in ordered] == ["a1", "b1", "b2"]
    assert records.latest(ordered)["step_id"] == "a1"
    assert records.latest([]) is None


def test_a_run_summary():
    run = [
        {
            "seq": 1,
            "step_id": "backup",
            "phase": "backup",
            "outcome": "passed",
            "backup_id": "bk-1",
            "recorded_at": "2026-03-02T09:00:00.000Z",
        },
        {
            "seq": 2,
            "step_id": "pilot/10",
            "phase": "pilot",
            "outcome": "failed",
            "recorded_at": "2026-03-02T09:10:00.000Z",
        },
        {
            "seq": 3,
            "step_id": "rollback",
            "phase": "rollback",
            "outcome": "rolled_back",
            "recorded_at": "2026-03-02T09:11:00.000Z",
        },
    ]
    assert records.summarize_run("r-1", run) == {
        "run_id": "r-1",
        "records": 3,
        "phases": ["backup", "pilot", "rollback"],
        "outcomes": {"passed": 1, "failed": 1, "rolled_back": 1},
        "backup_ids": ["bk-1"],
        "started_at": "2026-03-02T09:00:00.000Z",
        "updated_at": "2026-03-02T09:11:00.000Z",
        "last_step_id": "rollback",
        "last_phase": "rollback",
        "last_outcome": "rolled_back",
    }
