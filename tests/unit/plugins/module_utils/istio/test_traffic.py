from __future__ import annotations

import copy
import datetime
import json

import pytest
from k8s_stub import VS_PATH, FakeKubeApi, entry

from ansible_collections.ceres.rollout.plugins.module_utils.common.retry import Deadline
from ansible_collections.ceres.rollout.plugins.module_utils.istio import traffic as istio
from ansible_collections.ceres.rollout.plugins.module_utils.istio.errors import (
    AmbiguousDestination,
    AmbiguousRoute,
    DestinationNotFound,
    InvalidRequest,
    RouteNotFound,
    TooManyConflicts,
    UnmanagedTraffic,
    VirtualServiceNotFound,
    WeightsNotApplied,
)
from ansible_collections.ceres.rollout.plugins.module_utils.istio.routes import (
    Destination,
    hosts_equivalent,
    select_http_route,
)
from ansible_collections.ceres.rollout.plugins.module_utils.istio.traffic import (
    ANNOTATION_PREVIOUS_WEIGHT,
    ANNOTATION_ROUTE,
    ANNOTATION_UPDATED_AT,
    ANNOTATION_WEIGHT,
    TrafficShiftRequest,
    check_weights,
    diff_objects,
    plan_shift,
    shift_traffic,
    traffic_shares,
    validate_request,
)
from ansible_collections.ceres.rollout.plugins.module_utils.k8s.errors import (
    Conflict,
    NotFound,
)

NOW = datetime.datetime(2025, 1, 31, 9, 30, 0, tzinfo=datetime.UTC)
STABLE = Destination("checkout", "v2-9")
CANARY = Destination("checkout", "v3-0-0")


def virtual_service(*routes, namespace="pilot-apps", annotations=None):
    metadata = {
        "name": "checkout",
        "namespace": namespace,
        "resourceVersion": "41",
        "generation": 3,
        "uid": "6c1e",
        "managedFields": [{"manager": "kubectl"}],
    }
    if annotations is not None:
        metadata["annotations"] = annotations
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": metadata,
        "spec": {"hosts": ["checkout"], "gateways": ["mesh"], "http": list(routes)},
    }


def route(name, *destinations, **fields):
    result = {}
    if name:
        result["name"] = name
    result.update(fields)
    result["route"] = list(destinations)
    return result


def destinations_of(resource, index=0):
    return resource["spec"]["http"][index]["route"]


# --------------------------------------------------------------------------- hosts and selectors


@pytest.mark.parametrize(
    "first, second, namespace, expected",
    [
        ("checkout", "checkout", "pilot-apps", True),
        ("Checkout.pilot-apps.svc.cluster.local.", "checkout.pilot-apps.svc.cluster.local", "pilot-apps", True),
        ("checkout", "checkout.pilot-apps.svc.cluster.local", "pilot-apps", True),
        ("checkout.pilot-apps.svc.corp.internal", "checkout", "pilot-apps", True),
        ("checkout", "checkout.other.svc.cluster.local", "pilot-apps", False),
        ("checkout", "checkout.pilot-apps", "pilot-apps", False),
        ("checkout", "checkout-canary.pilot-apps.svc.cluster.local", "pilot-apps", False),
        ("checkout", "checkout.pilot-apps.svc.", "pilot-apps", False),
        ("checkout", "*.pilot-apps.svc.cluster.local", "pilot-apps", False),
        ("checkout", "checkout.pilot-apps.svc.cluster.local", None, False),
        ("a.example.com", "a.example.org", "pilot-apps", False),
    ],
)
def test_hosts_equivalent(first, second, namespace, expected):
    for one, other in ((first, second), (second, first)):
        assert hosts_equivalent(one, other, namespace) is expected


def test_destination_from_option_validates_and_names_the_field():
    assert Destination.from_option("stable", {"host": "a", "subset": None, "port": "8080"}).port == 8080
    with pytest.raises(InvalidRequest, match="^stable: host is required$"):
        Destination.from_option("stable", {"host": ""})
    with pytest.raises(InvalidRequest, match="^canary: port must be between 1 and 65535, got 0$"):
        Destination.from_option("canary", {"host": "a", "port": 0})


