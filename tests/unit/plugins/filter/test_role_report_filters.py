"""The roles' reports and records: rollback_report, part_way_apps, not_at_full_weight, rollback_record."""

from __future__ import annotations

import jinja2
import pytest
from ansible.errors import AnsibleFilterError
from jinja2.filters import do_truncate

from ansible_collections.ceres.rollout.plugins.filter.gate_record import FilterModule as GateRecordFilters
from ansible_collections.ceres.rollout.plugins.filter.gate_record import gate_record, rollback_record
from ansible_collections.ceres.rollout.plugins.filter.not_at_full_weight import FilterModule as NotAtFullFilters
from ansible_collections.ceres.rollout.plugins.filter.not_at_full_weight import not_at_full_weight
from ansible_collections.ceres.rollout.plugins.filter.part_way_apps import FilterModule as PartWayFilters
from ansible_collections.ceres.rollout.plugins.filter.part_way_apps import part_way_apps
from ansible_collections.ceres.rollout.plugins.filter.rollback_report import FilterModule as RollbackReportFilters
from ansible_collections.ceres.rollout.plugins.filter.rollback_report import rollback_report


def test_filters_are_registered_under_their_names():
    assert GateRecordFilters().filters() == {"gate_record": gate_record, "rollback_record": rollback_record}
    assert RollbackReportFilters().filters() == {"rollback_report": rollback_report}
    assert PartWayFilters().filters() == {"part_way_apps": part_way_apps}
    assert NotAtFullFilters().filters() == {"not_at_full_weight": not_at_full_weight}


# --- rollback_report ------------------------------------------------------------------------


def _shift(label, failed=False):
    return {"item": {"label": label}, "failed": failed, "changed": not failed}


def _patched(name, failed=False):
    result = {"item": {"metadata": {"namespace": "pilot-apps", "name": name}}, "changed": True}
    if failed:
        result.update(failed=True, msg="forbidden")
    return result


HEALTHY = {"healthy": True, "msg": "every Deployment is available"}


def test_everything_done_nothing_left():
    report = rollback_report(
        [_shift("pilot-apps/checkout"), _shift("pilot-apps/cart")],
        selectors=[_patched("checkout")],
        replicas=[_patched("checkout-v2-9")],
        targets=[{"label": "pilot-apps/checkout"}, {"label": "pilot-apps/cart", "stable_missing": False}],
        stable_health=HEALTHY,
    )
    assert report == {
        "done": [
            "pilot-apps/checkout",
            "pilot-apps/cart",
            "Service selector of checkout",
            "replicas of checkout-v2-9",
        ],
        "left": [],
    }


def test_what_failed_and_what_cannot_be_shifted_is_left_in_order():
    report = rollback_report(
        [_shift("pilot-apps/checkout", failed=True), _shift("pilot-apps/cart")],
        selectors=[_patched("checkout", failed=True), _patched("cart")],
        replicas=[_patched("checkout-v2-9", failed=True)],
        targets=[
            {"label": "pilot-apps/orders", "stable_missing": True, "unnamed": False},
            {"label": "pilot-apps/search", "stable_missing": False, "unnamed": True},
            {"label": "pilot-apps/both", "stable_missing": True, "unnamed": True},
        ],
        stable_health={"healthy": False, "msg": "checkout-v2-9: 0/2 available"},
    )
    assert report["done"] == ["pilot-apps/cart", "Service selector of cart"]
    assert report["left"] == [
        "pilot-apps/checkout",
        "Service selector of checkout",
        "replicas of checkout-v2-9",
        "pilot-apps/orders (no stable destination beside the canary)",
        "pilot-apps/both (no stable destination beside the canary)",
        "pilot-apps/search (an unnamed route among several)",
        "pilot-apps/both (an unnamed route among several)",
        "the stable version is not available again: checkout-v2-9: 0/2 available",
    ]


@pytest.mark.parametrize(
    ("stable_health", "left"),
    [
        ({}, ["the stable version is not available again: unknown"]),
        (None, ["the stable version is not available again: unknown"]),
        ({"healthy": False}, ["the stable version is not available again: unknown"]),
        ({"healthy": False, "msg": None}, ["the stable version is not available again: None"]),
        ({"healthy": True}, []),
    ],
)
def test_the_stable_versions_health_is_left_unless_healthy(stable_health, left):
    assert rollback_report([], stable_health=stable_health)["left"] == left


def test_a_restore_is_done_first():
    report = rollback_report(
        [_shift("pilot-apps/checkout")], stable_health=HEALTHY, restored={"id": "20260131T093000Z-a1b2c3"}
    )
    assert report["done"] == ["Secrets from backup 20260131T093000Z-a1b2c3", "pilot-apps/checkout"]
    report = rollback_report(
        [], stable_health=HEALTHY, restored={"id": "20260131T093000Z-a1b2c3"}, restored_database=True
    )
    assert report["done"] == ["Secrets and database from backup 20260131T093000Z-a1b2c3"]


