"""End-to-end: site.yml - pilot, waves 1-3, cutover - then the guarded clean-up and a rollback after the cutover."""

from __future__ import annotations

import io
import tarfile

import yaml
from kubernetes import client
from rollout_world import Playbook

pytest_plugins = ["e2e_fixtures"]


def test_waves_then_cutover_leave_every_app_on_the_new_version_and_clean_up_only_when_confirmed(rollout_world, kube):
    world = rollout_world
    pilot = world.namespace("pilot", ["checkout"])
    waves = [world.namespace("wave%d" % number, ["app%d" % number]) for number in (1, 2, 3)]
    core, apps_api = client.CoreV1Api(kube), client.AppsV1Api(kube)
    # old configuration the clean-up may delete, only when confirmed
    core.create_namespaced_config_map(
        waves[0],
        {"metadata": {"name": "app1-settings", "labels": {"app": "app1", "version": "v2.9"}}, "data": {"a": "1"}},
    )
    # and a claim of the old version: its manifest is archived before a confirmed clean-up deletes it
    core.create_namespaced_persistent_volume_claim(
        waves[0],
        {
            "metadata": {"name": "app1-data", "labels": {"app": "app1", "version": "v2.9"}},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
        },
    )
    # backups are the pilot's and the backup role's tests' business; here only the cutover takes one (it must)
    variables = world.pilot_vars(pilot, pilot_backup=False, pilot_allow_without_backup=True, wave_backup=False)
    variables["ceres_pilot"]["canary_steps"] = [50]
    variables["ceres_waves"] = [
        {"name": "wave%d" % number, "namespaces": [namespace], "user_share": share}
        for number, namespace, share in zip((1, 2, 3), waves, (30, 40, 30))
    ]
    variables["ceres_wave_canary_steps"] = [50, 100]

    all_apps = [(pilot, "checkout")] + [(namespace, "app%d" % number) for number, namespace in zip((1, 2, 3), waves)]
    replicas = {app: apps_api.read_namespaced_deployment("%s-v2-9" % app, ns).spec.replicas for ns, app in all_apps}
    assert all(count > 0 for count in replicas.values()), replicas

    site = Playbook("site", variables)
    assert site.wait(timeout=1500) == 0, site.output

    records = world.journal()
    done = [record["step_id"] for record in records if record["outcome"] == "completed"]
    assert done == ["pilot/done", "wave1/done", "wave2/done", "wave3/done", "cutover/done"], done
    for number, namespace in zip((1, 2, 3), waves):
        assert core.read_namespace(namespace).metadata.labels.get("migration-wave") == str(number)
    for namespace, app in all_apps:
        routes = world.virtual_service(namespace, app)["spec"]["http"][0]["route"]
        assert {r["destination"]["subset"]: r.get("weight", 0) for r in routes}.get("v3-0-0") == 100, routes
        old = apps_api.read_namespaced_deployment("%s-v2-9" % app, namespace)
        assert old.spec.replicas == 0 and old.metadata.annotations["rollout.ceres.io/replicas-before-cutover"] == str(
            replicas[app]
        )
        service = core.read_namespaced_service(app, namespace)
        assert service.spec.selector == {"app": app, "version": "v3.0.0"}
    archive = next(record for record in records if record["step_id"] == "cutover/archive")
    keys = world.backup_keys()
    assert archive["data"]["archive"] in keys and archive["data"]["archive"] + ".sha256" in keys, (archive, keys)
    with tarfile.open(fileobj=io.BytesIO(world.backup_object(archive["data"]["archive"])), mode="r:gz") as packed:
        members = {member.name: member for member in packed.getmembers()}
        claims = yaml.safe_load(
            packed.extractfile(members["old-configuration/%s/PersistentVolumeClaim.yaml" % waves[0]])
        )
        config_maps = yaml.safe_load(packed.extractfile(members["old-configuration/%s/ConfigMap.yaml" % waves[0]]))
        readme = packed.extractfile(members["old-configuration/README.txt"]).read().decode()
    assert [claim["metadata"]["name"] for claim in claims] == ["app1-data"], claims
    assert [item["metadata"]["name"] for item in config_maps] == ["app1-settings"], config_maps
    assert "The data on the PersistentVolumes is NOT in this archive" in " ".join(readme.split()), readme
    # no clean-up without the confirm variable
    assert core.read_namespaced_config_map("app1-settings", waves[0]).data == {"a": "1"}
    assert core.read_namespaced_persistent_volume_claim("app1-data", waves[0]).metadata.deletion_timestamp is None

    cleanup = Playbook("cutover", dict(variables, cutover_confirm_cleanup=True))
    assert cleanup.wait() == 0, cleanup.output
    names = [item.metadata.name for item in core.list_namespaced_config_map(waves[0]).items]
    assert "app1-settings" not in names, names
    claims_left = [
        item.metadata.name
        for item in core.list_namespaced_persistent_volume_claim(waves[0]).items
        if item.metadata.deletion_timestamp is None  # one held by its protection finalizer is being deleted
    ]
    assert claims_left == [], claims_left

    # and a rollback after the cutover: the old version back up, the Services as they were, traffic on it
    rollback = Playbook("rollback", variables)
    assert rollback.wait() == 0, rollback.output
    for namespace, app in all_apps:
        assert world.canary_weight(namespace, app) == 0
        old = apps_api.read_namespaced_deployment("%s-v2-9" % app, namespace)
        assert old.spec.replicas == replicas[app] and "rollout.ceres.io/replicas-before-cutover" not in (
            old.metadata.annotations or {}
        )
        assert core.read_namespaced_service(app, namespace).spec.selector == {"app": app}
