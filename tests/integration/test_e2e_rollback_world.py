"""End-to-end (issue 16): rollback needs only the Kubernetes API, really - the traffic moves before the journal is
read, and never onto an old version that cannot serve it."""

from __future__ import annotations

from kubernetes import client
from rollout_world import JOURNAL_NAMESPACE, Playbook

pytest_plugins = ["e2e_fixtures"]


def test_a_corrupt_journal_does_not_keep_the_traffic_from_moving(rollout_world):
    """Before: the rollback read the journal first (to plan its run) and failed on a corrupt line with the
    canary still at 25%. Now the traffic goes back first; the journal problem is reported and fails the play."""
    world = rollout_world
    namespace = world.namespace("corrupt", ["checkout"])
    world.set_weight(namespace, "checkout", 25)
    core = client.CoreV1Api(world.kube)
    core.create_namespaced_config_map(
        JOURNAL_NAMESPACE,
        {"metadata": {"name": world.journal_name + "-journal"}, "data": {"run.pilot-1": '{"step_id": "pilot/weig\n'}},
    )

    rollback = Playbook("rollback", world.pilot_vars(namespace))
    assert rollback.wait() != 0, rollback.output
    assert world.canary_weight(namespace, "checkout") == 0
    output = " ".join(rollback.output.split())
    assert "Rollback incomplete" in output and "the journal could not be read" in output, output
    assert "journal key run.pilot-1, line 1 is not JSON" in output, output


def test_traffic_is_not_sent_to_an_old_version_with_no_available_replica(rollout_world):
    """Before: every canary route went to 100% stable whatever the stable could serve - an app whose v2.9 was
    gone answered 503 for all its traffic. Now that app keeps its traffic where it is and is named under left;
    the others go back, and the play fails."""
    world = rollout_world
    namespace = world.namespace("unready", ["checkout", "cart"])
    world.set_weight(namespace, "checkout", 25)
    world.set_weight(namespace, "cart", 50)
    client.AppsV1Api(world.kube).delete_namespaced_deployment("cart-v2-9", namespace)  # a clean-up gone too far

    rollback = Playbook("rollback", world.pilot_vars(namespace))
    assert rollback.wait() != 0, rollback.output
    assert world.canary_weight(namespace, "checkout") == 0
    assert world.canary_weight(namespace, "cart") == 50
    output = " ".join(rollback.output.split())
    assert (
        "%s/cart at 50%% on the canary (its old version has no available replica: the traffic was left where it is)"
        % namespace
    ) in output, output
    records = world.journal()
    assert records[-1]["step_id"] == "rollback/done" and records[-1]["outcome"] == "failed", records


def test_a_full_journal_does_not_keep_the_traffic_from_moving_and_is_reported(rollout_world):
    """A journal at its size limit cannot take the rollback's record: the traffic goes back all the same, the lock
    is released, and the play fails saying the rollback could not be recorded (before: the record's failure was
    ignored and the rollback exited 0 with nothing journalled)."""
    world = rollout_world
    namespace = world.namespace("full", ["checkout"])
    world.set_weight(namespace, "checkout", 25)
    core = client.CoreV1Api(world.kube)
    filler = '{"step_id":"old","phase":"pilot","outcome":"passed","seq":1,"message":"%s"}\n' % ("x" * 999_800)
    core.create_namespaced_config_map(
        JOURNAL_NAMESPACE, {"metadata": {"name": world.journal_name + "-journal"}, "data": {"run.old": filler}}
    )

    rollback = Playbook("rollback", world.pilot_vars(namespace))
    assert rollback.wait() != 0, rollback.output
    assert world.canary_weight(namespace, "checkout") == 0
    output = " ".join(rollback.output.split())
    assert "the rollback could not be recorded in the journal" in output and "more than its limit" in output, output
    assert not world.lease().spec.holder_identity  # released all the same


# What a rollback does in an app namespace: read and patch the routes, the Deployments and the Services, read the pods.
APP_NAMESPACE_RULES = [
    {
        "apiGroups": ["networking.istio.io"],
        "resources": ["virtualservices", "destinationrules"],
        "verbs": ["get", "list", "patch", "update"],
    },
    {"apiGroups": ["apps"], "resources": ["deployments", "replicasets"], "verbs": ["get", "list", "patch"]},
    {"apiGroups": ["apps"], "resources": ["deployments/scale"], "verbs": ["get", "patch", "update"]},
    {"apiGroups": [""], "resources": ["services", "pods"], "verbs": ["get", "list", "patch"]},
]


def test_no_permission_on_the_journal_namespace_does_not_keep_the_traffic_from_moving(rollout_world, tmp_path):
    """An on-call engineer whose identity may change the apps but not ceres-system (the journal and the lock):
    the traffic still goes back to the old version; the lock and the journal problems are reported and fail the
    play (the rollback already moved the traffic first; this test holds it to that with a real identity and RBAC)."""
    world = rollout_world
    namespace = world.namespace("noperm", ["checkout"])
    world.set_weight(namespace, "checkout", 25)
    kubeconfig = world.identity("on-call", {namespace: APP_NAMESPACE_RULES}, tmp_path)

    rollback = Playbook("rollback", world.pilot_vars(namespace, ceres_kubeconfig=str(kubeconfig)))
    assert rollback.wait() != 0, rollback.output
    assert world.canary_weight(namespace, "checkout") == 0, rollback.output
    output = " ".join(rollback.output.split())
    assert "Rollback incomplete" in output, output
    assert "forbidden" in output.lower() and JOURNAL_NAMESPACE in output, output
    assert world.journal() == []  # nothing could be written there, and nothing was
