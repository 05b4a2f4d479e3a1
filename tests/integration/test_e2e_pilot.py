"""End-to-end: a healthy pilot, run as a user runs it, and the same playbook run again."""

from __future__ import annotations

from kubernetes import client
from rollout_world import Playbook

pytest_plugins = ["e2e_fixtures"]


def test_a_healthy_pilot_backs_up_restarts_shifts_and_journals_then_a_second_run_changes_nothing(rollout_world, kube):
    world = rollout_world
    namespace = world.namespace("pilot", ["checkout"])

    run = Playbook("pilot", world.pilot_vars(namespace))
    code = run.wait()
    assert code == 0, run.output

    # traffic: the pilot's last step, 50%, and every gate passed on the way
    assert world.canary_weight(namespace, "checkout") == 50
    records = world.journal()
    steps = [(record["step_id"], record["outcome"]) for record in records]
    passed = [step for step, outcome in steps if outcome == "passed"]
    assert passed == [
        "pilot/backup",
        "pilot/weight-10",
        "pilot/weight-25",
        "pilot/weight-50",
    ], steps
    assert steps[-1] == ("pilot/done", "completed")
    gates = [record for record in records if record["outcome"] == "passed" and record.get("gate")]
    assert [gate["weight"] for gate in gates] == [10, 25, 50]
    for gate in gates:
        assert gate["gate"]["verdict"] == "pass"
        assert set(gate["gate"]["checks"]) == {"checkout/error-rate", "checkout/p95-ms", "checkout/p99-ms"}
        assert all(check["status"] == "pass" for check in gate["gate"]["checks"].values())
    run_id = records[-1]["run_id"]
    assert all(record["run_id"] == run_id for record in records)

    # the backup: uploaded under this world's prefix, with its manifest, and recorded by id
    backup_id = next(record["backup_id"] for record in records if record["step_id"] == "pilot/backup")
    keys = world.backup_keys()
    assert any(key.endswith("%s/manifest.json" % backup_id) for key in keys), keys
    assert any(key.endswith(".dump") for key in keys), keys

    # sidecar injection label, and both versions restarted by this run (rollout_restart's restart id)
    labels = client.CoreV1Api(kube).read_namespace(namespace).metadata.labels
    assert labels.get("istio-injection") == "enabled"
    for deployment in client.AppsV1Api(kube).list_namespaced_deployment(namespace).items:
        template_annotations = deployment.spec.template.metadata.annotations or {}
        assert template_annotations.get("rollout.ceres.io/restart-id") == run_id, deployment.metadata.name

    # the lock is free again
    lease = world.lease()
    assert lease is not None and not lease.spec.holder_identity

    # the same playbook again: nothing changes, nothing is journalled, the play says so
    again = Playbook("pilot", world.pilot_vars(namespace))
    assert again.wait() == 0, again.output
    assert "already completed by run %s" % run_id in again.output
    recap = [line for line in again.lines if line.startswith("sandbox ")][-1]
    assert "changed=0" in recap and "failed=0" in recap, recap
    assert world.journal() == records
    assert world.canary_weight(namespace, "checkout") == 50
