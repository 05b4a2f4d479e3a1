"""End-to-end (issue 17): the rollout runs as the least-privilege deployer, and the deployer's RBAC is minimal.

staging.yml (the security role) applies the deployer - a ServiceAccount of this test's own in ceres-system, bound in
this test's namespaces - and checks it with access reviews. Then the pilot, a wave, the cutover (its confirmed
clean-up too) and a complete rollback run with the deployer's token, not the admin's kubeconfig: they pass, so the
RBAC suffices. The sandbox API server's audit log (CERES_AUDIT_LOG: every request of ceres-system's
ServiceAccounts) then shows that every verb of every rule was used by them, so none can go, and that none of their
requests was refused.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from integration_support import ROOT, SANDBOX_ENV
from kubernetes import client
from kubernetes.client.rest import ApiException
from rollout_world import JOURNAL_NAMESPACE, Playbook

pytest_plugins = ["e2e_fixtures"]

SECURITY_VARS = yaml.safe_load((ROOT / "roles" / "security" / "vars" / "main.yml").read_text())


def audit_events(user: str) -> list[dict]:
    events = []
    with Path(SANDBOX_ENV["CERES_AUDIT_LOG"]).open() as log:
        for line in log:
            event = json.loads(line)
            if event.get("user", {}).get("username") == user and event.get("stage") == "ResponseComplete":
                events.append(event)
    return events


def granted(rules: list[dict]) -> set[tuple[str, str, str]]:
    return {
        (verb, group, resource)
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def used(events: list[dict], namespaces: set[str]) -> set[tuple[str, str, str]]:
    """(verb, group, resource[/subresource]) of the answered requests in ``namespaces`` (a namespace object counts in
    itself)."""
    found = set()
    for event in events:
        reference = event.get("objectRef") or {}
        namespace = reference.get("namespace") or (
            reference.get("name") if reference.get("resource") == "namespaces" else None
        )
        if namespace not in namespaces or event["responseStatus"]["code"] >= 400:
            continue
        resource = reference["resource"] + ("/" + reference["subresource"] if reference.get("subresource") else "")
        found.add((event["verb"], reference.get("apiGroup", ""), resource))
    return found


def delete_quietly(delete, *arguments) -> None:
    try:
        delete(*arguments)
    except ApiException as error:
        if error.status != 404:
            raise


def test_the_rollout_runs_as_the_deployer_and_uses_every_permission_it_has(rollout_world, kube, tmp_path):
    world = rollout_world
    pilot = world.namespace("pilot", ["checkout"])
    wave = world.namespace("wave1", ["app1"])
    core, rbac = client.CoreV1Api(kube), client.RbacAuthorizationV1Api(kube)
    # what the confirmed clean-up deletes
    core.create_namespaced_config_map(
        wave, {"metadata": {"name": "app1-settings", "labels": {"app": "app1", "version": "v2.9"}}}
    )
    core.create_namespaced_persistent_volume_claim(
        wave,
        {
            "metadata": {"name": "app1-data", "labels": {"app": "app1", "version": "v2.9"}},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
        },
    )
    deployer = "e2e-%s" % world.id
    user = "system:serviceaccount:%s:%s" % (JOURNAL_NAMESPACE, deployer)
    world.extra_cleanup += [
        lambda: delete_quietly(core.delete_namespaced_service_account, deployer, JOURNAL_NAMESPACE),
        lambda: delete_quietly(rbac.delete_namespaced_role, deployer, JOURNAL_NAMESPACE),
        lambda: delete_quietly(rbac.delete_namespaced_role_binding, deployer, JOURNAL_NAMESPACE),
        lambda: delete_quietly(rbac.delete_cluster_role, deployer + "-apps"),
    ]
    # Secrets of this test's own in ceres-system (the backup exports only them): after the backup one is deleted and
    # one changed, so the complete rollback creates one and updates the other
    label = {"ceres.io/e2e-world": world.id}
    secrets = {"%s-kept" % deployer: {"token": "b2xk"}, "%s-lost" % deployer: {"token": "bG9zdA=="}}
    for name, data in secrets.items():
        core.create_namespaced_secret(JOURNAL_NAMESPACE, {"metadata": {"name": name, "labels": label}, "data": data})
        world.extra_cleanup.append(
            lambda name=name: delete_quietly(core.delete_namespaced_secret, name, JOURNAL_NAMESPACE)
        )
    variables = world.pilot_vars(
        pilot, ceres_deployer={"name": deployer}, backup_secrets_label_selector="ceres.io/e2e-world=%s" % world.id
    )
    variables["ceres_pilot"]["canary_steps"] = [50]
    variables["ceres_waves"] = [{"name": "wave1", "namespaces": [wave], "user_share": 100}]
    variables["ceres_wave_canary_steps"] = [100]

    # staging, as the admin: the deployer and its RBAC, checked by access reviews; a second run changes nothing
    for attempt in ("first", "second"):
        staging = Playbook("staging", variables)
        assert staging.wait() == 0, staging.output
        assert ("changed=0" in staging.recap) == (attempt == "second"), staging.recap

    # the rollout, as the deployer
    as_deployer = dict(variables, ceres_kubeconfig=str(world.token_kubeconfig(JOURNAL_NAMESPACE, deployer, tmp_path)))
    for phase, extra in (
        ("pilot", ()),
        ("wave1", ()),
        ("cutover", ()),
        ("cutover", ("-e", "cutover_confirm_cleanup=true")),
    ):
        run = Playbook(phase, as_deployer, *extra)
        assert run.wait(timeout=900) == 0, run.output
    assert world.canary_weight(wave, "app1") == 100
    assert [
        item.metadata.name for item in core.list_namespaced_config_map(wave, label_selector="version=v2.9").items
    ] == []
    core.delete_namespaced_secret("%s-lost" % deployer, JOURNAL_NAMESPACE)
    core.patch_namespaced_secret("%s-kept" % deployer, JOURNAL_NAMESPACE, {"data": {"token": "bmV3"}})
    rollback = Playbook("rollback", as_deployer, "-e", "rollback_mode=complete")
    assert rollback.wait(timeout=900) == 0, rollback.output
    assert world.canary_weight(pilot, "checkout") == 0 and world.canary_weight(wave, "app1") == 0
    for name, data in secrets.items():
        assert core.read_namespaced_secret(name, JOURNAL_NAMESPACE).data == data, name
    records = [record["step_id"] for record in world.journal() if record["outcome"] == "completed"]
    assert records[-1] == "rollback/done", records

    events = audit_events(user)
    refused = sorted(
        {
            "%s %s %s" % (e["verb"], e["requestURI"], e["responseStatus"]["code"])
            for e in events
            if e["responseStatus"]["code"] == 403
        }
    )
    assert refused == [], "requests of the deployer were refused: %s" % refused
    unused_app = granted(SECURITY_VARS["security_deployer_app_rules"]) - used(events, {pilot, wave})
    unused_system = granted(SECURITY_VARS["security_deployer_system_rules"]) - used(events, {JOURNAL_NAMESPACE})
    assert not unused_app and not unused_system, (
        "rules of the deployer that no playbook used (remove them): app namespaces %s, %s %s"
        % (sorted(unused_app), JOURNAL_NAMESPACE, sorted(unused_system))
    )
