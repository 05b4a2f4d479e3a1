# Copyright (c) 2025, CERES platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What the unit tests of the sandbox traffic simulator share; no test lives here.

``sim`` is the simulator package (``sandbox/simulator``) loaded by path, a small world like
the sandbox's pilot namespace builds cluster snapshots and plans, and ``parse_exposition``
reads ``/metrics`` text back.
"""

from __future__ import annotations

import importlib.util
import random
import re
import sys
from fractions import Fraction
from pathlib import Path

SIMULATOR_DIR = Path(__file__).resolve().parents[3] / "sandbox" / "simulator"


def _load_simulator():
    # sandbox/ is not a package of the collection: load the daemon's package by path.
    name = "ceres_sandbox_simulator"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(
        name, SIMULATOR_DIR / "__init__.py", submodule_search_locations=[str(SIMULATOR_DIR)]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


sim = _load_simulator()

NS = "pilot-apps"


# --- a small world like the sandbox's pilot namespace -------------------------------------


def service(name="checkout", namespace=NS, selector=None):
    return {
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"selector": selector if selector is not None else {"app": name}},
    }


def destination_rule(name="checkout", namespace=NS, host="checkout", subsets=None):
    if subsets is None:
        subsets = {"v2-9": {"version": "v2.9"}, "v3-0-0": {"version": "v3.0.0"}}
    return {
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"host": host, "subsets": [{"name": k, "labels": v} for k, v in subsets.items()]},
    }


def deployment(name, version, app="checkout", namespace=NS, available=1, annotations=None):
    status = {} if available is None else {"availableReplicas": available}
    return {
        "metadata": {"name": name, "namespace": namespace, "annotations": annotations or {}},
        "spec": {"template": {"metadata": {"labels": {"app": app, "version": version}}}},
        "status": status,
    }


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
    return {
        "metadata": {"name": name, "namespace": namespace, "annotations": annotations or {}},
        "spec": {"hosts": [name], "http": http},
    }


def world(*extra, canary_available=1, canary_annotations=None):
    objects = [
        ("Service", service()),
        ("DestinationRule", destination_rule()),
        ("Deployment", deployment("checkout-v2-9", "v2.9", available=2)),
        (
            "Deployment",
            deployment("checkout-v3-0-0", "v3.0.0", available=canary_available, annotations=canary_annotations),
        ),
    ]
    return sim.ClusterSnapshot.from_objects(objects + list(extra))


def split_route(stable_weight, canary_weight, host="checkout"):
    return route([destination("v2-9", stable_weight, host), destination("v3-0-0", canary_weight, host)])


def no_warnings(owner, annotation, value, reason):
    raise AssertionError("unexpected warning: %s %s=%r %s" % (owner, annotation, value, reason))


def plan_for(http, snapshot=None, annotations=None, warn=no_warnings):
    snapshot = snapshot or world()
    return sim.plan_virtual_service(virtual_service(http, annotations=annotations), snapshot, sim.DEFAULT_RPS, warn)


def run_ticks(plan, ticks, tick=Fraction(1, 10), seed=0):
    registry = sim.MetricsRegistry()
    generator = sim.TrafficGenerator(registry, random.Random(seed))
    for unused_tick in range(ticks):
        generator.advance([plan], tick)
    return registry


# --- reading the exposition back ----------------------------------------------------------

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
    return {
        labels: value
        for (metric, labels), value in samples.items()
        if metric == name and all((k, v) in labels for k, v in wanted.items())
    }
