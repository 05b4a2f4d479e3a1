"""End-to-end: a completed pilot is "nothing to do" only while its apps are where its run left them.

Traffic moved back by hand after a completed pilot: pilot.yml starts a new, fully gated run and
says why; once the world is back where a run left it, pilot.yml again changes nothing.
"""

from __future__ import annotations

from rollout_world import Playbook

pytest_plugins = ["e2e_fixtures"]


def test_pilot_moved_back_by_hand_runs_again_gated_then_is_done(rollout_world):
    world = rollout_world
    namespace = world.namespace("pilot", ["checkout"])
    # the backup is the pilot e2e test's business; here the traffic is
    variables = world.pilot_vars(namespace, pilot_backup=False, pilot_allow_without_backup=True)
    variables["ceres_pilot"]["canary_steps"] = [25, 50]

    first = Playbook("pilot", variables)
    assert first.wait() == 0, first.output
    assert world.canary_weight(namespace, "checkout") == 50
    first_records = world.journal()
    first_run = first_records[-1]["run_id"]
    assert first_records[-1]["step_id"] == "pilot/done" and first_records[-1]["outcome"] == "completed"

    # out of band: someone (or some tool) sends every request back to v2.9
    world.set_weight(namespace, "checkout", 0)

    again = Playbook("pilot", variables)
    assert again.wait() == 0, again.output
    records = world.journal()
    new_runs = [record for record in records if record["run_id"] != first_run]
    assert new_runs, again.output
    second_run = new_runs[0]["run_id"]
    assert (
        "pilot completed by run %s, but %s/checkout is at 0%% now (the run left it at 50%%): starting run %s"
        % (
            first_run,
            namespace,
            second_run,
        )
        in again.said
    ), again.output
    assert "nothing to do" not in again.output
    # a new, fully gated run: every step again, each gate passed, the phase completed again
    steps = [(record["step_id"], record["outcome"]) for record in new_runs]
    assert [step for step, outcome in steps if outcome == "passed"] == ["pilot/weight-25", "pilot/weight-50"], steps
    assert all(record["gate"]["verdict"] == "pass" for record in new_runs if record["outcome"] == "passed"), new_runs
    assert steps[-1] == ("pilot/done", "completed"), steps
    assert world.canary_weight(namespace, "checkout") == 50
    assert records[: len(first_records)] == first_records  # the first run's records are left as they were

    # the world is where the new run left it: nothing to do, nothing changed, nothing journalled
    third = Playbook("pilot", variables)
    assert third.wait() == 0, third.output
    assert "already completed by run %s; nothing to do" % second_run in third.said, third.output
    recap = third.recap
    assert "changed=0" in recap and "failed=0" in recap, recap
    assert world.journal() == records
    assert world.canary_weight(namespace, "checkout") == 50
