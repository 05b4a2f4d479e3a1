# Copyright (c) 2025, CERES platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""HTTP: ``GET /metrics`` (the registry's exposition), ``GET /healthz`` (initial lists loaded) and
any further exposition path (``/opencost/metrics``: the cost suite's series)."""

from __future__ import annotations

import argparse
import socket
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .metrics import EXPOSITION_CONTENT_TYPE, MetricsRegistry


class SimulatorHTTPServer(ThreadingHTTPServer):
    """Serves /metrics from a registry, /healthz from a readiness callable and each of ``expositions``
    (path: callable returning exposition text)."""

    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        registry: MetricsRegistry,
        pending: Callable[[], list[str]],
        expositions: Mapping[str, Callable[[], str]] | None = None,
    ):
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.registry = registry
        self.pending = pending
        self.expositions = dict(expositions or {})
        super().__init__(address, MetricsHandler)


class MetricsHandler(BaseHTTPRequestHandler):
    """GET /metrics and GET /healthz."""

    server: SimulatorHTTPServer
    server_version = "ceres-sandbox-simulator/1"

    def do_GET(self) -> None:  # noqa: N802  # name set by BaseHTTPRequestHandler
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            self._reply(200, self.server.registry.render(), EXPOSITION_CONTENT_TYPE)
        elif path == "/healthz":
            pending = self.server.pending()
            if pending:
                self._reply(503, "waiting for the initial list of: %s\n" % ", ".join(pending))
            else:
                self._reply(200, "ok\n")
        elif path in self.server.expositions:
            self._reply(200, self.server.expositions[path](), EXPOSITION_CONTENT_TYPE)
        else:
            self._reply(404, "not found; try /metrics or /healthz\n")

    def _reply(self, status: int, text: str, content_type: str = "text/plain; charset=utf-8") -> None:
        body = text.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args) -> None:  # pylint: disable=redefined-builtin
        """Scrapes come every second: do not log them."""


def parse_listen(text: str) -> tuple[str, int]:
    """``host:port`` (or ``[v6]:port``) into a bind address."""
    host, separator, port = text.rpartition(":")
    if not separator or not port.isdigit():
        raise argparse.ArgumentTypeError("expected HOST:PORT, got %r" % text)
    host = host.strip("[]") or "127.0.0.1"
    return host, int(port)


def start_http_server(
    address: tuple[str, int],
    registry: MetricsRegistry,
    pending: Callable[[], list[str]],
    expositions: Mapping[str, Callable[[], str]] | None = None,
) -> SimulatorHTTPServer:
    """Bind and serve in a daemon thread; ``server.server_address`` has the bound port."""
    server = SimulatorHTTPServer(address, registry, pending, expositions)
    threading.Thread(target=server.serve_forever, name="http", daemon=True).start()
    return server
