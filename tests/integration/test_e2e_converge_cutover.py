"""End-to-end: a completed cutover is "nothing to do" only while the old version is still at 0 replicas,
every Service still selects the new version and every app is still at 100%.

After the cutover completed, v2.9 is scaled back up by hand and the Service selects every version
again: cutover.yml runs the cutover again (checks, backup, archive, switch) and says why; then, with
the world where that run left it, cutover.yml changes nothing.
"""

from __future__ import annotations

from kubernetes import client
from rollout_world import Playbook

pytest_plugins = ["e2e_fixtures"]
PHASE = "cutover"


def test_cutover_undone_by_hand_runs_again_then_is_done(rollout_world, kube):
    world = rollout_world
    pilot = world.namespace("pilot", ["checkout"])
    core, apps_api = client.CoreV1Api(kube), client.AppsV1Api(kube)
    variables = world.pilot_vars(pilot, pilot_backup=False, pilot_allow_without_backup=True)
    variables["ceres_pilot"]["canary_steps"] = [50]
    variables["cutover_promote_steps"] = [100]

    pilot_run = Playbook("pilot", variables)
    assert pilot_run.wait() == 0, pilot_run.output
    pilot_run_id = world.journal()[-1]["run_id"]
    first = Playbook("cutover", variables)
    assert first.wait() == 0, first.output
    first_records = world.journal()
    assert (first_records[-1]["step_id"], first_records[-1]["outcome"]) == ("cutover/done", "completed")
    first_run = first_records[-1]["run_id"]
    assert apps_api.read_namespaced_deployment("checkout-v2-9", pilot).spec.replicas == 0
    assert core.read_namespaced_service("checkout", pilot).spec.selector == {"app": "checkout", "version": "v3.0.0"}

    # out of band: v2.9 scaled back up and the Service pointed at v2.9 again, by hand (before, the switch skipped
    # a Service with any version in its selector, so it stayed on v2.9 at 0 replicas and every run reopened)
    apps_api.patch_namespaced_deployment_scale("checkout-v2-9", pilot, {"spec": {"replicas": 1}})
    core.patch_namespaced_service("checkout", pilot, {"spec": {"selector": {"version": "v2.9"}}})
    assert core.read_namespaced_service("checkout", pilot).spec.selector == {"app": "checkout", "version": "v2.9"}

    again = Playbook("cutover", variables)
    assert again.wait() == 0, again.output
    records = world.journal()
    new_runs = [record for record in records if record["run_id"] not in {r["run_id"] for r in first_records}]
    assert new_runs, again.output
    second_run = new_runs[0]["run_id"]
    changed = again.why_it_runs_again(PHASE, first_run, second_run)
    assert "Deployment %s/checkout-v2-9 is at 1 replica now (the run left it at 0)" % pilot in changed, changed
    assert (
        "Service %s/checkout selects app=checkout,version=v2.9 now (the run left it on version=v3.0.0)" % pilot
        in changed
    ), changed
    assert "nothing to do" not in again.output
    # the cutover ran again: its backup, its archive, the switch, completed
    steps = [(record["step_id"], record["outcome"]) for record in new_runs]
    assert ("cutover/backup", "passed") in steps and steps[-1] == ("cutover/done", "completed"), steps
    assert ("cutover/archive", "passed") in steps, steps
    assert apps_api.read_namespaced_deployment("checkout-v2-9", pilot).spec.replicas == 0
    assert core.read_namespaced_service("checkout", pilot).spec.selector == {"app": "checkout", "version": "v3.0.0"}
    assert world.canary_weight(pilot, "checkout") == 100

    # the world is where the new run left it: nothing to do, nothing changed, nothing journalled
    third = Playbook("cutover", variables)
    assert third.wait() == 0, third.output
    assert "already completed by run %s; nothing to do" % second_run in third.said, third.output
    recap = third.recap
    assert "changed=0" in recap and "failed=0" in recap, recap
    assert world.journal() == records
    assert apps_api.read_namespaced_deployment("checkout-v2-9", pilot).spec.replicas == 0

    # and the pilot after the cutover: its app is where the rollout left it (the cutover took it from
    # 50% to 100%), so nothing to do - never a new pilot shifting traffic back onto a v2.9 at 0 replicas
    pilot_again = Playbook("pilot", variables)
    assert pilot_again.wait() == 0, pilot_again.output
    assert "already completed by run %s; nothing to do" % pilot_run_id in pilot_again.said, pilot_again.output
    recap = pilot_again.recap
    assert "changed=0" in recap and "failed=0" in recap, recap
    assert world.journal() == records
    assert world.canary_weight(pilot, "checkout") == 100