# --------------------------------------------------------------------------- route selection


def test_route_may_be_omitted_with_exactly_one_http_route():
    assert select_http_route(virtual_service(route(None, entry("checkout", "v2-9"))), None) == 0


def test_route_omitted_with_several_routes_is_an_error_listing_them():
    resource = virtual_service(
        route("header-match", entry("checkout", "v3-0-0")), route(None, entry("checkout", "v2-9"))
    )
    with pytest.raises(AmbiguousRoute) as raised:
        select_http_route(resource, None)
    assert str(raised.value) == (
        "route: VirtualService pilot-apps/checkout has 2 http routes ('header-match', "
        "#2 (unnamed)); set route to the name of the one to shift"
    )


def test_unknown_route_is_an_error_listing_the_routes():
    resource = virtual_service(route("primary", entry("checkout", "v2-9")))
    with pytest.raises(
        RouteNotFound,
        match=r"^route: no http route named 'main' in VirtualService "
        r"pilot-apps/checkout \(routes: 'primary'\)$",
    ):
        select_http_route(resource, "main")


def test_no_http_routes_is_an_error():
    resource = virtual_service()
    with pytest.raises(RouteNotFound, match="has no http routes"):
        select_http_route(resource, None)


def test_duplicate_route_names_are_ambiguous():
    resource = virtual_service(route("primary", entry("a")), route("primary", entry("b")))
    with pytest.raises(AmbiguousRoute, match="2 http routes are named 'primary'"):
        select_http_route(resource, "primary")


# --------------------------------------------------------------------------- weights per route shape


def test_single_destination_without_weight_gets_the_canary_added():
    resource = virtual_service(route("primary", entry("checkout", "v2-9")))
    plan = plan_shift(resource, "primary", STABLE, CANARY, 10, NOW)
    assert plan.changed
    assert plan.previous_weight == 0
    assert destinations_of(plan.desired) == [entry("checkout", "v2-9", 90), entry("checkout", "v3-0-0", 10)]


def test_stable_and_canary_present_are_reweighted_in_place():
    resource = virtual_service(route("primary", entry("checkout", "v3-0-0", 10), entry("checkout", "v2-9", 90)))
    plan = plan_shift(resource, "primary", STABLE, CANARY, 25, NOW)
    assert plan.previous_weight == 10
    assert destinations_of(plan.desired) == [entry("checkout", "v3-0-0", 25), entry("checkout", "v2-9", 75)]


def test_missing_canary_is_added_right_after_stable_with_the_stable_host_spelling():
    fqdn = "checkout.pilot-apps.svc.cluster.local"
    resource = virtual_service(route("primary", entry(fqdn, "v2-9", 100), entry("legacy", weight=0)))
    plan = plan_shift(resource, "primary", STABLE, CANARY, 50, NOW)
    assert destinations_of(plan.desired) == [
        entry(fqdn, "v2-9", 50),
        entry(fqdn, "v3-0-0", 50),
        entry("legacy", weight=0),
    ]


def test_canary_on_another_host_keeps_its_own_host():
    resource = virtual_service(route("primary", entry("checkout-v2", port=8080)))
    plan = plan_shift(
        resource, "primary", Destination("checkout-v2", port=8080), Destination("checkout-v3", port=9090), 20, NOW
    )
    assert destinations_of(plan.desired) == [
        entry("checkout-v2", weight=80, port=8080),
        entry("checkout-v3", weight=20, port=9090),
    ]


def test_ports_tell_destinations_of_one_host_apart():
    resource = virtual_service(
        route("primary", entry("checkout", port=8080, weight=70), entry("checkout", port=9090, weight=30))
    )
    plan = plan_shift(
        resource, "primary", Destination("checkout", port=8080), Destination("checkout", port=9090), 60, NOW
    )
    assert plan.previous_weight == 30
    assert destinations_of(plan.desired) == [
        entry("checkout", port=8080, weight=40),
        entry("checkout", port=9090, weight=60),
    ]


