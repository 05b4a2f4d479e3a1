# Copyright (c) 2025, CERES platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The live cluster model and the watch threads that keep it current (simulator.watch)."""

from __future__ import annotations

import json
import logging
import threading

import pytest
from test_simulator_world import deployment, destination, route, sim, split_route, virtual_service

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
            events = [
                {"type": "MODIFIED", "object": modified},
                {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "12"}}},
            ]
            text = "\n".join(json.dumps(e) for e in events) + "\n"
            return FakeResponse(chunks=[text[:25].encode(), text[25:].encode()])  # split mid-line
        if len(calls) == 3:
            return FakeResponse(
                chunks=[json.dumps({"type": "ERROR", "object": {"code": 410, "message": "gone"}}).encode() + b"\n"]
            )
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

    resource = sim.WatchedResource(
        "DestinationRule",
        "destinationrules",
        (("networking.istio.io/v1", v1), ("networking.istio.io/v1beta1", v1beta1)),
    )
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
