"""End-to-end: rollback.yml with only the Kubernetes API, and rollback winning over a running pilot."""

from __future__ import annotations

import base64
import datetime
import socket
import time

from kubernetes import client
from rollout_world import Playbook

pytest_plugins = ["e2e_fixtures"]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def unreachable(world, namespaces: list[str]) -> dict:
    """Vars that point Prometheus and object storage at closed ports: neither is up for this run."""
    variables = world.pilot_vars(namespaces[0])
    variables["ceres_prometheus_url"] = "http://127.0.0.1:%d" % closed_port()
    variables["ceres_backup_target"]["endpoint_url"] = "http://127.0.0.1:%d" % closed_port()
    variables["ceres_waves"] = [{"name": "wave1", "namespaces": namespaces[1:], "user_share": 30}]
    return variables


def test_rollback_in_the_middle_of_a_wave_with_prometheus_and_s3_down_sends_every_app_to_stable(rollout_world):
    world = rollout_world
    pilot = world.namespace("pilot", ["checkout"])
    wave = world.namespace("wave", ["catalog", "recommendations"])
    # the middle of a wave: apps at different weights, one not started
    world.set_weight(pilot, "checkout", 50)
    world.set_weight(wave, "catalog", 25)

    # the inventory's lease duration holds for the rollback's lock as for every phase's
    run = Playbook("rollback", unreachable(world, [pilot, wave]) | {"ceres_rollout_lease_duration": 77})
    code = run.wait()

    assert code == 0, run.output
    for namespace, app in ((pilot, "checkout"), (wave, "catalog"), (wave, "recommendations")):
        assert world.canary_weight(namespace, app) == 0, (namespace, app)
    assert world.lease().spec.lease_duration_seconds == 77
    records = world.journal()
    assert records[-1]["step_id"] == "rollback/done" and records[-1]["outcome"] == "completed", records
    assert "%s/checkout" % pilot in records[-1]["message"]

    # again: nothing left to do - no lock taken, no journal record, changed=0
    again = Playbook("rollback", unreachable(world, [pilot, wave]))
    assert again.wait() == 0, again.output
    assert "nothing changed" in " ".join(again.output.split())
    recap = [line for line in again.lines if line.startswith("sandbox ")][-1]
    assert "changed=0" in recap and "failed=0" in recap, recap
    assert world.journal() == records


def test_rollback_during_a_running_pilot_wins_and_a_second_pilot_is_refused(rollout_world):
    world = rollout_world
    namespace = world.namespace("race", ["checkout"])
    variables = world.pilot_vars(namespace)

    pilot = Playbook("pilot", variables)
    pilot.wait_for_line("TASK [ceres.rollout.canary : Gate every app at 10%]")

    # a second pilot while the first runs: refused, naming the holder
    second = Playbook("pilot", variables)
    assert second.wait() != 0, second.output
    assert "held by" in second.output or "holds" in second.output, second.output

    rollback = Playbook("rollback", variables | {"ceres_waves": []})
    assert rollback.wait() == 0, rollback.output
    assert world.canary_weight(namespace, "checkout") == 0

    # the pilot stops at its next step: it lost the lock to the rollback
    assert pilot.wait() != 0, pilot.output
    assert "rollback" in pilot.output and world.canary_weight(namespace, "checkout") == 0
    phases = [record["phase"] for record in world.journal()]
    assert "rollback" in phases


