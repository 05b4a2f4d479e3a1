# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""approval_evidence: the last run of the phase before, each step with its gate's values, its backup."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.ceres.rollout.plugins.filter.approval_evidence import approval_evidence

GATE = {
    "verdict": "pass",
    "checks": {
        "checkout/error-rate": {"status": "pass", "max": 0.001, "values": [0.0, 0.0, 0.0002, 0.0001]},
        "checkout/p95-ms": {"status": "pass", "max": 100, "values": [41.0]},
    },
}


def test_the_last_run_of_the_phase_each_step_with_its_gate_and_the_backup():
    records = [
        {"run_id": "pilot-1", "phase": "pilot", "step_id": "pilot/weight-10", "outcome": "rolled_back", "weight": 10},
        {
            "run_id": "pilot-2",
            "phase": "pilot",
            "step_id": "pilot/backup",
            "outcome": "passed",
            "backup_id": "20261207T2200Z-ab",
        },
        {
            "run_id": "pilot-2",
            "phase": "pilot",
            "step_id": "pilot/weight-10",
            "outcome": "passed",
            "weight": 10,
            "gate": GATE,
        },
        {"run_id": "pilot-2", "phase": "pilot", "step_id": "pilot/done", "outcome": "completed"},
        {"run_id": "wave1-1", "phase": "wave1", "step_id": "wave1/approval", "outcome": "started"},
    ]
    assert approval_evidence(records, "pilot") == [
        "pilot run pilot-2: pilot/backup passed",
        "pilot run pilot-2: pilot/weight-10 passed at 10%: checkout/error-rate pass (max 0.001; last [0.0, 0.0002, 0.0001]);"
        " checkout/p95-ms pass (max 100; last [41.0])",
        "pilot run pilot-2: pilot/done completed",
        "pilot run pilot-2: backup 20261207T2200Z-ab",
    ]


def test_a_phase_with_no_run_says_so():
    assert approval_evidence([], "wave2") == ["wave2: no run in the journal"]
    records = [{"run_id": "p", "phase": "pilot", "step_id": "pilot/done", "outcome": "completed"}]
    assert approval_evidence(records, "pilot")[-1] == "pilot run p: backup none recorded"


@pytest.mark.parametrize(("records", "phase"), [("x", "pilot"), ([1], "pilot"), ([], "")])
def test_bad_input_is_refused(records, phase):
    with pytest.raises(AnsibleFilterError):
        approval_evidence(records, phase)
