"""A tiny HTTP server that answers /api/v1/query with canned Prometheus JSON.

Used by the metric gate's unit tests to exercise the real HTTP client (status codes,
timeouts, headers) without a Prometheus. Each test sets ``server.answers`` to a
function from the PromQL text to a :class:`CannedAnswer`.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass
class CannedAnswer:
    status: int = 200
    body: bytes = b""
    delay_seconds: float = 0.0


@dataclass
class ReceivedRequest:
    method: str
    path: str
    params: dict[str, list[str]]
    headers: dict[str, str]


def vector(*values: str, time_stamp: float = 1700000000.0) -> CannedAnswer:
    """A successful instant-vector answer with one series per value."""
    result = [{"metric": {"pod": "pod-%d" % index}, "value": [time_stamp, value]} for index, value in enumerate(values)]
    return success({"resultType": "vector", "result": result})


def scalar(value: str) -> CannedAnswer:
    return success({"resultType": "scalar", "result": [1700000000.0, value]})


def success(data: dict, warnings: list[str] | None = None) -> CannedAnswer:
    envelope = {"status": "success", "data": data}
    if warnings:
        envelope["warnings"] = warnings
    return CannedAnswer(200, json.dumps(envelope).encode())


def error(status: int, error_type: str, message: str) -> CannedAnswer:
    return CannedAnswer(status, json.dumps({"status": "error", "errorType": error_type, "error": message}).encode())


@dataclass
class PrometheusStub:
    """A running stub server; ``url`` is its base URL."""

    server: ThreadingHTTPServer
    thread: threading.Thread
    answers: Callable[[str], CannedAnswer] = lambda promql: vector("1")
    requests: list[ReceivedRequest] = field(default_factory=list)

    tls: bool = False

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return "%s://%s:%d" % ("https" if self.tls else "http", host, port)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def start_stub(tls_cert: str | None = None, tls_key: str | None = None) -> PrometheusStub:
    """Start the stub; with ``tls_cert``/``tls_key`` (PEM files) it serves HTTPS."""
    holder: dict[str, PrometheusStub] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's naming)
            stub = holder["stub"]
            parts = urlsplit(self.path)
            params = parse_qs(parts.query)
            stub.requests.append(
                ReceivedRequest(
                    "GET", parts.path, params, {name.lower(): value for name, value in self.headers.items()}
                )
            )
            answer = stub.answers(params.get("query", [""])[0])
            if answer.delay_seconds:
                time.sleep(answer.delay_seconds)
            try:
                self.send_response(answer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout tests)

        def log_message(self, format, *args):  # pylint: disable=redefined-builtin
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    if tls_cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(tls_cert, tls_key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="prometheus-stub", daemon=True
    )
    thread.start()
    stub = PrometheusStub(server=server, thread=thread, tls=bool(tls_cert))
    holder["stub"] = stub
    return stub


def refused_url() -> str:
    """A URL on localhost where nothing listens (connection refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return "http://127.0.0.1:%d" % port
