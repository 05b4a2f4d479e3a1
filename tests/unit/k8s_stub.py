"""The unit tests' one stand-in for the Kubernetes API server, and their one way to run a module's main().

``FakeKubeApi`` keeps objects in memory, by path, with the API server's rules that the code under
test relies on:

* a resource is served at the API versions in ``served`` (an object is stored once and answered
  at any of them); a path at another version, or of a resource not served at all, is a 404
  without an API ``Status`` ("404 page not found": the resource type is missing);
* a missing object is a 404 ``NotFound`` naming it; a POST into a missing namespace is a 404
  naming the namespace; ``GET /api/v1/namespaces/<name>`` tells whether a namespace exists;
* a POST of an existing name is a 409 ``AlreadyExists``, a PUT with a stale ``resourceVersion``
  a 409 ``Conflict``; a create takes the next of a store-wide counter (101, 102...), an update
  the object's ``resourceVersion`` plus one; a ConfigMap over 1 MiB is a 422 ``Invalid``;
* a list honours a label selector (``k=v``, ``k!=v``, ``k``, ``!k``), across every namespace
  when the path names none;
* Deployments, StatefulSets and DaemonSets take a strategic-merge patch of their pod template's
  annotations (nothing else), which bumps ``metadata.generation`` only when it changes
  something; a tiny controller rolls a changed workload out after ``rollout_reads`` lists of
  its kind (names in ``never_ready`` never finish).

What a test arranges: rival writers as callables in ``before_write`` (run before a write is
checked) and ``after_write`` (after it landed), or ``rival_put()``; ``conflicts[name] = n``
answers the next n writes of ``name`` with 409, ``always_conflict`` every write; readers made to
overlap with ``hold_reads(barrier)``; a ``fault`` per HTTP request (``Fault.status(503)``,
``Fault.delay(2)``, ``Fault.hold(event)``, ``Fault.wait_for(barrier)``, ``Fault.drop()``); and a
``call_limit`` beyond which every call is refused, so code that never stops calling fails the
test instead of hanging it.

What a test reads: ``calls`` ((METHOD, path) of every call that reached the API, faults
included), ``writes()``, ``patches`` ((path, body) of every PATCH), ``authorizations`` (the
Authorization headers seen over HTTP) and ``objects`` by path (``object_path()``, ``VS_PATH``,
``lease_path()``, ``configmap_path()``; ``object()`` for short).

Tests of module_utils hand the fake to the code directly: it speaks K8sClient's ``get``/``post``/
``put``/``patch`` and has its ``deadline``. Tests of modules ``serve()`` it, so the real K8sClient,
urllib3 and the module's ``main()`` talk to it over HTTP; ``run_module()`` runs a module's
``main()`` as Ansible would.
"""

from __future__ import annotations

import copy
import json
import threading
import time
import typing as t
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.ceres.rollout.plugins.module_utils.k8s.client import PATCH_CONTENT_TYPES
from ansible_collections.ceres.rollout.plugins.module_utils.k8s.errors import (
    BadRequest,
    Conflict,
    Invalid,
    K8sError,
    NotFound,
)

# plural: (kind, the API versions served by default; objects are stored at the first)
RESOURCES = {
    "namespaces": ("Namespace", ("v1",)),
    "pods": ("Pod", ("v1",)),
    "configmaps": ("ConfigMap", ("v1",)),
    "deployments": ("Deployment", ("apps/v1",)),
    "statefulsets": ("StatefulSet", ("apps/v1",)),
    "daemonsets": ("DaemonSet", ("apps/v1",)),
    "replicasets": ("ReplicaSet", ("apps/v1",)),
    "leases": ("Lease", ("coordination.k8s.io/v1",)),
    "virtualservices": ("VirtualService", ("networking.istio.io/v1",)),
}
PLURALS = {kind: plural for plural, (kind, _versions) in RESOURCES.items()}
WORKLOAD_PLURALS = ("deployments", "statefulsets", "daemonsets")
CONFIGMAP_LIMIT = 1024 * 1024
PATCH_TYPES = {content_type: patch_type for patch_type, content_type in PATCH_CONTENT_TYPES.items()}


