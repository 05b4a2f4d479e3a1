"""The roles' reports and records: rollback_unfinished, stable_unready, part_way_apps, not_at_full_weight, rollback_record."""

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
from ansible_collections.ceres.rollout.plugins.filter.rollback_unfinished import FilterModule as RollbackStateFilters
from ansible_collections.ceres.rollout.plugins.filter.rollback_unfinished import rollback_unfinished, stable_unready


def test_filters_are_registered_under_their_names():
    assert GateRecordFilters().filters() == {"gate_record": gate_record, "rollback_record": rollback_record}
    assert PartWayFilters().filters() == {"part_way_apps": part_way_apps}
    assert NotAtFullFilters().filters() == {"not_at_full_weight": not_at_full_weight}


# --- rollback_unfinished and stable_unready (the rollback's invariant) ------------------------

STABLE, CANARY = "v2.9", "v3.0.0"


def target(app, weight, namespace="shop", **flags):
    return dict(
        {
            "namespace": namespace,
            "name": app,
            "route": None,
            "host": app,
            "canary_weight": weight,
            "stable_missing": False,
            "unnamed": False,
            "label": "%s/%s" % (namespace, app),
        },
        **flags,
    )


def deployment(app, replicas=2, available=2, namespace="shop", annotations=None, labels=None):
    return {
        "metadata": {"name": "%s-v2-9" % app, "namespace": namespace, "annotations": annotations or {}},
        "spec": {"replicas": replicas, "template": {"metadata": {"labels": labels or {"app": app, "version": STABLE}}}},
        "status": {"availableReplicas": available},
    }


def service(app, selector=None, namespace="shop", annotations=None):
    return {
        "metadata": {"name": app, "namespace": namespace, "annotations": annotations or {}},
        "spec": {"selector": selector or {"app": app}},
    }


def unfinished(targets, deployments=(), services=(), unready=None):
    return rollback_unfinished(
        targets,
        deployments=list(deployments),
        services=list(services),
        stable_version=STABLE,
        canary_version=CANARY,
        unready=unready,
    )


def test_filters_of_the_rollbacks_state_are_registered_under_their_names():
    assert RollbackStateFilters().filters() == {
        "stable_unready": stable_unready,
        "rollback_unfinished": rollback_unfinished,
    }


def test_a_world_on_the_old_version_leaves_nothing():
    assert unfinished([target("cart", 0)], [deployment("cart")], [service("cart")]) == []


def test_everything_that_keeps_an_app_from_the_old_version_is_named_in_order():
    left = unfinished(
        [
            target("cart", 25),
            target("pay", 100),
            target("web", 0, stable_missing=True),
            target("api", 0, unnamed=True),
        ],
        [
            deployment("cart", replicas=0, available=0, annotations={"rollout.ceres.io/replicas-before-cutover": "3"}),
            deployment("pay", replicas=2, available=1),
            deployment("web", replicas=0, available=0),
        ],
        [
            service(
                "cart",
                {"app": "cart", "version": CANARY},
                annotations={"rollout.ceres.io/selector-before-cutover": '{"app": "cart"}'},
            ),
            service("pay", {"app": "pay", "version": CANARY}),
            service("web"),
        ],
        unready=["shop/pay"],
    )
    assert left == [
        "shop/cart at 25% on the canary",
        "shop/pay at 100% on the canary (its old version has no available replica: the traffic was left where it is)",
        "shop/web (no stable destination beside the canary)",
        "shop/api (an unnamed route among several)",
        "replicas of shop/cart-v2-9 (scaled to 0 by a cutover, 3 before it)",
        "shop/pay-v2-9: 1 of 2 replicas available",
        "shop/web-v2-9: 0 of 0 replicas available",
        'Service selector of shop/cart (selects {"app": "cart", "version": "v3.0.0"})',
        'Service selector of shop/pay (selects {"app": "pay", "version": "v3.0.0"})',
    ]


def test_what_a_check_mode_pass_would_have_put_back_is_judged_put_back_and_nothing_else():
    """A check-mode rollback reads back the unchanged world: what its pass would have changed counts as done."""
    world = (
        [target("cart", 25), target("pay", 50), target("web", 0, stable_missing=True)],
        [deployment("cart", replicas=0, available=0, annotations={"rollout.ceres.io/replicas-before-cutover": "3"})],
        [
            service(
                "cart",
                {"app": "cart", "version": CANARY},
                annotations={"rollout.ceres.io/selector-before-cutover": '{"app": "cart"}'},
            )
        ],
    )
    left = rollback_unfinished(
        *world[:1],
        deployments=world[1],
        services=world[2],
        stable_version=STABLE,
        canary_version=CANARY,
        assume_done={"routes": ["shop/cart"], "deployments": ["shop/cart-v2-9"]},
    )
    # the Service's selector (same name as the route) was not among what the pass would put back; pay's shift
    # neither; web cannot be
    assert left == [
        "shop/pay at 50% on the canary",
        "shop/web (no stable destination beside the canary)",
        'Service selector of shop/cart (selects {"app": "cart", "version": "v3.0.0"})',
    ]
    for bad in ("shop/cart", {"pods": []}, {"routes": "shop/cart"}):
        with pytest.raises(AnsibleFilterError, match="assume_done"):
            rollback_unfinished([], stable_version=STABLE, canary_version=CANARY, assume_done=bad)


def test_an_app_whose_old_version_has_no_available_replica_is_unready():
    targets = [target("cart", 25), target("pay", 50), target("web", 10), target("elsewhere", 10)]
    deployments = [
        deployment("cart", available=0),  # scaled up, not available (a missing image, full nodes)
        deployment("pay", available=1),
        deployment("other", available=3, labels={"app": "other", "version": STABLE}),  # not web's
    ]
    services = [service("cart"), service("pay"), service("web")]  # no Service "elsewhere": not named
    assert stable_unready(targets, services=services, deployments=deployments, stable_version=STABLE) == [
        "shop/cart",
        "shop/web",
    ]


def test_the_selector_a_cutover_replaced_finds_the_old_version():
    switched = service(
        "cart",
        {"app": "cart", "version": CANARY},
        annotations={"rollout.ceres.io/selector-before-cutover": '{"app": "cart"}'},
    )
    assert (
        stable_unready(
            [target("cart", 100)], services=[switched], deployments=[deployment("cart")], stable_version=STABLE
        )
        == []
    )


def test_a_host_in_another_namespace_is_looked_up_there():
    remote = target("cart", 50, host="cart.payments.svc.cluster.local")
    services = [service("cart", namespace="payments")]
    assert (
        stable_unready(
            [remote], services=services, deployments=[deployment("cart", namespace="payments")], stable_version=STABLE
        )
        == []
    )
    assert stable_unready([remote], services=services, deployments=[deployment("cart")], stable_version=STABLE) == [
        "shop/cart"
    ]


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: rollback_unfinished("x", stable_version=STABLE, canary_version=CANARY), "_input must be a list"),
        (
            lambda: rollback_unfinished([], deployments=[1], stable_version=STABLE, canary_version=CANARY),
            "deployments must be a list of dicts",
        ),
        (lambda: rollback_unfinished([], stable_version="", canary_version=CANARY), "stable_version must be"),
        (lambda: stable_unready([], services=[], deployments=[], stable_version=None), "stable_version must be"),
        (lambda: stable_unready([], services="x", deployments=[], stable_version=STABLE), "services must be"),
    ],
)
def test_the_rollback_state_filters_refuse_bad_input(call, message):
    with pytest.raises(AnsibleFilterError, match=message):
        call()


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
