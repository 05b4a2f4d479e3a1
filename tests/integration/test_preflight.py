"""playbooks/preflight.yml against the sandbox: a green run, and one run per kind of blocker - each named with what to
fix - and several blockers listed at once.

Each test has a world of its own (a pilot namespace with one app, the demo world's shape, 2000 rps) and runs preflight
on it through the local inventory; a broken inventory is made with extra vars, as a user's typo would be.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import yaml
from integration_support import ROOT
from rollout_world import Playbook

pytest_plugins = ["e2e_fixtures"]
SECURITY_VARS = yaml.safe_load((ROOT / "roles" / "security" / "vars" / "main.yml").read_text())


@pytest.fixture()
def world(rollout_world):
    return rollout_world


@pytest.fixture()
def shop(world):
    return world.namespace("shop", ["cart"])


def preflight(variables: dict) -> tuple[int, str]:
    run = Playbook("preflight", variables)
    code = run.wait(timeout=300)
    return code, run.said


def problems_of(said: str) -> str:
    assert "preflight found" in said, said
    return said[said.index("preflight found") :]


def test_a_sound_inventory_passes_every_check(world, shop):
    code, said = preflight(world.pilot_vars(shop))
    assert code == 0, said
    for check in (
        "versions: ansible-core",
        "kubernetes: the API answers",
        "permissions: all",
        "prometheus: http",
        "gate self-test: 3 gate queries of 1 apps return real numbers",
        "database: ceres_db",
        "backup target: s3://",
        "rollback: a check-mode run of rollback.yml passes",
    ):
        assert check in said, check
    assert "preflight found" not in said


def test_a_missing_permission_is_named(world, shop):
    app_rules = [
        dict(rule, verbs=[verb for verb in rule["verbs"] if verb != "patch"])
        if rule["resources"] == ["deployments"]
        else rule
        for rule in SECURITY_VARS["security_deployer_app_rules"]
    ]
    with tempfile.TemporaryDirectory() as directory:
        kubeconfig = world.identity(
            "preflighter",
            {shop: app_rules, "ceres-system": SECURITY_VARS["security_deployer_system_rules"]},
            Path(directory),
        )
        code, said = preflight(dict(world.pilot_vars(shop), ceres_kubeconfig=str(kubeconfig)))
    assert code != 0
    found = problems_of(said)
    assert "preflight found 1 problem(s)" in found, found
    assert "missing permission: patch deployments.apps in namespace %s (denied to %s)" % (shop, kubeconfig) in found
    assert "staging.yml --tags security" in found


def test_a_metric_label_typo_is_found_by_the_gate_self_test(world, shop):
    variables = world.pilot_vars(shop)
    variables["ceres_pilot"]["apps"] = [{"name": "cart", "stable_deployment": "cart-v29"}]
    code, said = preflight(variables)
    assert code != 0
    found = problems_of(said)
    assert "preflight found 3 problem(s)" in found, found  # error rate, p95, p99 of the one app
    assert "gate self-test: cart/error-rate on the stable cart-v29 in %s has no data" % shop in found
    assert 'destination_workload="cart-v29"' in found and "ceres_release.stable_subset" in found


def test_a_silent_app_is_found_by_the_gate_self_test(world):
    quiet = world.namespace("quiet", ["idle"], rps=0)
    code, said = preflight(world.pilot_vars(quiet))
    assert code != 0
    found = problems_of(said)
    assert "gate self-test: idle/error-rate on the stable idle-v2-9 in %s has no data" % quiet in found, found
    assert "does the app serve traffic" in found


def test_a_bucket_that_cannot_be_written_is_named(world, shop):
    variables = world.pilot_vars(shop)
    variables["ceres_backup_target"]["bucket"] = "ceres-no-such-bucket"
    code, said = preflight(variables)
    assert code != 0
    found = problems_of(said)
    assert "preflight found 1 problem(s)" in found, found
    assert "backup target s3://ceres-no-such-bucket/" in found and "cannot be written" in found
    assert "fix ceres_backup_target (bucket, endpoint_url, region) or the credentials" in found


def test_prometheus_down_and_a_missing_namespace_are_listed_together(world, shop):
    variables = dict(world.pilot_vars(shop), ceres_prometheus_url="http://127.0.0.1:9")
    variables["ceres_waves"] = [{"name": "wave1", "namespaces": ["no-such-namespace"], "user_share": 30}]
    code, said = preflight(variables)
    assert code != 0
    found = problems_of(said)
    assert "preflight found 2 problem(s)" in found, found
    assert "namespace no-such-namespace (ceres_pilot.namespace or ceres_waves[].namespaces) does not exist" in found
    assert "Prometheus at http://127.0.0.1:9" in found and "is it up (ceres_prometheus_url)" in found
    # the checks that could run did, and passed
    assert "database: ceres_db" in said and "backup target: s3://" in said
