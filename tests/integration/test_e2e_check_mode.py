"""End-to-end: every playbook passes --syntax-check, and the pilot in --check --diff shows its plan and changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from integration_support import ROOT, run_ansible
from kubernetes import client
from rollout_world import Playbook

pytest_plugins = ["e2e_fixtures"]

PLAYBOOKS = sorted(path.name for path in (ROOT / "playbooks").glob("*.yml"))


@pytest.mark.parametrize("playbook", PLAYBOOKS)
def test_every_playbook_passes_the_syntax_check(playbook):
    result = run_ansible(
        ["ansible-playbook", "--syntax-check", "-i", "inventories/local", str(Path("playbooks", playbook))]
    )
    assert "playbook: playbooks/%s" % playbook in result.stdout


def test_the_pilot_in_check_mode_prints_the_weights_and_queries_it_would_use_and_changes_nothing(rollout_world, kube):
    world = rollout_world
    namespace = world.namespace("check", ["checkout"])
    before = world.virtual_service(namespace, "checkout")

    run = Playbook("pilot", world.pilot_vars(namespace), "--check", "--diff")
    assert run.wait() == 0, run.output

    text = " ".join(run.output.split())
    for weight in (10, 25, 50):
        assert "Shift the canary's share of the traffic to %d%%" % weight in run.output
    assert '"weight": 10' in text or "weight: 10" in text, "the diff shows the planned weight"
    assert 'istio_requests_total{reporter="destination"' in run.output.replace("\\", "")
    assert 'destination_workload="checkout-v3-0-0"' in run.output.replace("\\", "")
    # nothing changed: the route, the namespace labels, the journal, the bucket
    after = world.virtual_service(namespace, "checkout")
    assert after["spec"] == before["spec"]
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert "istio-injection" not in (client.CoreV1Api(kube).read_namespace(namespace).metadata.labels or {})
    assert world.journal() == []
    assert world.lease() is None
    assert world.backup_keys() == []


def test_a_rollback_in_check_mode_mid_rollout_says_what_it_would_do_and_changes_nothing(rollout_world):
    """A dry run of the rollback while an app is part-way (what the preflight's rollback check does, and an operator
    before the real one): it succeeds, naming the app it would send back, and the app stays where it is. Before, the
    world read again at the end of the pass was the unchanged one, so the check-mode run failed with 'Rollback
    incomplete ... Left: <app> at 25% on the canary'."""
    world = rollout_world
    namespace = world.namespace("dryrun", ["checkout", "cart"])
    world.set_weight(namespace, "checkout", 25)
    run = Playbook("rollback", world.pilot_vars(namespace), "--check")
    assert run.wait() == 0, run.output
    said = " ".join(run.output.split())
    assert "back on the old version: %s/checkout" % namespace in said, said
    assert world.canary_weight(namespace, "checkout") == 25 and world.canary_weight(namespace, "cart") == 0
    assert world.journal() == []  # a check-mode run records nothing
