# Copyright (c) 2025, CERES platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Unit tests of the sandbox traffic simulator's logic (no cluster needed)."""

from __future__ import annotations

import importlib.util
import json
import logging
import math
import random
import re
import sys
import threading
import urllib.error
import urllib.request
from fractions import Fraction
from pathlib import Path

import pytest

SIMULATOR_DIR = Path(__file__).resolve().parents[3] / "sandbox" / "simulator"


def _load_simulator():
    # sandbox/ is not a package of the collection: load the daemon's package by path.
    name = "ceres_sandbox_simulator"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, SIMULATOR_DIR / "__init__.py",
                                                  submodule_search_locations=[str(SIMULATOR_DIR)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


sim = _load_simulator()

NS = "pilot-apps"


# --- a small world like the sandbox's pilot namespace -------------------------------------

def service(name="checkout", namespace=NS, selector=None):
    return {"metadata": {"name": name, "namespace": namespace},
            "spec": {"selector": selector if selector is not None else {"app": name}}}


def destination_rule(name="checkout", namespace=NS, host="checkout", subsets=None):
    if subsets is None:
        subsets = {"v2-9": {"version": "v2.9"}, "v3-0-0": {"version": "v3.0.0"}}
    return {"metadata": {"name": name, "namespace": namespace},
            "spec": {"host": host, "subsets": [{"name": k, "labels": v} for k, v in subsets.items()]}}


def deployment(name, version, app="checkout", namespace=NS, available=1, annotations=None):
    status = {} if available is None else {"availableReplicas": available}
    return {"metadata": {"name": name, "namespace": namespace, "annotations": annotations or {}},
            "spec": {"template": {"metadata": {"labels": {"app": app, "version": version}}}},
            "status": status}


def route(destinations, match=None):
    http_route = {"route": destinations}
    if match is not None:
        http_route["match"] = match
    return http_route


def destination(subset=None, weight=None, host="checkout"):
    entry = {"destination": {"host": host}}
    if subset:
        entry["destination"]["subset"] = subset
    if weight is not None:
        entry["weight"] = weight
    return entry


def virtual_service(http, name="checkout", namespace=NS, annotations=None):
    return {"metadata": {"name": name, "namespace": namespace, "annotations": annotations or {}},
            "spec": {"hosts": [name], "http": http}}


def world(*extra, canary_available=1, canary_annotations=None):
    objects = [
        ("Service", service()),
        ("DestinationRule", destination_rule()),
        ("Deployment", deployment("checkout-v2-9", "v2.9", available=2)),
        ("Deployment", deployment("checkout-v3-0-0", "v3.0.0", available=canary_available,
                                  annotations=canary_annotations)),
    ]
    return sim.ClusterSnapshot.from_objects(objects + list(extra))


def split_route(stable_weight, canary_weight, host="checkout"):
    return route([destination("v2-9", stable_weight, host), destination("v3-0-0", canary_weight, host)])


def no_warnings(owner, annotation, value, reason):
    raise AssertionError("unexpected warning: %s %s=%r %s" % (owner, annotation, value, reason))


def plan_for(http, snapshot=None, annotations=None, warn=no_warnings):
    snapshot = snapshot or world()
    return sim.plan_virtual_service(virtual_service(http, annotations=annotations), snapshot,
                                    sim.DEFAULT_RPS, warn)


def run_ticks(plan, ticks, tick=Fraction(1, 10), seed=0):
    registry = sim.MetricsRegistry()
    generator = sim.TrafficGenerator(registry, random.Random(seed))
    for unused_tick in range(ticks):
        generator.advance([plan], tick)
    return registry


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


# --- accumulators -------------------------------------------------------------------------

def test_weight_split_30_70_is_exact_over_100_ticks():
    splitter = sim.WeightedSplitter()
    totals = {"stable": 0, "canary": 0}
    for unused_tick in range(100):
        for key, count in splitter.split(5, [("stable", 30), ("canary", 70)]).items():
            totals[key] += count
    assert totals == {"stable": 150, "canary": 350}


def test_weight_split_30_70_through_the_generator():
    registry = run_ticks(plan_for([split_route(30, 70)]), 100)
    assert registry.requests(destination_workload="checkout-v2-9") == 150
    assert registry.requests(destination_workload="checkout-v3-0-0") == 350


def test_weight_split_0_100_never_sends_to_the_zero_weight():
    registry = run_ticks(plan_for([split_route(0, 100)]), 100)
    assert registry.requests(destination_workload="checkout-v2-9") == 0
    assert registry.requests(destination_workload="checkout-v3-0-0") == 500


def test_weight_change_keeps_zero_weight_at_zero():
    splitter = sim.WeightedSplitter()
    splitter.split(3, [("a", 50), ("b", 50)])  # leaves fractions behind
    counts = [splitter.split(3, [("a", 0), ("b", 100)]) for unused_tick in range(10)]
    assert sum(c["a"] for c in counts) == 0
    assert sum(c["b"] for c in counts) >= 29


def test_fractional_rate_is_exact_in_the_long_run():
    counter = sim.FractionalCounter()
    # 2.5 rps at ticks of 0.1 s: 0.25 requests per tick
    assert sum(counter.take(Fraction(5, 2) * Fraction(1, 10)) for unused_tick in range(100)) == 25


def test_rps_annotation_overrides_the_default():
    plan = plan_for([route([destination("v2-9")])], annotations={sim.RPS_ANNOTATION: "12.5"})
    assert plan.rps == Fraction(25, 2)
    assert run_ticks(plan, 100).requests() == 125


def test_error_ratio_accumulator_gives_exactly_100_errors_in_5000():
    generator = sim.TrafficGenerator(sim.MetricsRegistry(), random.Random(1))
    target = sim.Target(labels=(("destination_workload", "w"),), weight=Fraction(1), healthy=True,
                        profile=sim.FaultProfile(error_ratio=sim.parse_error_ratio("0.02")))
    for unused_tick in range(1000):
        generator.serve_target(target, 5)
    assert generator.registry.requests(response_code="503") == 100
    assert generator.registry.requests(response_code="200") == 4900


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
    snapshot = sim.ClusterSnapshot.from_objects([
        ("Service", service()),
        ("DestinationRule", destination_rule(host="checkout.pilot-apps.svc.cluster.local")),
        ("Deployment", deployment("checkout-v2-9", "v2.9")),
    ])
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
        for unknown_label in ("destination_workload", "destination_workload_namespace", "destination_version",
                              "destination_app", "destination_canonical_service", "destination_principal",
                              "destination_cluster"):
            assert labels[unknown_label] == "unknown", unknown_label


def test_host_without_subset_spreads_over_workloads_by_available_replicas():
    plan = plan_for([route([destination()])])  # stable has 2 replicas, canary 1
    registry = run_ticks(plan, 60)
    assert registry.requests(destination_workload="checkout-v2-9") == 200
    assert registry.requests(destination_workload="checkout-v3-0-0") == 100


# --- fault profiles -----------------------------------------------------------------------

def test_error_ratio_annotation_on_the_canary():
    snapshot = world(canary_annotations={sim.ERROR_RATIO_ANNOTATION: "0.05"})
    registry = run_ticks(plan_for([split_route(0, 100)], snapshot), 400)  # 2000 requests
    assert registry.requests(destination_workload="checkout-v3-0-0", response_code="503", response_flags="-") == 100
    assert registry.requests(destination_workload="checkout-v3-0-0", response_code="200") == 1900


def test_invalid_annotation_values_are_reported_and_ignored():
    warnings = []
    bad = deployment("checkout-v3-0-0", "v3.0.0",
                     annotations={sim.ERROR_RATIO_ANNOTATION: "lots", sim.LATENCY_MS_ANNOTATION: "-3"})
    profile = sim.fault_profile(bad, lambda *args: warnings.append(args))
    assert profile == sim.HEALTHY_PROFILE
    assert {w[1] for w in warnings} == {sim.ERROR_RATIO_ANNOTATION, sim.LATENCY_MS_ANNOTATION}
    assert all(w[0] == "Deployment pilot-apps/checkout-v3-0-0" for w in warnings)


def test_planner_logs_an_invalid_value_only_once(caplog):
    planner = sim.Planner(log=logging.getLogger("test-simulator"))
    snapshot = world(("VirtualService", virtual_service([split_route(90, 10)])),
                     canary_annotations={sim.ERROR_RATIO_ANNOTATION: "1.5"})
    with caplog.at_level(logging.INFO, logger="test-simulator"):
        for unused_tick in range(3):
            planner.build(snapshot)
    ignored = [r for r in caplog.records if "ignoring" in r.getMessage()]
    assert len(ignored) == 1 and "1.5" in ignored[0].getMessage()


def test_removing_annotations_restores_the_healthy_profile(caplog):
    planner = sim.Planner(log=logging.getLogger("test-simulator"))
    vs = ("VirtualService", virtual_service([split_route(0, 100)]))
    faulty = world(vs, canary_annotations={sim.ERROR_RATIO_ANNOTATION: "0.5", sim.LATENCY_MS_ANNOTATION: "300"})
    with caplog.at_level(logging.INFO, logger="test-simulator"):
        (plan,) = planner.build(faulty)
        assert plan.targets[0].profile == sim.FaultProfile(Fraction(1, 2), 300.0)
        (plan,) = planner.build(world(vs))
        assert plan.targets[0].profile == sim.HEALTHY_PROFILE
    profile_lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("profile ")]
    assert len(profile_lines) == 2
    assert "error-ratio=0 latency-ms=20" in profile_lines[1]


