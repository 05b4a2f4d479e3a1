"""The rollout's alert rules in the sandbox's Prometheus: the error-rate alert fires during a faulty canary, with
the app's labels, and resolves after rollback.yml; a healthy canary beside it never fires.

The sandbox's Prometheus evaluates monitoring/'s rules rendered with the sandbox's settings (a 30 s rate
window, `for: 10s`, evaluated every 2 s), loaded through the `rule_files` of the configuration the sandbox
writes when it starts Prometheus. Each test works in namespaces of its own.
"""

from __future__ import annotations

import json
import time
import urllib.request

from integration_support import SANDBOX_ENV
from rollout_world import Playbook

pytest_plugins = ["e2e_fixtures"]

PROMETHEUS_URL = SANDBOX_ENV["CERES_PROMETHEUS_URL"]
ERROR_RATE = "CeresHighErrorRate"
SLO_ALERTS = ("CeresHighErrorRate", "CeresRequestsUnanswered", "CeresHighLatencyP95", "CeresHighLatencyP99")


def _get(path: str) -> dict:
    with urllib.request.urlopen(PROMETHEUS_URL + path, timeout=10) as response:
        body = json.load(response)
    assert body.get("status") == "success", body
    return body["data"]


def rule_groups() -> set[str]:
    return {group["name"] for group in _get("/api/v1/rules")["groups"]}


def alerts_about(namespace: str) -> list[dict]:
    """The alerts (pending or firing) whose labels name ``namespace``."""
    return [
        alert
        for alert in _get("/api/v1/alerts")["alerts"]
        if namespace in (alert["labels"].get("destination_service_namespace"), alert["labels"].get("namespace"))
    ]


class AlertWatch:
    """Polls Prometheus' alerts, remembering every alert ever seen about the healthy namespace."""

    def __init__(self, healthy_namespace: str):
        self.healthy_namespace = healthy_namespace
        self.healthy_alerts: list[dict] = []

    def until(self, namespace: str, predicate, timeout: float, what: str) -> list[dict]:
        deadline = time.monotonic() + timeout
        seen: list[dict] = []
        while time.monotonic() < deadline:
            self.healthy_alerts += [
                alert for alert in alerts_about(self.healthy_namespace) if alert["labels"]["alertname"] in SLO_ALERTS
            ]
            seen = alerts_about(namespace)
            if predicate(seen):
                return seen
            time.sleep(1)
        raise AssertionError("%s within %ss; the alerts about %s: %s" % (what, timeout, namespace, seen))


def firing_error_rate(alerts: list[dict]) -> list[dict]:
    return [alert for alert in alerts if alert["labels"]["alertname"] == ERROR_RATE and alert["state"] == "firing"]


def test_the_error_rate_alert_fires_during_a_faulty_canary_and_resolves_after_the_rollback(rollout_world):
    groups = rule_groups()
    assert "ceres-rollout-slo" in groups, (
        "the sandbox's Prometheus evaluates none of the rollout's rules (its rule groups: %s): it was started before "
        "they were part of its configuration; restart the sandbox (make sandbox-down && make sandbox)" % sorted(groups)
    )
    world = rollout_world
    faulty = world.namespace("faulty", ["checkout"], canary_annotations={"sandbox.ceres.io/error-ratio": "0.05"})
    healthy = world.namespace("healthy", ["checkout"])
    watch = AlertWatch(healthy)

    # a canary at 25% that fails 5% of its requests, and a healthy one beside it
    world.set_weight(faulty, "checkout", 25)
    world.set_weight(healthy, "checkout", 25)

    alerts = watch.until(faulty, firing_error_rate, 90, "%s did not fire for the faulty canary" % ERROR_RATE)
    (alert,) = firing_error_rate(alerts)
    assert alert["labels"] == {
        "alertname": ERROR_RATE,
        "severity": "critical",
        "destination_service_namespace": faulty,
        "destination_service_name": "checkout",
        "destination_workload": "checkout-v3-0-0",
        "destination_version": "v3.0.0",
    }
    assert 0.04 <= float(alert["value"]) <= 0.06, alert
    assert alert["annotations"]["summary"].startswith("%s/checkout v3.0.0: " % faulty), alert
    assert "ansible-playbook playbooks/rollback.yml -i inventories/local" in alert["annotations"]["runbook"]
    # only the canary: its stable version, without faults, is not among the alerts
    assert not [a for a in alerts if a["labels"].get("destination_version") == "v2.9"], alerts

    rollback = Playbook("rollback", world.pilot_vars(faulty) | {"ceres_waves": []})
    assert rollback.wait() == 0, rollback.output
    assert world.canary_weight(faulty, "checkout") == 0

    # the canary serves nothing any more: 0 failures of 0 requests is no error rate, the alert resolves
    watch.until(
        faulty,
        lambda seen: not [a for a in seen if a["labels"]["alertname"] == ERROR_RATE],
        90,
        "%s did not resolve after the rollback" % ERROR_RATE,
    )
    assert watch.healthy_alerts == [], "the healthy canary must never alert: %s" % watch.healthy_alerts
