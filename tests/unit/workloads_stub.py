"""The unit tests' stand-in for the Kubernetes API of workloads (rollout_restart, workload_health).

``FakeWorkloadApi`` keeps namespaces, Deployments, StatefulSets, DaemonSets, ReplicaSets and
pods in memory, with the API server's rules that matter here: a strategic-merge patch of the
pod template's annotations bumps ``metadata.generation`` only when it changes something,
lists honour a simple label selector (``k=v``, ``k!=v``, ``k``), a missing object or
namespace is a 404. A tiny "controller" rolls a changed workload out after ``rollout_reads``
lists of its kind (``never_ready`` names never finish). Tests of module_utils hand it to the
code directly (it speaks K8sClient's ``get``/``patch``); tests of the modules ``serve()`` it
over HTTP with the shared ``k8s_stub.Fault`` faults, so the real K8sClient and the modules'
``main()`` talk to it. ``conflicts[name] = n`` answers the next n patches of ``name`` with 409.
"""

from __future__ import annotations

import copy
import json
import threading
import time
import typing as t
import uuid
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

from k8s_stub import QuietHTTPServer

from ansible_collections.ceres.rollout.plugins.module_utils.k8s_errors import (
    Conflict,
    K8sError,
    NotFound,
)

PLURAL_KINDS = {
    "deployments": "Deployment",
    "statefulsets": "StatefulSet",
    "daemonsets": "DaemonSet",
    "replicasets": "ReplicaSet",
    "pods": "Pod",
}
WORKLOAD_PLURALS = ("deployments", "statefulsets", "daemonsets")


def _metadata(namespace, name, labels=None, owner=None):
    metadata = {
        "namespace": namespace,
        "name": name,
        "uid": str(uuid.uuid4()),
        "labels": dict(labels or {}),
        "generation": 1,
        "resourceVersion": "1",
        "creationTimestamp": "2026-01-01T00:00:00Z",
    }
    if owner is not None:
        metadata["ownerReferences"] = [
            {
                "kind": owner["kind"],
                "name": owner["metadata"]["name"],
                "uid": owner["metadata"]["uid"],
                "controller": True,
            }
        ]
    return metadata


def deployment(namespace, name, replicas=1, labels=None, paused=False, annotations=None):
    obj = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(namespace, name, labels),
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}, "annotations": dict(annotations or {})},
                "spec": {"containers": [{"name": "app", "image": "app:1"}]},
            },
        },
    }
    if paused:
        obj["spec"]["paused"] = True
    return obj


def statefulset(namespace, name, replicas=1, labels=None, strategy="RollingUpdate"):
    obj = deployment(namespace, name, replicas, labels)
    obj["kind"] = "StatefulSet"
    obj["spec"]["updateStrategy"] = {"type": strategy}
    return obj


def daemonset(namespace, name, labels=None, strategy="RollingUpdate", nodes=3):
    obj = deployment(namespace, name, None, labels)
    obj["kind"] = "DaemonSet"
    del obj["spec"]["replicas"]
    obj["spec"]["updateStrategy"] = {"type": strategy}
    obj["_nodes"] = nodes
    return obj


def rolled_out_status(obj):
    generation = obj["metadata"]["generation"]
    if obj["kind"] == "DaemonSet":
        nodes = obj.get("_nodes", 3)
        return {
            "observedGeneration": generation,
            "desiredNumberScheduled": nodes,
            "currentNumberScheduled": nodes,
            "updatedNumberScheduled": nodes,
            "numberAvailable": nodes,
            "numberReady": nodes,
        }
    replicas = obj["spec"].get("replicas", 1)
    status = {
        "observedGeneration": generation,
        "replicas": replicas,
        "updatedReplicas": replicas,
        "readyReplicas": replicas,
        "availableReplicas": replicas,
    }
    if obj["kind"] == "StatefulSet":
        status.update(
            currentRevision="%s-%d" % (obj["metadata"]["name"], generation),
            updateRevision="%s-%d" % (obj["metadata"]["name"], generation),
        )
    return status


def in_progress_status(obj):
    """Observed, one new replica created, nothing of it available yet, the old ones still there."""
    generation = obj["metadata"]["generation"]
    if obj["kind"] == "DaemonSet":
        nodes = obj.get("_nodes", 3)
        return {
            "observedGeneration": generation,
            "desiredNumberScheduled": nodes,
            "currentNumberScheduled": nodes,
            "updatedNumberScheduled": 0,
            "numberAvailable": nodes - 1,
            "numberReady": nodes - 1,
        }
    replicas = obj["spec"].get("replicas", 1)
    status = {
        "observedGeneration": generation,
        "replicas": replicas + 1,
        "updatedReplicas": 1,
        "readyReplicas": replicas,
        "availableReplicas": replicas,
    }
    if obj["kind"] == "StatefulSet":
        status.update(
            currentRevision="%s-%d" % (obj["metadata"]["name"], generation - 1),
            updateRevision="%s-%d" % (obj["metadata"]["name"], generation),
        )
    return status


