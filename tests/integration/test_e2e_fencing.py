"""End-to-end (issue 16, fencing): a run that lost its lock stops touching the world, and a freed lock never strands a
canary. (The rollback's last word against a cutover and a wave: test_e2e_last_word.py.)"""

from __future__ import annotations

from kubernetes import client
from rollout_world import JOURNAL_NAMESPACE, WITHOUT_BACKUP, Playbook

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
    pilot = Playbook("pilot", world.pilot_vars(namespace, **WITHOUT_BACKUP))
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
    pilot = Playbook("pilot", world.pilot_vars(namespace, **WITHOUT_BACKUP))
    pilot.wait_for_line(GATE_10)
    client.CoreV1Api(world.kube).delete_namespaced_config_map(world.journal_name + "-journal", JOURNAL_NAMESPACE)
    delete_lease(world)

    assert pilot.wait() != 0, pilot.output
    output = " ".join(pilot.output.split())
    assert "This run lost the lock and nobody holds it: it sent its own apps back" in output, output
    assert [world.canary_weight(namespace, app) for app in ("checkout", "cart")] == [0, 0]
    assert world.journal() == []  # the lost run wrote nothing
    assert world.lease() is None  # nor took a lock it could not show was its own