def test_subsets_with_ports_match_on_both():
    resource = virtual_service(route("primary", entry("checkout", "v2-9", port=80, weight=100)))
    with pytest.raises(DestinationNotFound):
        plan_shift(resource, "primary", Destination("checkout", "v2-9", 8080), CANARY, 10, NOW)
    plan = plan_shift(
        resource, "primary", Destination("checkout", "v2-9", 80), Destination("checkout", "v3-0-0", 80), 10, NOW
    )
    assert destinations_of(plan.desired)[1] == entry("checkout", "v3-0-0", 10, port=80)


def test_only_the_named_route_of_three_changes():
    header_match = route(
        "header-match", entry("checkout", "v3-0-0"), match=[{"headers": {"x-canary": {"exact": "true"}}}], timeout="5s"
    )
    primary = route("primary", entry("checkout", "v2-9", 100), retries={"attempts": 3, "perTryTimeout": "2s"})
    fallback = route("fallback", entry("checkout", "v2-9"), fault={"abort": {"httpStatus": 503}})
    resource = virtual_service(header_match, primary, fallback)
    original = copy.deepcopy(resource)
    plan = plan_shift(resource, "primary", STABLE, CANARY, 25, NOW)
    assert resource == original  # the input is never modified
    http = plan.desired["spec"]["http"]
    assert json.dumps(http[0], sort_keys=False) == json.dumps(header_match, sort_keys=False)
    assert json.dumps(http[2], sort_keys=False) == json.dumps(fallback, sort_keys=False)
    assert http[1]["retries"] == {"attempts": 3, "perTryTimeout": "2s"}
    assert list(http[1]) == ["name", "retries", "route"]
    assert http[1]["route"] == [entry("checkout", "v2-9", 75), entry("checkout", "v3-0-0", 25)]
    assert plan.desired["spec"]["hosts"] == ["checkout"] and plan.desired["spec"]["gateways"] == ["mesh"]
    assert plan.desired["metadata"]["resourceVersion"] == "41"  # written back for optimistic locking


def test_weight_100_keeps_the_stable_destination_at_zero():
    resource = virtual_service(route("primary", entry("checkout", "v2-9", 50), entry("checkout", "v3-0-0", 50)))
    plan = plan_shift(resource, "primary", STABLE, CANARY, 100, NOW)
    assert destinations_of(plan.desired) == [entry("checkout", "v2-9", 0), entry("checkout", "v3-0-0", 100)]


def test_weight_0_with_the_canary_present_sends_everything_to_stable():
    resource = virtual_service(route("primary", entry("checkout", "v2-9", 50), entry("checkout", "v3-0-0", 50)))
    plan = plan_shift(resource, "primary", STABLE, CANARY, 0, NOW)
    assert plan.previous_weight == 50
    assert destinations_of(plan.desired) == [entry("checkout", "v2-9", 100), entry("checkout", "v3-0-0", 0)]


def test_weight_0_with_the_canary_absent_changes_nothing():
    resource = virtual_service(route("primary", entry("checkout", "v2-9")))
    plan = plan_shift(resource, "primary", STABLE, CANARY, 0, NOW)
    assert not plan.changed
    assert plan.desired == resource


def test_weight_0_with_canary_absent_sets_stable_to_100_beside_idle_destinations():
    resource = virtual_service(route("primary", entry("checkout", "v2-9"), entry("legacy", weight=0)))
    plan = plan_shift(resource, "primary", STABLE, CANARY, 0, NOW)
    assert plan.changed
    assert destinations_of(plan.desired) == [entry("checkout", "v2-9", 100), entry("legacy", weight=0)]


def test_unset_canary_weight_counts_as_zero():
    resource = virtual_service(route("primary", entry("checkout", "v2-9", 100), entry("checkout", "v3-0-0")))
    assert not plan_shift(resource, "primary", STABLE, CANARY, 0, NOW).changed


@pytest.mark.parametrize("weight", [0, 1, 10, 25, 50, 99, 100])
def test_a_second_identical_shift_is_a_no_op(weight):
    resource = virtual_service(route("primary", entry("checkout", "v2-9")), annotations={"team": "payments"})
    first = plan_shift(resource, "primary", STABLE, CANARY, weight, NOW)
    second = plan_shift(first.desired, "primary", STABLE, CANARY, weight, NOW + datetime.timedelta(hours=1))
    assert not second.changed
    assert second.desired == first.desired
    assert second.previous_weight == weight