def replicaset_of(owner, suffix="5d8f9"):
    obj = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": _metadata(
            owner["metadata"]["namespace"], "%s-%s" % (owner["metadata"]["name"], suffix), owner=owner
        ),
    }
    return obj


def container_status(name="app", restarts=0, waiting=None, ready=True, last_finished=None, started=None, message=None):
    entry = {"name": name, "image": "app:1", "ready": ready, "restartCount": restarts}
    if waiting:
        entry["state"] = {"waiting": {"reason": waiting}}
        if message:
            entry["state"]["waiting"]["message"] = message
    else:
        entry["state"] = {"running": {"startedAt": started or "2026-01-01T00:00:05Z"}}
    if last_finished:
        entry["lastState"] = {"terminated": {"reason": "Error", "exitCode": 1, "finishedAt": last_finished}}
    return entry


def pod_of(owner, name, containers=None, init_containers=None, created="2026-01-01T00:00:00Z", ready=True):
    obj = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": _metadata(owner["metadata"]["namespace"], name, owner=owner),
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "containerStatuses": list(containers if containers is not None else [container_status()]),
        },
    }
    obj["metadata"]["creationTimestamp"] = created
    if init_containers:
        obj["status"]["initContainerStatuses"] = list(init_containers)
    return obj


def matches(labels, selector):
    for term in (selector or "").split(","):
        term = term.strip()
        if not term:
            continue
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key.strip()) == value.strip():
                return False
        elif "=" in term:
            key, value = term.split("=", 1)
            if labels.get(key.strip().rstrip("=")) != value.strip().lstrip("="):
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


