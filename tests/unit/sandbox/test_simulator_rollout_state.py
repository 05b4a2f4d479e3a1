"""The rollout's own state as series (simulator.rollout_state): route weights and held rollout locks."""

from __future__ import annotations

import urllib.request

import pytest
from test_simulator_world import destination, parse_exposition, route, select, sim, virtual_service

state = sim.rollout_state

ROUTE_WEIGHT = "ceres_virtualservice_route_weight"
RENEWED = "ceres_rollout_lock_renew_timestamp_seconds"
DURATION = "ceres_rollout_lock_lease_duration_seconds"


def lease(
    name="ceres-rollout",
    namespace="ceres-system",
    holder="alice@controller-1",
    renewed="2026-01-02T03:04:05.250000Z",
    duration=900,
):
    spec = {"holderIdentity": holder, "renewTime": renewed, "leaseDurationSeconds": duration, "leaseTransitions": 3}
    return {
        "metadata": {"name": name, "namespace": namespace, "labels": {"app.kubernetes.io/managed-by": "ceres.rollout"}},
        "spec": {key: value for key, value in spec.items() if value is not None},
    }


def samples_of(virtual_services=(), leases=()):
    return parse_exposition(state.exposition(virtual_services, leases))


def test_every_destination_of_every_route_is_a_series_with_its_weight():
    services = [
        virtual_service(
            [
                {**route([destination("v2-9", 75), destination("v3-0-0", 25)]), "name": "primary"},
                route([destination("v2-9")], match=[{"headers": {"x-canary": {"exact": "1"}}}]),
            ]
        )
    ]
    samples = samples_of(services)

    assert select(samples, ROUTE_WEIGHT) == {
        frozenset(
            {
                "namespace": "pilot-apps",
                "virtual_service": "checkout",
                "route": "primary",
                "route_index": "0",
                "destination_host": "checkout",
                "destination_subset": subset,
            }.items()
        ): weight
        for subset, weight in (("v2-9", 75.0), ("v3-0-0", 25.0))
    } | {
        # an unnamed route: its name is "", its index tells it apart; a lone destination is 100, as Istio reads it
        frozenset(
            {
                "namespace": "pilot-apps",
                "virtual_service": "checkout",
                "route": "",
                "route_index": "1",
                "destination_host": "checkout",
                "destination_subset": "v2-9",
            }.items()
        ): 100.0
    }


def test_a_canary_at_0_is_a_series_of_0_and_a_destination_twice_in_a_route_is_summed():
    services = [virtual_service([route([destination("v2-9", 60), destination("v2-9", 40), destination("v3-0-0", 0)])])]
    samples = samples_of(services)

    assert {dict(labels)["destination_subset"]: value for labels, value in select(samples, ROUTE_WEIGHT).items()} == {
        "v2-9": 100.0,
        "v3-0-0": 0.0,
    }


def test_a_virtual_service_without_http_routes_has_no_series():
    assert (
        samples_of([virtual_service([]), {"metadata": {"name": "x", "namespace": "y"}, "spec": {"http": ["junk"]}}])
        == {}
    )


def test_a_held_lock_has_its_renew_time_and_lease_duration():
    samples = samples_of(leases=[lease()])
    labels = frozenset({"namespace": "ceres-system", "lease": "ceres-rollout", "holder": "alice@controller-1"}.items())

    assert samples == {(RENEWED, labels): 1767323045.25, (DURATION, labels): 900.0}


@pytest.mark.parametrize(
    "released",
    [
        lease(holder=None, renewed=None),  # released by its run: no holder, no renew time
        lease(holder=""),
        lease(renewed=None),
        lease(renewed="yesterday"),
        lease(renewed="2026-01-02T03:04:05"),  # no time zone
        lease(duration=None),
        lease(duration="900"),
    ],
)
def test_a_lock_that_is_not_held_or_cannot_say_when_it_expires_has_no_series(released):
    assert state.lock_series([released]) == []


def test_the_lock_model_keeps_only_what_the_series_read():
    slim = state.slim_lease({**lease(), "metadata": {**lease()["metadata"], "managedFields": [{"big": "x"}]}})

    assert slim == {
        "metadata": {"name": "ceres-rollout", "namespace": "ceres-system"},
        "spec": {
            "holderIdentity": "alice@controller-1",
            "renewTime": "2026-01-02T03:04:05.250000Z",
            "leaseDurationSeconds": 900,
        },
    }


def test_only_the_rollouts_leases_are_watched():
    assert state.LOCK_LABEL_SELECTOR == "app.kubernetes.io/managed-by=ceres.rollout"


def test_the_http_server_serves_the_rollout_state_on_its_own_path():
    services = [virtual_service([route([destination("v2-9", 90), destination("v3-0-0", 10)])])]
    server = sim.start_http_server(
        ("127.0.0.1", 0),
        sim.MetricsRegistry(),
        lambda: [],
        {state.METRICS_PATH: lambda: state.exposition(services, [lease()])},
    )
    try:
        host, port = server.server_address[:2]
        with urllib.request.urlopen("http://%s:%d/ceres/metrics" % (host, port), timeout=5) as response:
            text = response.read().decode()
            content_type = response.headers["Content-Type"]
    finally:
        server.shutdown()
        server.server_close()

    assert content_type.startswith("text/plain; version=0.0.4")
    samples = parse_exposition(text)
    assert len(select(samples, ROUTE_WEIGHT)) == 2 and len(select(samples, RENEWED)) == 1
    assert "# TYPE ceres_virtualservice_route_weight gauge" in text
