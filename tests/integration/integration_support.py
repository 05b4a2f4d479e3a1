"""Helpers shared by the integration tests, which run against the live sandbox.

`make integration` sources `.sandbox/env`; when run by hand, this module reads it too.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ENV_FILE = ROOT / ".sandbox" / "env"


def _load_sandbox_env() -> dict:
    if not ENV_FILE.exists():
        pytest.exit("the sandbox is not running: start it with `make sandbox`", returncode=2)
    values = {}
    for line in ENV_FILE.read_text().splitlines():
        if line.startswith("export "):
            key, _separator, value = line[len("export ") :].partition("=")
            values[key] = shlex.split(value)[0] if value else ""
    return values


SANDBOX_ENV = _load_sandbox_env()
os.environ.update({key: value for key, value in SANDBOX_ENV.items() if key not in os.environ})


def prometheus_query(query: str) -> list:
    """An instant query; returns the result list (raises on a Prometheus error)."""
    url = SANDBOX_ENV["CERES_PROMETHEUS_URL"] + "/api/v1/query?" + urllib.parse.urlencode({"query": query})
    with urllib.request.urlopen(url, timeout=10) as response:
        body = json.load(response)
    assert body["status"] == "success", body
    return body["data"]["result"]


def wait_for(predicate, timeout: float, interval: float = 0.5, message: str = "condition"):
    """Poll predicate until it returns a truthy value; return it or fail with the last value."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout}s waiting for {message}; last value: {last!r}")


# The json callback, so an ad-hoc run's output is one JSON document (module_command, module_result).
JSON_CALLBACK = {"ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json", "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1"}


def module_command(module: str, arguments: dict, check_mode: bool = False) -> list[str]:
    """``ansible localhost -m ceres.rollout.<module> -a <arguments as JSON>``, as a user runs one module (the venv's
    ansible, the venv's Python as the interpreter)."""
    command = [
        str(Path(sys.executable).parent / "ansible"),
        "localhost",
        "-i",
        "localhost,",
        "-c",
        "local",
        "-e",
        f"ansible_python_interpreter={sys.executable}",
        "-m",
        f"ceres.rollout.{module}",
        "-a",
        json.dumps(arguments),
    ]
    return command + (["--check"] if check_mode else [])


def module_result(stdout: str, stderr: str = "") -> dict:
    """The host result of one ad-hoc module run with the json callback (JSON_CALLBACK)."""
    assert stdout.strip(), "ansible printed nothing: %s" % stderr
    return json.loads(stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]


def token_kubeconfig(kube, namespace: str, account: str, directory: Path, context: str = "ceres-sandbox") -> Path:
    """A kubeconfig (written in ``directory``, mode 0600) acting as ServiceAccount ``namespace/account`` with a token
    from the TokenRequest API; its context is named ``context`` (the local inventory's ceres_kube_context)."""
    from kubernetes import client

    token = (
        client.CoreV1Api(kube)
        .create_namespaced_service_account_token(account, namespace, {"spec": {"expirationSeconds": 3600}})
        .status.token
    )
    configuration = kube.configuration
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "sandbox",
                "cluster": {"server": configuration.host, "certificate-authority": configuration.ssl_ca_cert},
            }
        ],
        "users": [{"name": account, "user": {"token": token}}],
        "contexts": [{"name": context, "context": {"cluster": "sandbox", "user": account}}],
        "current-context": context,
    }
    path = directory / ("%s.kubeconfig" % account)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(kubeconfig, handle)
    return path