# --------------------------------------------------------------------------- destination errors


def test_absent_stable_destination_is_an_error_listing_the_destinations():
    resource = virtual_service(route("primary", entry("checkout", "v2-8", 100)))
    with pytest.raises(DestinationNotFound) as raised:
        plan_shift(resource, "primary", STABLE, CANARY, 10, NOW)
    assert str(raised.value) == (
        "stable: destination host checkout subset v2-9 is not in http route 'primary' of "
        "VirtualService pilot-apps/checkout (destinations: checkout/v2-8 (weight 100))"
    )


def test_route_without_destinations_is_an_error():
    resource = virtual_service({"name": "primary", "redirect": {"uri": "/elsewhere"}})
    with pytest.raises(DestinationNotFound, match="has no destinations"):
        plan_shift(resource, "primary", STABLE, CANARY, 10, NOW)


def test_stable_without_subset_matching_two_subsets_is_ambiguous():
    resource = virtual_service(route("primary", entry("checkout", "v2-9", 90), entry("checkout", "v3-0-0", 10)))
    with pytest.raises(AmbiguousDestination, match="^stable: host checkout matches 2 destinations"):
        plan_shift(resource, "primary", Destination("checkout"), CANARY, 10, NOW)


def test_canary_selector_that_also_matches_stable_is_an_error():
    resource = virtual_service(route("primary", entry("checkout", "v2-9", 100)))
    with pytest.raises(AmbiguousDestination, match="^canary: host checkout also matches the stable destination"):
        plan_shift(resource, "primary", STABLE, Destination("checkout"), 10, NOW)


def test_other_destination_with_traffic_is_refused():
    resource = virtual_service(route("primary", entry("checkout", "v2-9", 80), entry("checkout", "v1", 20)))
    with pytest.raises(UnmanagedTraffic) as raised:
        plan_shift(resource, "primary", STABLE, CANARY, 10, NOW)
    assert str(raised.value) == (
        "route: http route 'primary' also sends traffic to checkout/v1 (weight 20), which "
        "is neither stable nor canary; set its weight to 0 or remove it first"
    )


def test_exact_host_is_preferred_over_an_equivalent_one():
    fqdn = "checkout.pilot-apps.svc.cluster.local"
    resource = virtual_service(route("primary", entry(fqdn, weight=0), entry("checkout", weight=100)))
    plan = plan_shift(resource, "primary", Destination("checkout"), Destination("checkout-v3"), 30, NOW)
    assert destinations_of(plan.desired) == [
        entry(fqdn, weight=0),
        entry("checkout", weight=70),
        entry("checkout-v3", weight=30),
    ]


def test_short_stable_host_finds_the_fqdn_destination():
    fqdn = "checkout.pilot-apps.svc.cluster.local"
    resource = virtual_service(route("primary", entry(fqdn, "v2-9")))
    plan = plan_shift(resource, "primary", STABLE, CANARY, 5, NOW)
    assert destinations_of(plan.desired) == [entry(fqdn, "v2-9", 95), entry(fqdn, "v3-0-0", 5)]


def test_short_host_does_not_match_a_service_of_another_namespace():
    resource = virtual_service(route("primary", entry("checkout.billing.svc.cluster.local", "v2-9")))
    with pytest.raises(DestinationNotFound):
        plan_shift(resource, "primary", STABLE, CANARY, 5, NOW)


# --------------------------------------------------------------------------- journal annotations and diff


def test_annotations_record_the_shift_and_keep_existing_ones():
    resource = virtual_service(
        route("primary", entry("checkout", "v2-9", 90), entry("checkout", "v3-0-0", 10)),
        annotations={"team": "payments"},
    )
    annotations = plan_shift(resource, "primary", STABLE, CANARY, 25, NOW).desired["metadata"]["annotations"]
    assert annotations == {
        "team": "payments",
        ANNOTATION_PREVIOUS_WEIGHT: "10",
        ANNOTATION_WEIGHT: "25",
        ANNOTATION_UPDATED_AT: "2025-01-31T09:30:00Z",
        ANNOTATION_ROUTE: "primary",
    }


