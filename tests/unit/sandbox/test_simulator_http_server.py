# Copyright (c) 2025, CERES platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""/metrics and /healthz served from an in-memory model (simulator.http_server)."""

from __future__ import annotations

import logging
import urllib.error
import urllib.request

import pytest
from test_simulator_world import (
    deployment,
    destination_rule,
    parse_exposition,
    select,
    service,
    sim,
    split_route,
    virtual_service,
)

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
        assert _get(base + "/healthz")[0] == 503  # namespaces and NetworkPolicies not listed yet
        model.replace("Namespace", [])
        model.replace("NetworkPolicy", [])
        loop = sim.TrafficLoop(
            model,
            sim.Planner(log=logging.getLogger("test-simulator")),
            sim.TrafficGenerator(registry),
            tick_seconds=0.1,
        )
        for unused_tick in range(40):
            loop.tick(100_000_000)

        assert _get(base + "/healthz")[0] == 200
        status, content_type, body = _get(base + "/metrics")
        assert status == 200 and content_type.startswith("text/plain; version=0.0.4")
        samples = parse_exposition(body)
        totals = {
            dict(labels)["destination_workload"]: value
            for labels, value in select(samples, "istio_requests_total", reporter="destination").items()
        }
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
