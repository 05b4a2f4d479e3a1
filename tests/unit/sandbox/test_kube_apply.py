"""The sandbox's small API client waits through the states a fresh API server really returns."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

SANDBOX_DIR = Path(__file__).resolve().parents[3] / "sandbox"


@pytest.fixture()
def kube_apply(monkeypatch):
    monkeypatch.syspath_prepend(str(SANDBOX_DIR))
    spec = importlib.util.spec_from_file_location("ceres_sandbox_kube_apply", SANDBOX_DIR / "manager" / "kube_apply.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module.time, "sleep", lambda _seconds: None)
    return module


def _client(kube_apply, responses):
    client = kube_apply.Client.__new__(kube_apply.Client)
    replies = iter(responses)
    client.request = lambda *_args, **_kwargs: next(replies)
    return client


@pytest.mark.parametrize(
    "early",
    [
        {"metadata": {"name": "x"}},
        {"status": None},
        {"status": {"conditions": None}},  # what CI met: the CRD exists, its conditions are not set yet
        {"status": {"conditions": [{"type": "NamesAccepted", "status": "True"}]}},
    ],
)
def test_crd_wait_keeps_polling_until_established(kube_apply, early):
    established = {"status": {"conditions": [{"type": "Established", "status": "True"}]}}
    client = _client(kube_apply, [early, early, established])
    client.wait_crd_established("virtualservices.networking.istio.io", timeout=5)


def test_crd_wait_times_out_naming_the_crd(kube_apply):
    client = _client(kube_apply, iter(lambda: {"status": {"conditions": None}}, None))
    with pytest.raises(TimeoutError, match="CRD virtualservices.networking.istio.io to be established"):
        client.wait_crd_established("virtualservices.networking.istio.io", timeout=0.01)


def test_node_and_deployment_waits_tolerate_null_status(kube_apply):
    nodes_pending = {"items": [{"status": {"conditions": None}}]}
    nodes_ready = {"items": [{"status": {"conditions": [{"type": "Ready", "status": "True"}]}}]}
    _client(kube_apply, [nodes_pending, nodes_ready]).wait_nodes_ready(1, timeout=5)

    deployment = {"metadata": {"generation": 1}, "spec": {"replicas": 2}}
    pending = {"items": [dict(deployment, status=None)]}
    available = {"items": [dict(deployment, status={"availableReplicas": 2, "observedGeneration": 1})]}
    _client(kube_apply, [pending, available]).wait_deployments_available(timeout=5)


def _flaky_client(kube_apply, failures, result):
    """A client whose requests raise `failures` in turn, then return `result`; and its call log."""
    client = kube_apply.Client.__new__(kube_apply.Client)
    calls = []

    def request(*args, **_kwargs):
        calls.append(args)
        if len(calls) <= len(failures):
            raise failures[len(calls) - 1]
        return result

    client.request = request
    return client, calls


VIRTUAL_SERVICE = {"kind": "VirtualService", "metadata": {"name": "checkout", "namespace": "pilot-apps"}}
NAMESPACE = {"kind": "Namespace", "metadata": {"name": "pilot-apps"}}


def test_apply_retries_a_custom_resource_until_discovery_serves_it(kube_apply):
    client, calls = _flaky_client(
        kube_apply,
        [
            kube_apply.ApiError(404, "the server could not find the requested resource"),
            kube_apply.ApiError(503, "unavailable"),
            ConnectionResetError("reset"),
        ],
        {"ok": True},
    )
    assert client.apply(VIRTUAL_SERVICE) == {"ok": True}
    assert len(calls) == 4
    assert calls[-1][0] == "PATCH" and "fieldManager=ceres-sandbox" in calls[-1][1]


@pytest.mark.parametrize(
    ("obj", "failure", "timeout", "message"),
    [
        (VIRTUAL_SERVICE, (422, "spec.http: Invalid"), 30, "applying VirtualService checkout: HTTP 422"),
        (NAMESPACE, (404, "not found"), 30, "applying Namespace pilot-apps: HTTP 404"),
        (NAMESPACE, (503, "down"), 0.0, "applying Namespace pilot-apps: HTTP 503"),
    ],
    ids=["real-rejection", "builtin-404", "past-deadline"],
)
def test_apply_stops_at_once_on_a_real_error_or_past_its_deadline(kube_apply, obj, failure, timeout, message):
    client, calls = _flaky_client(kube_apply, [kube_apply.ApiError(*failure)] * 1000, {})
    with pytest.raises(kube_apply.ApiError, match=message):
        client.apply(obj, timeout=timeout)
    assert len(calls) == 1
