"""End-to-end: the canary's image changes during a soak; the pilot does not go on judging a different release."""

from __future__ import annotations

from kubernetes import client
from rollout_world import WITHOUT_BACKUP, Playbook

pytest_plugins = ["e2e_fixtures"]


def test_a_new_canary_image_during_a_soak_sends_it_back_to_0_and_names_the_drift(rollout_world, kube):
    world = rollout_world
    namespace = world.namespace("drift", ["checkout"])

    run = Playbook("pilot", world.pilot_vars(namespace, **WITHOUT_BACKUP))
    run.wait_for_line("TASK [ceres.rollout.canary : Gate every app at 10%]")
    client.AppsV1Api(kube).patch_namespaced_deployment(
        "checkout-v3-0-0",
        namespace,
        {
            "spec": {
                "template": {
                    "spec": {"containers": [{"name": "checkout", "image": "registry.ceres.local/checkout:v3.0.1"}]}
                }
            }
        },
    )
    code = run.wait()

    assert code != 0, run.output
    assert world.canary_weight(namespace, "checkout") == 0
    failure = next(line for line in run.lines if "failed at task" in line)
    assert "drift" in failure, failure
    assert "Deployment %s/checkout-v3-0-0 changed: image" % namespace in failure, failure
    assert "checkout:v3.0.0 -> registry.ceres.local/checkout:v3.0.1" in failure, failure
    records = world.journal()
    outcomes = [(record["step_id"], record["outcome"]) for record in records]
    assert ("pilot/weight-10", "rolled_back") in outcomes, outcomes
    assert not any(step.startswith("pilot/weight-25") for step, _outcome in outcomes), outcomes
    assert "drift" in next(record["message"] for record in records if record["outcome"] == "rolled_back")
