# Copyright (c) 2025, CERES platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Fault profiles from Deployment annotations, and how the planner reports them (simulator.faults)."""

from __future__ import annotations

import logging
from fractions import Fraction

from test_simulator_world import deployment, plan_for, run_ticks, sim, split_route, virtual_service, world

# --- fault profiles -----------------------------------------------------------------------


def test_error_ratio_annotation_on_the_canary():
    snapshot = world(canary_annotations={sim.ERROR_RATIO_ANNOTATION: "0.05"})
    registry = run_ticks(plan_for([split_route(0, 100)], snapshot), 400)  # 2000 requests
    assert registry.requests(destination_workload="checkout-v3-0-0", response_code="503", response_flags="-") == 100
    assert registry.requests(destination_workload="checkout-v3-0-0", response_code="200") == 1900


def test_invalid_annotation_values_are_reported_and_ignored():
    warnings = []
    bad = deployment(
        "checkout-v3-0-0", "v3.0.0", annotations={sim.ERROR_RATIO_ANNOTATION: "lots", sim.LATENCY_MS_ANNOTATION: "-3"}
    )
    profile = sim.fault_profile(bad, lambda *args: warnings.append(args))
    assert profile == sim.HEALTHY_PROFILE
    assert {w[1] for w in warnings} == {sim.ERROR_RATIO_ANNOTATION, sim.LATENCY_MS_ANNOTATION}
    assert all(w[0] == "Deployment pilot-apps/checkout-v3-0-0" for w in warnings)


def test_planner_logs_an_invalid_value_only_once(caplog):
    planner = sim.Planner(log=logging.getLogger("test-simulator"))
    snapshot = world(
        ("VirtualService", virtual_service([split_route(90, 10)])),
        canary_annotations={sim.ERROR_RATIO_ANNOTATION: "1.5"},
    )
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
