# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""End-to-end: the plan's "Decision: proceed or rollback?" between phases (ceres_approvals). wave1 waits after a
completed pilot, showing the pilot's evidence; playbooks/approve.yml, run from a second terminal while it waits,
decides. An approval lets the wave go on (a decision for another phase is refused first, naming what waits); a
rejection, or no decision in time, rolls the whole rollout back - the pilot's apps included - and fails the play
saying which. Who decided, when and why is in the journal."""

from __future__ import annotations

import json

from integration_support import run_ansible
from rollout_world import Playbook

pytest_plugins = ["e2e_fixtures"]
WAITING = "WAITING FOR A DECISION on wave1"
GATE = {
    "verdict": "pass",
    "checks": {"checkout/error-rate": {"status": "pass", "max": 0.001, "values": [0.0, 0.0002]}},
}


def a_completed_pilot_and_a_wave(world, timeout: int = 120):
    """A pilot completed (recorded by another controller, checkout left at 50%) and wave1's vars with approvals on."""
    pilot = world.namespace("pilot", ["checkout"])
    wave = world.namespace("wave1", ["app1"])
    variables = world.pilot_vars(pilot, wave_backup=False)
    variables["ceres_pilot"]["canary_steps"] = [50]
    variables["ceres_waves"] = [{"name": "wave1", "namespaces": [wave], "user_share": 30}]
    variables["ceres_wave_canary_steps"] = [100]
    variables.update(ceres_approvals=True, ceres_approval_timeout=timeout)
    world.record_run(
        "pilot-20261207T220000Z-e2e",
        "pilot",
        [
            {"step_id": "pilot/backup", "outcome": "passed", "backup_id": "20261207T2200Z-e2e0"},
            {
                "step_id": "pilot/weight-50",
                "outcome": "passed",
                "weight": 50,
                "apps": ["%s/checkout" % pilot],
                "gate": GATE,
            },
            {"step_id": "pilot/done", "outcome": "completed"},
        ],
    )
    world.set_weight(pilot, "checkout", 50)
    return pilot, wave, variables


def decide(variables, *extra: str):
    """playbooks/approve.yml from another terminal: (exit code, output)."""
    done = run_ansible(
        ["ansible-playbook", "playbooks/approve.yml", "-i", "inventories/local", "-e", _vars(variables), *extra],
        check=False,
    )
    return done.returncode, " ".join((done.stdout + done.stderr).split())


def _vars(variables) -> str:
    return json.dumps({key: variables[key] for key in ("ceres_rollout_journal",)})


def approval_records(world):
    return [record for record in world.journal() if record["step_id"] == "wave1/approval"]


def test_an_approval_from_a_second_terminal_lets_the_wave_go_on_and_one_for_another_phase_is_refused(rollout_world):
    world = rollout_world
    pilot, wave, variables = a_completed_pilot_and_a_wave(world)
    run = Playbook("wave1", variables)
    run.wait_for_line(WAITING)
    said = " ".join(run.output.split())
    # the evidence of the pilot: its gate's values and its backup, and the command that decides
    assert "pilot/weight-50 passed at 50%: checkout/error-rate pass (max 0.001; last [0.0, 0.0002])" in said, said
    assert "backup 20261207T2200Z-e2e0" in said and "playbooks/approve.yml" in said, said
    assert world.canary_weight(wave, "app1") == 0  # nothing moved while it waits

    code, output = decide(variables, "-e", "decision=approve", "-e", "phase=wave2")
    assert code != 0, output
    assert "wave2 is not waiting for a decision: wave1 is (run %s" % approval_records(world)[0]["run_id"] in output, (
        output
    )

    code, output = decide(
        variables, "-e", "decision=approve", "-e", "phase=wave1", "-e", json.dumps({"reason": "pilot clean, CHG-42"})
    )
    assert code == 0, output
    assert run.wait() == 0, run.output
    assert world.canary_weight(wave, "app1") == 100
    assert world.canary_weight(pilot, "checkout") == 50  # the pilot's apps are not the wave's business
    # the one approval step: recorded as waiting, then updated with the decision
    (decided,) = approval_records(world)
    assert decided["outcome"] == "passed" and decided["data"]["approval"] == "approved", decided
    (approval,) = decided["approvals"]
    assert approval["decision"] == "approve" and approval["reason"] == "pilot clean, CHG-42", approval
    assert "@" in approval["by"] and approval["at"], approval  # user@host of the deciding terminal
    assert world.journal()[-1]["step_id"] == "wave1/done" and world.journal()[-1]["outcome"] == "completed"
    # decided and recorded: nothing waits any more
    code, output = decide(variables, "-e", "decision=approve")
    assert (
        code != 0 and "nothing is waiting for a decision: the journal's last record is wave1/done completed" in output
    )


