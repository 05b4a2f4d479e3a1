"""Every query of the rollout's Grafana dashboard (monitoring/dashboard/ceres-rollout.json, the committed file)
against the sandbox's Prometheus during a canary: each panel and the canary-step annotation returns data for the
app, and the template variables list its namespace and app.

The world is private (its own namespace, the demo world's app ``checkout``); the canary is set to 25 % directly,
as a pilot's first step would, and the traffic simulator's requests flow to both versions. The dashboard's
variables are substituted as Grafana does (``$namespace``, ``$app``; ``$__rate_interval`` as a window of at
least four scrapes of the sandbox's Prometheus). Panels whose series the sandbox cannot have are listed in
NO_DATA_IN_THE_SANDBOX with the reason, and the test checks they indeed return nothing.
"""

from __future__ import annotations

import json
import math
import re
import time
import urllib.parse
import urllib.request

from integration_support import ROOT, SANDBOX_ENV
from rollout_world import CANARY_SUBSET, STABLE_SUBSET

pytest_plugins = ["e2e_fixtures"]

PROMETHEUS_URL = SANDBOX_ENV["CERES_PROMETHEUS_URL"]
DASHBOARD = ROOT / "monitoring" / "dashboard" / "ceres-rollout.json"
APP = "checkout"
CANARY_WEIGHT = 25
VERSIONS = {"v2.9", "v3.0.0"}

# Panels (by title) whose series the sandbox cannot have, and why; each must return nothing there.
NO_DATA_IN_THE_SANDBOX = {
    "Pod restarts": (
        "kube_pod_container_status_restarts_total is kube-state-metrics'; the sandbox runs no kube-state-metrics "
        "(kwok's pods never restart either)"
    ),
}
# Panels with data only while an OpenCost Deployment is available (staging.yml's cost suite): the sandbox's
# simulator serves OpenCost's series only then. Without one they must return nothing, with one data.
ONLY_WITH_OPENCOST = {
    "Cost per request": "OpenCost's container_cpu_allocation / node_cpu_hourly_cost series exist only while staging's "
    "OpenCost runs (this test does not start one: other tests rely on the sandbox having no cost suite)",
}


def _get(path: str, parameters: dict) -> dict:
    url = PROMETHEUS_URL + path + "?" + urllib.parse.urlencode(parameters, doseq=True)
    with urllib.request.urlopen(url, timeout=10) as response:
        body = json.load(response)
    assert body.get("status") == "success", body
    return body["data"]


def query(expr: str) -> list[dict]:
    """The instant vector of ``expr``; a query Prometheus refuses fails the test."""
    data = _get("/api/v1/query", {"query": expr})
    assert data["resultType"] == "vector", data
    return data["result"]


def rate_interval() -> str:
    """A window Grafana's $__rate_interval would at least be: four scrapes (and the sandbox rules' 30 s)."""
    config = _get("/api/v1/status/config", {})["yaml"]
    match = re.search(r"^\s+scrape_interval:\s*(\d+)(ms|s|m)\s*$", config, re.MULTILINE)
    assert match, config
    seconds = int(match.group(1)) * {"ms": 0.001, "s": 1, "m": 60}[match.group(2)]
    return "%ds" % max(30, math.ceil(4 * seconds))


def substitute(expr: str, namespace: str, window: str) -> str:
    return expr.replace("$namespace", namespace).replace("$app", APP).replace("$__rate_interval", window)


def real_values(result: list[dict]) -> list[float]:
    return [float(series["value"][1]) for series in result if math.isfinite(float(series["value"][1]))]


def panel_queries(dashboard: dict) -> list[tuple[str, str, str]]:
    """(panel title, refId, PromQL) of every query of every panel."""
    return [
        (panel["title"], target["refId"], target["expr"])
        for panel in dashboard["panels"]
        for target in panel["targets"]
    ]


def shares_of(result: list[dict]) -> dict[str, float]:
    return {series["metric"]["destination_subset"]: float(series["value"][1]) for series in result}


