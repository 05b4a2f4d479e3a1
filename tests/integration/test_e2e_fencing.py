"""End-to-end (issue 16, fencing): a run that lost its lock stops touching the world, a freed lock never
strands a canary, and after rollback.yml exits 0 every app serves from the old version, whatever ran beside it."""

from __future__ import annotations

import pytest
from kubernetes import client
from rollout_world import JOURNAL_NAMESPACE, Playbook

pytest_plugins = ["e2e_fixtures"]

GATE_10 = "TASK [ceres.rollout.canary : Gate every app at 10%]"


def delete_lease(world) -> None:
    client.CoordinationV1Api(world.kube).delete_namespaced_lease(world.journal_name, JOURNAL_NAMESPACE)


def test_a_lease_deleted_during_the_pilot_is_taken_back_and_the_pilot_completes(rollout_world):
    """Before: the gate saw a free lock as lost, stopped without shifting back, and left checkout at 10% with no
    owner and no record. Now nobody held the lock since (the journal's fence names the pilot): it is taken back,
    with a warning, and the pilot carries on to 50% and completes."""
    world = rollout_world
    namespace = world.namespace("retake", ["checkout"])
    pilot = Playbook("pilot", world.pilot_vars(namespace))
    pilot.wait_for_line(GATE_10)
    delete_lease(world)  # an operator "clears a stuck lock"

    assert pilot.wait() == 0, pilot.output
    output = " ".join(pilot.output.split())
    assert "was free (its Lease deleted or released by hand) and nobody had held it since run" in output, output
    assert world.canary_weight(namespace, "checkout") == 50
    records = world.journal()
    assert (records[-1]["step_id"], records[-1]["outcome"]) == ("pilot/done", "completed"), records
    assert world.lease() is not None and not world.lease().spec.holder_identity  # released at the end


def test_a_run_that_finds_its_lock_gone_with_its_journal_sends_its_own_apps_back(rollout_world):
    """The Lease and the journal both deleted during a gate: nothing shows that nobody held the lock since, so the
    run has lost it - and, nobody holding it, it sends its own apps to 0% instead of leaving a canary part-way."""
    world = rollout_world
    namespace = world.namespace("gone", ["checkout", "cart"])
    pilot = Playbook("pilot", world.pilot_vars(namespace))
    pilot.wait_for_line(GATE_10)
    client.CoreV1Api(world.kube).delete_namespaced_config_map(world.journal_name + "-journal", JOURNAL_NAMESPACE)
    delete_lease(world)

    assert pilot.wait() != 0, pilot.output
    output = " ".join(pilot.output.split())
    assert "This run lost the lock and nobody holds it: it sent its own apps back" in output, output
    assert [world.canary_weight(namespace, app) for app in ("checkout", "cart")] == [0, 0]
    assert world.journal() == []  # the lost run wrote nothing
    assert world.lease() is None  # nor took a lock it could not show was its own


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

    cutover = Playbook("cutover", variables)
    cutover.wait_for_line(moment)
    rollback = Playbook("rollback", variables)
    assert rollback.wait() == 0, rollback.output
    assert_every_app_serves_from_the_old_version(world, apps, replicas)

    assert cutover.wait() != 0, cutover.output
    assert_every_app_serves_from_the_old_version(world, apps, replicas)  # still, once the cutover ended
    records = world.journal()
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

    running = Playbook("wave1", variables)
    running.wait_for_line(moment)
    rollback = Playbook("rollback", variables)
    assert rollback.wait() == 0, rollback.output
    assert_every_app_serves_from_the_old_version(world, apps, replicas)

    assert running.wait() != 0, running.output
    assert_every_app_serves_from_the_old_version(world, apps, replicas)
    records = world.journal()
    assert not [r for r in records if r["step_id"] == "wave1/done" and r["outcome"] == "completed"], records
    assert [r["step_id"] for r in records][-1] == "rollback/done", records