@pytest.mark.parametrize(
    ("backup_id", "named"), [("", "latest"), ("20260131T093000Z-a1b2c3", "20260131T093000Z-a1b2c3")]
)
def test_a_failed_restore_is_left_and_not_done(backup_id, named):
    report = rollback_report(
        [],
        stable_health=HEALTHY,
        restored={"id": "20260131T093000Z-a1b2c3"},
        restore_failure="no complete backup",
        backup_id=backup_id,
    )
    assert report == {"done": [], "left": ["restore from backup %s: no complete backup" % named]}


def test_nothing_to_report():
    assert rollback_report([], selectors=[], replicas=[], targets=[], stable_health=HEALTHY) == {"done": [], "left": []}


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"shifts": None}, "shifts must be a list of dicts"),
        ({"shifts": ["pilot-apps/checkout"]}, "shifts must be a list of dicts"),
        ({"shifts": [{"failed": False}]}, "every result of shifts needs its loop item"),
        ({"shifts": [{"item": {"name": "checkout"}}]}, "a result's item has no label"),
        ({"shifts": [], "selectors": [{"item": {"name": "checkout"}}]}, "a result's item has no metadata.name"),
        ({"shifts": [], "replicas": {"results": []}}, "replicas must be a list of dicts"),
        ({"shifts": [], "targets": "pilot-apps/checkout"}, "targets must be a list of dicts"),
        ({"shifts": [], "stable_health": [True]}, "stable_health must be a task result"),
        ({"shifts": [], "restored": "20260131T093000Z-a1b2c3"}, "restored must be the restore's result with its id"),
        (
            {"shifts": [], "restored": {"location": "s3://backups/"}},
            "restored must be the restore's result with its id",
        ),
    ],
)
def test_rollback_report_refuses_bad_input(arguments, message):
    shifts = arguments.pop("shifts")
    with pytest.raises(AnsibleFilterError, match=message):
        rollback_report(shifts, **arguments)


# --- part_way_apps ---------------------------------------------------------------------------


def _app(namespace, virtual_service):
    return {"name": virtual_service, "namespace": namespace, "virtual_service": virtual_service, "route": None}


def _route(namespace, name, weight, route=None):
    label = "%s/%s" % (namespace, name) + ("/" + route if route else "")
    return {"namespace": namespace, "name": name, "route": route, "canary_weight": weight, "label": label}


def test_only_the_apps_part_of_the_way_in_their_order():
    apps = [_app("pilot-apps", "cart"), _app("pilot-apps", "checkout"), _app("pilot-apps", "orders"), _app("b", "x")]
    routes = [
        _route("pilot-apps", "checkout", 50),
        _route("pilot-apps", "cart", 75),
        _route("pilot-apps", "orders", 100),
        _route("a", "x", 50),  # another namespace's VirtualService of the same name
    ]
    assert part_way_apps(apps, routes) == [apps[0], apps[1]]


def test_an_app_at_zero_is_part_of_the_way_and_one_without_a_canary_route_is_not():
    apps = [_app("pilot-apps", "checkout"), _app("pilot-apps", "cart")]
    assert part_way_apps(apps, [_route("pilot-apps", "checkout", 0)]) == [apps[0]]


def test_one_route_of_several_part_of_the_way_picks_the_app():
    apps = [_app("pilot-apps", "orders")]
    routes = [_route("pilot-apps", "orders", 100, route="api"), _route("pilot-apps", "orders", 50, route="web")]
    assert part_way_apps(apps, routes) == apps


def test_no_routes_no_apps():
    assert part_way_apps([_app("pilot-apps", "checkout")], []) == []
    assert part_way_apps([], [_route("pilot-apps", "checkout", 50)]) == []


@pytest.mark.parametrize(
    ("apps", "routes", "message"),
    [
        (None, [], "apps must be a list of dicts"),
        (["checkout"], [], "apps must be a list of dicts"),
        ([], None, "routes must be a list of dicts"),
        ([], "pilot-apps/checkout", "routes must be a list of dicts"),
    ],
)
def test_part_way_apps_refuses_bad_input(apps, routes, message):
    with pytest.raises(AnsibleFilterError, match=message):
        part_way_apps(apps, routes)


# --- not_at_full_weight ----------------------------------------------------------------------


def test_every_app_at_full_weight_leaves_nothing():
    routes = [_route("pilot-apps", "checkout", 100), _route("wave-1", "cart", 100)]
    apps = [{"label": "pilot-apps/checkout"}, {"label": "wave-1/cart"}]
    assert not_at_full_weight(routes, apps) == []


def test_the_routes_short_of_full_weight_then_the_apps_without_a_canary_route():
    routes = [_route("pilot-apps", "checkout", 50), _route("wave-1", "cart", 100), _route("wave-1", "orders", 0)]
    apps = [
        {"label": "wave-1/search"},
        {"label": "pilot-apps/checkout"},
        {"label": "wave-1/cart"},
        {"label": "wave-1/payments"},
        {"label": "wave-1/search"},
    ]
    assert not_at_full_weight(routes, apps) == [
        "pilot-apps/checkout at 50",
        "wave-1/orders at 0",
        "wave-1/search without a canary route",
        "wave-1/payments without a canary route",
    ]


