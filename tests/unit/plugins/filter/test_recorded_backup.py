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
