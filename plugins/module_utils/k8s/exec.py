# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Commands run in pods through the Kubernetes exec API, their output streamed.

What ``kubectl exec`` does, as a library a module can use:

* ``resolve_exec_target()`` finds the pod (by name, or a Running and Ready pod of a
  Deployment, through its ``spec.selector``) and the container to run in.
* ``ExecSession.open()`` starts a command with ``POST .../pods/{pod}/exec`` upgraded to a
  websocket speaking the ``v5.channel.k8s.io`` (else ``v4.channel.k8s.io``) protocol: every
  message starts with a channel byte, 0 stdin, 1 stdout, 2 stderr, 3 the final status,
  255 (v5) a channel being closed.
* ``ChannelDemux`` splits the messages: stdout and stderr go to callbacks as bytes, as they
  arrive (binary output is never decoded, never held whole); the status is parsed at the end.
* ``run_command()`` streams a command to completion and returns an ``ExecResult``;
  ``ExecResult.check()`` raises ``CommandFailed`` unless the status is ``Success``.

The status is the only proof that a command succeeded: a stream that ends without one, or
drops, raises ``ExecStreamError`` even when the output looked complete.

Caveat of the exec API itself: closing the stream does not signal the process in the
container; a command abandoned half-way may run on until it next writes to the closed stream.
"""

from __future__ import annotations

import json
import socket
import ssl
import typing as t
from dataclasses import dataclass
from urllib.parse import urlencode, urlparse

from ansible_collections.ceres.rollout.plugins.module_utils.k8s.client import (
    api_path,
    deadline_of,
)
from ansible_collections.ceres.rollout.plugins.module_utils.k8s.errors import (
    DeadlineExceeded,
    K8sConnectionError,
    K8sError,
    NotFound,
    error_for_status,
)

try:
    import websocket
except ImportError:
    HAS_WEBSOCKET = False
else:
    HAS_WEBSOCKET = True


STDIN_CHANNEL = 0
STDOUT_CHANNEL = 1
STDERR_CHANNEL = 2
STATUS_CHANNEL = 3
CLOSE_SIGNAL = 255  # v5: [255, channel] closes that channel

V5_PROTOCOL = "v5.channel.k8s.io"
V4_PROTOCOL = "v4.channel.k8s.io"
SUBPROTOCOLS = (V5_PROTOCOL, V4_PROTOCOL)

CONNECT_TIMEOUT_SECONDS = 30.0
STDERR_TAIL_BYTES = 64 * 1024
DEFAULT_CONTAINER_ANNOTATION = "kubectl.kubernetes.io/default-container"


# --------------------------------------------------------------------------- errors


class ExecError(K8sError):
    """Running a command in a pod failed."""


class ExecTargetError(ExecError):
    """No pod to run in: the Deployment or pod is missing, no pod is Running and Ready, or
    the container does not exist."""


class ExecStreamError(ExecError):
    """The stream dropped, or ended without the command's exit status."""


class CommandFailed(ExecError):
    """The command ran and failed: ``exit_code`` (None when the API did not report one)
    and the tail of its ``stderr``."""

    def __init__(self, message: str, exit_code: int | None = None, stderr: str = "") -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.stderr = stderr


# --------------------------------------------------------------------------- status


@dataclass(frozen=True)
class ExecStatus:
    """The ``metav1.Status`` the API server sends on the status channel when the command ends."""

    success: bool
    exit_code: int | None = None
    reason: str | None = None
    message: str | None = None

    def describe(self) -> str:
        if self.success:
            return "exited with status 0"
        if self.exit_code is not None:
            return "exited with status %d" % self.exit_code
        return "failed (%s: %s)" % (self.reason or "no reason given", self.message or "no message")


