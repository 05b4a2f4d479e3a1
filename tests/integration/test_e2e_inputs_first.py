"""End-to-end (issue 16): the roles check their inputs (steps, apps, waves) before the backup, the label and the
restart - a typo fails the run before anything is taken, labelled, restarted or locked."""

from __future__ import annotations

import pytest
from kubernetes import client
from rollout_world import Playbook

pytest_plugins = ["e2e_fixtures"]


def nothing_happened(world, namespace, output, journal=()):
    assert world.backup_keys() == [], "a backup was taken: %s" % output
    lease = world.lease()
    assert lease is None or not lease.spec.holder_identity, "the lock was taken"
    assert world.journal() == list(journal)
    labels = client.CoreV1Api(world.kube).read_namespace(namespace).metadata.labels or {}
    assert "istio-injection" not in labels and "migration-wave" not in labels, labels
    template = client.AppsV1Api(world.kube).read_namespaced_deployment("checkout-v3-0-0", namespace).spec.template
    assert "kubectl.kubernetes.io/restartedAt" not in (template.metadata.annotations or {})


def pilot_steps(variables):
    variables["ceres_pilot"]["canary_steps"] = [10, 250]


@pytest.mark.parametrize(
    "phase, make_bad, message",
    [
        ("pilot", pilot_steps, "canary_steps"),
        ("wave1", lambda variables: variables.update(ceres_wave_canary_steps=[10, 250]), "canary_steps"),
        ("cutover", lambda variables: variables.update(cutover_promote_steps=[75, 150]), "cutover"),
    ],
    ids=["pilot", "wave", "cutover"],
)
def test_a_bad_input_fails_before_anything_changes(rollout_world, phase, make_bad, message):
    """Before: the pilot and the wave took a backup, labelled and restarted their namespace, and only then found
    a step of 250%; the cutover had no settings check at all."""
    world = rollout_world
    namespace = world.namespace("inputs", ["checkout"])
    variables = world.pilot_vars(namespace, wave_require_previous=False, cutover_require_previous=False)
    variables["ceres_waves"] = [{"name": "wave1", "namespaces": [namespace], "user_share": 100}]
    make_bad(variables)
    if phase == "cutover":
        world.set_weight(namespace, "checkout", 100)

    run = Playbook(phase, variables)
    assert run.wait() != 0, run.output
    output = " ".join(run.output.split())
    assert message in output, output
    nothing_happened(world, namespace, output)


def record_a_run_of_another_inventory_host(world, cluster: str) -> None:
    """A completed pilot recorded by inventory host ``cluster`` (another host pointing at the same cluster)."""
    record = {"step_id": "pilot/done", "outcome": "completed", "cluster": cluster}
    world.record_run("pilot-other", "pilot", [record], holder="b@ci")


def test_two_inventory_hosts_on_one_cluster_are_refused_naming_both(rollout_world):
    """Before: a record's cluster was written and never read - host sandbox would take host staging-b's completed
    pilot for its own ("already completed; nothing to do") although staging-b's run was on other apps."""
    world = rollout_world
    namespace = world.namespace("clusters", ["checkout"])
    record_a_run_of_another_inventory_host(world, "staging-b")
    journal = world.journal()

    run = Playbook("pilot", world.pilot_vars(namespace))
    assert run.wait() != 0, run.output
    output = " ".join(run.output.split())
    assert "holds runs of inventory host staging-b, and this run is host sandbox: two inventory hosts point" in output
    nothing_happened(world, namespace, output, journal)