def test_unnamed_route_writes_no_route_annotation():
    resource = virtual_service(route(None, entry("checkout", "v2-9")), annotations={ANNOTATION_ROUTE: "stale"})
    annotations = plan_shift(resource, None, STABLE, CANARY, 25, NOW).desired["metadata"]["annotations"]
    assert ANNOTATION_ROUTE not in annotations
    assert annotations[ANNOTATION_WEIGHT] == "25"


def test_no_op_writes_no_annotation():
    resource = virtual_service(route("primary", entry("checkout", "v2-9", 75), entry("checkout", "v3-0-0", 25)))
    plan = plan_shift(resource, "primary", STABLE, CANARY, 25, NOW)
    assert not plan.changed
    assert "annotations" not in plan.desired["metadata"]


def test_timestamps_are_utc():
    eastern = datetime.timezone(datetime.timedelta(hours=-5))
    moment = datetime.datetime(2025, 1, 31, 4, 30, tzinfo=eastern)
    assert istio.utc_timestamp(moment, timespec="seconds") == "2025-01-31T09:30:00Z"


def test_diff_ignores_server_noise():
    before = virtual_service(route("primary", entry("checkout", "v2-9")))
    after = copy.deepcopy(before)
    after["metadata"].update(resourceVersion="42", generation=4, managedFields=[{"manager": "ceres"}])
    diff = diff_objects(before, after)
    assert diff["before"] == diff["after"]
    assert "resourceVersion" not in diff["before"]["metadata"]
    assert diff["before"]["metadata"]["uid"] == "6c1e"


# --------------------------------------------------------------------------- shares and checks


@pytest.mark.parametrize(
    "destinations, expected",
    [
        ([entry("a")], [100]),
        ([entry("a", weight=30)], [100]),
        ([entry("a", weight=90), entry("b", weight=10)], [90, 10]),
        ([entry("a", weight=1), entry("b", weight=1)], [50, 50]),
        ([entry("a", weight=100), entry("b")], [100, 0]),
        ([entry("a"), entry("b")], [0, 0]),
    ],
)
def test_traffic_shares(destinations, expected):
    assert traffic_shares(destinations) == expected


def test_check_weights():
    resource = virtual_service(route("primary", entry("checkout", "v2-9", 75), entry("checkout", "v3-0-0", 25)))
    check_weights(resource, "primary", STABLE, CANARY, 25)
    with pytest.raises(
        WeightsNotApplied,
        match="^weight: VirtualService pilot-apps/checkout reads back with "
        "canary 25% and stable 75%, not the 30%/70% written",
    ):
        check_weights(resource, "primary", STABLE, CANARY, 30)
    with pytest.raises(WeightsNotApplied, match="^route: after the write, no http route named 'other'"):
        check_weights(resource, "other", STABLE, CANARY, 25)


# --------------------------------------------------------------------------- request validation


def shift_request(**overrides):
    values = {
        "namespace": "pilot-apps",
        "name": "checkout",
        "route": "primary",
        "stable": STABLE,
        "canary": CANARY,
        "weight": 10,
    }
    values.update(overrides)
    return TrafficShiftRequest(**values)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"weight": 101}, "weight: must be between 0 and 100, got 101"),
        ({"weight": -1}, "weight: must be between 0 and 100, got -1"),
        ({"weight": True}, "weight: must be an integer between 0 and 100, got True"),
        (
            {"canary": Destination("checkout", "v2-9")},
            "canary: is the same destination as stable (host checkout subset v2-9); they must differ by host, subset or port",
        ),
        (
            {"canary": Destination("checkout.pilot-apps.svc.cluster.local", "v2-9")},
            "canary: is the same destination as stable (host checkout subset v2-9); they must differ by host, subset or port",
        ),
        ({"route": ""}, "route: must not be empty; omit it to select the only http route"),
        ({"max_conflict_retries": -1}, "max_conflict_retries: must not be negative, got -1"),
    ],
)
def test_validate_request(overrides, message):
    with pytest.raises(InvalidRequest) as raised:
        validate_request(shift_request(**overrides))
    assert str(raised.value) == message


