"""End-to-end: a completed wave is "nothing to do" only while every app of its namespaces is where its
run left it and the release is the one it rolled out.

After wave1 completed, one app's traffic is moved back by hand and another app's canary gets a new
image: wave1.yml starts a new, fully gated run naming both; then, with the world where that run left
it, wave1.yml changes nothing.
"""

from __future__ import annotations

from kubernetes import client
from rollout_world import Playbook

pytest_plugins = ["e2e_fixtures"]
PHASE = "wave1"


def test_wave_changed_out_of_band_runs_again_gated_then_is_done(rollout_world, kube):
    world = rollout_world
    pilot = world.namespace("pilot", ["checkout"])
    wave = world.namespace("wave1", ["app1", "app2"])
    # backups are the pilot's and the backup role's tests' business; here the traffic is
    variables = world.pilot_vars(pilot, pilot_backup=False, pilot_allow_without_backup=True, wave_backup=False)
    variables["ceres_pilot"]["canary_steps"] = [50]
    variables["ceres_waves"] = [{"name": "wave1", "namespaces": [wave], "user_share": 30}]
    variables["ceres_wave_canary_steps"] = [50, 100]

    pilot_run = Playbook("pilot", variables)
    assert pilot_run.wait() == 0, pilot_run.output
    pilot_run_id = world.journal()[-1]["run_id"]
    first = Playbook("wave1", variables)
    assert first.wait() == 0, first.output
    assert [world.canary_weight(wave, app) for app in ("app1", "app2")] == [100, 100]
    first_records = world.journal()
    assert (first_records[-1]["step_id"], first_records[-1]["outcome"]) == ("wave1/done", "completed")
    first_run = first_records[-1]["run_id"]

    # out of band: app2's traffic back on v2.9, and a new image pushed to app1's canary
    world.set_weight(wave, "app2", 0)
    apps_api = client.AppsV1Api(kube)
    apps_api.patch_namespaced_deployment(
        "app1-v3-0-0",
        wave,
        {
            "spec": {
                "template": {"spec": {"containers": [{"name": "app1", "image": "registry.ceres.local/app1:v3.0.1"}]}}
            }
        },
    )

    again = Playbook("wave1", variables)
    assert again.wait() == 0, again.output
    records = world.journal()
    new_runs = [record for record in records if record["run_id"] not in {r["run_id"] for r in first_records}]
    assert new_runs, again.output
    second_run = new_runs[0]["run_id"]
    changed = again.why_it_runs_again(PHASE, first_run, second_run)
    assert "%s/app2 is at 0%% now (the run left it at 100%%)" % wave in changed, changed
    assert (
        "Deployment %s/app1-v3-0-0 changed: image registry.ceres.local/app1:v3.0.0 -> registry.ceres.local/app1:v3.0.1"
        % wave
        in changed
    ), changed
    assert "nothing to do" not in again.output
    # a new, fully gated run of the whole wave: both apps, every step, each gate passed
    steps = [(record["step_id"], record["outcome"]) for record in new_runs]
    assert [step for step, outcome in steps if outcome == "passed"] == ["wave1/weight-50", "wave1/weight-100"], steps
    for record in new_runs:
        if record["outcome"] == "passed":
            assert record["apps"] == ["%s/app1" % wave, "%s/app2" % wave], record
            assert record["gate"]["verdict"] == "pass", record
    assert steps[-1] == ("wave1/done", "completed"), steps
    assert [world.canary_weight(wave, app) for app in ("app1", "app2")] == [100, 100]

    # the world is where the new run left it: nothing to do, nothing changed, nothing journalled
    third = Playbook("wave1", variables)
    assert third.wait() == 0, third.output
    assert "already completed by run %s; nothing to do" % second_run in third.said, third.output
    recap = third.recap
    assert "changed=0" in recap and "failed=0" in recap, recap
    assert world.journal() == records
    assert [world.canary_weight(wave, app) for app in ("app1", "app2")] == [100, 100]

    # the pilot, completed before the wave and with its app where it left it, is done too: a run
    # of another phase since does not make it new (site.yml run again changes nothing)
    pilot_again = Playbook("pilot", variables)
    assert pilot_again.wait() == 0, pilot_again.output
    assert "already completed by run %s; nothing to do" % pilot_run_id in pilot_again.said, pilot_again.output
    recap = pilot_again.recap
    assert "changed=0" in recap and "failed=0" in recap, recap
    assert world.journal() == records
    assert world.canary_weight(pilot, "checkout") == 50