# --- latency ------------------------------------------------------------------------------

def _quantile(sorted_values, q):
    return sorted_values[min(int(q * len(sorted_values)), len(sorted_values) - 1)]


def test_latency_quantiles_follow_the_log_normal_model():
    sampler = sim.LatencySampler(random.Random(42))
    median = 80.0
    draws = sorted(sampler.draw(median, 200_000))
    assert sim.LATENCY_SIGMA == 0.25
    expected_p95 = median * math.exp(1.6449 * sim.LATENCY_SIGMA)
    expected_p99 = median * math.exp(2.3263 * sim.LATENCY_SIGMA)
    assert sim.expected_latency_quantile(median, 1.6449) == pytest.approx(expected_p95)
    assert _quantile(draws, 0.50) == pytest.approx(median, rel=0.03)
    assert _quantile(draws, 0.95) == pytest.approx(expected_p95, rel=0.03)
    assert _quantile(draws, 0.99) == pytest.approx(expected_p99, rel=0.03)


def test_latency_draws_are_reproducible_with_a_seed():
    assert sim.LatencySampler(random.Random(7)).draw(20, 5) == sim.LatencySampler(random.Random(7)).draw(20, 5)


# --- metrics and exposition ---------------------------------------------------------------

SAMPLE_LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*)\} (\S+)$')
LABEL_PAIR = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_exposition(text):
    """{(name, frozenset(labels.items())): value} of every sample; asserts the line syntax."""
    samples = {}
    for line in text.splitlines():
        if line.startswith("#"):
            assert re.match(r"^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .+$", line), line
            continue
        match = SAMPLE_LINE.match(line)
        assert match, "not a sample line: %r" % line
        labels = dict(LABEL_PAIR.findall(match.group(2)))
        samples[(match.group(1), frozenset(labels.items()))] = float(match.group(3))
    return samples