# --------------------------------------------------------------------------- the API cycle against a fake API


def three_route_virtual_service():
    return virtual_service(
        route("header-match", entry("checkout", "v3-0-0"), match=[{"headers": {"x": {"exact": "1"}}}]),
        route("primary", entry("checkout", "v2-9", 100)),
        route("fallback", entry("checkout", "v2-9")),
    )


def no_sleep(_seconds):
    pass


def test_shift_traffic_writes_and_reads_back():
    api = FakeKubeApi(three_route_virtual_service())
    result = shift_traffic(api, shift_request(weight=10), now=NOW, sleep=no_sleep)
    assert result.changed and result.previous_weight == 0 and result.weight == 10
    assert result.api_version == "networking.istio.io/v1"
    assert [call[0] for call in api.calls] == ["GET", "PUT", "GET"]
    assert api.calls[1][1] == "/apis/networking.istio.io/v1/namespaces/pilot-apps/virtualservices/checkout"
    assert destinations_of(api.objects[VS_PATH], 1) == [entry("checkout", "v2-9", 90), entry("checkout", "v3-0-0", 10)]
    assert result.after == api.objects[VS_PATH]
    assert result.before["metadata"]["resourceVersion"] == "41"


def test_shift_traffic_second_run_writes_nothing():
    api = FakeKubeApi(three_route_virtual_service())
    shift_traffic(api, shift_request(weight=10), now=NOW, sleep=no_sleep)
    api.calls.clear()
    result = shift_traffic(api, shift_request(weight=10), now=NOW, sleep=no_sleep)
    assert not result.changed
    assert result.previous_weight == 10
    assert api.writes() == []


def test_shift_traffic_check_mode_predicts_without_writing():
    api = FakeKubeApi(three_route_virtual_service())
    original = copy.deepcopy(api.objects[VS_PATH])
    result = shift_traffic(api, shift_request(weight=40), check_mode=True, now=NOW, sleep=no_sleep)
    assert result.changed
    assert api.writes() == []
    assert api.objects[VS_PATH] == original
    assert destinations_of(result.after, 1) == [entry("checkout", "v2-9", 60), entry("checkout", "v3-0-0", 40)]


def test_conflict_rereads_and_reapplies_on_top_of_the_rival_write():
    api = FakeKubeApi(three_route_virtual_service())

    def rival_changes_the_fallback_route(fake):
        fake.objects[VS_PATH]["spec"]["http"][2]["timeout"] = "9s"
        fake.objects[VS_PATH]["metadata"]["resourceVersion"] = "50"

    api.before_write.append(rival_changes_the_fallback_route)
    result = shift_traffic(api, shift_request(weight=25), now=NOW, sleep=no_sleep)
    assert result.changed
    assert [call[0] for call in api.calls] == ["GET", "PUT", "GET", "PUT", "GET"]
    assert api.objects[VS_PATH]["spec"]["http"][2]["timeout"] == "9s"  # the rival's change survives
    assert destinations_of(api.objects[VS_PATH], 1) == [entry("checkout", "v2-9", 75), entry("checkout", "v3-0-0", 25)]


def test_a_write_whose_answer_was_lost_still_reports_changed():
    api = FakeKubeApi(three_route_virtual_service())
    original_put = api.put

    def put_lands_but_answer_is_lost_then_retry_conflicts(path, body):
        original_put(path, body)  # stored, but the client never saw the answer; its retry hits 409
        api.put = original_put
        raise Conflict("PUT %s: 409 Conflict" % path, status=409, reason="Conflict")

    api.put = put_lands_but_answer_is_lost_then_retry_conflicts
    result = shift_traffic(api, shift_request(weight=20), now=NOW, sleep=no_sleep)
    assert result.changed is True
    assert result.previous_weight == 0
    assert destinations_of(result.before, 1) == [entry("checkout", "v2-9", 100)]
    assert destinations_of(api.objects[VS_PATH], 1) == [entry("checkout", "v2-9", 80), entry("checkout", "v3-0-0", 20)]


