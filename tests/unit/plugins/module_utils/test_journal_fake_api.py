"""A small stateful stand-in for the API server's Leases and ConfigMaps, for the rollout_journal
tests (tests/unit/k8s_stub.py holds one VirtualService only), and the tests that it keeps the
API server's rules the lock and the journal rely on.

``FakeKubeApi`` keeps namespaced objects in memory by path and speaks K8sClient's
``get``/``post``/``put``: resourceVersion checked on PUT (409 on a stale one), 409
AlreadyExists on a POST of an existing name, 404 for a missing object or namespace, 422 for a
ConfigMap over 1 MiB. Rival writers are callables in ``before_write``; concurrent callers are
made to overlap with ``hold_reads(barrier)`` (a GET takes its snapshot, then waits at the
barrier, so every holder reads the same resourceVersion before any of them writes). After
``serve()`` the same store answers over HTTP, with ``fault`` (k8s_stub's ``Fault``) per request.
"""

from __future__ import annotations

import copy
import json
import threading
import time
import typing as t
from http.server import BaseHTTPRequestHandler

import pytest
from k8s_stub import Fault, QuietHTTPServer

from ansible_collections.ceres.rollout.plugins.module_utils.k8s_errors import (
    Conflict,
    Invalid,
    K8sError,
    NotFound,
)

SERVED = {"leases": "coordination.k8s.io/v1", "configmaps": "v1"}
CONFIGMAP_LIMIT = 1024 * 1024


def lease_path(namespace: str = "ceres-system", name: str = "ceres-rollout") -> str:
    return "/apis/coordination.k8s.io/v1/namespaces/%s/leases/%s" % (namespace, name)


def configmap_path(namespace: str = "ceres-system", name: str = "ceres-rollout-journal") -> str:
    return "/api/v1/namespaces/%s/configmaps/%s" % (namespace, name)


