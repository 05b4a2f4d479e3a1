"""The unit tests' fake API server (tests/unit/k8s_stub.py) keeps the API server's rules the code
under test relies on, directly and over HTTP."""

from __future__ import annotations

import threading

import pytest
from k8s_stub import (
    CONFIGMAP_LIMIT,
    VS_PATH,
    FakeKubeApi,
    Fault,
    configmap_path,
    deployment,
    entry,
    lease_path,
    object_path,
)

from ansible_collections.ceres.rollout.plugins.module_utils.k8s.client import K8sClient
from ansible_collections.ceres.rollout.plugins.module_utils.k8s.errors import (
    BadRequest,
    Conflict,
    Invalid,
    K8sConnectionError,
    NotFound,
)


def lease(name: str = "ceres-rollout", namespace: str = "ceres-system") -> dict:
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {},
    }


def test_a_post_creates_and_a_second_post_of_the_name_is_already_exists():
    api = FakeKubeApi()
    created = api.post("/apis/coordination.k8s.io/v1/namespaces/ceres-system/leases", lease())
    assert created["metadata"]["resourceVersion"] == "101"
    with pytest.raises(Conflict) as raised:
        api.post("/apis/coordination.k8s.io/v1/namespaces/ceres-system/leases", lease())
    assert raised.value.reason == "AlreadyExists"


def test_a_put_with_a_stale_resource_version_is_a_conflict():
    api = FakeKubeApi()
    created = api.post("/apis/coordination.k8s.io/v1/namespaces/ceres-system/leases", lease())
    api.put(lease_path(), created)
    with pytest.raises(Conflict):
        api.put(lease_path(), created)


def test_missing_objects_namespaces_and_resource_types_are_told_apart():
    api = FakeKubeApi()
    with pytest.raises(NotFound) as missing_object:
        api.get(lease_path())
    assert missing_object.value.details == {"name": "ceres-rollout", "kind": "leases"}
    with pytest.raises(NotFound) as missing_namespace:
        api.post("/apis/coordination.k8s.io/v1/namespaces/elsewhere/leases", lease(namespace="elsewhere"))
    assert missing_namespace.value.details["kind"] == "namespaces"
    with pytest.raises(NotFound) as not_served:
        api.get("/apis/coordination.k8s.io/v1beta1/namespaces/ceres-system/leases/x")
    assert not_served.value.resource_type_missing


def test_a_configmap_over_one_mebibyte_is_invalid():
    api = FakeKubeApi()
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "big"}, "data": {"a": "x" * CONFIGMAP_LIMIT}}
    api.post("/api/v1/namespaces/ceres-system/configmaps", body)
    body["data"]["b"] = "y"
    with pytest.raises(Invalid):
        api.put(configmap_path(name="big"), dict(body, metadata=api.get(configmap_path(name="big"))["metadata"]))


def test_held_reads_meet_at_the_barrier_after_reading():
    api = FakeKubeApi()
    api.post("/apis/coordination.k8s.io/v1/namespaces/ceres-system/leases", lease())
    barrier = threading.Barrier(2, timeout=5)
    api.hold_reads(barrier)
    versions = []
    threads = [
        threading.Thread(target=lambda: versions.append(api.get(lease_path())["metadata"]["resourceVersion"]))
        for _reader in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert versions == ["101", "101"]
    api.get(lease_path())  # no longer held


def virtual_service(namespace="pilot-apps", name="checkout"):
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": name, "namespace": namespace, "resourceVersion": "7"},
        "spec": {"hosts": ["checkout"], "http": [{"name": "primary", "route": [entry("checkout", "v2-9", 100)]}]},
    }


def test_an_object_is_stored_once_and_answered_at_every_served_version():
    api = FakeKubeApi(virtual_service(), served={"virtualservices": ("networking.istio.io/v1beta1",)})
    beta = VS_PATH.replace("/v1/", "/v1beta1/")
    assert api.get(beta)["metadata"]["resourceVersion"] == "7"
    with pytest.raises(NotFound) as not_served:
        api.get(VS_PATH)
    assert not_served.value.resource_type_missing
    written = api.put(beta, api.get(beta))
    assert written["metadata"]["resourceVersion"] == "8" and api.objects[VS_PATH] == written


def test_rival_writers_and_forced_conflicts():
    api = FakeKubeApi(virtual_service())
    api.before_write.append(lambda fake: fake.rival_put(VS_PATH, lambda vs: vs["spec"].update(hosts=["rival"])))
    with pytest.raises(Conflict):
        api.put(VS_PATH, api.get(VS_PATH))
    assert api.objects[VS_PATH]["spec"]["hosts"] == ["rival"]
    api.conflicts["checkout"] = 1
    with pytest.raises(Conflict):
        api.put(VS_PATH, api.get(VS_PATH))
    assert api.put(VS_PATH, api.get(VS_PATH))["metadata"]["resourceVersion"] == "9"
    assert [method for method, _path in api.writes()] == ["PUT", "PUT", "PUT"]


def test_namespaces_lists_and_a_missing_namespace():
    api = FakeKubeApi(deployment("ns-a", "web", labels={"app": "web"}), deployment("ns-b", "db", labels={"app": "db"}))
    assert api.get("/api/v1/namespaces/ns-a")["metadata"]["name"] == "ns-a"
    with pytest.raises(NotFound) as missing:
        api.get("/api/v1/namespaces/nope")
    assert missing.value.details == {"name": "nope", "kind": "namespaces"}
    everywhere = api.get(object_path("deployments"), {"labelSelector": "app!=db"})
    assert [item["metadata"]["name"] for item in everywhere["items"]] == ["web"]
    assert api.get(object_path("deployments", "ns-b"))["items"][0]["metadata"]["name"] == "db"


def test_a_patch_of_the_template_annotations_rolls_the_workload_out_after_rollout_reads_lists():
    api = FakeKubeApi(deployment("ns-a", "web"))
    api.rollout_reads = 2
    patch = {"spec": {"template": {"metadata": {"annotations": {"restarted": "now"}}}}}
    patched = api.patch(object_path("deployments", "ns-a", "web"), patch, patch_type="strategic")
    assert patched["metadata"]["generation"] == 2
    api.patch(object_path("deployments", "ns-a", "web"), patch, patch_type="strategic")  # no change: no generation
    replicas = [api.get(object_path("deployments", "ns-a"))["items"][0]["status"]["replicas"] for _list in range(3)]
    assert replicas == [2, 1, 1]  # a new replica beside the old one, then rolled out
    assert api.object("deployments", "ns-a", "web")["status"]["observedGeneration"] == 2


def test_the_call_limit_refuses_calls_beyond_it():
    api = FakeKubeApi(virtual_service())
    api.call_limit = 2
    api.get(VS_PATH)
    api.get(VS_PATH)
    with pytest.raises(BadRequest, match="call_limit"):
        api.get(VS_PATH)


def test_a_held_request_is_answered_only_once_released():
    api = FakeKubeApi(virtual_service())
    api.serve()
    release = threading.Event()
    hang = Fault.hold(release, timeout=30)
    api.fault = lambda method, path, number: hang if number == 1 else None
    try:
        client = K8sClient.from_auth({"host": api.url, "api_key": "token", "timeout": 0.5})
        with pytest.raises(K8sConnectionError, match="no answer from the API server"):
            client.get(VS_PATH)
        assert hang.held == 1  # the client gave up; the server still holds the request
    finally:
        release.set()
        api.stop()
    assert hang.expired == 0
