"""The rollout's filters: canary_apps, canary_gate_checks, rollout_plan, failure_summary, gate_record, rollback_targets."""

from __future__ import annotations

import math
import re

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.ceres.rollout.plugins.filter.canary_apps import canary_apps
from ansible_collections.ceres.rollout.plugins.filter.canary_gate_checks import canary_gate_checks
from ansible_collections.ceres.rollout.plugins.filter.failure_summary import failure_summary
from ansible_collections.ceres.rollout.plugins.filter.gate_record import gate_record
from ansible_collections.ceres.rollout.plugins.filter.mesh_apps import mesh_apps
from ansible_collections.ceres.rollout.plugins.filter.release_fingerprint import release_fingerprint
from ansible_collections.ceres.rollout.plugins.filter.rollback_targets import rollback_targets
from ansible_collections.ceres.rollout.plugins.filter.rollout_plan import rollout_plan
from ansible_collections.ceres.rollout.plugins.module_utils.gate.config import build_checks

SUBSETS = {"stable_subset": "v2-9", "canary_subset": "v3-0-0"}
SLO = {"max_error_rate": 0.001, "max_latency_p95_ms": 100, "max_latency_p99_ms": 200, "max_pod_restarts": 0}


# --- canary_apps ---------------------------------------------------------------------------


def test_an_app_name_resolves_to_the_conventional_objects():
    assert canary_apps(["checkout"], namespace="pilot-apps", **SUBSETS) == [
        {
            "name": "checkout",
            "namespace": "pilot-apps",
            "label": "pilot-apps/checkout",
            "virtual_service": "checkout",
            "destination_rule": "checkout",
            "route": None,
            "host": "checkout",
            "stable_subset": "v2-9",
            "canary_subset": "v3-0-0",
            "stable_deployment": "checkout-v2-9",
            "canary_deployment": "checkout-v3-0-0",
        }
    ]


def test_a_dict_overrides_the_conventions():
    [app] = canary_apps(
        [{"name": "orders", "virtual_service": "orders-vs", "route": "api", "canary_deployment": "orders-next"}],
        namespace="important-apps",
        **SUBSETS,
    )
    assert (app["virtual_service"], app["route"], app["canary_deployment"], app["stable_deployment"]) == (
        "orders-vs",
        "api",
        "orders-next",
        "orders-v2-9",
    )


@pytest.mark.parametrize(
    "apps, namespace, message",
    [
        ([], "ns", "non-empty list"),
        ("checkout", "ns", "non-empty list"),
        (["checkout", "checkout"], "ns", "listed twice"),
        ([{"name": "a", "replicas": 3}], "ns", "apps[0] has unknown key(s) ['replicas']"),
        ([{"virtual_service": "a"}], "ns", "apps[0].name must be a lowercase DNS name"),
        (["Checkout"], "ns", "apps[0].name must be a lowercase DNS name"),
        (["checkout"], "", "apps[0] (checkout) names no namespace, and no default namespace is given"),
        ([{"name": "a", "namespace": "Bad"}], "", "apps[0].namespace must be a lowercase DNS name"),
        ([3], "ns", "apps[0] must be a name or a dict"),
    ],
)
def test_bad_apps_are_refused_naming_the_entry(apps, namespace, message):
    with pytest.raises(AnsibleFilterError, match="canary_apps: .*" + re.escape(message)):
        canary_apps(apps, namespace=namespace, **SUBSETS)


def test_apps_of_a_wave_span_namespaces_and_the_same_name_may_appear_in_two():
    apps = canary_apps(
        [{"name": "api", "namespace": "a"}, {"name": "api", "namespace": "b"}, "web"], namespace="a", **SUBSETS
    )
    assert [app["label"] for app in apps] == ["a/api", "b/api", "a/web"]
    checks = canary_gate_checks(apps, slo={"max_error_rate": 0.01}, window="1m", scrape_interval="15s")
    assert [check["name"] for check in checks] == ["a/api/error-rate", "b/api/error-rate", "web/error-rate"]