class FakeWorkloadApi:
    """Namespaces, workloads, ReplicaSets and pods in memory; K8sClient's ``get``/``patch``."""

    def __init__(self, namespaces=()):
        self.namespaces = set(namespaces)
        self.objects: dict[tuple[str, str, str], dict] = {}  # (plural, namespace, name) -> object
        self.pending: dict[tuple[str, str, str], int] = {}  # lists left before a rollout completes
        self.calls: list[tuple[str, str]] = []
        self.patches: list[tuple[str, t.Any]] = []  # (path, body) of every patch that reached the API
        self.conflicts: dict[str, int] = {}
        self.never_ready: set[str] = set()
        self.rollout_reads = 1
        self.fault = None
        self.deadline = None
        self.httpd = None
        self.url = None
        self._lock = threading.RLock()

    # -- building the world

    def add(self, obj, ready=True):
        plural = {kind: plural for plural, kind in PLURAL_KINDS.items()}[obj["kind"]]
        namespace = obj["metadata"]["namespace"]
        self.namespaces.add(namespace)
        if plural in WORKLOAD_PLURALS:
            obj["status"] = rolled_out_status(obj) if ready else in_progress_status(obj)
            if not ready:
                self.never_ready.add(obj["metadata"]["name"])
        self.objects[(plural, namespace, obj["metadata"]["name"])] = obj
        return obj

    def workload(self, plural, namespace, name):
        return self.objects[(plural, namespace, name)]

    def template_annotations(self, plural, namespace, name):
        return self.workload(plural, namespace, name)["spec"]["template"]["metadata"].get("annotations") or {}

    def patch_calls(self):
        return [call for call in self.calls if call[0] == "PATCH"]

    # -- the controller

    def _progress(self, plural, namespace):
        for key in list(self.pending):
            if key[0] != plural or (namespace is not None and key[1] != namespace):
                continue
            obj = self.objects.get(key)
            if obj is None:
                del self.pending[key]
                continue
            if obj["metadata"]["name"] in self.never_ready:
                obj["status"] = in_progress_status(obj)
                continue
            self.pending[key] -= 1
            if self.pending[key] <= 0:
                obj["status"] = rolled_out_status(obj)
                del self.pending[key]
            else:
                obj["status"] = in_progress_status(obj)

    # -- the API, as K8sClient speaks it

    def _parse(self, method, path):
        parts = [part for part in urlsplit(path).path.split("/") if part]
        parts = parts[2:] if parts[0] == "api" else parts[3:]  # drop api/v1 or apis/group/version
        namespace = None
        if parts[0] == "namespaces" and len(parts) >= 3:
            namespace, parts = parts[1], parts[2:]
            if namespace not in self.namespaces:
                raise NotFound(
                    '%s %s: 404 NotFound: namespaces "%s" not found' % (method, path, namespace),
                    status=404,
                    reason="NotFound",
                    details={"name": namespace, "kind": "namespaces"},
                )
        plural = parts[0]
        name = parts[1] if len(parts) > 1 else None
        return plural, namespace, name

    def get(self, path, query=None):
        with self._lock:
            self.calls.append(("GET", path))
            plural, namespace, name = self._parse("GET", path)
            if plural == "namespaces":
                if name not in self.namespaces:
                    raise NotFound(
                        'GET %s: 404 NotFound: namespaces "%s" not found' % (path, name),
                        status=404,
                        reason="NotFound",
                        details={"name": name, "kind": "namespaces"},
                    )
                return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
            if name is not None:
                obj = self.objects.get((plural, namespace, name))
                if obj is None:
                    raise NotFound(
                        'GET %s: 404 NotFound: %s "%s" not found' % (path, plural, name),
                        status=404,
                        reason="NotFound",
                        details={"name": name, "kind": plural},
                    )
                return self._public(obj)
            self._progress(plural, namespace)
            selector = (query or {}).get("labelSelector")
            items = [
                self._public(obj)
                for (kind, item_namespace, _name), obj in sorted(self.objects.items())
                if kind == plural
                and (namespace is None or item_namespace == namespace)
                and matches(obj["metadata"].get("labels") or {}, selector)
            ]
            return {"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": "1"}, "items": items}

    def patch(self, path, body, patch_type="json", query=None, idempotent=False):
        with self._lock:
            self.calls.append(("PATCH", path))
            self.patches.append((path, copy.deepcopy(body)))
            assert patch_type == "strategic", patch_type
            plural, namespace, name = self._parse("PATCH", path)
            obj = self.objects.get((plural, namespace, name))
            if obj is None:
                raise NotFound(
                    "PATCH %s: 404 NotFound" % path,
                    status=404,
                    reason="NotFound",
                    details={"name": name, "kind": plural},
                )
            if self.conflicts.get(name):
                self.conflicts[name] -= 1
                raise Conflict(
                    "PATCH %s: 409 Conflict: the object has been modified; please apply your changes "
                    "to the latest version and try again" % path,
                    status=409,
                    reason="Conflict",
                )
            assert set(body) == {"spec"} and set(body["spec"]) == {"template"}, body
            assert set(body["spec"]["template"]) == {"metadata"}, body
            assert set(body["spec"]["template"]["metadata"]) == {"annotations"}, body
            annotations = obj["spec"]["template"]["metadata"].setdefault("annotations", {})
            before = dict(annotations)
            for key, value in body["spec"]["template"]["metadata"]["annotations"].items():
                if value is None:
                    annotations.pop(key, None)
                else:
                    annotations[key] = value
            if annotations != before:
                obj["metadata"]["generation"] += 1
                obj["metadata"]["resourceVersion"] = str(int(obj["metadata"]["resourceVersion"]) + 1)
                status = dict(obj["status"])  # the controller has not seen it yet
                obj["status"] = status
                self.pending[(plural, namespace, name)] = self.rollout_reads
            return self._public(obj)

    @staticmethod
    def _public(obj):
        answer = copy.deepcopy(obj)
        answer.pop("_nodes", None)
        return answer

    # -- over HTTP

    def serve(self) -> str:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _send(self, status, body, content_type="application/json"):
                payload = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                with fake._lock:
                    number = len(fake.calls) + 1
                fault = fake.fault(self.command, self.path, number) if fake.fault else None
                if fault is not None and fault.kind == "delay":
                    time.sleep(fault.seconds)
                elif fault is not None and fault.kind == "barrier":
                    fault.barrier.wait()
                elif fault is not None and fault.kind == "drop":
                    fake.calls.append((self.command, self.path))
                    self.close_connection = True
                    self.connection.close()
                    return None
                elif fault is not None and fault.kind == "status":
                    fake.calls.append((self.command, self.path))
                    return self._send(
                        fault.status_code,
                        {
                            "kind": "Status",
                            "status": "Failure",
                            "code": fault.status_code,
                            "reason": "ServiceUnavailable" if fault.status_code == 503 else "InternalError",
                            "message": "injected fault",
                        },
                    )
                query = {key: values[0] for key, values in parse_qs(urlsplit(self.path).query).items()}
                path = urlsplit(self.path).path
                try:
                    if self.command == "GET":
                        answer = fake.get(path, query)
                    else:
                        kinds = {"application/strategic-merge-patch+json": "strategic"}
                        answer = fake.patch(path, body, kinds.get(self.headers.get("Content-Type"), "other"))
                except K8sError as error:
                    return self._send(
                        error.status,
                        {
                            "kind": "Status",
                            "status": "Failure",
                            "code": error.status,
                            "reason": error.reason,
                            "message": str(error),
                            "details": error.details,
                        },
                    )
                return self._send(200, answer)

            do_GET = do_PATCH = _handle

            def log_message(self, *args):
                pass

        self.httpd = QuietHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        return self.url

    def stop(self):
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
