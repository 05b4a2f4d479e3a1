"""Scratch canary apps in the sandbox, built the way the demo world is, for gate tests and benchmarks.

Each app has a Service, a DestinationRule with subsets v2-9 / v3-0-0, a stable and a canary
Deployment (one replica each) and a VirtualService with route ``primary`` splitting traffic
between them; the simulator's annotations set the load (``sandbox.ceres.io/rps`` on the
VirtualService) and the canary's faults (on its Deployment). No pytest here: the benchmarks
import it too.
"""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request

from kubernetes import client

ERROR_RATIO_ANNOTATION = "sandbox.ceres.io/error-ratio"
LATENCY_MS_ANNOTATION = "sandbox.ceres.io/latency-ms"
RPS_ANNOTATION = "sandbox.ceres.io/rps"
STABLE_VERSION, CANARY_VERSION = "v2.9", "v3.0.0"
STABLE_SUBSET, CANARY_SUBSET = "v2-9", "v3-0-0"
ISTIO = ("networking.istio.io", "v1")


def canary_workload(app: str) -> str:
    return "%s-%s" % (app, CANARY_SUBSET)


def deployment(namespace: str, app: str, version: str, annotations: dict) -> dict:
    labels = {"app": app, "version": version}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "%s-%s" % (app, version.replace(".", "-")),
            "namespace": namespace,
            "labels": dict(labels),
            "annotations": dict(annotations),
        },
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": dict(labels)},
            "template": {
                "metadata": {"labels": dict(labels)},
                "spec": {"containers": [{"name": app, "image": "registry.ceres.local/%s:%s" % (app, version)}]},
            },
        },
    }


def virtual_service(app: str, canary_weight: int, rps: int) -> dict:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": app, "annotations": {RPS_ANNOTATION: str(rps)}},
        "spec": {
            "hosts": [app],
            "http": [
                {
                    "name": "primary",
                    "route": [
                        {"destination": {"host": app, "subset": STABLE_SUBSET}, "weight": 100 - canary_weight},
                        {"destination": {"host": app, "subset": CANARY_SUBSET}, "weight": canary_weight},
                    ],
                }
            ],
        },
    }


def create_app(kube, namespace: str, app: str, canary_annotations: dict, canary_weight: int, rps: int) -> None:
    """One app of the demo world's shape in ``namespace``."""
    apps_api = client.AppsV1Api(kube)
    custom_api = client.CustomObjectsApi(kube)
    client.CoreV1Api(kube).create_namespaced_service(
        namespace,
        {
            "metadata": {"name": app, "labels": {"app": app}},
            "spec": {"selector": {"app": app}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
        },
    )
    custom_api.create_namespaced_custom_object(
        *ISTIO,
        namespace,
        "destinationrules",
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "DestinationRule",
            "metadata": {"name": app},
            "spec": {
                "host": app,
                "subsets": [
                    {"name": STABLE_SUBSET, "labels": {"version": STABLE_VERSION}},
                    {"name": CANARY_SUBSET, "labels": {"version": CANARY_VERSION}},
                ],
            },
        },
    )
    apps_api.create_namespaced_deployment(namespace, deployment(namespace, app, STABLE_VERSION, {}))
    apps_api.create_namespaced_deployment(namespace, deployment(namespace, app, CANARY_VERSION, canary_annotations))
    # Traffic only once both versions have a pod: no start-up 503s in the first windows.
    for version in (STABLE_VERSION, CANARY_VERSION):
        wait_available(kube, namespace, "%s-%s" % (app, version.replace(".", "-")))
    custom_api.create_namespaced_custom_object(
        *ISTIO, namespace, "virtualservices", virtual_service(app, canary_weight, rps)
    )


def wait_available(kube, namespace: str, name: str, timeout: float = 60) -> None:
    apps_api = client.AppsV1Api(kube)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if apps_api.read_namespaced_deployment_status(name, namespace).status.available_replicas:
            return
        time.sleep(0.2)
    raise TimeoutError("Deployment %s/%s has no available replica after %ss" % (namespace, name, timeout))


def create_namespace(kube, name: str) -> None:
    client.CoreV1Api(kube).create_namespace({"metadata": {"name": name, "labels": {"ceres.io/test": "true"}}})


def delete_namespace(kube, name: str) -> None:
    client.CoreV1Api(kube).delete_namespace(name)


def annotate_canary(kube, namespace: str, app: str, annotations: dict) -> None:
    """Set (a value) or remove (None) annotations of the canary Deployment: the simulator's fault profile."""
    client.AppsV1Api(kube).patch_namespaced_deployment(
        canary_workload(app), namespace, {"metadata": {"annotations": annotations}}
    )


def set_rps(kube, namespace: str, app: str, rps: int) -> None:
    client.CustomObjectsApi(kube).patch_namespaced_custom_object(
        *ISTIO, namespace, "virtualservices", app, {"metadata": {"annotations": {RPS_ANNOTATION: str(rps)}}}
    )


def scale_canary_to_zero(kube, namespace: str, app: str, timeout: float = 60) -> float:
    """Scale the canary to 0 and return the wall-clock time its last pod was gone (and none available)."""
    apps_api = client.AppsV1Api(kube)
    core_api = client.CoreV1Api(kube)
    apps_api.patch_namespaced_deployment_scale(canary_workload(app), namespace, {"spec": {"replicas": 0}})
    selector = "app=%s,version=%s" % (app, CANARY_VERSION)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pods = core_api.list_namespaced_pod(namespace, label_selector=selector).items
        status = apps_api.read_namespaced_deployment_status(canary_workload(app), namespace).status
        if not pods and not status.available_replicas:
            return time.time()
        time.sleep(0.1)
    raise TimeoutError("the canary %s/%s still has pods after %ss" % (namespace, canary_workload(app), timeout))


def instant_query(prometheus_url: str, promql: str):
    """The first value of an instant query as a float, or None for an empty result."""
    url = prometheus_url + "/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(url, timeout=10) as response:
        body = json.load(response)
    if body.get("status") != "success":
        raise RuntimeError("Prometheus query failed: %s" % body)
    result = body["data"]["result"]
    return float(result[0]["value"][1]) if result else None


def wait_for_value(prometheus_url: str, promql: str, predicate, timeout: float, interval: float = 0.5):
    """Poll ``promql`` until ``predicate(value)`` holds; return the value, or raise TimeoutError with the last one."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = instant_query(prometheus_url, promql)
        if last is not None and predicate(last):
            return last
        time.sleep(interval)
    raise TimeoutError("timed out after %ss waiting on %s; last value %r" % (timeout, promql, last))