def test_mesh_apps_are_the_virtual_services_routing_to_the_stable_subset():
    services = [
        virtual_service("b", [route(None, ("b", "v2-9", 100))], namespace="n2"),
        virtual_service("a", [route("primary", ("a.n1.svc.cluster.local", "v2-9", 90), ("a", "v3-0-0", 10))], "n1"),
        virtual_service("other", [route(None, ("other", "blue", 100))], namespace="n1"),
        virtual_service("c", [route("api", ("c", "v2-9", 100)), route("static", ("cdn", "edge", 100))], "n1"),
    ]
    apps = mesh_apps(services, stable_subset="v2-9")
    assert apps == [
        {"name": "a", "namespace": "n1", "virtual_service": "a", "route": None, "host": "a.n1.svc.cluster.local"},
        {"name": "c", "namespace": "n1", "virtual_service": "c", "route": "api", "host": "c"},
        {"name": "b", "namespace": "n2", "virtual_service": "b", "route": None, "host": "b"},
    ]
    assert [app["label"] for app in canary_apps(apps, **SUBSETS)] == ["n1/a", "n1/c", "n2/b"]
    twice = [virtual_service("d", [route("x", ("d", "v2-9", 100)), route("y", ("d", "v2-9", 100))])]
    with pytest.raises(AnsibleFilterError, match="ns/d routes to v2-9 on 2 http routes"):
        mesh_apps(twice, stable_subset="v2-9")


def test_the_same_subset_twice_is_refused():
    with pytest.raises(AnsibleFilterError, match="both 'v2-9'"):
        canary_apps(["a"], namespace="ns", stable_subset="v2-9", canary_subset="v2-9")


# --- canary_gate_checks --------------------------------------------------------------------


def test_every_app_gets_the_three_slo_checks_and_they_resolve_in_metric_gate():
    apps = canary_apps(["catalog", "recommendations"], namespace="non-critical", **SUBSETS)
    checks = canary_gate_checks(apps, slo=SLO, window="20s", scrape_interval="1s")
    assert [check["name"] for check in checks] == [
        "catalog/error-rate",
        "catalog/p95-ms",
        "catalog/p99-ms",
        "recommendations/error-rate",
        "recommendations/p95-ms",
        "recommendations/p99-ms",
    ]
    assert [check["max"] for check in checks[:3]] == [0.001, 100.0, 200.0]
    assert checks[3]["params"] == {
        "namespace": "non-critical",
        "workload": "recommendations-v3-0-0",
        "service": "recommendations",
        "window": "20s",
        "scrape_interval": "1s",
    }
    built = build_checks(checks)
    # the error-rate check carries the rule of three: 3 / 0.001 requests behind every sample
    assert built[0].min_requests == pytest.approx(3000)
    assert 'destination_workload="catalog-v3-0-0"' in built[0].query


def test_a_threshold_left_out_leaves_its_check_out_and_none_at_all_is_refused():
    apps = canary_apps(["a"], namespace="ns", **SUBSETS)
    checks = canary_gate_checks(apps, slo={"max_error_rate": 0.01}, window="1m", scrape_interval="15s")
    assert [check["name"] for check in checks] == ["a/error-rate"]
    with pytest.raises(AnsibleFilterError, match="slo has none of max_error_rate"):
        canary_gate_checks(apps, slo={"max_pod_restarts": 0}, window="1m", scrape_interval="15s")


@pytest.mark.parametrize("bad", [0, -1, "0.1", True, math.inf])
def test_a_threshold_that_is_not_a_positive_number_is_refused(bad):
    apps = canary_apps(["a"], namespace="ns", **SUBSETS)
    with pytest.raises(AnsibleFilterError, match="slo.max_latency_p95_ms must be a positive number"):
        canary_gate_checks(apps, slo={"max_latency_p95_ms": bad}, window="1m", scrape_interval="15s")


# --- rollout_plan --------------------------------------------------------------------------


def record(run_id, seq, step_id, outcome, at, phase="pilot", **extra):
    return {
        "run_id": run_id,
        "seq": seq,
        "step_id": step_id,
        "outcome": outcome,
        "recorded_at": at,
        "phase": phase,
        **extra,
    }