def test_a_run_that_lost_its_lock_to_another_run_leaves_that_runs_traffic_and_journal_alone(rollout_world):
    """A stalled run whose lease expired and was taken over by another forward run must not roll back the other
    run's traffic when it notices: it stops, shifting nothing and writing nothing."""
    world = rollout_world
    namespace = world.namespace("lost", ["checkout"])
    pilot = Playbook("pilot", world.pilot_vars(namespace))
    pilot.wait_for_line("TASK [ceres.rollout.canary : Gate every app at 10%]")

    # another run takes the lease over, as after this run's lease had expired, and moves the traffic
    coordination = client.CoordinationV1Api(world.kube)
    lease = world.lease()
    assert lease is not None and lease.spec.holder_identity, lease
    lease.metadata.annotations["rollout.ceres.io/run-id"] = "pilot-other-run"
    lease.spec.holder_identity = "someone@elsewhere/0001"
    lease.spec.renew_time = datetime.datetime.now(datetime.UTC)
    coordination.replace_namespaced_lease(lease.metadata.name, lease.metadata.namespace, lease)
    world.set_weight(namespace, "checkout", 25)
    records = world.journal()

    assert pilot.wait() != 0, pilot.output
    output = " ".join(pilot.output.split())
    assert "no longer holds the lock" in output and "someone@elsewhere/0001" in output, output
    assert world.canary_weight(namespace, "checkout") == 25  # the other run's traffic, untouched
    assert world.journal() == records  # nothing recorded after the loss (no rolled_back, no pilot/done)
    after = world.lease()
    assert after.spec.holder_identity == "someone@elsewhere/0001"  # and the other run's lock not released


def newest_backup_id(world) -> str:
    return max(
        key[len(world.backup_prefix) :].split("/")[1] for key in world.backup_keys() if key.endswith("manifest.json")
    )


def record_the_backup_as_a_pilot_run_does(world, backup_id: str) -> None:
    """What rollout_run's backup step writes for a phase's run: <phase>/backup, passed, with the backup's id."""
    world.record_run(
        "pilot-recorded", "pilot", [{"step_id": "pilot/backup", "outcome": "passed", "backup_id": backup_id}]
    )


def test_a_complete_rollback_restores_the_runs_backup_and_never_the_database_unless_asked(rollout_world, kube):
    world = rollout_world
    namespace = world.namespace("complete", ["checkout"])
    core = client.CoreV1Api(kube)
    core.create_namespaced_secret(
        namespace, {"metadata": {"name": "checkout-api-key"}, "type": "Opaque", "stringData": {"key": "before"}}
    )
    variables = world.pilot_vars(namespace, backup_secrets_namespaces=[namespace])

    # nothing recorded yet: a complete rollback still sends the traffic to stable, then says which backup it needs
    world.set_weight(namespace, "checkout", 50)
    unnamed = Playbook("rollback", variables, "-e", "rollback_mode=complete")
    assert unnamed.wait() != 0
    assert world.canary_weight(namespace, "checkout") == 0
    assert "no run of the rollout recorded a backup in the journal" in " ".join(unnamed.output.split())

    # the pilot's run took its backup and recorded it; later the key was rotated and another backup taken,
    # the latest in the bucket but not the run's
    backup = Playbook("backup", variables)
    assert backup.wait() == 0, backup.output
    recorded = newest_backup_id(world)
    record_the_backup_as_a_pilot_run_does(world, recorded)
    core.patch_namespaced_secret("checkout-api-key", namespace, {"stringData": {"key": "rotated"}})
    time.sleep(1.1)  # backup ids name the second they were taken
    later = Playbook("backup", variables)
    assert later.wait() == 0, later.output
    assert newest_backup_id(world) != recorded
    world.set_weight(namespace, "checkout", 50)
    core.delete_namespaced_secret("checkout-api-key", namespace)

    # the database only when asked explicitly, and then only from a named backup: refused before anything moves
    refused = Playbook("rollback", variables, "-e", "rollback_mode=complete", "-e", "rollback_restore_database=true")
    assert refused.wait() != 0 and "rollback_restore_database=true needs" in " ".join(refused.output.split())
    assert world.canary_weight(namespace, "checkout") == 50

    complete = Playbook("rollback", variables, "-e", "rollback_mode=complete")
    assert complete.wait() == 0, complete.output
    assert world.canary_weight(namespace, "checkout") == 0
    secret = core.read_namespaced_secret("checkout-api-key", namespace)
    assert base64.b64decode(secret.data["key"]) == b"before"  # the run's backup, not the rotated key of the latest
    assert "(Secrets only, no database)" in " ".join(complete.output.split())
    done = world.journal()[-1]
    assert done["step_id"] == "rollback/done" and done["outcome"] == "completed", done
    assert "Secrets from backup %s" % recorded in done["message"], done["message"]
