# Copyright (c) 2025, CERES platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Route selection and resolution of destinations to workloads (simulator.routing)."""

from __future__ import annotations

from test_simulator_world import (
    NS,
    deployment,
    destination,
    destination_rule,
    no_warnings,
    plan_for,
    route,
    run_ticks,
    service,
    sim,
    split_route,
    virtual_service,
    world,
)

# --- route selection ----------------------------------------------------------------------


def test_header_match_route_is_skipped_for_the_steady_load():
    header_route = route([destination("v3-0-0")], match=[{"headers": {"x-canary": {"exact": "true"}}}])
    default_route = route([destination("v2-9")])
    spec = {"http": [header_route, default_route]}
    assert sim.select_default_route(spec) is default_route


def test_empty_match_list_and_root_prefix_are_catch_all():
    assert sim.is_catch_all(route([], match=[]))
    assert sim.is_catch_all(route([], match=[{}]))
    assert sim.is_catch_all(route([], match=[{"uri": {"prefix": "/"}}]))
    assert not sim.is_catch_all(route([], match=[{"uri": {"prefix": "/api"}}]))


def test_no_catch_all_route_means_no_traffic():
    header_only = [route([destination("v2-9")], match=[{"headers": {"x-user": {"exact": "a"}}}])]
    assert sim.select_default_route({"http": header_only}) is None
    plan = plan_for(header_only)
    assert plan.targets == ()
    assert run_ticks(plan, 10).requests() == 0


def test_delegate_virtual_service_gets_no_traffic_of_its_own():
    delegate = virtual_service([route([destination("v2-9")])])
    del delegate["spec"]["hosts"]
    plan = sim.plan_virtual_service(delegate, world(), sim.DEFAULT_RPS, no_warnings)
    assert plan.targets == () and "delegate" in plan.note


def test_single_destination_without_weight_gets_everything():
    destinations = sim.route_destinations(route([destination("v2-9")]))
    assert destinations == [sim.RouteDestination("checkout", "v2-9", 100)]
    registry = run_ticks(plan_for([route([destination("v2-9")])]), 100)
    assert registry.requests() == 500  # 50 rps for 10 s
    assert registry.requests(destination_workload="checkout-v2-9", response_code="200") == 500


# --- destination resolution ---------------------------------------------------------------


def test_short_host_resolves_to_the_subset_workload():
    plan = plan_for([route([destination("v3-0-0", host="checkout")])])
    (target,) = plan.targets
    labels = dict(target.labels)
    assert target.healthy
    assert labels["destination_workload"] == "checkout-v3-0-0"
    assert labels["destination_workload_namespace"] == NS
    assert labels["destination_service"] == "checkout.pilot-apps.svc.cluster.local"
    assert labels["destination_service_name"] == "checkout"
    assert labels["destination_service_namespace"] == NS
    assert labels["destination_version"] == "v3.0.0"
    assert labels["destination_app"] == "checkout"
    assert labels["destination_canonical_service"] == "checkout"
    assert labels["destination_canonical_revision"] == "v3.0.0"
    assert labels["source_workload"] == "istio-ingressgateway"
    assert labels["source_workload_namespace"] == "istio-system"
    assert labels["source_app"] == "istio-ingressgateway"
    assert labels["request_protocol"] == "http"


def test_fqdn_host_resolves_like_the_short_name():
    short = plan_for([route([destination("v2-9", host="checkout")])])
    fqdn = plan_for([route([destination("v2-9", host="checkout.pilot-apps.svc.cluster.local")])])
    assert fqdn.targets == short.targets
    assert dict(fqdn.targets[0].labels)["destination_workload"] == "checkout-v2-9"


def test_destination_rule_with_fqdn_host_is_found():
    snapshot = sim.ClusterSnapshot.from_objects(
        [
            ("Service", service()),
            ("DestinationRule", destination_rule(host="checkout.pilot-apps.svc.cluster.local")),
            ("Deployment", deployment("checkout-v2-9", "v2.9")),
        ]
    )
    (target,) = plan_for([route([destination("v2-9")])], snapshot).targets
    assert target.healthy and target.workload == "checkout-v2-9"


def _only_uh_503(registry, requests):
    assert registry.requests() == requests
    assert registry.requests(response_code="503", response_flags="UH", destination_workload="unknown") == requests
    # As in Istio: no destination proxy saw these requests, only the caller reports them.
    assert registry.requests(reporter="source") == requests
    assert registry.requests(reporter="destination") == 0


def test_missing_subset_fails_with_503_uh():
    plan = plan_for([route([destination("v4-0-0")])])
    (target,) = plan.targets
    assert not target.healthy and "subset v4-0-0" in target.reason
    registry = run_ticks(plan, 10)
    _only_uh_503(registry, 50)
    labels = dict(target.labels)
    assert labels["destination_service"] == "checkout.pilot-apps.svc.cluster.local"
    assert labels["destination_workload"] == "unknown"


def test_missing_service_or_unknown_host_fails_with_503_uh():
    for host in ("nosuch", "checkout.example.com"):
        plan = plan_for([route([destination("v2-9", host=host)])])
        assert not plan.targets[0].healthy
        _only_uh_503(run_ticks(plan, 10), 50)


def test_canary_without_available_replicas_fails_with_503_uh():
    for available in (0, None):  # 0, or status without availableReplicas
        plan = plan_for([split_route(50, 50)], world(canary_available=available))
        registry = run_ticks(plan, 100)
        assert registry.requests(destination_workload="checkout-v2-9", response_code="200") == 250
        assert registry.requests(destination_workload="unknown", response_code="503", response_flags="UH") == 250
        assert registry.requests(reporter="destination", response_code="503") == 0
        assert registry.requests(reporter="source", destination_workload="unknown", response_flags="UH") == 250
        unhealthy = [t for t in plan.targets if not t.healthy][0]
        labels = dict(unhealthy.labels)
        # What Istio's caller-side proxy knows without a pod: the Service, nothing of the workload.
        assert labels["destination_service"] == "checkout.pilot-apps.svc.cluster.local"
        assert labels["destination_service_name"] == "checkout"
        assert labels["destination_service_namespace"] == "pilot-apps"
        for unknown_label in (
            "destination_workload",
            "destination_workload_namespace",
            "destination_version",
            "destination_app",
            "destination_canonical_service",
            "destination_principal",
            "destination_cluster",
        ):
            assert labels[unknown_label] == "unknown", unknown_label


def test_host_without_subset_spreads_over_workloads_by_available_replicas():
    plan = plan_for([route([destination()])])  # stable has 2 replicas, canary 1
    registry = run_ticks(plan, 60)
    assert registry.requests(destination_workload="checkout-v2-9") == 200
    assert registry.requests(destination_workload="checkout-v3-0-0") == 100