def journal(*records):
    return {"records": list(records), "runs": [{"run_id": r} for r in dict.fromkeys(x["run_id"] for x in records)]}


def plan(read, phase="pilot"):
    return rollout_plan(read, phase=phase, new_run_id="pilot-new")


def test_an_empty_journal_starts_a_new_run():
    assert plan(journal()) == {
        "run_id": "pilot-new",
        "completed": False,
        "resume": False,
        "passed_steps": [],
        "backup_id": None,
        "fingerprint": None,
        "completed_phases": [],
        "last_run": None,
    }


def test_a_killed_run_is_resumed_with_its_passed_steps_and_backup():
    read = journal(
        record("pilot-1", 1, "pilot/backup", "passed", "2026-01-01T00:00:01.000Z", backup_id="b-1"),
        record("pilot-1", 2, "pilot/pilot-apps/weight-10", "passed", "2026-01-01T00:00:02.000Z"),
        record("pilot-1", 3, "pilot/pilot-apps/weight-25", "started", "2026-01-01T00:00:03.000Z"),
    )
    result = plan(read)
    assert (result["run_id"], result["resume"], result["completed"], result["backup_id"]) == (
        "pilot-1",
        True,
        False,
        "b-1",
    )
    # the interrupted step (started, never passed) is not among the passed ones: its gate runs again
    assert result["passed_steps"] == ["pilot/backup", "pilot/pilot-apps/weight-10"]


def test_a_completed_phase_is_done_and_a_rollback_since_starts_afresh():
    done = [
        record("pilot-1", 1, "pilot/pilot-apps/weight-10", "passed", "2026-01-01T00:00:02.000Z"),
        record("pilot-1", 2, "pilot/done", "completed", "2026-01-01T00:00:03.000Z"),
    ]
    assert plan(journal(*done))["completed"] is True
    assert plan(journal(*done))["run_id"] == "pilot-1"
    rolled_back = done + [
        record("rollback-1", 1, "rollback/done", "completed", "2026-01-01T00:01:00.000Z", phase="rollback")
    ]
    assert plan(journal(*rolled_back))["completed"] is False
    assert plan(journal(*rolled_back))["run_id"] == "pilot-new"
    # another phase asking about the same journal: the pilot's completion is not a wave's
    assert plan(journal(*done), phase="wave1")["run_id"] == "pilot-new"


@pytest.mark.parametrize("outcome", ["failed", "rolled_back", "aborted"])
def test_a_run_that_ended_badly_is_not_resumed(outcome):
    read = journal(
        record("pilot-1", 1, "pilot/pilot-apps/weight-10", "passed", "2026-01-01T00:00:02.000Z"),
        record("pilot-1", 2, "pilot/pilot-apps/weight-25", outcome, "2026-01-01T00:00:03.000Z"),
    )
    assert plan(read)["run_id"] == "pilot-new" and plan(read)["resume"] is False


def test_the_run_that_wrote_last_decides_even_when_it_started_first():
    read = journal(
        record("pilot-1", 1, "pilot/pilot-apps/weight-10", "started", "2026-01-01T00:00:01.000Z"),
        record("rollback-1", 1, "rollback/done", "completed", "2026-01-01T00:00:05.000Z", phase="rollback"),
        dict(record("pilot-1", 2, "pilot/pilot-apps/weight-10", "rolled_back", "2026-01-01T00:00:02.000Z")),
    )
    assert plan(read)["run_id"] == "pilot-new"


def test_completed_phases_are_those_since_the_last_completed_rollback():
    read = journal(
        record("pilot-1", 1, "pilot/done", "completed", "2026-01-01T00:00:01.000Z"),
        record("rollback-1", 1, "rollback/done", "completed", "2026-01-01T00:00:02.000Z", phase="rollback"),
        record("pilot-2", 1, "pilot/done", "completed", "2026-01-01T00:00:03.000Z"),
        record("wave1-1", 1, "wave1/done", "completed", "2026-01-01T00:00:04.000Z", phase="wave1"),
        record("wave2-1", 1, "wave2/done", "rolled_back", "2026-01-01T00:00:05.000Z", phase="wave2"),
    )
    assert plan(read, phase="wave2")["completed_phases"] == ["pilot", "wave1"]


