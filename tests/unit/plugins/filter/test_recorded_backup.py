"""recorded_backup: a complete rollback restores the backup the rollout's last run recorded, not the latest."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.ceres.rollout.plugins.filter.recorded_backup import FilterModule, recorded_backup


def record(run_id, step_id, outcome="passed", **extra):
    return {"run_id": run_id, "step_id": step_id, "outcome": outcome, "phase": step_id.split("/")[0], **extra}


def test_the_last_forward_runs_backup_is_the_one():
    records = [
        record("pilot-1", "pilot/backup", backup_id="20261201T000000Z-aaaaaa"),
        record("pilot-1", "pilot/weight-10"),
        record("wave1-1", "wave1/backup", backup_id="20261202T000000Z-bbbbbb"),
        record("wave1-1", "wave1/weight-10", outcome="rolled_back"),
        record("rollback-1", "rollback/done", outcome="completed"),
    ]
    assert recorded_backup(records) == {
        "backup_id": "20261202T000000Z-bbbbbb",
        "run_id": "wave1-1",
        "phase": "wave1",
        "step_id": "wave1/backup",
        "manifest_sha256": None,
    }


@pytest.mark.parametrize(
    "records",
    [
        [],
        [record("pilot-1", "pilot/weight-10")],
        [record("pilot-1", "pilot/backup", outcome="failed", backup_id="20261201T000000Z-aaaaaa")],
        [record("pilot-1", "pilot/backup")],  # no id
        [record("rollback-1", "rollback/backup", backup_id="20261201T000000Z-aaaaaa")],
    ],
)
def test_without_a_passed_forward_backup_there_is_none(records):
    assert recorded_backup(records) is None


def test_records_must_be_a_list_of_dicts():
    with pytest.raises(AnsibleFilterError, match="must be a list of dicts"):
        recorded_backup({"step_id": "pilot/backup"})
    assert FilterModule().filters()["recorded_backup"] is recorded_backup


def test_the_manifest_digest_the_run_recorded_comes_with_it():
    digest = "ab" * 32
    records = [
        record("pilot-1", "pilot/backup", backup_id="20261201T000000Z-aaaaaa", data={"manifest_sha256": digest}),
    ]
    assert recorded_backup(records)["manifest_sha256"] == digest


def test_a_digest_that_is_not_a_sha256_is_not_passed_on():
    records = [record("pilot-1", "pilot/backup", backup_id="20261201T000000Z-aaaaaa", data={"manifest_sha256": 5})]
    assert recorded_backup(records)["manifest_sha256"] is None


def test_the_backup_of_one_run():
    records = [
        record("pilot-1", "pilot/backup", backup_id="20261201T000000Z-aaaaaa", data={"manifest_sha256": "ab" * 32}),
        record("wave1-1", "wave1/backup", backup_id="20261202T000000Z-bbbbbb"),
    ]
    assert recorded_backup(records, run_id="pilot-1")["backup_id"] == "20261201T000000Z-aaaaaa"
    assert recorded_backup(records, run_id="pilot-1")["manifest_sha256"] == "ab" * 32
    assert recorded_backup(records, run_id="wave2-1") is None