def test_no_apps_names_only_the_routes():
    assert not_at_full_weight([_route("pilot-apps", "checkout", 75)], []) == ["pilot-apps/checkout at 75"]


@pytest.mark.parametrize(
    ("routes", "apps", "message"),
    [
        (None, [], "routes must be a list of dicts"),
        ([], None, "apps must be a list of dicts"),
        ([], ["pilot-apps/checkout"], "apps must be a list of dicts"),
    ],
)
def test_not_at_full_weight_refuses_bad_input(routes, apps, message):
    with pytest.raises(AnsibleFilterError, match=message):
        not_at_full_weight(routes, apps)


# --- rollback_record -------------------------------------------------------------------------

GATE_FAILURE = {
    "failed": True,
    "msg": "gate failed: error_rate 0.02 > 0.001",
    "verdict": "fail",
    "elapsed": 31.5,
    "checks": [
        {"name": "error_rate", "status": "breach", "accepted": 2, "values": [0.0, 0.02], "times": [100.0, 130.0]},
        {"name": "latency_p95", "status": "ok", "accepted": 3, "values": [50, 60, 55], "times": [101.0, 131.0, 161.0]},
        {"name": "latency_p99", "status": "no_data", "accepted": 0, "values": [], "times": []},
    ],
}
STEP = {"step_id": "pilot/weight-25", "apps": ["pilot-apps/checkout"], "weight": 25, "message": "  step failed  "}


def test_a_failure_without_a_gate_records_the_step():
    assert rollback_record({"failed": True, "msg": "no such VirtualService"}, not_rolled_back=[], **STEP) == {
        "step_id": "pilot/weight-25",
        "outcome": "rolled_back",
        "apps": ["pilot-apps/checkout"],
        "weight": 25,
        "message": "step failed",
    }


def test_an_app_not_rolled_back_makes_the_outcome_failed():
    record = rollback_record({"failed": True}, not_rolled_back=["pilot-apps/checkout"], **STEP)
    assert record["outcome"] == "failed"


def test_a_gates_failure_records_its_verdict_gate_and_times():
    record = rollback_record(GATE_FAILURE, not_rolled_back=[], rolled_back_at=170.25, **STEP)
    assert list(record) == ["step_id", "outcome", "apps", "weight", "message", "verdict", "gate", "data"]
    assert record["verdict"] == "fail"
    assert record["gate"] == gate_record(GATE_FAILURE)
    assert record["data"] == {"failing_sample_at": 161.0, "rolled_back_by": 170.25}


def test_a_gate_without_sample_times_failed_at_zero():
    result = dict(GATE_FAILURE, checks=[{"name": "error_rate", "values": []}, {"name": "latency_p95", "times": None}])
    assert rollback_record(result, **STEP)["data"]["failing_sample_at"] == 0


def test_a_result_with_checks_but_no_verdict_is_not_a_gates():
    result = {key: value for key, value in GATE_FAILURE.items() if key != "verdict"}
    assert "gate" not in rollback_record(result, **STEP)


def test_the_defaults_of_a_setup_failure():
    assert rollback_record({"failed": True}, step_id="pilot/setup") == {
        "step_id": "pilot/setup",
        "outcome": "rolled_back",
        "apps": [],
        "weight": 0,
        "message": "",
    }


@pytest.mark.parametrize(
    "message",
    [
        "x" * 4005,
        "x" * 4006,
        ("word " * 1000) + "tail",
        ("word " * 900) + "y" * 600,
        " spaced " * 700,
        "short",
        "",
    ],
)
def test_the_message_is_trimmed_and_cut_like_jinjas_truncate(message):
    record = rollback_record({}, step_id="pilot/setup", message=message)
    assert record["message"] == do_truncate(jinja2.Environment(), message.strip(), 4000)
    assert len(record["message"]) <= 4005


@pytest.mark.parametrize(
    ("result", "arguments", "message"),
    [
        (None, {"step_id": "pilot/setup"}, "expected the failed task's result"),
        ("failed", {"step_id": "pilot/setup"}, "expected the failed task's result"),
        ({}, {"step_id": ""}, "step_id must name the step"),
        ({}, {}, "step_id must name the step"),
        ({}, {"step_id": "pilot/setup", "weight": "25"}, "weight must be a whole number"),
        ({}, {"step_id": "pilot/setup", "weight": True}, "weight must be a whole number"),
        ({}, {"step_id": "pilot/setup", "message": None}, "message must be a string"),
        ({}, {"step_id": "pilot/setup", "not_rolled_back": "pilot-apps/checkout"}, "not_rolled_back must list"),
        ({"checks": None, "verdict": "fail"}, {"step_id": "pilot/setup"}, "expected a metric_gate result with checks"),
    ],
)
def test_rollback_record_refuses_bad_input(result, arguments, message):
    with pytest.raises(AnsibleFilterError, match=message):
        rollback_record(result, **arguments)