# --------------------------------------------------------------------------- paths


def object_path(plural: str, namespace: str | None = None, name: str | None = None, api_version: str = "") -> str:
    """The path of an object (or, without ``name``, of a list), at its stored API version by default."""
    api_version = api_version or RESOURCES[plural][1][0]
    parts = ["/api/" + api_version if "/" not in api_version else "/apis/" + api_version]
    if namespace:
        parts += ["namespaces", namespace]
    parts.append(plural)
    if name:
        parts.append(name)
    return "/".join(parts)


def split_path(path: str) -> tuple[str, str | None, str, str | None, list[str]]:
    """(API version, namespace, plural, name, what follows) of an API path; ValueError for another path."""
    parts = [part for part in urlsplit(path).path.split("/") if part]
    if len(parts) >= 3 and parts[0] == "api":
        api_version, rest = parts[1], parts[2:]
    elif len(parts) >= 4 and parts[0] == "apis":
        api_version, rest = parts[1] + "/" + parts[2], parts[3:]
    else:
        raise ValueError(path)
    namespace = None
    if rest[0] == "namespaces" and len(rest) >= 3:
        namespace, rest = rest[1], rest[2:]
    return api_version, namespace, rest[0], rest[1] if len(rest) > 1 else None, rest[2:]


def lease_path(namespace: str = "ceres-system", name: str = "ceres-rollout") -> str:
    return object_path("leases", namespace, name)


def configmap_path(namespace: str = "ceres-system", name: str = "ceres-rollout-journal") -> str:
    return object_path("configmaps", namespace, name)


VS_PATH = object_path("virtualservices", "pilot-apps", "checkout")


# --------------------------------------------------------------------------- objects tests build


def entry(host, subset=None, weight=None, port=None):
    """One HTTPRouteDestination of a VirtualService."""
    destination = {"host": host}
    if subset:
        destination["subset"] = subset
    if port:
        destination["port"] = {"number": port}
    result = {"destination": destination}
    if weight is not None:
        result["weight"] = weight
    return result


def three_route_virtual_service():
    """checkout in pilot-apps with three http routes: a header match to the canary, primary (100% stable), fallback."""
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {
            "name": "checkout",
            "namespace": "pilot-apps",
            "resourceVersion": "7",
            "generation": 1,
            "managedFields": [{"manager": "kubectl-client-side-apply"}],
        },
        "spec": {
            "hosts": ["checkout"],
            "http": [
                {
                    "name": "header-match",
                    "match": [{"headers": {"x-canary": {"exact": "true"}}}],
                    "route": [entry("checkout", "v3-0-0")],
                },
                {"name": "primary", "route": [entry("checkout", "v2-9", 100)]},
                {"name": "fallback", "route": [entry("checkout", "v2-9")]},
            ],
        },
    }


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
    obj["_nodes"] = nodes  # the fake's own: how many nodes run it (never answered)
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
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": _metadata(
            owner["metadata"]["namespace"], "%s-%s" % (owner["metadata"]["name"], suffix), owner=owner
        ),
    }


def container_status(name="app", restarts=0, waiting=None, ready=True, last_finished=None, started=None, message=None):
    status = {"name": name, "image": "app:1", "ready": ready, "restartCount": restarts}
    if waiting:
        status["state"] = {"waiting": {"reason": waiting}}
        if message:
            status["state"]["waiting"]["message"] = message
    else:
        status["state"] = {"running": {"startedAt": started or "2026-01-01T00:00:05Z"}}
    if last_finished:
        status["lastState"] = {"terminated": {"reason": "Error", "exitCode": 1, "finishedAt": last_finished}}
    return status


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
    """Whether ``labels`` match a label selector as a list's ``labelSelector`` takes it."""
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


# --------------------------------------------------------------------------- faults of the HTTP front


