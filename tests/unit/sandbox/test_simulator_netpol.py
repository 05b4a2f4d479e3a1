# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""NetworkPolicies in the simulator (simulator.netpol): what the engine's answers do to the traffic,
and the engine process failing every way it can (fail closed).

The real engine (ceres-netpol, cyclonus) is a Go build; its verdicts on real policies are tested
against the sandbox in tests/integration/test_network_policies.py. Here a stand-in speaks its
protocol so each branch is reached.
"""

from __future__ import annotations

import json
import sys
import textwrap

import pytest
from test_simulator_world import (
    NS,
    deployment,
    destination_rule,
    no_warnings,
    parse_exposition,
    run_ticks,
    select,
    service,
    sim,
    split_route,
    world,
)

DENY_ALL = {"metadata": {"name": "default-deny", "namespace": NS}, "spec": {"podSelector": {}}}


class Engine:
    """Answers every query from ``verdict(query)``; records what it was asked."""

    def __init__(self, verdict):
        self.verdict = verdict
        self.asked = []

    def evaluate(self, policies, queries):
        self.asked.append((policies, queries))
        return [self.verdict(query) for query in queries]


def _allowed(**denied_when):
    def verdict(query):
        for key, value in denied_when.items():
            if (query["destination"].get("podLabels") or {}).get(key) == value or (
                key == "port" and query["port"] == value
            ):
                return {"allowed": False, "denying": ["%s/default-deny" % NS]}
        return {"allowed": True}

    return verdict


def _service_with_port(target_port=8080):
    with_port = service()
    with_port["spec"]["ports"] = [{"name": "http", "port": 80, "targetPort": target_port}]
    return with_port


def _snapshot(*extra, checkout_service=None):
    return world(
        ("Service", checkout_service or _service_with_port()),
        ("NetworkPolicy", DENY_ALL),
        ("Namespace", {"metadata": {"name": NS, "labels": {"team": "shop"}}}),
        *extra,
    )


def _plan(snapshot, engine):
    plan = sim.plan_virtual_service(
        {
            "metadata": {"name": "checkout", "namespace": NS},
            "spec": {"hosts": ["checkout"], "http": [split_route(50, 50)]},
        },
        snapshot,
        sim.DEFAULT_RPS,
        no_warnings,
    )
    return sim.enforce([plan], snapshot, engine)[0]


def _flags(registry):
    """(workload, code, flags) of every series the caller's proxy reports."""
    samples = select(parse_exposition(registry.render()), "istio_requests_total", reporter="source")
    return {
        (dict(labels)["destination_workload"], dict(labels)["response_code"], dict(labels)["response_flags"])
        for labels in samples
    }


def test_no_network_policy_asks_nothing_and_changes_nothing():
    engine = Engine(lambda query: pytest.fail("asked without any NetworkPolicy"))
    plan = _plan(world(), engine)
    assert all(target.healthy for target in plan.targets) and not engine.asked


def test_a_denied_request_is_a_503_uf_the_caller_reports_and_the_policy_is_named():
    engine = Engine(_allowed(version="v3.0.0"))
    plan = _plan(_snapshot(), engine)
    refused = [target for target in plan.targets if not target.healthy]
    stable = [target for target in plan.targets if target.healthy]
    assert len(refused) == 1 and refused[0].response_flags == "UF"
    assert "istio-system/istio-ingressgateway -> pilot-apps/checkout-v3-0-0:8080" in refused[0].reason
    assert "pilot-apps/default-deny" in refused[0].reason
    labels = dict(refused[0].labels)
    assert labels["destination_workload"] == "unknown" and labels["destination_service_name"] == "checkout"
    assert [target.workload for target in stable] == ["checkout-v2-9"]
    # the engine saw the namespace's labels (and the name label the API server adds) and the pod's
    policies, queries = engine.asked[0]
    assert policies == [{"metadata": {"name": "default-deny", "namespace": NS}, "spec": {"podSelector": {}}}]
    request = queries[0]
    assert request["source"]["namespace"] == "istio-system"
    assert request["source"]["podLabels"] == {"app": "istio-ingressgateway", "istio": "ingressgateway"}
    assert request["destination"]["namespaceLabels"] == {"team": "shop", "kubernetes.io/metadata.name": NS}
    assert request["destination"]["podLabels"] == {"app": "checkout", "version": "v2.9"}
    registry = run_ticks(plan, 10)
    assert _flags(registry) == {("unknown", "503", "UF"), ("checkout-v2-9", "200", "-")}


def test_a_sidecar_cut_off_from_istiod_or_dns_leaves_no_healthy_upstream():
    for port in (15012, 53):
        engine = Engine(_allowed(port=port))
        plan = _plan(_snapshot(), engine)
        assert {target.response_flags for target in plan.targets} == {"UH"}
        assert all("sidecar not ready" in target.reason for target in plan.targets)
        assert all(dict(target.labels)["destination_workload"] == "unknown" for target in plan.targets)
        registry = run_ticks(plan, 10)
        assert _flags(registry) == {("unknown", "503", "UH")}


