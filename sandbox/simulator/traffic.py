# Copyright (c) 2025, CERES platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Traffic: the steady, deterministic load and the loop that sends it.

Exact fractional accumulators (rates, weight splits, error ratios), the log-normal latency
sampler, :class:`TrafficGenerator` (plans to metrics) and :class:`TrafficLoop` (one step per
tick, plans rebuilt when the cluster model changed).
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections.abc import Iterable, Sequence
from fractions import Fraction
from typing import Any

from .metrics import SOURCE_REPORTER_ONLY, Labels, MetricsRegistry
from .routing import Planner, Target, VirtualServicePlan
from .watch import ClusterModel, short_error

LOG = logging.getLogger("simulator")

LATENCY_SIGMA = 0.25
"""Shape of the log-normal latency: the standard deviation of ``ln(duration)``."""
NO_HEALTHY_UPSTREAM_LATENCY_MS = 0.2
CONNECT_TIMEOUT_MS = 10_000.0
"""A connection a NetworkPolicy drops fails when Istio's connect timeout (10 s by default) ends."""
MAX_TICK_GAP_SECONDS = 10
NAMESPACE_GONE_SECONDS = 120
"""Series of a namespace without any VirtualService for this long are dropped, as the series of
proxies that went away drop out of a real mesh: /metrics stays the size of the live world."""
"""A longer pause of the traffic loop (a suspended machine) is not made up for."""


# --- deterministic accumulators -----------------------------------------------------------


class FractionalCounter:
    """Turns a stream of fractional amounts into whole counts without drift.

    ``take(amount)`` returns the whole part of everything added so far that has not been
    handed out yet; the fraction is carried to the next call. Exact (``Fraction``), so
    0.02 of 5000 requests taken five at a time is 100, not 99.
    """

    __slots__ = ("carry",)

    def __init__(self) -> None:
        self.carry = Fraction(0)

    def take(self, amount: Fraction) -> int:
        total = self.carry + amount
        whole = math.floor(total)
        self.carry = total - whole
        return whole


class WeightedSplitter:
    """Splits request counts over keys by weight, exactly in the long run, without randomness.

    Each key has its own fractional counter: over any run, a key's total is the floor of
    its exact share (so 30/70 of 500 is 150/350), and a key of weight 0 gets nothing.
    Requests not handed out in a tick stay in the counters and come out later.
    """

    def __init__(self) -> None:
        self._counters: dict[Any, FractionalCounter] = {}

    def split(self, total: int, weights: Iterable[tuple[Any, Any]]) -> dict[Any, int]:
        """Share ``total`` requests over ``(key, weight)`` pairs; repeated keys are merged."""
        merged: dict[Any, Fraction] = {}
        for key, weight in weights:
            merged[key] = merged.get(key, Fraction(0)) + Fraction(weight)
        weight_sum = sum(merged.values())
        counts = {}
        for key, weight in merged.items():
            counter = self._counters.setdefault(key, FractionalCounter())
            counts[key] = counter.take(total * weight / weight_sum) if weight_sum > 0 else 0
        return counts

    def forget_except(self, keys: Iterable[Any]) -> None:
        """Drop the counters of keys that are gone."""
        keep = set(keys)
        for key in list(self._counters):
            if key not in keep:
                del self._counters[key]


# --- latency ------------------------------------------------------------------------------


class LatencySampler:
    """Log-normal request durations: median ``latency_ms``, shape ``LATENCY_SIGMA``."""

    def __init__(self, rng: random.Random, sigma: float = LATENCY_SIGMA):
        self._rng = rng
        self._sigma = sigma

    def draw(self, median_ms: float, count: int) -> list[float]:
        mu = math.log(median_ms)
        sigma = self._sigma
        gauss = self._rng.gauss
        exp = math.exp
        return [exp(mu + sigma * gauss(0.0, 1.0)) for unused_index in range(count)]


def expected_latency_quantile(median_ms: float, z_score: float, sigma: float = LATENCY_SIGMA) -> float:
    """The quantile of the latency model at a standard normal ``z_score`` (1.6449 for p95)."""
    return median_ms * math.exp(z_score * sigma)


# --- traffic ------------------------------------------------------------------------------