def _wait_for_shares(expr: str, expected: dict[str, float], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while shares_of(query(expr)) != expected:
        assert time.monotonic() < deadline, "the canary weight panel never showed %s: %s" % (expected, query(expr))
        time.sleep(1)


def test_every_panel_query_returns_data_during_a_canary(rollout_world):
    present = query("count(ceres_virtualservice_route_weight)")
    assert present, (
        "the sandbox's Prometheus has no ceres_virtualservice_route_weight: its traffic simulator predates the "
        "route-weight exporter (/ceres/metrics); restart the sandbox (make sandbox-down && make sandbox)"
    )
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    queries = panel_queries(dashboard)
    titles = {panel["title"] for panel in dashboard["panels"]}
    assert set(NO_DATA_IN_THE_SANDBOX) | set(ONLY_WITH_OPENCOST) <= titles, titles
    window = rate_interval()

    world = rollout_world
    namespace = world.namespace("dash", [APP])
    weight_panel = next(expr for title, _ref, expr in queries if title == "Canary weight")
    _wait_for_shares(substitute(weight_panel, namespace, window), {STABLE_SUBSET: 100.0, CANARY_SUBSET: 0.0})
    world.set_weight(namespace, APP, CANARY_WEIGHT)  # the pilot's first step, from a canary at 0
    changed_at = time.time()

    expected = [item for item in queries if item[0] not in NO_DATA_IN_THE_SANDBOX and item[0] not in ONLY_WITH_OPENCOST]
    results: dict[tuple[str, str], list[dict]] = {}
    deadline = time.monotonic() + 90
    while True:
        results = {(title, ref): query(substitute(expr, namespace, window)) for title, ref, expr in queries}
        missing = [(title, ref) for title, ref, _expr in expected if not real_values(results[(title, ref)])]
        versions_seen = {series["metric"].get("destination_version") for series in results[("Request rate", "A")]}
        if not missing and versions_seen == VERSIONS:
            break
        assert time.monotonic() < deadline, "no data within 90 s for %s (versions seen: %s); every result: %s" % (
            missing,
            versions_seen,
            json.dumps(results, indent=1),
        )
        time.sleep(2)

    # The canary weight panel shows the step: 25 % on the canary, the rest on stable.
    shares = shares_of(results[("Canary weight", "A")])
    assert shares == {STABLE_SUBSET: 100.0 - CANARY_WEIGHT, CANARY_SUBSET: float(CANARY_WEIGHT)}, shares
    # Every per-version panel has a series for each version; a healthy canary's error rate is 0, not "no data".
    for key in (("Error rate", "A"), ("Latency p95 / p99", "A"), ("Latency p95 / p99", "B")):
        assert {series["metric"]["destination_version"] for series in results[key]} == VERSIONS, (key, results[key])
    assert real_values(results[("Error rate", "A")]) == [0.0, 0.0], results[("Error rate", "A")]
    assert real_values(results[("Error rate", "B")]) == [0.0], results[("Error rate", "B")]

    for title, reason in NO_DATA_IN_THE_SANDBOX.items():
        for (panel, ref), result in results.items():
            if panel == title:
                assert result == [], "%s %s returned data, but NO_DATA_IN_THE_SANDBOX says: %s; %s" % (
                    panel,
                    ref,
                    reason,
                    result,
                )
    opencost_before = bool(query("count(kubecost_cluster_info)"))
    cost = {
        (title, ref): query(substitute(expr, namespace, window))
        for title, ref, expr in queries
        if title in ONLY_WITH_OPENCOST
    }
    opencost_after = bool(query("count(kubecost_cluster_info)"))
    if opencost_before == opencost_after:  # (an OpenCost that started or stopped in between proves nothing)
        for key, result in cost.items():
            if opencost_before:
                assert real_values(result), "%s: OpenCost runs, but no data: %s" % (key, result)
            else:
                assert result == [], "%s returned data without OpenCost (%s): %s" % (
                    key,
                    ONLY_WITH_OPENCOST[key[0]],
                    result,
                )

    # The canary-step annotation (a range query, as Grafana runs it) marks the weight change.
    annotation = next(item for item in dashboard["annotations"]["list"] if item.get("expr"))
    steps = _get(
        "/api/v1/query_range",
        {
            "query": substitute(annotation["expr"], namespace, window),
            "start": "%.3f" % (changed_at - 5),
            "end": "%.3f" % time.time(),
            "step": "1",
        },
    )["result"]
    assert {series["metric"].get("destination_subset") for series in steps} >= {CANARY_SUBSET}, steps

    # The template variables list the world's namespace and its app (Grafana's label_values: the label values API).
    namespaces = _get(
        "/api/v1/label/destination_service_namespace/values",
        {"match[]": 'istio_requests_total{reporter="destination"}'},
    )
    assert namespace in namespaces, namespaces
    apps = _get(
        "/api/v1/label/destination_service_name/values",
        {"match[]": 'istio_requests_total{reporter="destination", destination_service_namespace="%s"}' % namespace},
    )
    assert apps == [APP], apps
