# Copyright (c) 2025, CERES platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Deterministic accumulators, the latency model and the traffic generator (simulator.traffic)."""

from __future__ import annotations

import math
import random
from fractions import Fraction

import pytest
from test_simulator_world import destination, plan_for, route, run_ticks, sim, split_route

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
    target = sim.Target(
        labels=(("destination_workload", "w"),),
        weight=Fraction(1),
        healthy=True,
        profile=sim.FaultProfile(error_ratio=sim.parse_error_ratio("0.02")),
    )
    for unused_tick in range(1000):
        generator.serve_target(target, 5)
    assert generator.registry.requests(response_code="503") == 100
    assert generator.registry.requests(response_code="200") == 4900


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