class Fault:
    """What the HTTP front does with one request instead of (or before) answering it."""

    def __init__(self, kind: str, status: int = 0, seconds: float = 0.0, barrier=None, release=None) -> None:
        self.kind = kind
        self.status_code = status
        self.seconds = seconds
        self.barrier = barrier
        self.release = release
        self.held = 0  # hold: requests being held now
        self.expired = 0  # hold: requests answered because the hold's timeout ran out
        self._lock = threading.Lock()

    @classmethod
    def status(cls, code: int) -> Fault:
        """Answer ``code`` with an API ``Status`` (503 ServiceUnavailable, 429, 500...)."""
        return cls("status", status=code)

    @classmethod
    def delay(cls, seconds: float) -> Fault:
        """Answer normally after ``seconds`` (a slow API server)."""
        return cls("delay", seconds=seconds)

    @classmethod
    def hold(cls, release: threading.Event, timeout: float = 60.0) -> Fault:
        """Answer only once ``release`` is set: an API server that hangs until the test lets it go.

        One Fault can hold many requests; ``held`` counts those held now. After ``timeout`` a
        request is answered anyway and counted in ``expired``, so a client that never gives up
        makes the test fail rather than hang."""
        return cls("hold", seconds=timeout, release=release)

    @classmethod
    def wait_for(cls, barrier) -> Fault:
        """Answer once ``barrier`` (a threading.Barrier) is full: concurrent requests overlap."""
        return cls("barrier", barrier=barrier)

    @classmethod
    def drop(cls) -> Fault:
        """Close the connection without an answer (a reset)."""
        return cls("drop")

    def wait_for_release(self) -> None:
        with self._lock:
            self.held += 1
        released = self.release.wait(self.seconds)
        with self._lock:
            self.held -= 1
            if not released:
                self.expired += 1


class QuietHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a client that gave up on a slow answer closed its end: nothing to report


def _status_body(code: int, reason: str | None, message: str, details=None) -> dict:
    """An API ``Status``, as the API server answers a failed request."""
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "code": code,
        "reason": reason,
        "message": message,
    }
    if details is not None:
        body["details"] = details
    return body


