"""End-to-end: a canary that is faulty from the start, by errors or by latency, is rolled back by the pilot."""

from __future__ import annotations

import pytest
from rollout_world import WITHOUT_BACKUP, Playbook

pytest_plugins = ["e2e_fixtures"]


@pytest.mark.parametrize(
    "annotations, failing_check, threshold",
    [
        ({"sandbox.ceres.io/error-ratio": "0.05"}, "checkout/error-rate", "max 0.001"),
        # median 150 ms: the p95 is far above its 100 ms limit; no 5xx at all
        ({"sandbox.ceres.io/latency-ms": "150"}, "checkout/p95-ms", "max 100"),
    ],
    ids=["errors", "latency-only"],
)
def test_a_faulty_canary_fails_the_first_gate_and_goes_back_to_100_percent_stable(
    rollout_world, annotations, failing_check, threshold
):
    world = rollout_world
    namespace = world.namespace("faulty", ["checkout"], canary_annotations=annotations)

    run = Playbook("pilot", world.pilot_vars(namespace, **WITHOUT_BACKUP))
    code = run.wait()

    assert code != 0, "a faulty canary must fail the play:\n" + run.output
    assert world.canary_weight(namespace, "checkout") == 0
    # the play's failure names the check, its values and the threshold
    failure = next(line for line in run.lines if "failed at task" in line)
    assert failing_check in failure and threshold in failure and "values [" in failure, failure
    assert "Rolled back to 100%% stable: %s/checkout" % namespace in run.output
    # the first gate failed: no step passed, the journal says why
    records = world.journal()
    outcomes = [(record["step_id"], record["outcome"]) for record in records]
    assert ("pilot/weight-10", "rolled_back") in outcomes, outcomes
    assert not [step for step, outcome in outcomes if outcome == "passed" and "weight" in step], outcomes
    rolled_back = next(record for record in records if record["outcome"] == "rolled_back")
    assert rolled_back["verdict"] == "fail" and failing_check in rolled_back["message"]
    assert rolled_back["gate"]["checks"][failing_check]["status"] == "fail"
    # the recap counts the failure: a rescued task did not turn the rollback into a green run
    recap = [line for line in run.lines if line.startswith("sandbox ")][-1]
    assert "failed=1" in recap, recap
