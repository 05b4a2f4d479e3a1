"""End-to-end (issue 16, fencing): after rollback.yml exits 0 every app serves from the old version, whatever ran
beside it - a rollback raced against a cutover and a wave. (The lock's own cases are in test_e2e_fencing.py; the two
files run on separate workers.)"""

from __future__ import annotations

import pytest
from kubernetes import client
from rollout_world import Playbook

pytest_plugins = ["e2e_fixtures"]

GATE_10 = "TASK [ceres.rollout.canary : Gate every app at 10%]"


def assert_every_app_serves_from_the_old_version(world, apps, replicas):
    """The rollback's invariant: routes 100% stable, the old Deployments scaled up and available, the Services
    selecting them (not the new version)."""
    apps_api, core = client.AppsV1Api(world.kube), client.CoreV1Api(world.kube)
    for namespace, app in apps:
        assert world.canary_weight(namespace, app) == 0, (namespace, app)
        old = apps_api.read_namespaced_deployment("%s-v2-9" % app, namespace)
        annotations = old.metadata.annotations or {}
        assert old.spec.replicas == replicas[app] and "rollout.ceres.io/replicas-before-cutover" not in annotations
        assert (old.status.available_replicas or 0) == replicas[app], (app, old.status)
        service = core.read_namespaced_service(app, namespace)
        assert service.spec.selector == {"app": app}, service.spec.selector


def race_a_rollback(world, phase, variables, moment, apps, replicas) -> list[dict]:
    """Run ``phase``, start rollback.yml when it prints ``moment``; the invariant holds when the rollback exits 0 and
    still once the raced run has ended (failed). Returns the journal's records."""
    running = Playbook(phase, variables)
    running.wait_for_line(moment)
    rollback = Playbook("rollback", variables)
    assert rollback.wait() == 0, rollback.output
    assert_every_app_serves_from_the_old_version(world, apps, replicas)

    assert running.wait() != 0, running.output
    assert_every_app_serves_from_the_old_version(world, apps, replicas)
    return world.journal()


@pytest.mark.parametrize(
    "moment",
    ["TASK [ceres.rollout.backup : Dump and verify the database]", "TASK [ceres.rollout.cutover : Scale e2e-"],
    ids=["during-the-backup", "while-scaling-down"],
)
def test_a_rollback_during_a_cutover_has_the_last_word(rollout_world, moment):
    """Before: cutover checked "every app at 100%", then backed up, archived, scaled v2.9 to 0 and re-pointed the
    Services with no lock check in between; a rollback that took the lock during the backup sent traffic to v2.9,
    then the cutover scaled v2.9 to 0 (every app 503) and recorded completed. Now each destructive change of the
    cutover is fenced, the rollback reads the world after taking the lock and checks it again after a settle."""
    world = rollout_world
    pilot = world.namespace("pilot", ["checkout"])
    wave = world.namespace("wave", ["catalog", "cart"])
    apps = [(pilot, "checkout"), (wave, "catalog"), (wave, "cart")]
    for namespace, app in apps:
        world.set_weight(namespace, app, 100)
    apps_api = client.AppsV1Api(world.kube)
    replicas = {app: apps_api.read_namespaced_deployment("%s-v2-9" % app, ns).spec.replicas for ns, app in apps}
    variables = world.pilot_vars(pilot, cutover_require_previous=False)
    variables["ceres_waves"] = [{"name": "wave1", "namespaces": [wave], "user_share": 100}]

    records = race_a_rollback(world, "cutover", variables, moment, apps, replicas)
    assert not [r for r in records if r["step_id"] == "cutover/done" and r["outcome"] == "completed"], records
    rollback_done = [r for r in records if r["step_id"] == "rollback/done"]
    assert rollback_done and rollback_done[-1]["outcome"] == "completed", records


@pytest.mark.parametrize(
    "moment",
    ["TASK [ceres.rollout.wave : Restart the wave's workloads and wait for all of them together]", GATE_10],
    ids=["during-the-restart", "during-the-gate"],
)
def test_a_rollback_during_a_wave_has_the_last_word(rollout_world, moment):
    """The wave stops labelling, restarting and shifting once a rollback took its lock, records nothing after it,
    and every app is on the old version when the rollback exits 0."""
    world = rollout_world
    pilot = world.namespace("pilot", ["checkout"])
    wave = world.namespace("wave", ["catalog", "cart"])
    apps = [(pilot, "checkout"), (wave, "catalog"), (wave, "cart")]
    apps_api = client.AppsV1Api(world.kube)
    replicas = {app: apps_api.read_namespaced_deployment("%s-v2-9" % app, ns).spec.replicas for ns, app in apps}
    variables = world.pilot_vars(pilot, wave_require_previous=False, wave_backup=False, wave_restart_timeout=60)
    variables["ceres_waves"] = [{"name": "wave1", "namespaces": [wave], "user_share": 100}]
    world.set_weight(pilot, "checkout", 50)  # the pilot left part-way

    records = race_a_rollback(world, "wave1", variables, moment, apps, replicas)
    assert not [r for r in records if r["step_id"] == "wave1/done" and r["outcome"] == "completed"], records
    assert [r["step_id"] for r in records][-1] == "rollback/done", records