def select(samples, name, **wanted):
    return {labels: value for (metric, labels), value in samples.items()
            if metric == name and all((k, v) in labels for k, v in wanted.items())}


def test_histogram_bucket_counts_are_cumulative():
    registry = sim.MetricsRegistry()
    labels = (("destination_workload", "w"),)
    registry.observe(labels, "200", "-", [0.3, 0.5, 0.7, 20, 30, 4_000_000])
    samples = parse_exposition(registry.render())
    buckets = {dict(k)["le"]: v for k, v in select(
        samples, "istio_request_duration_milliseconds_bucket", reporter="destination").items()}
    assert buckets["0.5"] == 2      # le is inclusive
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
    registry = run_ticks(plan_for([split_route(90, 10)], world(canary_annotations={
        sim.ERROR_RATIO_ANNOTATION: "0.1"})), 100)
    text = registry.render()
    for metric, kind in (("istio_requests_total", "counter"), ("istio_request_duration_milliseconds", "histogram")):
        assert "# HELP %s " % metric in text
        assert "# TYPE %s %s\n" % (metric, kind) in text
    samples = parse_exposition(text)
    by_reporter = {}
    for reporter, policy in (("destination", "mutual_tls"), ("source", "unknown")):
        series = select(samples, "istio_requests_total", reporter=reporter)
        assert all(("connection_security_policy", policy) in labels for labels in series)
        by_reporter[reporter] = {frozenset(l for l in labels if l[0] not in ("reporter", "connection_security_policy")):
                                 value for labels, value in series.items()}
    assert by_reporter["destination"] == by_reporter["source"]
    assert sum(by_reporter["destination"].values()) == 500
    errors = select(samples, "istio_requests_total", reporter="destination", response_code="503",
                    destination_workload="checkout-v3-0-0")
    assert list(errors.values()) == [5.0]
    required = {"reporter", "source_workload", "source_workload_namespace", "source_app", "destination_workload",
                "destination_workload_namespace", "destination_service", "destination_service_name",
                "destination_service_namespace", "destination_version", "destination_app",
                "destination_canonical_service", "destination_canonical_revision", "request_protocol",
                "response_code", "response_flags", "connection_security_policy"}
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
    assert not select(samples, "istio_request_duration_milliseconds_count", reporter="destination",
                      destination_workload="unknown")


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


# --- the live model and watch events ------------------------------------------------------

class FakeResponse:
    def __init__(self, body=b"", chunks=()):
        self.data = body
        self._chunks = chunks

    def stream(self, amt=None, decode_content=False):
        del amt, decode_content
        yield from self._chunks

    def close(self):
        pass

    def release_conn(self):
        pass