def run_ansible(args: list[str], check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run an ansible command from the venv with the repository's ansible.cfg."""
    bin_dir = Path(sys.executable).parent
    full_env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_NOCOLOR": "1",
        **(env or {}),
    }
    result = subprocess.run(
        [str(bin_dir / args[0]), *args[1:]], cwd=ROOT, env=full_env, capture_output=True, text=True, check=False
    )
    if check and result.returncode != 0:
        pytest.fail(f"{args[0]} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


# --------------------------------------------------------------------------- a slow or flapping API server


class ProxyFault:
    """What KubeApiProxy does with one request instead of (or before) forwarding it."""

    def __init__(self, kind: str, status: int = 0, seconds: float = 0.0, barrier=None) -> None:
        self.kind = kind
        self.status_code = status
        self.seconds = seconds
        self.barrier = barrier

    @classmethod
    def status(cls, code: int, after: float = 0.0) -> ProxyFault:
        """Answer ``code`` (an API Status) without forwarding, ``after`` seconds: an overloaded
        or restarting server."""
        return cls("status", status=code, seconds=after)

    @classmethod
    def delay(cls, seconds: float) -> ProxyFault:
        """Forward after ``seconds``: a slow API server."""
        return cls("delay", seconds=seconds)

    @classmethod
    def drop(cls) -> ProxyFault:
        """Close the connection without forwarding or answering: a reset."""
        return cls("drop")

    @classmethod
    def hang(cls, seconds: float) -> ProxyFault:
        """Hold the request unanswered (not forwarded) for ``seconds`` or until the client
        gives up: a server that accepted the connection and died."""
        return cls("hang", seconds=seconds)

    @classmethod
    def answer_together(cls, barrier) -> ProxyFault:
        """Forward at once, but answer only once ``barrier`` is full: the answers of concurrent
        requests all carry what the server held before any of them was answered."""
        return cls("barrier-after", barrier=barrier)


class ProxiedRequest:
    """One request the proxy received: its number (from 1), method, path, when it arrived and
    what became of it (the upstream status, or "503 injected", "dropped", "hung")."""

    def __init__(self, number: int, method: str, path: str) -> None:
        self.number = number
        self.method = method
        self.path = path
        self.arrived_at = time.monotonic()
        self.outcome = None
        self.answered_at = None
        self.client_gone_at = None  # for a hung request: when the client closed its end

    def __repr__(self) -> str:
        return "#%d %s %s -> %s" % (self.number, self.method, self.path, self.outcome)


class KubeApiProxy:
    """A plain-HTTP address for the sandbox's kube-apiserver that can be made slow or flapping.

    It forwards each request to the real API server with the credentials of ``kubeconfig``
    (the client's own Authorization header is dropped), unless ``fault(request)`` returns a
    :class:`ProxyFault` for it. A module reaches it with ``host=proxy.url`` and any
    ``api_key`` (``proxy.connection_args()``). ``requests`` records every request received.
    """

    def __init__(self, kubeconfig: str, fault=None) -> None:
        import http.server
        import threading

        from kubernetes import config

        api_client = config.new_client_from_config(config_file=kubeconfig)
        self._upstream = api_client.configuration.host.rstrip("/")
        self._pool = api_client.rest_client.pool_manager
        self._auth_headers = {
            setting["key"]: setting["value"]
            for setting in api_client.configuration.auth_settings().values()
            if setting.get("in") == "header" and setting.get("value")
        }
        self.fault = fault
        self.requests: list = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _reply(
                self, record: ProxiedRequest, status: int, body: bytes, content_type: str = "application/json"
            ) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                record.answered_at = time.monotonic()

            def _wait_for_the_client_to_leave(self, record: ProxiedRequest, seconds: float) -> None:
                import select
                import socket

                until = time.monotonic() + seconds
                while time.monotonic() < until:
                    readable, _writable, _errors = select.select([self.connection], [], [], 0.05)
                    if readable:
                        try:
                            gone = self.connection.recv(1, socket.MSG_PEEK) == b""
                        except OSError:
                            gone = True
                        if gone:
                            record.client_gone_at = time.monotonic()
                            return

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                with proxy._lock:
                    record = ProxiedRequest(len(proxy.requests) + 1, self.command, self.path)
                    proxy.requests.append(record)
                fault = proxy.fault(record) if proxy.fault else None
                if fault is not None and fault.kind == "status":
                    time.sleep(fault.seconds)
                    record.outcome = "%d injected" % fault.status_code
                    return self._reply(
                        record,
                        fault.status_code,
                        json.dumps(
                            {
                                "kind": "Status",
                                "apiVersion": "v1",
                                "status": "Failure",
                                "code": fault.status_code,
                                "reason": "ServiceUnavailable",
                                "message": "injected by the test proxy",
                            }
                        ).encode(),
                    )
                if fault is not None and fault.kind == "drop":
                    record.outcome = "dropped"
                    self.close_connection = True
                    return
                if fault is not None and fault.kind == "hang":
                    record.outcome = "hung"
                    self._wait_for_the_client_to_leave(record, fault.seconds)
                    self.close_connection = True
                    return
                if fault is not None and fault.kind == "delay":
                    time.sleep(fault.seconds)
                headers = {
                    name: value
                    for name, value in self.headers.items()
                    if name.lower()
                    not in ("host", "authorization", "content-length", "connection", "accept-encoding", "keep-alive")
                }
                headers.update(proxy._auth_headers)
                response = proxy._pool.request(
                    self.command,
                    proxy._upstream + self.path,
                    body=body,
                    headers=headers,
                    preload_content=True,
                    retries=False,
                    timeout=30,
                )
                record.outcome = response.status
                if fault is not None and fault.kind == "barrier-after":
                    fault.barrier.wait()
                self._reply(
                    record, response.status, response.data, response.headers.get("Content-Type", "application/json")
                )

            do_GET = do_PUT = do_POST = do_PATCH = do_DELETE = _handle

            def log_message(self, *args) -> None:
                pass

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address) -> None:
                pass  # a client that gave up closed its end: the test looks at the records

        self._server = Server(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def connection_args(self) -> dict:
        """Module options that reach the API server through this proxy."""
        return {"host": self.url, "api_key": "the-proxy-authenticates"}

    def outcomes(self, path_fragment: str = "") -> list:
        return [record.outcome for record in self.requests if path_fragment in record.path]

    def busy_seconds(self) -> float:
        """From the first request's arrival to the last answer (or client hang-up) the proxy saw."""
        ends = [
            moment
            for record in self.requests
            for moment in (record.answered_at, record.client_gone_at)
            if moment is not None
        ]
        return max(ends) - self.requests[0].arrived_at if ends and self.requests else 0.0

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> KubeApiProxy:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