FAULT_REASONS = {429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable", 504: "Timeout"}


# --------------------------------------------------------------------------- the API


class FakeKubeApi:
    """Objects in memory by path; K8sClient's ``get``/``post``/``put``/``patch``, and over HTTP after ``serve()``."""

    def __init__(
        self,
        *objects: dict,
        namespaces: t.Iterable[str] = ("ceres-system",),
        served: t.Mapping[str, t.Iterable[str]] | None = None,
    ) -> None:
        self.namespaces = set(namespaces)
        self.served = {plural: tuple(versions) for plural, (_kind, versions) in RESOURCES.items()}
        self.served.update({plural: tuple(versions) for plural, versions in (served or {}).items()})
        self.objects: dict[str, dict] = {}  # path (at the stored API version) -> object
        self.resource_version = 100  # the last one a create took
        self.calls: list[tuple[str, str]] = []
        self.patches: list[tuple[str, t.Any]] = []
        self.authorizations: set = set()
        self.before_write: list[t.Callable[[FakeKubeApi], None]] = []
        self.after_write: list[t.Callable[[FakeKubeApi], None]] = []
        self.conflicts: dict[str, int] = {}
        self.always_conflict = False
        self.never_ready: set[str] = set()
        self.rollout_reads = 1
        self.pending: dict[str, int] = {}  # workload path -> lists of its kind left before its rollout completes
        self.fault: t.Callable[[str, str, int], Fault | None] | None = None  # (method, path, number from 1)
        self.call_limit: int | None = None
        self.deadline = None  # like K8sClient's: tests of the time budget set one
        self.httpd = None
        self.url = None
        self._held_reads: list = []  # [barrier, reads still to hold]
        self._lock = threading.RLock()
        for obj in objects:
            self.add(obj)

    # -- building the world

    def add(self, obj: dict, ready: bool = True) -> dict:
        """Store ``obj`` (itself, not a copy) and its namespace; a workload gets a status, rolled out
        unless ``ready`` is false (then it never finishes)."""
        plural = PLURALS[obj["kind"]]
        namespace = obj["metadata"].get("namespace")
        if namespace:
            self.namespaces.add(namespace)
        if plural in WORKLOAD_PLURALS:
            obj["status"] = rolled_out_status(obj) if ready else in_progress_status(obj)
            if not ready:
                self.never_ready.add(obj["metadata"]["name"])
        self.objects[object_path(plural, namespace, obj["metadata"]["name"])] = obj
        return obj

    def object(self, plural: str, namespace: str | None, name: str) -> dict:
        """The stored object itself (KeyError when there is none)."""
        return self.objects[object_path(plural, namespace, name)]

    def template_annotations(self, plural: str, namespace: str, name: str) -> dict:
        return self.object(plural, namespace, name)["spec"]["template"]["metadata"].get("annotations") or {}

    def hold_reads(self, barrier: threading.Barrier, count: int | None = None) -> None:
        """The next ``count`` (default: the barrier's parties) GETs wait at ``barrier`` after reading."""
        self._held_reads = [barrier, barrier.parties if count is None else count]

    def rival_put(self, path: str, change: t.Callable[[dict], None]) -> None:
        """Another writer changes the stored object (a new resourceVersion)."""
        with self._lock:
            changed = copy.deepcopy(self.objects[path])
            change(changed)
            changed["metadata"]["resourceVersion"] = self._updated_version(self.objects[path])
            self.objects[path] = changed

    # -- what tests read

    def writes(self) -> list[tuple[str, str]]:
        return [call for call in self.calls if call[0] in ("POST", "PUT", "PATCH", "DELETE")]

    # -- the API, as K8sClient speaks it

    def get(self, path: str, query=None) -> dict:
        with self._lock:
            self._record("GET", path)
            _version, namespace, plural, name = self._parse("GET", path)
            if plural == "namespaces":
                if name is None:
                    return self._list_answer([self._namespace(each) for each in sorted(self.namespaces)])
                if name not in self.namespaces:
                    raise self._not_found("GET", path, "namespaces", name)
                return self._namespace(name)
            if name is None:
                answer = self._list(plural, namespace, query)
            else:
                stored = self.objects.get(object_path(plural, namespace, name))
                answer = None if stored is None else self._public(stored)
            barrier = None
            if self._held_reads and self._held_reads[1] > 0:
                self._held_reads[1] -= 1
                barrier = self._held_reads[0]
        if barrier is not None:
            barrier.wait()  # outside the lock: the other readers must get in
        if answer is None:
            raise self._not_found("GET", path, plural, name)
        return answer

    def post(self, path: str, body: dict, query=None, idempotent: bool = False) -> dict:
        with self._lock:
            self._record("POST", path)
            _version, namespace, plural, _name = self._parse("POST", path)
            self._run(self.before_write)
            if namespace is not None and namespace not in self.namespaces:
                raise self._not_found("POST", path, "namespaces", namespace)
            name = body["metadata"]["name"]
            key = object_path(plural, namespace, name)
            if key in self.objects:
                raise Conflict(
                    'POST %s: 409 AlreadyExists: %s "%s" already exists' % (path, plural, name),
                    status=409,
                    reason="AlreadyExists",
                    details={"name": name, "kind": plural},
                )
            self._check_size("POST", path, body)
            stored = copy.deepcopy(body)
            self.resource_version += 1
            stored["metadata"]["resourceVersion"] = str(self.resource_version)
            if namespace is not None:
                stored["metadata"]["namespace"] = namespace
            self.objects[key] = stored
            answer = copy.deepcopy(stored)
            self._run(self.after_write)
            return answer

    def put(self, path: str, body: dict, query=None) -> dict:
        with self._lock:
            self._record("PUT", path)
            _version, namespace, plural, name = self._parse("PUT", path)
            self._run(self.before_write)
            key = object_path(plural, namespace, name)
            current = self.objects.get(key)
            if current is None:
                raise self._not_found("PUT", path, plural, name)
            if (
                self._conflicts_with(name)
                or body["metadata"].get("resourceVersion") != current["metadata"]["resourceVersion"]
            ):
                raise self._conflict("PUT", path, plural, name)
            self._check_size("PUT", path, body)
            stored = copy.deepcopy(body)
            stored["metadata"]["resourceVersion"] = self._updated_version(current)
            self.objects[key] = stored
            answer = copy.deepcopy(stored)
            self._run(self.after_write)
            return answer

    def patch(self, path: str, body, patch_type: str = "json", query=None, idempotent: bool = False) -> dict:
        """A strategic-merge patch of a workload's pod template annotations, the one patch the fake knows."""
        with self._lock:
            self._record("PATCH", path)
            self.patches.append((path, copy.deepcopy(body)))
            assert patch_type == "strategic", patch_type
            _version, namespace, plural, name = self._parse("PATCH", path)
            self._run(self.before_write)
            key = object_path(plural, namespace, name)
            obj = self.objects.get(key)
            if obj is None:
                raise self._not_found("PATCH", path, plural, name)
            if self._conflicts_with(name):
                raise self._conflict("PATCH", path, plural, name)
            assert plural in WORKLOAD_PLURALS, path
            assert set(body) == {"spec"} and set(body["spec"]) == {"template"}, body
            assert set(body["spec"]["template"]) == {"metadata"}, body
            assert set(body["spec"]["template"]["metadata"]) == {"annotations"}, body
            annotations = obj["spec"]["template"]["metadata"].setdefault("annotations", {})
            before = dict(annotations)
            for annotation, value in body["spec"]["template"]["metadata"]["annotations"].items():
                if value is None:
                    annotations.pop(annotation, None)
                else:
                    annotations[annotation] = value
            if annotations != before:
                obj["metadata"]["generation"] += 1
                obj["metadata"]["resourceVersion"] = self._updated_version(obj)
                self.pending[key] = self.rollout_reads  # the status stays as it was until the controller sees it
            answer = self._public(obj)
            self._run(self.after_write)
            return answer

    # -- the rules

    def _record(self, method: str, path: str) -> None:
        self.calls.append((method, path))
        if self.call_limit is not None and len(self.calls) > self.call_limit:
            raise BadRequest(
                "%s %s: 400 BadRequest: more than %s calls (the fake's call_limit): the code under test "
                "does not stop calling" % (method, path, self.call_limit),
                status=400,
                reason="BadRequest",
            )

    def _parse(self, method: str, path: str) -> tuple[str, str | None, str, str | None]:
        try:
            version, namespace, plural, name, rest = split_path(path)
        except ValueError:
            version, namespace, plural, name, rest = "", None, "", None, []
        if rest or version not in self.served.get(plural, ()):
            raise NotFound("%s %s: 404 Not Found: 404 page not found" % (method, path), status=404)
        return version, namespace, plural, name

    @staticmethod
    def _not_found(method: str, path: str, plural: str, name: str | None) -> NotFound:
        return NotFound(
            '%s %s: 404 NotFound: %s "%s" not found' % (method, path, plural, name),
            status=404,
            reason="NotFound",
            details={"name": name, "kind": plural},
        )

    def _conflicts_with(self, name: str) -> bool:
        """Whether this write of ``name`` is answered 409 whatever its resourceVersion."""
        if self.conflicts.get(name):
            self.conflicts[name] -= 1
            return True
        return self.always_conflict

    @staticmethod
    def _conflict(method: str, path: str, plural: str, name: str) -> Conflict:
        return Conflict(
            '%s %s: 409 Conflict: Operation cannot be fulfilled on %s "%s": the object has been modified; '
            "please apply your changes to the latest version and try again" % (method, path, plural, name),
            status=409,
            reason="Conflict",
        )

    @staticmethod
    def _updated_version(current: dict) -> str:
        return str(int(current["metadata"]["resourceVersion"]) + 1)

    @staticmethod
    def _check_size(method: str, path: str, body: dict) -> None:
        if body.get("kind") == "ConfigMap":
            size = sum(len(value.encode()) for value in (body.get("data") or {}).values())
            if size > CONFIGMAP_LIMIT:
                raise Invalid(
                    "%s %s: 422 Invalid: ConfigMap is invalid: []: Too long: must have at most 1048576 bytes"
                    % (method, path),
                    status=422,
                    reason="Invalid",
                )

    def _run(self, hooks: list) -> None:
        if hooks:
            hooks.pop(0)(self)

    def _list(self, plural: str, namespace: str | None, query) -> dict:
        if plural in WORKLOAD_PLURALS:
            self._progress(plural, namespace)
        selector = (query or {}).get("labelSelector")
        found = []
        for path, obj in self.objects.items():
            _version, item_namespace, item_plural, name, _rest = split_path(path)
            if item_plural != plural or (namespace is not None and item_namespace != namespace):
                continue
            if matches(obj["metadata"].get("labels") or {}, selector):
                found.append(((item_namespace or "", name), self._public(obj)))
        return self._list_answer([obj for _key, obj in sorted(found, key=lambda item: item[0])])

    @staticmethod
    def _list_answer(items: list) -> dict:
        return {"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": "1"}, "items": items}

    @staticmethod
    def _namespace(name: str) -> dict:
        return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}

    def _progress(self, plural: str, namespace: str | None) -> None:
        """The controller: each list of a kind brings its changed workloads one step nearer rolled out."""
        for key in list(self.pending):
            _version, item_namespace, item_plural, name, _rest = split_path(key)
            if item_plural != plural or (namespace is not None and item_namespace != namespace):
                continue
            obj = self.objects.get(key)
            if obj is None:
                del self.pending[key]
                continue
            if name in self.never_ready:
                obj["status"] = in_progress_status(obj)
                continue
            self.pending[key] -= 1
            if self.pending[key] <= 0:
                obj["status"] = rolled_out_status(obj)
                del self.pending[key]
            else:
                obj["status"] = in_progress_status(obj)

    @staticmethod
    def _public(obj: dict) -> dict:
        answer = copy.deepcopy(obj)
        answer.pop("_nodes", None)
        return answer

    # -- over HTTP

    def serve(self) -> str:
        """Serve the API on 127.0.0.1; returns its URL (also ``self.url``)."""
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
                path = urlsplit(self.path).path
                query = {key: values[0] for key, values in parse_qs(urlsplit(self.path).query).items()}
                with fake._lock:
                    fake.authorizations.add(self.headers.get("Authorization"))
                    number = len(fake.calls) + 1
                fault = fake.fault(self.command, path, number) if fake.fault else None
                if fault is not None and fault.kind == "delay":
                    time.sleep(fault.seconds)
                elif fault is not None and fault.kind == "hold":
                    fault.wait_for_release()
                elif fault is not None and fault.kind == "barrier":
                    fault.barrier.wait()
                elif fault is not None and fault.kind in ("drop", "status"):
                    with fake._lock:
                        fake.calls.append((self.command, path))
                    if fault.kind == "drop":
                        self.close_connection = True
                        self.connection.close()
                        return None
                    code = fault.status_code
                    return self._send(
                        code, _status_body(code, FAULT_REASONS.get(code, "InternalError"), "injected fault")
                    )
                try:
                    if self.command == "GET":
                        answer = fake.get(path, query)
                    elif self.command == "POST":
                        answer = fake.post(path, body, query)
                    elif self.command == "PUT":
                        answer = fake.put(path, body, query)
                    else:
                        patch_type = PATCH_TYPES.get(self.headers.get("Content-Type"), "unknown")
                        answer = fake.patch(path, body, patch_type, query)
                except K8sError as error:
                    if error.status == 404 and not error.details:
                        return self._send(404, b"404 page not found\n", "text/plain")
                    return self._send(error.status, _status_body(error.status, error.reason, str(error), error.details))
                return self._send(201 if self.command == "POST" else 200, answer)

            do_GET = do_POST = do_PUT = do_PATCH = _handle

            def log_message(self, *args):
                pass

        self.httpd = QuietHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        return self.url

    def stop(self) -> None:
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()


# --------------------------------------------------------------------------- running a module


def run_module(module, capsys, module_args):
    """Run ``module.main()`` as Ansible would; return (failed, result dict, raw output)."""
    with patch_module_args(module_args):
        with pytest.raises(SystemExit) as exited:
            module.main()
    output = capsys.readouterr().out
    result = json.loads(output)
    assert bool(result.get("failed")) == (exited.value.code != 0)
    return bool(result.get("failed")), result, output