def test_a_target_port_that_names_no_container_port_is_refused_without_asking():
    engine = Engine(lambda query: pytest.fail("asked about an unresolvable port"))
    plan = _plan(_snapshot(checkout_service=_service_with_port("missing")), engine)
    assert {target.response_flags for target in plan.targets} == {"UF"}
    assert all("targetPort names no port" in target.reason for target in plan.targets)


def test_the_port_asked_is_the_container_port_a_named_target_port_names():
    named = _service_with_port("web")
    stable = deployment("checkout-v2-9", "v2.9", available=2)
    stable["spec"]["template"]["spec"] = {
        "containers": [{"name": "app", "ports": [{"name": "web", "containerPort": 9090}]}]
    }
    snapshot = sim.ClusterSnapshot.from_objects(
        [
            ("Service", named),
            ("DestinationRule", destination_rule()),
            ("Deployment", stable),
            ("NetworkPolicy", DENY_ALL),
        ]
    )
    engine = Engine(lambda query: {"allowed": True})
    _plan(snapshot, engine)
    requests = [q for q in engine.asked[0][1] if q["source"]["namespace"] == "istio-system"]
    assert [(q["port"], q["portName"]) for q in requests] == [(9090, "web")]
    sidecar = [(q["destination"]["namespace"], q["port"], q.get("protocol")) for q in engine.asked[0][1][1:3]]
    assert sidecar == [("istio-system", 15012, "TCP"), ("kube-system", 53, "UDP")]


def test_an_engine_that_cannot_answer_refuses_everything_a_policy_exists_for():
    class Broken:
        def evaluate(self, policies, queries):
            raise sim.PolicyEngineError("the NetworkPolicy engine exited (status 2)")

    plan = _plan(_snapshot(), Broken())
    assert {target.response_flags for target in plan.targets} == {"UH"}
    assert all("engine exited" in target.reason for target in plan.targets)


# --- the engine process -------------------------------------------------------------------


def _fake_engine(tmp_path, body):
    script = tmp_path / "fake-netpol"
    script.write_text("#!%s\nimport json, sys, time\n%s" % (sys.executable, textwrap.dedent(body)))
    script.chmod(0o755)
    return str(script)


ECHO_ALLOWED = """
for line in sys.stdin:
    request = json.loads(line)
    print(json.dumps({"results": [{"allowed": True} for q in request["queries"]]}), flush=True)
"""


def test_the_engine_answers_line_by_line_and_is_reused(tmp_path):
    engine = sim.PolicyEngine(_fake_engine(tmp_path, ECHO_ALLOWED))
    try:
        assert engine.evaluate([DENY_ALL], [{"q": 1}, {"q": 2}]) == [{"allowed": True}, {"allowed": True}]
        process = engine._process
        assert engine.evaluate([DENY_ALL], [{"q": 1}]) == [{"allowed": True}]
        assert engine._process is process
    finally:
        engine.close()


@pytest.mark.parametrize(
    "body, message",
    [
        ("time.sleep(30)\n", "did not answer within"),
        ("sys.exit(3)\n", "exited"),
        ("print('not json', flush=True)\ntime.sleep(30)\n", "failed"),
        ("print(json.dumps({'results': []}), flush=True)\ntime.sleep(30)\n", "answered 0 results for 1 queries"),
        ("print(json.dumps({'error': 'queries[0].port: 0 is not a port'}), flush=True)\ntime.sleep(30)\n", "refused"),
    ],
    ids=["silent", "exits", "garbage", "short", "error"],
)
def test_an_engine_failure_is_an_error_and_the_next_call_starts_it_again(tmp_path, body, message):
    engine = sim.PolicyEngine(_fake_engine(tmp_path, body), timeout=3.0)
    try:
        with pytest.raises(sim.PolicyEngineError, match=message):
            engine.evaluate([DENY_ALL], [{"q": 1}])
        first = engine._process
        engine.binary = _fake_engine(tmp_path, ECHO_ALLOWED)
        assert engine.evaluate([DENY_ALL], [{"q": 1}]) == [{"allowed": True}]
        assert engine._process is not first
    finally:
        engine.close()


def test_no_engine_or_a_missing_binary_is_an_error(tmp_path):
    with pytest.raises(sim.PolicyEngineError, match="no NetworkPolicy engine configured"):
        sim.PolicyEngine(None).evaluate([DENY_ALL], [{"q": 1}])
    with pytest.raises(sim.PolicyEngineError, match="cannot start"):
        sim.PolicyEngine(str(tmp_path / "missing")).evaluate([DENY_ALL], [{"q": 1}])


def test_the_planner_enforces_and_logs_the_refusal(caplog):
    engine = Engine(_allowed(version="v3.0.0"))
    planner = sim.Planner(network_policies=lambda plans, snapshot: sim.enforce(plans, snapshot, engine))
    snapshot = _snapshot(
        (
            "VirtualService",
            {
                "metadata": {"name": "checkout", "namespace": NS},
                "spec": {"hosts": ["checkout"], "http": [split_route(50, 50)]},
            },
        )
    )
    with caplog.at_level("INFO", logger="simulator"):
        plans = planner.build(snapshot)
    assert [target.response_flags for target in plans[0].targets if not target.healthy] == ["UF"]
    assert "503 UF 50% (NetworkPolicy denies istio-system/istio-ingressgateway" in caplog.text
    json.dumps(engine.asked)  # what goes to the engine is plain JSON