class TrafficGenerator:
    """Sends the planned steady load for a stretch of time into a MetricsRegistry."""

    def __init__(
        self,
        registry: MetricsRegistry,
        rng: random.Random | None = None,
        namespace_gone_seconds: float = NAMESPACE_GONE_SECONDS,
    ):
        self.registry = registry
        self._latency = LatencySampler(rng or random.Random(0))
        self._arrivals: dict[tuple[str, str], FractionalCounter] = {}
        self._splitter = WeightedSplitter()
        self._errors: dict[Labels, FractionalCounter] = {}
        self._namespace_gone_seconds = Fraction(namespace_gone_seconds)
        self._namespaces_absent_for: dict[str, Fraction] = {}

    def advance(self, plans: Sequence[VirtualServicePlan], elapsed_seconds: Fraction) -> None:
        """Generate ``elapsed_seconds`` worth of requests for every plan."""
        for plan in plans:
            self._serve(plan, elapsed_seconds)
        self._forget_gone(plans)
        self._forget_gone_namespaces(plans, elapsed_seconds)

    def _forget_gone_namespaces(self, plans: Sequence[VirtualServicePlan], elapsed_seconds: Fraction) -> None:
        present = {plan.namespace for plan in plans}
        absent_for = {}
        for namespace in self.registry.namespaces():
            if namespace in present:
                continue
            absent_for[namespace] = self._namespaces_absent_for.get(namespace, Fraction(0)) + elapsed_seconds
            if absent_for[namespace] >= self._namespace_gone_seconds:
                dropped = self.registry.forget_namespace(namespace)
                del absent_for[namespace]
                LOG.info(
                    "namespace %s has had no VirtualService for %gs: dropped its %d series",
                    namespace,
                    float(self._namespace_gone_seconds),
                    dropped,
                )
        self._namespaces_absent_for = absent_for

    def _serve(self, plan: VirtualServicePlan, elapsed_seconds: Fraction) -> None:
        arrivals = self._arrivals.setdefault(plan.key, FractionalCounter())
        requests = arrivals.take(plan.rps * elapsed_seconds)
        if requests <= 0 or not plan.targets:
            return
        counts = self._splitter.split(requests, [((plan.key, target.labels), target.weight) for target in plan.targets])
        served = set()
        for target in plan.targets:
            key = (plan.key, target.labels)
            if key not in served:
                served.add(key)
                self.serve_target(target, counts[key])

    def serve_target(self, target: Target, requests: int) -> None:
        """Answer ``requests`` requests sent to one target, following its fault profile."""
        if requests <= 0:
            return
        if not target.healthy:
            latency = CONNECT_TIMEOUT_MS if target.response_flags == "UF" else NO_HEALTHY_UPSTREAM_LATENCY_MS
            self.registry.observe(
                target.labels, "503", target.response_flags, [latency] * requests, reporters=SOURCE_REPORTER_ONLY
            )
            return
        profile = target.profile
        errors = self._errors.setdefault(target.labels, FractionalCounter()).take(requests * profile.error_ratio)
        errors = min(errors, requests)
        durations = self._latency.draw(profile.latency_ms, requests)
        self.registry.observe(target.labels, "503", "-", durations[:errors])
        self.registry.observe(target.labels, "200", "-", durations[errors:])

    def _forget_gone(self, plans: Sequence[VirtualServicePlan]) -> None:
        current = {plan.key for plan in plans}
        for key in list(self._arrivals):
            if key not in current:
                del self._arrivals[key]
        self._splitter.forget_except((plan.key, target.labels) for plan in plans for target in plan.targets)
        targets = {target.labels for plan in plans for target in plan.targets}
        for labels in list(self._errors):
            if labels not in targets:
                del self._errors[labels]


# --- the traffic loop ---------------------------------------------------------------------


class TrafficLoop:
    """Every tick: rebuild the plans if the model changed, then generate the elapsed load."""

    def __init__(
        self,
        model: ClusterModel,
        planner: Planner,
        generator: TrafficGenerator,
        tick_seconds: float,
        log: logging.Logger = LOG,
    ):
        self.model = model
        self.planner = planner
        self.generator = generator
        self.tick_ns = max(int(tick_seconds * 1e9), 1_000_000)
        self._log = log
        self._generation = -1
        self._plans: list[VirtualServicePlan] = []
        self._reported_errors: set = set()

    def run(self, stop: threading.Event) -> None:
        last = time.monotonic_ns()
        next_tick = last
        while not stop.is_set():
            next_tick += self.tick_ns
            delay = (next_tick - time.monotonic_ns()) / 1e9
            if delay > 0 and stop.wait(delay):
                return
            now = time.monotonic_ns()
            if now - next_tick > self.tick_ns:  # late by more than a tick: do not try to catch up
                next_tick = now
            self.tick(now - last)
            last = now

    def tick(self, elapsed_ns: int) -> None:
        """One step; errors are logged once per message and never stop the loop."""
        try:
            if not self.model.is_loaded():
                return
            if self.model.generation != self._generation:
                self._generation, snapshot = self.model.snapshot()
                self._plans = self.planner.build(snapshot)
            if elapsed_ns > MAX_TICK_GAP_SECONDS * 1_000_000_000:
                self._log.warning("traffic loop paused for %.1fs; not making up for it", elapsed_ns / 1e9)
                elapsed_ns = self.tick_ns
            self.generator.advance(self._plans, Fraction(elapsed_ns, 1_000_000_000))
        except Exception as error:  # pylint: disable=broad-except  # keep simulating
            message = short_error(error)
            if message not in self._reported_errors:
                self._reported_errors.add(message)
                self._log.error("traffic tick failed: %s", message)