class FakeKubeApi:
    """Namespaced Leases and ConfigMaps in memory, by path."""

    def __init__(self, namespaces: t.Iterable[str] = ("ceres-system",)) -> None:
        self.namespaces = set(namespaces)
        self.objects: dict[str, dict] = {}
        self.resource_version = 100
        self.calls: list[tuple[str, str]] = []
        self.before_write: list[t.Callable[[FakeKubeApi], None]] = []  # run before a write is checked
        self.fault: t.Callable[[str, str, int], Fault | None] | None = None  # per HTTP request
        self.deadline = None  # like K8sClient's: tests of the time budget set one
        self.authorizations: set = set()
        self._held_reads: list = []  # [barrier, reads still to hold]
        self._lock = threading.RLock()
        self.httpd = None
        self.url = None

    # -- paths

    @staticmethod
    def _parse(method: str, path: str) -> tuple[str, str, str | None]:
        parts = path.split("?")[0].strip("/").split("/")
        index = parts.index("namespaces")
        namespace, plural = parts[index + 1], parts[index + 2]
        name = parts[index + 3] if len(parts) > index + 3 else None
        version = "/".join(parts[1:index])
        if SERVED.get(plural) != version:
            raise NotFound("%s %s: 404 Not Found: 404 page not found" % (method, path), status=404)
        return namespace, plural, name

    def _next_version(self) -> str:
        self.resource_version += 1
        return str(self.resource_version)

    @staticmethod
    def _not_found(method: str, path: str, name: str, kind: str) -> NotFound:
        return NotFound(
            '%s %s: 404 NotFound: %s "%s" not found' % (method, path, kind, name),
            status=404,
            reason="NotFound",
            details={"name": name, "kind": kind},
        )

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

    def hold_reads(self, barrier: threading.Barrier, count: int | None = None) -> None:
        """The next ``count`` (default: the barrier's parties) GETs wait at ``barrier`` after reading."""
        self._held_reads = [barrier, barrier.parties if count is None else count]

    # -- the API, as K8sClient speaks it

    def get(self, path: str, query=None) -> dict:
        with self._lock:
            self.calls.append(("GET", path))
            _namespace, plural, name = self._parse("GET", path)
            missing = path not in self.objects
            answer = None if missing else copy.deepcopy(self.objects[path])
            barrier = None
            if self._held_reads and self._held_reads[1] > 0:
                self._held_reads[1] -= 1
                barrier = self._held_reads[0]
        if barrier is not None:
            barrier.wait()  # outside the lock: the other readers must get in
        if missing:
            raise self._not_found("GET", path, name, plural)
        return answer

    def post(self, path: str, body: dict, query=None, idempotent: bool = False) -> dict:
        with self._lock:
            self.calls.append(("POST", path))
            namespace, plural, _name = self._parse("POST", path)
            if self.before_write:
                self.before_write.pop(0)(self)
            if namespace not in self.namespaces:
                raise self._not_found("POST", path, namespace, "namespaces")
            name = body["metadata"]["name"]
            object_path = "%s/%s" % (path, name)
            if object_path in self.objects:
                raise Conflict(
                    'POST %s: 409 AlreadyExists: %s "%s" already exists' % (path, plural, name),
                    status=409,
                    reason="AlreadyExists",
                    details={"name": name, "kind": plural},
                )
            self._check_size("POST", path, body)
            stored = copy.deepcopy(body)
            stored["metadata"]["resourceVersion"] = self._next_version()
            stored["metadata"]["namespace"] = namespace
            self.objects[object_path] = stored
            return copy.deepcopy(stored)

    def put(self, path: str, body: dict, query=None) -> dict:
        with self._lock:
            self.calls.append(("PUT", path))
            _namespace, plural, name = self._parse("PUT", path)
            if self.before_write:
                self.before_write.pop(0)(self)
            if path not in self.objects:
                raise self._not_found("PUT", path, name, plural)
            if body["metadata"].get("resourceVersion") != self.objects[path]["metadata"]["resourceVersion"]:
                raise Conflict(
                    'PUT %s: 409 Conflict: Operation cannot be fulfilled on %s "%s": the object has been '
                    "modified; please apply your changes to the latest version and try again" % (path, plural, name),
                    status=409,
                    reason="Conflict",
                )
            self._check_size("PUT", path, body)
            stored = copy.deepcopy(body)
            stored["metadata"]["resourceVersion"] = self._next_version()
            self.objects[path] = stored
            return copy.deepcopy(stored)

    # -- helpers for tests

    def writes(self) -> list[tuple[str, str]]:
        return [call for call in self.calls if call[0] in ("POST", "PUT")]

    def rival_put(self, path: str, change: t.Callable[[dict], None]) -> None:
        """Another writer changes the stored object (a new resourceVersion)."""
        with self._lock:
            changed = copy.deepcopy(self.objects[path])
            change(changed)
            changed["metadata"]["resourceVersion"] = self._next_version()
            self.objects[path] = changed

    # -- over HTTP

    def serve(self) -> str:
        """Serve the store on 127.0.0.1; returns its URL (also ``self.url``)."""
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
                fake.authorizations.add(self.headers.get("Authorization"))
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
                    return
                elif fault is not None and fault.kind == "status":
                    fake.calls.append((self.command, self.path))
                    return self._send(
                        fault.status_code,
                        {
                            "kind": "Status",
                            "status": "Failure",
                            "code": fault.status_code,
                            "reason": "ServiceUnavailable",
                            "message": "injected fault",
                        },
                    )
                try:
                    verb = {"GET": fake.get, "POST": fake.post, "PUT": fake.put}[self.command]
                    answer = verb(self.path) if self.command == "GET" else verb(self.path, body)
                except K8sError as error:
                    if error.status == 404 and not error.details:
                        return self._send(404, b"404 page not found\n", "text/plain")
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
                return self._send(201 if self.command == "POST" else 200, answer)

            do_GET = do_POST = do_PUT = _handle

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


# --------------------------------------------------------------------------- the fake keeps the API's rules


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