def parse_exec_status(payload: bytes) -> ExecStatus:
    """The command's outcome from the status channel's bytes.

    ``Success`` is exit status 0. A ``Failure`` with reason ``NonZeroExitCode`` carries the
    exit status in a cause of reason ``ExitCode``; any other ``Failure`` (the command could
    not start, the runtime failed) has no exit status. Anything else is a broken stream.
    """
    try:
        document = json.loads(bytes(payload).decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ExecStreamError("the exec status is not JSON: %r" % bytes(payload[:200]))
    if not isinstance(document, dict):
        raise ExecStreamError("the exec status is not a Status object: %r" % (document,))
    status = document.get("status")
    if status == "Success":
        return ExecStatus(success=True, exit_code=0)
    if status != "Failure":
        raise ExecStreamError("the exec status is neither Success nor Failure: %r" % (status,))
    reason = document.get("reason")
    exit_code = None
    if reason == "NonZeroExitCode":
        for cause in (document.get("details") or {}).get("causes") or []:
            if isinstance(cause, dict) and cause.get("reason") == "ExitCode":
                try:
                    exit_code = int(cause.get("message"))
                except (TypeError, ValueError):
                    pass
    return ExecStatus(success=False, exit_code=exit_code, reason=reason, message=document.get("message"))


# --------------------------------------------------------------------------- demultiplexing


class StderrTail:
    """The last ``limit`` bytes written to stderr (a failing tool says why at the end)."""

    def __init__(self, limit: int = STDERR_TAIL_BYTES) -> None:
        self.limit = limit
        self.buffer = bytearray()
        self.truncated = False

    def append(self, data: t.Any) -> None:
        self.buffer += data
        if len(self.buffer) > self.limit:
            del self.buffer[: len(self.buffer) - self.limit]
            self.truncated = True

    def text(self) -> str:
        text = self.buffer.decode("utf-8", "replace").strip()
        return "..." + text if self.truncated and text else text


class ChannelDemux:
    """Splits the channel-prefixed messages of an exec stream.

    stdout and stderr bytes go to their callbacks as they arrive (a memoryview of the
    message, without copying); the status channel's bytes are kept for ``status()``.
    Empty messages (the server opens each channel with one) are ignored.
    """

    def __init__(self, on_stdout: t.Callable[[t.Any], t.Any], on_stderr: t.Callable[[t.Any], t.Any]) -> None:
        self.on_stdout = on_stdout
        self.on_stderr = on_stderr
        self.status_payload = bytearray()
        self.closed_channels: set[int] = set()
        self.stdout_bytes = 0

    def feed(self, message: t.Any) -> None:
        if not message:
            return
        view = memoryview(message)
        channel, data = view[0], view[1:]
        if channel == CLOSE_SIGNAL:
            if len(data):
                self.closed_channels.add(data[0])
        elif not len(data):
            return
        elif channel == STDOUT_CHANNEL:
            self.stdout_bytes += len(data)
            self.on_stdout(data)
        elif channel == STDERR_CHANNEL:
            self.on_stderr(data)
        elif channel == STATUS_CHANNEL:
            self.status_payload += data
        # Anything else (stdin or resize echoed back) carries nothing for us.

    def status(self) -> ExecStatus:
        if not self.status_payload:
            raise ExecStreamError("the stream ended without the command's exit status")
        return parse_exec_status(self.status_payload)


# --------------------------------------------------------------------------- the target pod


@dataclass(frozen=True)
class ExecTarget:
    namespace: str
    pod: str
    container: str

    def describe(self) -> str:
        return 'pod "%s" (container "%s") in namespace "%s"' % (self.pod, self.container, self.namespace)

    def as_dict(self) -> dict:
        return {"namespace": self.namespace, "pod": self.pod, "container": self.container}


def label_selector(selector: t.Mapping[str, t.Any] | None) -> str:
    """A ``metav1.LabelSelector`` as the ``labelSelector`` query string. An empty selector
    (which would select every pod) is an error."""
    selector = selector or {}
    terms = ["%s=%s" % (key, value) for key, value in sorted((selector.get("matchLabels") or {}).items())]
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression.get("key"), expression.get("operator")
        values = ",".join(expression.get("values") or [])
        if operator == "In":
            terms.append("%s in (%s)" % (key, values))
        elif operator == "NotIn":
            terms.append("%s notin (%s)" % (key, values))
        elif operator == "Exists":
            terms.append(key)
        elif operator == "DoesNotExist":
            terms.append("!%s" % key)
        else:
            raise ExecTargetError("unknown label selector operator %r" % (operator,))
    if not terms:
        raise ExecTargetError("the selector is empty; it would select every pod of the namespace")
    return ",".join(terms)


def pod_condition(pod: t.Mapping[str, t.Any], condition_type: str) -> t.Mapping[str, t.Any]:
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == condition_type:
            return condition
    return {}


def pod_is_running_and_ready(pod: t.Mapping[str, t.Any]) -> bool:
    return (
        not (pod.get("metadata") or {}).get("deletionTimestamp")
        and (pod.get("status") or {}).get("phase") == "Running"
        and pod_condition(pod, "Ready").get("status") == "True"
    )


def describe_pod_state(pod: t.Mapping[str, t.Any]) -> str:
    metadata, status = pod.get("metadata") or {}, pod.get("status") or {}
    state = status.get("phase") or "Unknown"
    if metadata.get("deletionTimestamp"):
        state += ", terminating"
    elif state == "Running" and pod_condition(pod, "Ready").get("status") != "True":
        state += ", not Ready"
    return "%s (%s)" % (metadata.get("name"), state)


def choose_ready_pod(pods: t.Sequence[t.Mapping[str, t.Any]]) -> t.Mapping[str, t.Any] | None:
    """The Running and Ready pod that has been Ready longest (then the oldest, then by name),
    as kubectl prefers; None when there is none."""
    ready = [pod for pod in pods if pod_is_running_and_ready(pod)]
    if not ready:
        return None
    return sorted(
        ready,
        key=lambda pod: (
            pod_condition(pod, "Ready").get("lastTransitionTime") or "",
            (pod.get("metadata") or {}).get("creationTimestamp") or "",
            (pod.get("metadata") or {}).get("name") or "",
        ),
    )[0]


def choose_container(pod: t.Mapping[str, t.Any], container: str | None) -> str:
    """The named container (which must exist), else the pod's default container: the one its
    ``kubectl.kubernetes.io/default-container`` annotation names, else the first."""
    metadata = pod.get("metadata") or {}
    names = [entry.get("name") for entry in (pod.get("spec") or {}).get("containers") or []]
    if not names:
        raise ExecTargetError('pod "%s" has no containers' % metadata.get("name"))
    if container is not None:
        if container not in names:
            raise ExecTargetError(
                'pod "%s" has no container "%s" (it has: %s)' % (metadata.get("name"), container, ", ".join(names))
            )
        return container
    annotated = (metadata.get("annotations") or {}).get(DEFAULT_CONTAINER_ANNOTATION)
    return annotated if annotated in names else names[0]


def resolve_exec_target(
    client: t.Any, namespace: str, deployment: str | None = None, pod: str | None = None, container: str | None = None
) -> ExecTarget:
    """The pod and container to run in: the named pod, which must be Running and Ready, or
    a Running and Ready pod selected by the Deployment's ``spec.selector``."""
    if (deployment is None) == (pod is None):
        raise ValueError("exactly one of deployment and pod must be given")
    if pod is not None:
        try:
            pod_object = client.get(api_path("v1", "pods", namespace, pod))
        except NotFound:
            raise ExecTargetError('pod "%s" was not found in namespace "%s"' % (pod, namespace), status=404)
        if not pod_is_running_and_ready(pod_object):
            raise ExecTargetError(
                'pod %s in namespace "%s" is not Running and Ready' % (describe_pod_state(pod_object), namespace)
            )
    else:
        try:
            deployment_object = client.get(api_path("apps/v1", "deployments", namespace, deployment))
        except NotFound:
            raise ExecTargetError(
                'deployment "%s" was not found in namespace "%s"' % (deployment, namespace), status=404
            )
        try:
            selector = label_selector((deployment_object.get("spec") or {}).get("selector"))
        except ExecTargetError as error:
            raise ExecTargetError('deployment "%s" in namespace "%s": %s' % (deployment, namespace, error))
        pods = (client.get(api_path("v1", "pods", namespace), query={"labelSelector": selector}) or {}).get(
            "items"
        ) or []
        pod_object = choose_ready_pod(pods)
        if pod_object is None:
            found = ", ".join(describe_pod_state(candidate) for candidate in pods) or "none"
            raise ExecTargetError(
                'deployment "%s" in namespace "%s" has no Running and Ready pod (pods matching'
                " its selector %s: %s)" % (deployment, namespace, selector, found)
            )
    return ExecTarget(
        namespace=namespace, pod=pod_object["metadata"]["name"], container=choose_container(pod_object, container)
    )


# --------------------------------------------------------------------------- the websocket


def exec_url(host: str, target: ExecTarget, command: t.Sequence[str], stdin: bool = False) -> str:
    """The websocket URL of ``POST /api/v1/namespaces/{ns}/pods/{pod}/exec`` (one ``command``
    parameter per argument, no TTY: stdout and stderr stay apart and binary-clean)."""
    parsed = urlparse(host.rstrip("/"))
    scheme = {"https": "wss", "http": "ws"}.get(parsed.scheme, parsed.scheme)
    query = [("command", argument) for argument in command]
    query += [
        ("container", target.container),
        ("stdin", "true" if stdin else "false"),
        ("stdout", "true"),
        ("stderr", "true"),
        ("tty", "false"),
    ]
    path = api_path("v1", "pods", target.namespace, target.pod, "exec")
    return "%s://%s%s%s?%s" % (scheme, parsed.netloc, parsed.path, path, urlencode(query))


def handshake_headers(client: t.Any) -> list[str]:
    """Authentication (from the client's configuration, refreshing an expiring token) and
    impersonation headers for the websocket handshake."""
    headers = ["User-Agent: ceres.rollout"]
    for setting in client.configuration.auth_settings().values():
        if setting.get("in") == "header" and setting.get("value"):
            headers.append("%s: %s" % (setting["key"], setting["value"]))
    if getattr(client, "impersonate_user", None):
        headers.append("Impersonate-User: %s" % client.impersonate_user)
    for group in getattr(client, "impersonate_groups", None) or []:
        headers.append("Impersonate-Group: %s" % group)
    return headers


def ssl_options(configuration: t.Any) -> dict:
    if not configuration.verify_ssl:
        options: dict[str, t.Any] = {"cert_reqs": ssl.CERT_NONE, "check_hostname": False}
    else:
        options = {"cert_reqs": ssl.CERT_REQUIRED}
        if configuration.ssl_ca_cert:
            options["ca_certs"] = configuration.ssl_ca_cert
        if configuration.assert_hostname is not None:
            options["check_hostname"] = bool(configuration.assert_hostname)
    if configuration.cert_file:
        options["certfile"] = configuration.cert_file
    if configuration.key_file:
        options["keyfile"] = configuration.key_file
    if getattr(configuration, "tls_server_name", None):
        options["server_hostname"] = configuration.tls_server_name
    return options


def proxy_options(configuration: t.Any) -> dict:
    if not configuration.proxy:
        return {}
    proxy = urlparse(configuration.proxy)
    options = {
        "http_proxy_host": proxy.hostname,
        "http_proxy_port": proxy.port,
        "proxy_type": proxy.scheme if proxy.scheme in ("socks4", "socks4a", "socks5", "socks5h") else "http",
    }
    if proxy.username:
        options["http_proxy_auth"] = (proxy.username, proxy.password or "")
    if configuration.no_proxy:
        options["http_no_proxy"] = [entry.strip() for entry in configuration.no_proxy.split(",") if entry.strip()]
    return options


def _handshake_error(what: str, error: t.Any) -> K8sError:
    """The domain error for a refused upgrade, from the API server's Status when it sent one."""
    status = getattr(error, "status_code", None)
    body = getattr(error, "resp_body", None) or b""
    detail = ""
    try:
        document = json.loads(body.decode("utf-8") if isinstance(body, bytes) else body)
        if isinstance(document, dict):
            detail = document.get("message") or ""
    except (TypeError, ValueError):
        detail = (body[:200].decode("utf-8", "replace") if isinstance(body, bytes) else str(body)[:200]).strip()
    message = "%s: %s %s" % (what, status, detail or getattr(error, "status_message", "") or "")
    return error_for_status(int(status), message.strip()) if status else ExecError("%s: %s" % (what, error))


class ExecSession:
    """One command running in a pod, reached through a websocket."""

    def __init__(self, connection: t.Any, target: ExecTarget, what: str) -> None:
        self.connection = connection
        self.target = target
        self.what = what
        self.protocol = connection.getsubprotocol()

    @classmethod
    def open(
        cls,
        client: t.Any,
        target: ExecTarget,
        command: t.Sequence[str],
        stdin: bool = False,
        what: str | None = None,
        connect_timeout: float = CONNECT_TIMEOUT_SECONDS,
    ) -> ExecSession:
        """Start ``command`` in the target container. ``client`` is a K8sClient (its
        configuration and impersonation are used). The handshake waits at most
        ``connect_timeout`` seconds, and never past the client's deadline; the command's
        output then streams for as long as it runs."""
        if not HAS_WEBSOCKET:
            raise ExecError("the websocket-client Python library (a dependency of kubernetes) is required")
        what = what or "%s in %s" % (command[0], target.describe())
        deadline = deadline_of(client)
        remaining = deadline.remaining()
        if remaining is not None:
            if remaining <= 0:
                raise DeadlineExceeded(
                    "exec of %s: not started, the timeout of %g s is spent" % (what, deadline.seconds)
                )
            connect_timeout = min(connect_timeout, remaining)
        connection = websocket.WebSocket(
            sslopt=ssl_options(client.configuration),
            skip_utf8_validation=True,
            sockopt=((socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1),),
        )
        connection.settimeout(connect_timeout)
        try:
            connection.connect(
                exec_url(client.configuration.host, target, command, stdin=stdin),
                header=handshake_headers(client),
                subprotocols=list(SUBPROTOCOLS),
                **proxy_options(client.configuration),
            )
        except websocket.WebSocketBadStatusException as error:
            raise _handshake_error("exec of %s" % what, error)
        except (TimeoutError, ssl.SSLError, ConnectionError, socket.gaierror) as error:
            raise K8sConnectionError(
                "exec of %s: cannot connect to the API server: %s" % (what, error), request_sent=False
            )
        except (websocket.WebSocketException, OSError) as error:
            raise ExecStreamError("exec of %s: the API server did not start a v4/v5 exec stream: %s" % (what, error))
        # Output may pause for long (a dump waiting for a lock): no read timeout; TCP
        # keepalive notices a dead peer.
        connection.settimeout(None)
        return cls(connection, target, what)

    def receive(self) -> bytes | None:
        """The next data message (channel byte first); None when the server closed the stream."""
        try:
            opcode, frame = self.connection.recv_data_frame(False)
        except (websocket.WebSocketException, OSError, ValueError) as error:
            raise ExecStreamError("the exec stream of %s dropped: %s" % (self.what, str(error) or type(error).__name__))
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            return None
        return frame.data

    def write_stdin(self, data: bytes) -> None:
        try:
            self.connection.send_binary(bytes((STDIN_CHANNEL,)) + data)
        except (websocket.WebSocketException, OSError) as error:
            raise ExecStreamError("writing to the stdin of %s failed: %s" % (self.what, error))

    def close_stdin(self) -> None:
        """Signal end of input (v5 only; not every runtime passes it on, so a command should
        not need it to finish)."""
        if self.protocol == V5_PROTOCOL:
            try:
                self.connection.send_binary(bytes((CLOSE_SIGNAL, STDIN_CHANNEL)))
            except (websocket.WebSocketException, OSError):
                pass

    def abort(self) -> None:
        """Close the connection at once; a thread blocked in receive() gets ExecStreamError."""
        sock = getattr(self.connection, "sock", None)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.close()

    def close(self) -> None:
        try:
            self.connection.shutdown()
        except (websocket.WebSocketException, OSError):
            pass


@dataclass(frozen=True)
class ExecResult:
    status: ExecStatus
    stderr: str
    stdout_bytes: int

    def check(self, what: str, redact: t.Callable[[str], str] = str) -> ExecResult:
        """self when the command succeeded, else CommandFailed naming what failed and why."""
        if self.status.success:
            return self
        message = "%s %s" % (what, self.status.describe())
        if self.stderr:
            message += ": " + self.stderr
        raise CommandFailed(redact(message), exit_code=self.status.exit_code, stderr=redact(self.stderr))


def run_command(
    session: ExecSession, on_stdout: t.Callable[[t.Any], t.Any], stderr_limit: int = STDERR_TAIL_BYTES
) -> ExecResult:
    """Stream a command to its end: stdout chunks to ``on_stdout``, the tail of stderr kept.
    Raises ExecStreamError when the stream drops or ends without a status."""
    stderr = StderrTail(stderr_limit)
    demux = ChannelDemux(on_stdout, stderr.append)
    while True:
        message = session.receive()
        if message is None:
            break
        demux.feed(message)
    try:
        status = demux.status()
    except ExecStreamError as error:
        detail = stderr.text()
        raise ExecStreamError("%s: %s%s" % (session.what, error, "; stderr: " + detail if detail else ""))
    return ExecResult(status=status, stderr=stderr.text(), stdout_bytes=demux.stdout_bytes)


def capture_command(
    client: t.Any, target: ExecTarget, command: t.Sequence[str], what: str | None = None, limit: int = 1024 * 1024
) -> tuple[bytes, ExecResult]:
    """Run a short command and return (its stdout, its result); stdout beyond ``limit``
    bytes is an error."""
    output = bytearray()

    def collect(data: t.Any) -> None:
        if len(output) + len(data) > limit:
            raise ExecStreamError("%s wrote more than %d bytes" % (what or command[0], limit))
        output.extend(data)

    session = ExecSession.open(client, target, command, what=what)
    try:
        result = run_command(session, collect)
    finally:
        session.close()
    return bytes(output), result
