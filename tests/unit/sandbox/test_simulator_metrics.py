# Copyright (c) 2025, CERES platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The metrics registry and its text exposition (simulator.metrics)."""

from __future__ import annotations

from fractions import Fraction

import pytest
from test_simulator_world import (
    destination,
    parse_exposition,
    plan_for,
    route,
    run_ticks,
    select,
    sim,
    split_route,
    world,
)

# --- metrics and exposition ---------------------------------------------------------------


def test_histogram_bucket_counts_are_cumulative():
    registry = sim.MetricsRegistry()
    labels = (("destination_workload", "w"),)
    registry.observe(labels, "200", "-", [0.3, 0.5, 0.7, 20, 30, 4_000_000])
    samples = parse_exposition(registry.render())
    buckets = {
        dict(k)["le"]: v
        for k, v in select(samples, "istio_request_duration_milliseconds_bucket", reporter="destination").items()
    }
    assert buckets["0.5"] == 2  # le is inclusive
    assert buckets["1"] == 3
    assert buckets["10"] == 3
    assert buckets["25"] == 4
    assert buckets["50"] == 5
    assert buckets["3600000"] == 5
    assert buckets["+Inf"] == 6
    assert list(buckets) == [sim.format_bound(b) for b in sim.DURATION_BUCKETS_MS] + ["+Inf"]
    values = [buckets[b] for b in buckets]
    assert values == sorted(values)
    (total,) = select(samples, "istio_request_duration_milliseconds_sum", reporter="destination").values()
    (count,) = select(samples, "istio_request_duration_milliseconds_count", reporter="destination").values()
    assert total == pytest.approx(4_000_051.5)
    assert count == 6


def test_exposition_has_help_type_and_every_series_for_both_reporters():
    registry = run_ticks(
        plan_for([split_route(90, 10)], world(canary_annotations={sim.ERROR_RATIO_ANNOTATION: "0.1"})), 100
    )
    text = registry.render()
    for metric, kind in (("istio_requests_total", "counter"), ("istio_request_duration_milliseconds", "histogram")):
        assert "# HELP %s " % metric in text
        assert "# TYPE %s %s\n" % (metric, kind) in text
    samples = parse_exposition(text)
    by_reporter = {}
    for reporter, policy in (("destination", "mutual_tls"), ("source", "unknown")):
        series = select(samples, "istio_requests_total", reporter=reporter)
        assert all(("connection_security_policy", policy) in labels for labels in series)
        by_reporter[reporter] = {
            frozenset(label for label in labels if label[0] not in ("reporter", "connection_security_policy")): value
            for labels, value in series.items()
        }
    assert by_reporter["destination"] == by_reporter["source"]
    assert sum(by_reporter["destination"].values()) == 500
    errors = select(
        samples,
        "istio_requests_total",
        reporter="destination",
        response_code="503",
        destination_workload="checkout-v3-0-0",
    )
    assert list(errors.values()) == [5.0]
    required = {
        "reporter",
        "source_workload",
        "source_workload_namespace",
        "source_app",
        "destination_workload",
        "destination_workload_namespace",
        "destination_service",
        "destination_service_name",
        "destination_service_namespace",
        "destination_version",
        "destination_app",
        "destination_canonical_service",
        "destination_canonical_revision",
        "request_protocol",
        "response_code",
        "response_flags",
        "connection_security_policy",
    }
    for labels in select(samples, "istio_requests_total"):
        assert required <= {name for name, unused_value in labels}


def test_a_dead_canary_is_exposed_as_istio_does_from_the_caller_only():
    registry = run_ticks(plan_for([split_route(50, 50)], world(canary_available=0)), 100)
    samples = parse_exposition(registry.render())
    no_upstream = select(samples, "istio_requests_total", response_flags="UH")
    assert {dict(labels)["reporter"] for labels in no_upstream} == {"source"}
    assert sum(no_upstream.values()) == 250
    (labels,) = no_upstream
    labels = dict(labels)
    assert (labels["destination_service_name"], labels["destination_service_namespace"]) == ("checkout", "pilot-apps")
    assert labels["destination_workload"] == labels["destination_workload_namespace"] == "unknown"
    assert not select(samples, "istio_requests_total", reporter="destination", response_flags="UH")
    assert not select(
        samples, "istio_request_duration_milliseconds_count", reporter="destination", destination_workload="unknown"
    )


def test_label_values_are_escaped():
    assert sim.format_labels([("a", 'x"y\\z\nw')]) == '{a="x\\"y\\\\z\\nw"}'


def test_counters_keep_growing():
    plan = plan_for([route([destination("v2-9")])])
    registry = sim.MetricsRegistry()
    generator = sim.TrafficGenerator(registry)
    seen = []
    for unused_tick in range(3):
        generator.advance([plan], Fraction(1))
        seen.append(registry.requests())
    generator.advance([], Fraction(1))  # the VirtualService is gone: its counters stay
    seen.append(registry.requests())
    assert seen == [50, 100, 150, 150]


def test_a_namespace_without_virtual_services_loses_its_series_after_the_grace_period():
    plan = plan_for([route([destination("v2-9")])])
    registry = sim.MetricsRegistry()
    generator = sim.TrafficGenerator(registry, namespace_gone_seconds=60)
    generator.advance([plan], Fraction(1))
    assert registry.requests() == 50 and registry.namespaces() == ["pilot-apps"]
    generator.advance([], Fraction(59))  # not yet: a VirtualService may be re-created
    assert registry.requests() == 50
    generator.advance([plan], Fraction(1))  # back again: the grace period starts over
    generator.advance([], Fraction(59))
    assert registry.requests() == 100
    generator.advance([], Fraction(1))  # 60 s without any VirtualService: the proxies are gone
    assert registry.requests() == 0 and registry.namespaces() == []
    assert "pilot-apps" not in registry.render()
