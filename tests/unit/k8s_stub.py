"""The unit tests' one stand-in for the Kubernetes API of a VirtualService, and their one way
to run a module's main().

``FakeVirtualServiceApi`` keeps one VirtualService in memory with the API server's rules that
matter to traffic_shift (resourceVersion checked on PUT, 409 on a stale one, 404 for a missing
object or an API version not served). Tests of module_utils hand it to ``shift_traffic()``
directly (it speaks K8sClient's ``get``/``put``); tests of the module ``serve()`` it over HTTP,
so the real K8sClient, urllib3 and ``traffic_shift.main()`` talk to it. Rival writers are
callables in ``before_put`` / ``after_put``; a slow or flapping API server is a ``fault``
(``Fault.status(503)``, ``Fault.delay(2)``, ``Fault.drop()``) chosen per HTTP request, and
concurrent writers are made to overlap with ``Fault.wait_for(barrier)``.
"""

from __future__ import annotations

import copy
import json
import threading
import time
import typing as t
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.ceres.rollout.plugins.module_utils.k8s_errors import (
    Conflict,
    K8sError,
    NotFound,
)

VS_PATH = "/apis/networking.istio.io/v1/namespaces/pilot-apps/virtualservices/checkout"


def entry(host, subset=None, weight=None, port=None):
    """One HTTPRouteDestination."""
    destination = {"host": host}
    if subset:
        destination["subset"] = subset
    if port:
        destination["port"] = {"number": port}
    result = {"destination": destination}
    if weight is not None:
        result["weight"] = weight
    return result


class Fault:
    """What the HTTP front end does with one request instead of (or before) answering it."""

    def __init__(self, kind: str, status: int = 0, seconds: float = 0.0, barrier=None) -> None:
        self.kind = kind
        self.status_code = status
        self.seconds = seconds
        self.barrier = barrier

    @classmethod
    def status(cls, code: int) -> Fault:
        """Answer ``code`` with an API ``Status`` (503 ServiceUnavailable, 429, 500...)."""
        return cls("status", status=code)

    @classmethod
    def delay(cls, seconds: float) -> Fault:
        """Answer normally after ``seconds`` (a slow API server)."""
        return cls("delay", seconds=seconds)

    @classmethod
    def wait_for(cls, barrier) -> Fault:
        """Answer once ``barrier`` (a threading.Barrier) is full: concurrent requests overlap."""
        return cls("barrier", barrier=barrier)

    @classmethod
    def drop(cls) -> Fault:
        """Close the connection without an answer (a reset)."""
        return cls("drop")


class QuietHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a client that gave up on a slow answer closed its end: nothing to report


class FakeVirtualServiceApi:
    """One VirtualService in memory: K8sClient's ``get``/``put`` by path, and over HTTP after ``serve()``."""

    def __init__(self, resource, served_versions=("networking.istio.io/v1",)):
        self.stored = copy.deepcopy(resource)
        self.served_versions = served_versions
        self.calls = []  # (METHOD, path) of every call that reached the API (faults included)
        self.authorizations = set()  # Authorization headers seen over HTTP
        self.before_put = []  # callables(fake) run before a PUT is checked (a rival writer)
        self.after_put = []  # callables(fake) run after a PUT landed
        self.always_conflict = False
        # fault(method, path, number) -> Fault | None, for each HTTP request (number counts from 1)
        self.fault: t.Callable[[str, str, int], Fault | None] | None = None
        self.deadline = None  # like K8sClient's: tests of the time budget set one
        self.httpd = None
        self.url = None
        self._lock = threading.Lock()

    # -- the API, as K8sClient speaks it

    def _check_path(self, method, path):
        version = path.split("/")[2] + "/" + path.split("/")[3]
        if version not in self.served_versions:
            raise NotFound("%s %s: 404 Not Found: 404 page not found" % (method, path), status=404)
        if self.stored is None or not path.endswith("/" + self.stored["metadata"]["name"]):
            raise NotFound(
                "%s %s: 404 NotFound" % (method, path),
                status=404,
                reason="NotFound",
                details={"name": path.rsplit("/", 1)[1], "kind": "virtualservices"},
            )

    def get(self, path, query=None):
        self.calls.append(("GET", path))
        self._check_path("GET", path)
        return copy.deepcopy(self.stored)

    def put(self, path, body, query=None):
        self.calls.append(("PUT", path))
        self._check_path("PUT", path)
        if self.before_put:
            self.before_put.pop(0)(self)
        if (
            self.always_conflict
            or body["metadata"].get("resourceVersion") != self.stored["metadata"]["resourceVersion"]
        ):
            raise Conflict("PUT %s: 409 Conflict: the object has been modified" % path, status=409, reason="Conflict")
        self.stored = copy.deepcopy(body)
        self.stored["metadata"]["resourceVersion"] = str(int(body["metadata"]["resourceVersion"]) + 1)
        answer = copy.deepcopy(self.stored)
        if self.after_put:
            self.after_put.pop(0)(self)
        return answer

    def writes(self):
        return [call for call in self.calls if call[0] == "PUT"]

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
                            "reason": "ServiceUnavailable" if fault.status_code == 503 else "InternalError",
                            "message": "injected fault",
                        },
                    )
                try:
                    with fake._lock:
                        answer = fake.get(self.path) if self.command == "GET" else fake.put(self.path, body)
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
                return self._send(200, answer)

            do_GET = do_PUT = _handle

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


def run_module(module, capsys, module_args):
    """Run ``module.main()`` as Ansible would; return (failed, result dict, raw output)."""
    with patch_module_args(module_args):
        with pytest.raises(SystemExit) as exited:
            module.main()
    output = capsys.readouterr().out
    result = json.loads(output)
    assert bool(result.get("failed")) == (exited.value.code != 0)
    return bool(result.get("failed")), result, output