def test_bad_input_is_refused():
    with pytest.raises(AnsibleFilterError, match="rollout_journal state=read"):
        rollout_plan({"lock": {}}, phase="pilot", new_run_id="x")
    with pytest.raises(AnsibleFilterError, match="phase must be a non-empty string"):
        rollout_plan({"records": []}, phase="", new_run_id="x")


# --- failure_summary and gate_record -------------------------------------------------------

GATE = {
    "failed": True,
    "verdict": "fail",
    "reason": "checkout/error-rate breached",
    "elapsed": 4.2,
    "checks": [
        {
            "name": "checkout/error-rate",
            "status": "fail",
            "values": [0.0, 0.05],
            "max": 0.001,
            "min": None,
            "accepted": 1,
            "message": "0.05 above max 0.001",
        },
        {
            "name": "checkout/p95-ms",
            "status": "incomplete",
            "values": [74.0, None],
            "max": 100.0,
            "min": None,
            "accepted": 1,
            "message": "still sampling",
        },
        {
            "name": "checkout/p99-ms",
            "status": "pass",
            "values": [90.0, 91.0],
            "max": 200.0,
            "min": None,
            "accepted": 2,
            "message": "ok",
        },
    ],
}


def test_a_gate_failure_names_the_check_its_values_and_the_threshold():
    summary = failure_summary(GATE)
    assert summary.startswith("metric gate verdict fail: ")
    assert "checkout/error-rate fail: values [0, 0.05] (max 0.001); 0.05 above max 0.001" in summary
    assert "checkout/p95-ms incomplete: values [74, no data]" in summary
    assert "p99" not in summary  # a passing check is not a reason


def test_an_unhealthy_workload_and_a_plain_failure_are_summarised():
    health = {
        "failed": True,
        "healthy": False,
        "workloads": [
            {"kind": "Deployment", "namespace": "ns", "name": "a-v3-0-0", "healthy": False, "reasons": ["2 restarts"]},
            {"kind": "Deployment", "namespace": "ns", "name": "b-v3-0-0", "healthy": True, "reasons": []},
        ],
    }
    assert failure_summary(health) == "workload health: Deployment ns/a-v3-0-0: 2 restarts"
    assert failure_summary({"failed": True, "msg": "lock taken by run rollback-1"}) == "lock taken by run rollback-1"
    looped = {"results": [{"failed": False, "msg": "ok"}, {"failed": True, "msg": "VirtualService ns/a not found"}]}
    assert failure_summary(looped) == "VirtualService ns/a not found"


def test_the_gate_record_is_compact():
    long = dict(GATE, checks=[dict(GATE["checks"][0], values=[float(v) for v in range(100)] + [math.nan])])
    recorded = gate_record(long, keep=3)
    assert recorded == {
        "verdict": "fail",
        "elapsed": 4.2,
        "checks": {
            "checkout/error-rate": {
                "status": "fail",
                "accepted": 1,
                "min": None,
                "max": 0.001,
                "values": [98.0, 99.0, None],
            }
        },
    }
    with pytest.raises(AnsibleFilterError, match="keep must be a whole number"):
        gate_record(GATE, keep=0)


# --- rollback_targets ----------------------------------------------------------------------


def virtual_service(name, routes, namespace="ns"):
    return {"metadata": {"name": name, "namespace": namespace}, "spec": {"http": routes}}


def route(name, *destinations):
    entry = {"route": [{"destination": {"host": h, "subset": s}, "weight": w} for h, s, w in destinations]}
    if name:
        entry["name"] = name
    return entry


def test_every_route_with_a_canary_is_a_target_whatever_its_weight():
    services = [
        virtual_service("a", [route("primary", ("a", "v2-9", 75), ("a", "v3-0-0", 25))]),
        virtual_service("b", [route(None, ("b", "v2-9", 100), ("b", "v3-0-0", 0))]),
        virtual_service("c", [route("primary", ("c", "v2-9", 100))]),  # never had a canary
        virtual_service("d", [route("api", ("d", "v2-9", 50), ("d", "v3-0-0", 50)), route("web", ("d", "v2-9", 100))]),
    ]
    targets = rollback_targets(services, **SUBSETS)
    assert [(t["label"], t["route"], t["canary_weight"]) for t in targets] == [
        ("ns/a", "primary", 25),
        ("ns/b", None, 0),
        ("ns/d/api", "api", 50),
    ]
    assert not any(t["stable_missing"] or t["unnamed"] for t in targets)