def test_watcher_lists_then_applies_events_and_relists_on_410():
    stop = threading.Event()
    model = sim.ClusterModel()
    vs_v1 = virtual_service([route([destination("v2-9")])])
    vs_v2 = virtual_service([split_route(90, 10)])
    calls = []

    def list_call(**kwargs):
        calls.append(kwargs)
        if not kwargs.get("watch"):
            return FakeResponse(json.dumps({"metadata": {"resourceVersion": "10"}, "items": [vs_v1]}).encode())
        if len(calls) == 2:
            modified = dict(vs_v2, metadata=dict(vs_v2["metadata"], resourceVersion="11"))
            events = [{"type": "MODIFIED", "object": modified},
                      {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "12"}}}]
            text = "\n".join(json.dumps(e) for e in events) + "\n"
            return FakeResponse(chunks=[text[:25].encode(), text[25:].encode()])  # split mid-line
        if len(calls) == 3:
            return FakeResponse(chunks=[json.dumps({"type": "ERROR", "object": {"code": 410, "message": "gone"}})
                                        .encode() + b"\n"])
        stop.set()
        return FakeResponse()

    resource = sim.WatchedResource("VirtualService", "virtualservices", (("networking.istio.io/v1", list_call),))
    watcher = sim.ResourceWatcher(resource, model, stop, log=logging.getLogger("test-simulator"))
    assert model.missing_kinds() == list(sim.KINDS)
    version = watcher.list_into_model()
    assert version == "10" and "VirtualService" not in model.missing_kinds()
    with pytest.raises(sim.ResourceGone):
        watcher.watch_from(version)
    assert calls[1]["resource_version"] == "10" and calls[1]["watch"] is True
    assert calls[2]["resource_version"] == "12"  # resumed after the stream ended, from the bookmark
    snapshot = model.snapshot()[1]
    assert snapshot.virtual_services()[0]["spec"] == vs_v2["spec"]


def test_watcher_falls_back_to_v1beta1_when_v1_is_not_served():
    class NotFound(Exception):
        status = 404

    def v1(**_):
        raise NotFound()

    def v1beta1(**_):
        return FakeResponse(json.dumps({"metadata": {"resourceVersion": "5"}, "items": []}).encode())

    resource = sim.WatchedResource("DestinationRule", "destinationrules",
                                   (("networking.istio.io/v1", v1), ("networking.istio.io/v1beta1", v1beta1)))
    model = sim.ClusterModel()
    watcher = sim.ResourceWatcher(resource, model, threading.Event(), log=logging.getLogger("test-simulator"))
    assert watcher.list_into_model() == "5"
    assert "DestinationRule" not in model.missing_kinds()


def test_model_events_bump_the_generation():
    model = sim.ClusterModel()
    start = model.generation
    model.apply("Deployment", "ADDED", deployment("checkout-v2-9", "v2.9"))
    model.apply("Deployment", "DELETED", deployment("checkout-v2-9", "v2.9"))
    assert model.generation == start + 2
    assert model.snapshot()[1].deployments() == []


# --- HTTP ---------------------------------------------------------------------------------

def _get(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.headers.get("Content-Type"), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Content-Type"), error.read().decode()


def test_http_server_serves_metrics_and_health_from_an_in_memory_model():
    model = sim.ClusterModel()
    registry = sim.MetricsRegistry()
    server = sim.start_http_server(("127.0.0.1", 0), registry, model.missing_kinds)
    try:
        base = "http://127.0.0.1:%d" % server.server_address[1]
        status, unused_type, body = _get(base + "/healthz")
        assert status == 503 and "VirtualService" in body

        model.replace("Service", [service()])
        model.replace("DestinationRule", [destination_rule()])
        model.replace("Deployment", [deployment("checkout-v2-9", "v2.9"), deployment("checkout-v3-0-0", "v3.0.0")])
        model.replace("VirtualService", [virtual_service([split_route(75, 25)])])
        loop = sim.TrafficLoop(model, sim.Planner(log=logging.getLogger("test-simulator")),
                               sim.TrafficGenerator(registry), tick_seconds=0.1)
        for unused_tick in range(40):
            loop.tick(100_000_000)

        assert _get(base + "/healthz")[0] == 200
        status, content_type, body = _get(base + "/metrics")
        assert status == 200 and content_type.startswith("text/plain; version=0.0.4")
        samples = parse_exposition(body)
        totals = {dict(labels)["destination_workload"]: value
                  for labels, value in select(samples, "istio_requests_total", reporter="destination").items()}
        assert totals == {"checkout-v2-9": 150.0, "checkout-v3-0-0": 50.0}
        assert _get(base + "/nope")[0] == 404
    finally:
        server.shutdown()
        server.server_close()


def test_listen_address_parsing():
    assert sim.parse_listen("127.0.0.1:19101") == ("127.0.0.1", 19101)
    assert sim.parse_listen("[::1]:80") == ("::1", 80)
    with pytest.raises(Exception):
        sim.parse_listen("localhost")