def test_a_rejection_rolls_the_whole_rollout_back_and_fails_saying_who_and_why(rollout_world):
    world = rollout_world
    pilot, wave, variables = a_completed_pilot_and_a_wave(world)
    run = Playbook("wave1", variables)
    run.wait_for_line(WAITING)
    code, output = decide(
        variables, "-e", "decision=reject", "-e", json.dumps({"reason": "p99 creeping up", "awx_user_name": "alice"})
    )
    assert code == 0, output

    assert run.wait() != 0, run.output
    said = " ".join(run.output.split())
    assert "wave1 was rejected by alice at " in said and ": p99 creeping up: the rollout was rolled back" in said, said
    # everything rollback.yml sends back: the pilot's apps included
    assert world.canary_weight(pilot, "checkout") == 0 and world.canary_weight(wave, "app1") == 0
    (decided,) = approval_records(world)
    assert decided["outcome"] == "aborted" and decided["approvals"][0]["by"] == "alice", decided
    steps = [(record["step_id"], record["outcome"]) for record in world.journal()]
    assert ("wave1/done", "failed") in steps and steps[-1] == ("rollback/done", "completed"), steps
    assert not world.lease().spec.holder_identity  # nobody holds the lock after the rollback


def test_no_decision_in_time_rolls_back_and_fails_saying_so(rollout_world):
    world = rollout_world
    pilot, wave, variables = a_completed_pilot_and_a_wave(world, timeout=6)
    run = Playbook("wave1", variables)
    assert run.wait() != 0, run.output
    said = " ".join(run.output.split())
    assert "wave1 was not approved in time (no decision within 6 s): the rollout was rolled back" in said, said
    assert world.canary_weight(pilot, "checkout") == 0
    (decided,) = approval_records(world)
    assert decided["outcome"] == "aborted" and decided["approvals"][0]["decision"] == "timeout", decided
    # a decision after the wait ended is refused: nothing waits any more
    code, output = decide(variables, "-e", "decision=approve")
    assert code != 0 and "nothing is waiting for a decision" in output, output


def test_an_approval_timeout_of_0_is_refused_before_anything_waits(rollout_world):
    world = rollout_world
    _pilot, _wave, variables = a_completed_pilot_and_a_wave(world, timeout=0)
    run = Playbook("wave1", variables)
    assert run.wait() != 0, run.output
    assert "ceres_approval_timeout must be a whole number of seconds above 0 (got 0)" in " ".join(run.output.split())
    assert approval_records(world) == []


def test_a_decision_without_approve_or_reject_is_refused_naming_it(rollout_world):
    world = rollout_world
    _pilot, _wave, variables = a_completed_pilot_and_a_wave(world)
    code, output = decide(variables, "-e", "decision=yes")
    assert code != 0 and "decision must be approve or reject (got 'yes')" in output, output


def test_a_rollback_while_a_phase_waits_stops_the_wait_at_once(rollout_world):
    world = rollout_world
    pilot, wave, variables = a_completed_pilot_and_a_wave(world)
    run = Playbook("wave1", variables)
    run.wait_for_line(WAITING)
    rollback = Playbook("rollback", variables)
    assert rollback.wait() == 0, rollback.output
    assert run.wait(timeout=60) != 0, run.output
    said = " ".join(run.output.split())
    assert "rollout_approval stopped waiting" in said, said
    assert world.canary_weight(pilot, "checkout") == 0 and world.canary_weight(wave, "app1") == 0
    (waiting,) = approval_records(world)
    assert waiting["outcome"] == "started", waiting  # the waiting run lost the lock: it recorded nothing more
    assert world.journal()[-1]["step_id"] == "rollback/done", world.journal()[-1]