def test_a_canary_without_a_stable_beside_it_and_an_unnamed_route_among_several_are_flagged():
    services = [
        virtual_service("a", [route("primary", ("a", "v3-0-0", 100))]),
        virtual_service("b", [route(None, ("b", "v2-9", 50), ("b", "v3-0-0", 50)), route("web", ("b", "v2-9", 100))]),
    ]
    flagged = {t["label"]: (t["stable_missing"], t["unnamed"]) for t in rollback_targets(services, **SUBSETS)}
    assert flagged == {"ns/a": (True, False), "ns/b": (False, True)}


# --- release_fingerprint -------------------------------------------------------------------


def canary_objects(image="registry/checkout:v3.0.0", restarted_at=None, hosts=("checkout",), weight=10, subsets=None):
    template = {"metadata": {"labels": {"app": "checkout"}}, "spec": {"containers": [{"name": "c", "image": image}]}}
    if restarted_at:
        template["metadata"]["annotations"] = {"kubectl.kubernetes.io/restartedAt": restarted_at}
    metadata = {"namespace": "ns", "name": "checkout"}
    return {
        "deployments": [
            {"metadata": dict(metadata, name="checkout-v3-0-0"), "spec": {"replicas": 2, "template": template}}
        ],
        "destination_rules": [
            {"metadata": metadata, "spec": {"host": "checkout", "subsets": subsets or ["v2-9", "v3-0-0"]}}
        ],
        "virtual_services": [
            {
                "metadata": metadata,
                "spec": {
                    "hosts": list(hosts),
                    "http": [route("primary", ("checkout", "v2-9", 100 - weight), ("checkout", "v3-0-0", weight))],
                },
            }
        ],
    }


def test_the_rollouts_own_shifts_and_restarts_are_not_drift():
    apps = canary_apps(["checkout"], namespace="ns", **SUBSETS)
    before = release_fingerprint(canary_objects(), apps=apps)
    assert set(before) == {"Deployment ns/checkout-v3-0-0", "DestinationRule ns/checkout", "VirtualService ns/checkout"}
    assert before["Deployment ns/checkout-v3-0-0"]["images"] == ["registry/checkout:v3.0.0"]
    later = canary_objects(weight=50, restarted_at="2026-12-02T01:00:00Z")
    assert release_fingerprint(later, apps=apps, since=before) == []
    # before the first shift the route had no canary destination at all
    unshifted = canary_objects(weight=0)
    unshifted["virtual_services"][0]["spec"]["http"][0]["route"].pop()
    assert (
        release_fingerprint(canary_objects(weight=10), apps=apps, since=release_fingerprint(unshifted, apps=apps)) == []
    )


def test_a_new_image_an_edited_route_and_a_deleted_rule_are_named():
    apps = canary_apps(["checkout"], namespace="ns", **SUBSETS)
    before = release_fingerprint(canary_objects(), apps=apps)
    pushed = release_fingerprint(canary_objects(image="registry/checkout:v3.0.1"), apps=apps, since=before)
    assert pushed == [
        "Deployment ns/checkout-v3-0-0 changed: image registry/checkout:v3.0.0 -> registry/checkout:v3.0.1"
    ]
    edited = release_fingerprint(canary_objects(hosts=("checkout", "shop")), apps=apps, since=before)
    assert edited == ["VirtualService ns/checkout changed"]
    without_rule = dict(canary_objects(), destination_rules=[])
    assert release_fingerprint(without_rule, apps=apps, since=before) == ["DestinationRule ns/checkout is gone"]
    assert release_fingerprint(canary_objects(subsets=["v2-9"]), apps=apps, since=before) == [
        "DestinationRule ns/checkout changed"
    ]