def test_a_rival_that_already_wrote_the_same_weights_is_not_our_change():
    api = FakeKubeApi(three_route_virtual_service())

    def rival_sets_the_same_weights(fake):
        fake.objects[VS_PATH]["spec"]["http"][1]["route"] = [
            entry("checkout", "v2-9", 80),
            entry("checkout", "v3-0-0", 20),
        ]
        fake.objects[VS_PATH]["metadata"]["resourceVersion"] = "60"

    api.before_write.append(rival_sets_the_same_weights)
    result = shift_traffic(api, shift_request(weight=20), now=NOW, sleep=no_sleep)
    assert result.changed is False
    assert result.previous_weight == 20


def test_conflicts_beyond_the_limit_fail_clearly():
    api = FakeKubeApi(three_route_virtual_service())
    api.always_conflict = True
    with pytest.raises(TooManyConflicts) as raised:
        shift_traffic(api, shift_request(weight=25, max_conflict_retries=2), now=NOW, sleep=no_sleep)
    assert len(api.writes()) == 3
    assert str(raised.value) == (
        "max_conflict_retries: VirtualService pilot-apps/checkout was changed by another "
        "writer during each of 3 attempts; giving up"
    )


def test_read_back_mismatch_fails():
    api = FakeKubeApi(three_route_virtual_service())

    def rival_resets_the_weights(fake):
        fake.objects[VS_PATH]["spec"]["http"][1]["route"] = [entry("checkout", "v2-9", 100)]

    api.after_write.append(rival_resets_the_weights)
    with pytest.raises(WeightsNotApplied, match="reads back with canary 0% and stable 100%") as raised:
        shift_traffic(api, shift_request(weight=25), now=NOW, sleep=no_sleep)
    assert raised.value.changed is True  # the module reports changed: the PUT landed


def test_a_failed_read_back_get_still_says_the_write_landed():
    api = FakeKubeApi(three_route_virtual_service())

    def the_object_vanishes(fake):
        del fake.objects[VS_PATH]

    api.after_write.append(the_object_vanishes)
    with pytest.raises(NotFound) as raised:
        shift_traffic(api, shift_request(weight=25), now=NOW, sleep=no_sleep)
    assert raised.value.changed is True


FQDN = "checkout.pilot-apps.svc.cluster.local"


@pytest.mark.parametrize(
    "route_host, canary, added",
    [
        ("checkout", Destination("checkout", "v3-0-0"), entry("checkout", "v3-0-0", 10)),
        ("checkout", Destination("checkout", port=8080), entry("checkout", weight=10, port=8080)),
        (FQDN, Destination("checkout", "v3-0-0"), entry(FQDN, "v3-0-0", 10)),  # added in the route's spelling
    ],
    ids=["subset", "port", "fqdn-route"],
)
def test_a_stable_without_subset_stays_locatable_once_the_canary_is_beside_it(route_host, canary, added):
    """Stable {host: checkout} matches any subset of checkout: once the canary checkout/v3-0-0
    is added beside it, the entry without a subset is still the stable one, so the write
    reads back, the next step shifts further and rollback (weight 0) works."""
    stable = Destination("checkout")
    api = FakeKubeApi(virtual_service(route("primary", entry(route_host, weight=100))))
    request = shift_request(stable=stable, canary=canary, weight=10)
    assert shift_traffic(api, request, now=NOW, sleep=no_sleep).changed is True
    assert destinations_of(api.objects[VS_PATH]) == [entry(route_host, weight=90), added]
    assert shift_traffic(api, request, now=NOW, sleep=no_sleep).changed is False
    further = shift_traffic(api, shift_request(stable=stable, canary=canary, weight=50), now=NOW, sleep=no_sleep)
    assert further.changed is True and further.previous_weight == 10
    rollback = shift_traffic(api, shift_request(stable=stable, canary=canary, weight=0), now=NOW, sleep=no_sleep)
    assert rollback.changed is True and rollback.previous_weight == 50
    assert traffic_shares(destinations_of(api.objects[VS_PATH])) == [100, 0]


