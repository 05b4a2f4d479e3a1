"""End-to-end: a pilot killed (SIGKILL) between steps and mid-gate, started again, converges without skipping a gate."""

from __future__ import annotations

import json
import time

from rollout_world import Playbook

pytest_plugins = ["e2e_fixtures"]

LEASE_SECONDS = 45


def test_a_pilot_killed_between_steps_and_mid_gate_resumes_its_run_and_never_skips_a_gate(rollout_world):
    world = rollout_world
    namespace = world.namespace("resume", ["checkout"])
    variables = world.pilot_vars(namespace, ceres_rollout_lease_duration=LEASE_SECONDS)

    # killed between steps: the 10% gate passed, the shift to 25% is next
    first = Playbook("pilot", variables)
    first.wait_for_line("TASK [ceres.rollout.canary : Shift the canary's share of the traffic to 25%]")
    first.kill()
    killed_at = time.monotonic()
    # killed on this machine: the next run from it sees that the lock's process is gone and resumes at
    # once, without waiting for the lease to expire (the lease would still be alive for LEASE_SECONDS)
    second = Playbook("pilot", variables)
    second.wait_for_line("TASK [ceres.rollout.canary : Gate every app at 50%]")
    assert time.monotonic() - killed_at < LEASE_SECONDS, second.output
    taken_over = json.loads(world.lease().metadata.annotations["rollout.ceres.io/taken-over-from"])
    assert taken_over["how"] == "holder_gone", taken_over
    # a run beside a live one is refused, changing nothing
    refused = Playbook("pilot", variables)
    assert refused.wait() != 0 and "is held by" in refused.output, refused.output

    # killed again mid-gate at 50%
    second.kill()

    third = Playbook("pilot", variables)
    assert third.wait() == 0, third.output
    assert world.canary_weight(namespace, "checkout") == 50

    records = world.journal()
    run_ids = {record["run_id"] for record in records}
    assert len(run_ids) == 1, run_ids  # one run, resumed twice
    [run_id] = run_ids
    # (the messages as printed, folded over lines by the YAML result format)
    assert "resuming run %s (steps passed: pilot/backup, pilot/weight-10)" % run_id in " ".join(second.output.split())
    assert "resuming run %s (steps passed: pilot/backup, pilot/weight-10, pilot/weight-25)" % run_id in " ".join(
        third.output.split()
    )
    # one backup for the run: the resumed runs reused it
    assert [r["step_id"] for r in records].count("pilot/backup") == 1
    assert "before it was interrupted" in " ".join(third.output.split())
    # every gate passed once, on a complete gate: the 50% step the kill interrupted ran again from the start
    passed = {r["step_id"]: r for r in records if r["outcome"] == "passed" and r["step_id"].startswith("pilot/weight-")}
    assert sorted(passed) == ["pilot/weight-10", "pilot/weight-25", "pilot/weight-50"]
    for record in passed.values():
        assert record["gate"]["verdict"] == "pass"
        assert all(check["status"] == "pass" for check in record["gate"]["checks"].values())
    # the third run sampled one gate only (50%), from its first round; the passed steps were not judged again
    assert third.output.count("metric_gate [sandbox] round 1 (") == 1, third.output
    assert records[-1]["step_id"] == "pilot/done" and records[-1]["outcome"] == "completed"