def test_a_shift_that_could_not_be_read_back_is_refused_before_writing():
    """Stable {host: checkout} over a route whose only entry is checkout/v2-9: adding the canary
    checkout/v3-0-0 would leave the stable selector matching both; nothing is written."""
    api = FakeKubeApi(virtual_service(route("primary", entry("checkout", "v2-9", 100))))
    with pytest.raises(InvalidRequest) as raised:
        shift_traffic(api, shift_request(stable=Destination("checkout"), weight=10), now=NOW, sleep=no_sleep)
    assert str(raised.value).startswith(
        "stable: refusing to write VirtualService pilot-apps/checkout: once "
        "shifted, host checkout matches 2 destinations"
    )
    assert "add subset or port to pick one" in str(raised.value)
    assert api.writes() == []


def test_missing_virtual_service_names_the_field():
    api = FakeKubeApi(three_route_virtual_service())
    with pytest.raises(VirtualServiceNotFound, match="^name: VirtualService pilot-apps/cart not found$"):
        shift_traffic(api, shift_request(name="cart"), sleep=no_sleep)
    assert api.writes() == []


def test_v1beta1_fallback_when_v1_is_not_served():
    api = FakeKubeApi(three_route_virtual_service(), served={"virtualservices": ("networking.istio.io/v1beta1",)})
    result = shift_traffic(api, shift_request(weight=10), now=NOW, sleep=no_sleep)
    assert result.api_version == "networking.istio.io/v1beta1"
    assert api.calls[-1][1].startswith("/apis/networking.istio.io/v1beta1/")


def test_explicit_api_version_is_not_second_guessed():
    api = FakeKubeApi(three_route_virtual_service(), served={"virtualservices": ()})
    with pytest.raises(
        VirtualServiceNotFound,
        match="^api_version: the API server does not serve VirtualServices "
        "as networking.istio.io/v1alpha3; are the Istio CRDs installed",
    ):
        shift_traffic(api, shift_request(api_version="networking.istio.io/v1alpha3"), sleep=no_sleep)


def test_validation_happens_before_any_request():
    api = FakeKubeApi(three_route_virtual_service())
    with pytest.raises(InvalidRequest):
        shift_traffic(api, shift_request(weight=150), sleep=no_sleep)
    assert api.calls == []


# --------------------------------------------------------------------------- the one time budget


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def test_conflict_rereads_stop_at_the_clients_timeout():
    """max_conflict_retries would allow 100 re-reads; the client's 3 s budget allows 7 (jittered
    delays at their ceiling: 0.05, 0.1, 0.2, 0.4, 0.8, 1.0, then 1.0 would pass the 3 s)."""
    clock = FakeClock()
    api = FakeKubeApi(three_route_virtual_service())
    api.always_conflict = True
    api.deadline = Deadline(3.0, clock=clock)
    with pytest.raises(TooManyConflicts) as raised:
        shift_traffic(
            api, shift_request(weight=25, max_conflict_retries=100), now=NOW, sleep=clock.sleep, rng=lambda: 1.0
        )
    assert len(api.writes()) == 7
    assert raised.value.field == "timeout"
    assert str(raised.value).startswith(
        "timeout: gave up after 7 attempts in 2.5 s, the timeout of 3 s leaving no "
        "time for another: VirtualService pilot-apps/checkout was changed by another "
        "writer during each attempt: PUT "
    )


def test_no_conflict_retry_is_made_once_the_timeout_is_spent():
    clock = FakeClock()
    api = FakeKubeApi(three_route_virtual_service())
    api.deadline = Deadline(1.0, clock=clock)

    def rival_writes_and_time_runs_out(fake):
        fake.objects[VS_PATH]["metadata"]["resourceVersion"] = "50"
        clock.now += 1.0

    api.before_write.append(rival_writes_and_time_runs_out)
    with pytest.raises(TooManyConflicts, match="^timeout: gave up after 1 attempt in 1.0 s, the timeout of 1 s"):
        shift_traffic(api, shift_request(weight=10), now=NOW, sleep=clock.sleep)
    assert [call[0] for call in api.calls] == ["GET", "PUT"]
