"""k8s_exec: the exec stream's channels, binary output, statuses, and the target pod.

The websocket is faked at two levels: a fake connection object handing out messages (for
the demultiplexing and status rules), and a small real websocket server on 127.0.0.1 that
speaks the handshake and sends fragmented binary frames (for ExecSession itself).
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import socket
import struct
import threading

import pytest
import websocket

from ansible_collections.ceres.rollout.plugins.module_utils.k8s import exec as k8s_exec
from ansible_collections.ceres.rollout.plugins.module_utils.k8s.client import (
    K8sClient,
)
from ansible_collections.ceres.rollout.plugins.module_utils.k8s.errors import (
    DeadlineExceeded,
    Forbidden,
    NotFound,
)
from ansible_collections.ceres.rollout.plugins.module_utils.k8s.exec import (
    ChannelDemux,
    CommandFailed,
    ExecSession,
    ExecStatus,
    ExecStreamError,
    ExecTarget,
    ExecTargetError,
    StderrTail,
    choose_container,
    choose_ready_pod,
    exec_url,
    label_selector,
    parse_exec_status,
    resolve_exec_target,
    run_command,
)

TARGET = ExecTarget(namespace="ceres-system", pod="postgres-main-0", container="postgres")
SUCCESS = b'{"metadata":{},"status":"Success"}'
EXIT_3 = json.dumps(
    {
        "metadata": {},
        "status": "Failure",
        "message": "command terminated with non-zero exit code: exit status 3",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": "3"}]},
    }
).encode()
# What kwok (and some runtimes) send: a Failure without an exit code.
INTERNAL_ERROR = json.dumps(
    {
        "metadata": {},
        "status": "Failure",
        "reason": "InternalError",
        "message": "Internal error occurred: error executing command in container: cmd wait: pg_dump: exit status 1",
    }
).encode()


def message(channel, data=b""):
    return bytes((channel,)) + data


# --------------------------------------------------------------------------- a fake connection


class Frame:
    def __init__(self, data):
        self.data = data


class FakeConnection:
    """Hands out scripted messages; an Exception in the script is raised (a dropped stream);
    the end of the script is the server's close frame."""

    def __init__(self, script, protocol=k8s_exec.V5_PROTOCOL):
        self.script = list(script)
        self.protocol = protocol
        self.sent = []
        self.closed = False
        self.sock = None

    def getsubprotocol(self):
        return self.protocol

    def recv_data_frame(self, control_frame=False):
        if not self.script:
            return websocket.ABNF.OPCODE_CLOSE, Frame(b"\x03\xe8")
        item = self.script.pop(0)
        if isinstance(item, BaseException):
            raise item
        return websocket.ABNF.OPCODE_BINARY, Frame(item)

    def send_binary(self, data):
        self.sent.append(data)

    def shutdown(self):
        self.closed = True


def session_over(script, protocol=k8s_exec.V5_PROTOCOL):
    return ExecSession(FakeConnection(script, protocol), TARGET, "pg_dump in the test pod")


# --------------------------------------------------------------------------- demultiplexing


def test_channels_go_to_their_sinks_and_empty_messages_are_ignored():
    stdout, stderr = bytearray(), bytearray()
    demux = ChannelDemux(stdout.extend, stderr.extend)
    for item in [
        b"",
        message(1),
        message(2),
        message(3),
        message(1, b"out"),
        message(2, b"err"),
        message(4, b"resize echo"),
        message(255, bytes((0,))),
        message(3, SUCCESS),
    ]:
        demux.feed(item)
    assert bytes(stdout) == b"out" and bytes(stderr) == b"err"
    assert demux.stdout_bytes == 3
    assert demux.closed_channels == {0}
    assert demux.status() == ExecStatus(success=True, exit_code=0)


def test_binary_output_split_across_many_messages_comes_out_byte_for_byte():
    payload = bytes(range(256)) * 64 + b"\x00\xff\r\n\x1f\x8bPGDMP\xc3\x28"  # invalid UTF-8 included
    chunks, position, randomness = [], 0, random.Random(4)
    while position < len(payload):
        size = randomness.choice([1, 2, 3, 255, 4096, 7000])
        chunks.append(message(1, payload[position : position + size]))
        position += size
        if randomness.random() < 0.2:
            chunks.append(message(2, b"warning "))
    received = []
    demux = ChannelDemux(lambda data: received.append(bytes(data)), lambda data: None)
    for chunk in chunks:
        demux.feed(chunk)
    assert b"".join(received) == payload
    assert len(received) == sum(1 for chunk in chunks if chunk[0] == 1)  # streamed, chunk by chunk


def test_stdout_chunks_are_handed_over_without_decoding_or_copying():
    seen = []
    demux = ChannelDemux(seen.append, lambda data: None)
    demux.feed(message(1, b"\xff\xfe"))
    assert isinstance(seen[0], memoryview) and seen[0].tobytes() == b"\xff\xfe"


def test_a_status_split_across_messages_is_joined():
    demux = ChannelDemux(lambda data: None, lambda data: None)
    demux.feed(message(3, EXIT_3[:10]))
    demux.feed(message(3, EXIT_3[10:]))
    assert demux.status().exit_code == 3


def test_the_stderr_tail_keeps_the_end():
    tail = StderrTail(limit=10)
    tail.append(b"0123456789")
    tail.append(memoryview(b"abcde"))
    assert tail.text() == "...56789abcde"


# --------------------------------------------------------------------------- statuses


def test_success_is_exit_status_zero():
    assert parse_exec_status(SUCCESS) == ExecStatus(success=True, exit_code=0)


def test_failure_with_an_exit_code():
    status = parse_exec_status(EXIT_3)
    assert not status.success and status.exit_code == 3 and status.reason == "NonZeroExitCode"
    assert status.describe() == "exited with status 3"


def test_failure_without_an_exit_code_keeps_the_api_message():
    status = parse_exec_status(INTERNAL_ERROR)
    assert not status.success and status.exit_code is None
    assert status.describe().startswith("failed (InternalError: Internal error occurred")


@pytest.mark.parametrize(
    "payload, expected",
    [
        (b"not json", "not JSON"),
        (b"[1]", "not a Status object"),
        (b'{"status": "Pending"}', "neither Success nor Failure"),
    ],
)
def test_a_malformed_status_is_a_broken_stream(payload, expected):
    with pytest.raises(ExecStreamError, match=expected):
        parse_exec_status(payload)


def test_a_missing_status_is_a_broken_stream():
    demux = ChannelDemux(lambda data: None, lambda data: None)
    demux.feed(message(1, b"looks complete"))
    with pytest.raises(ExecStreamError, match="without the command's exit status"):
        demux.status()


# --------------------------------------------------------------------------- run_command


def test_run_command_streams_to_completion():
    output = bytearray()
    result = run_command(
        session_over(
            [message(1), message(1, b"PGDMP"), message(2, b"note\n"), message(1, b"\x00\x01"), message(3, SUCCESS)]
        ),
        output.extend,
    )
    assert bytes(output) == b"PGDMP\x00\x01"
    assert result.status.success and result.stderr == "note" and result.stdout_bytes == 7
    assert result.check("pg_dump") is result


def test_a_non_zero_exit_raises_command_failed_with_masked_stderr():
    result = run_command(
        session_over([message(2, b"pg_dump: error: password s3cret rejected\n"), message(3, EXIT_3)]), lambda data: None
    )
    with pytest.raises(CommandFailed) as raised:
        result.check("pg_dump in the pod", redact=lambda text: text.replace("s3cret", "********"))
    assert raised.value.exit_code == 3
    assert str(raised.value) == "pg_dump in the pod exited with status 3: pg_dump: error: password ******** rejected"
    assert "s3cret" not in raised.value.stderr


def test_a_stream_ending_without_a_status_fails_even_with_output():
    with pytest.raises(ExecStreamError, match="without the command's exit status; stderr: killed"):
        run_command(session_over([message(1, b"PGDMP partial"), message(2, b"killed")]), lambda data: None)


def test_a_dropped_stream_fails():
    dropped = websocket.WebSocketConnectionClosedException("Connection to remote host was lost.")
    with pytest.raises(ExecStreamError, match="dropped: Connection to remote host was lost"):
        run_command(session_over([message(1, b"PGDMP"), dropped]), lambda data: None)


def test_a_failing_sink_stops_the_stream():
    def disk_full(data):
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        run_command(session_over([message(1, b"PGDMP"), message(3, SUCCESS)]), disk_full)


def test_stdin_and_its_close_signal():
    v5 = session_over([])
    v5.write_stdin(b"SELECT 1;\n")
    v5.close_stdin()
    assert v5.connection.sent == [b"\x00SELECT 1;\n", b"\xff\x00"]
    v4 = session_over([], protocol=k8s_exec.V4_PROTOCOL)
    v4.close_stdin()  # v4 has no close signal
    assert v4.connection.sent == []


# --------------------------------------------------------------------------- the target pod


def pod(
    name,
    phase="Running",
    ready="True",
    ready_since="2026-01-01T00:00:00Z",
    created="2026-01-01T00:00:00Z",
    terminating=False,
    containers=("postgres",),
    annotations=None,
):
    metadata = {"name": name, "creationTimestamp": created, "annotations": annotations or {}}
    if terminating:
        metadata["deletionTimestamp"] = "2026-01-02T00:00:00Z"
    return {
        "metadata": metadata,
        "spec": {"containers": [{"name": container} for container in containers]},
        "status": {
            "phase": phase,
            "conditions": [{"type": "Ready", "status": ready, "lastTransitionTime": ready_since}],
        },
    }


def test_label_selector_from_match_labels_and_expressions():
    selector = {
        "matchLabels": {"app": "postgres-main", "version": "15"},
        "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["db", "data"]},
            {"key": "canary", "operator": "DoesNotExist"},
            {"key": "zone", "operator": "NotIn", "values": ["a"]},
            {"key": "backup", "operator": "Exists"},
        ],
    }
    assert label_selector(selector) == "app=postgres-main,version=15,tier in (db,data),!canary,zone notin (a),backup"


def test_an_empty_selector_is_refused():
    with pytest.raises(ExecTargetError, match="every pod"):
        label_selector({})


def test_the_pod_ready_longest_is_chosen_and_others_are_skipped():
    pods = [
        pod("not-ready", ready="False", ready_since="2025-01-01T00:00:00Z"),
        pod("pending", phase="Pending"),
        pod("terminating", terminating=True, ready_since="2025-01-01T00:00:00Z"),
        pod("ready-later", ready_since="2026-03-01T00:00:00Z"),
        pod("ready-first", ready_since="2026-02-01T00:00:00Z"),
    ]
    assert choose_ready_pod(pods)["metadata"]["name"] == "ready-first"
    assert choose_ready_pod(pods[:3]) is None


def test_the_container_is_named_annotated_or_first():
    sidecar = pod("p", containers=("istio-proxy", "postgres"))
    assert choose_container(sidecar, None) == "istio-proxy"
    annotated = pod(
        "p", containers=("istio-proxy", "postgres"), annotations={"kubectl.kubernetes.io/default-container": "postgres"}
    )
    assert choose_container(annotated, None) == "postgres"
    assert choose_container(sidecar, "postgres") == "postgres"
    with pytest.raises(ExecTargetError, match='no container "pgbouncer" .*istio-proxy, postgres'):
        choose_container(sidecar, "pgbouncer")


class FakeClient:
    def __init__(self, objects):
        self.objects = objects
        self.calls = []

    def get(self, path, query=None):
        self.calls.append((path, query))
        if path not in self.objects:
            raise NotFound("GET %s: 404" % path, status=404)
        return self.objects[path]


DEPLOYMENT_PATH = "/apis/apps/v1/namespaces/ceres-system/deployments/postgres-main"
PODS_PATH = "/api/v1/namespaces/ceres-system/pods"
DEPLOYMENT = {"spec": {"selector": {"matchLabels": {"app": "postgres-main"}}}}


def test_a_deployment_resolves_to_a_ready_pod_through_its_selector():
    client = FakeClient({DEPLOYMENT_PATH: DEPLOYMENT, PODS_PATH: {"items": [pod("postgres-main-abc")]}})
    target = resolve_exec_target(client, "ceres-system", deployment="postgres-main")
    assert target == ExecTarget("ceres-system", "postgres-main-abc", "postgres")
    assert client.calls[1] == (PODS_PATH, {"labelSelector": "app=postgres-main"})


def test_a_missing_deployment_or_pod_is_named():
    client = FakeClient({})
    with pytest.raises(ExecTargetError, match='deployment "nope" was not found in namespace "ceres-system"'):
        resolve_exec_target(client, "ceres-system", deployment="nope")
    with pytest.raises(ExecTargetError, match='pod "nope" was not found in namespace "ceres-system"'):
        resolve_exec_target(client, "ceres-system", pod="nope")


def test_no_ready_pod_names_what_was_found():
    client = FakeClient(
        {DEPLOYMENT_PATH: DEPLOYMENT, PODS_PATH: {"items": [pod("a", ready="False"), pod("b", phase="Pending")]}}
    )
    with pytest.raises(ExecTargetError, match=r"no Running and Ready pod .*a \(Running, not Ready\), b \(Pending\)"):
        resolve_exec_target(client, "ceres-system", deployment="postgres-main")


def test_a_named_pod_must_be_ready():
    client = FakeClient({PODS_PATH + "/p": pod("p", ready="False")})
    with pytest.raises(ExecTargetError, match="not Running and Ready"):
        resolve_exec_target(client, "ceres-system", pod="p")


def test_exec_url_repeats_command_and_keeps_a_path_prefix():
    url = exec_url("https://proxy.example:8443/k8s/", TARGET, ["pg_dump", "--dbname=dbname='a b'"], stdin=True)
    assert url.startswith("wss://proxy.example:8443/k8s/api/v1/namespaces/ceres-system/pods/postgres-main-0/exec?")
    assert "command=pg_dump&command=--dbname%3Ddbname%3D%27a+b%27" in url
    assert "container=postgres" in url and "stdin=true" in url and "tty=false" in url
    assert exec_url("http://127.0.0.1:8080", TARGET, ["true"]).startswith("ws://127.0.0.1:8080/")


# --------------------------------------------------------------------------- a real websocket


class WebSocketServer:
    """One-connection websocket server: answers the upgrade (or refuses it), then sends the
    scripted frames (already encoded) and a close frame; records the request and what the
    client sent."""

    def __init__(self, frames, refuse=None, protocol=k8s_exec.V5_PROTOCOL):
        self.frames = frames
        self.refuse = refuse
        self.protocol = protocol
        self.request = b""
        self.received = b""
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(1)
        self.url = "http://127.0.0.1:%d" % self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        connection, _address = self.listener.accept()
        with connection:
            while b"\r\n\r\n" not in self.request:
                self.request += connection.recv(4096)
            if self.refuse is not None:
                status, body = self.refuse
                connection.sendall(
                    b"HTTP/1.1 %d Refused\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                    % (status, len(body), body)
                )
                return
            key = [
                line.split(b":", 1)[1].strip()
                for line in self.request.split(b"\r\n")
                if line.lower().startswith(b"sec-websocket-key:")
            ][0]
            accept = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
            connection.sendall(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Accept: "
                + accept
                + b"\r\nSec-WebSocket-Protocol: "
                + self.protocol.encode()
                + b"\r\n\r\n"
            )
            for frame in self.frames:
                connection.sendall(frame)
            connection.sendall(frame_bytes(0x8, b"\x03\xe8"))
            connection.settimeout(2)
            try:
                while True:
                    data = connection.recv(4096)
                    if not data:
                        break
                    self.received += data
            except OSError:
                pass


def frame_bytes(opcode, payload, fin=True):
    first = (0x80 if fin else 0) | opcode
    if len(payload) < 126:
        header = struct.pack("!BB", first, len(payload))
    elif len(payload) < 65536:
        header = struct.pack("!BBH", first, 126, len(payload))
    else:
        header = struct.pack("!BBQ", first, 127, len(payload))
    return header + payload


class FakeConfiguration:
    def __init__(self, host):
        self.host = host
        self.verify_ssl = True
        self.ssl_ca_cert = None
        self.assert_hostname = None
        self.cert_file = None
        self.key_file = None
        self.tls_server_name = None
        self.proxy = None
        self.no_proxy = None

    def auth_settings(self):
        return {"BearerToken": {"in": "header", "key": "authorization", "value": "Bearer t0ken"}}


class ApiClientStub:
    def __init__(self, host):
        self.configuration = FakeConfiguration(host)


def test_exec_session_over_a_real_websocket_reassembles_fragmented_binary_frames():
    dump = bytes(range(256)) * 300  # 76800 bytes: 64-bit length frames too
    frames = [
        frame_bytes(0x2, b"\x01"),  # the empty message opening stdout
        # one stdout message in three fragments: BINARY (not final), CONTINUATION, final CONTINUATION
        frame_bytes(0x2, b"\x01" + dump[:100], fin=False),
        frame_bytes(0x0, dump[100:70000], fin=False),
        frame_bytes(0x0, dump[70000:]),
        frame_bytes(0x2, b"\x02pg_dump: warning\n"),
        frame_bytes(0x9, b"ping"),  # answered by the library, never seen by us
        frame_bytes(0x2, b"\x03" + SUCCESS),
    ]
    server = WebSocketServer(frames)
    client = K8sClient(ApiClientStub(server.url), impersonate_user="backup-bot", impersonate_groups=["ops"])
    session = ExecSession.open(client, TARGET, ["pg_dump", "-Fc", "ceres_db"], stdin=True)
    output = bytearray()
    result = run_command(session, output.extend)
    session.close()
    server.thread.join(5)

    assert bytes(output) == dump
    assert result.status.success and result.stderr == "pg_dump: warning"
    request = server.request.decode("latin-1")
    assert request.startswith(
        "GET /api/v1/namespaces/ceres-system/pods/postgres-main-0/exec?command=pg_dump&command=-Fc"
        "&command=ceres_db&container=postgres&stdin=true&stdout=true&stderr=true&tty=false "
    )
    headers = request.lower()
    assert "authorization: bearer t0ken" in headers
    assert "impersonate-user: backup-bot" in headers and "impersonate-group: ops" in headers
    assert "sec-websocket-protocol: v5.channel.k8s.io,v4.channel.k8s.io" in headers
    assert session.protocol == k8s_exec.V5_PROTOCOL


def test_a_refused_upgrade_is_the_api_servers_error():
    body = json.dumps(
        {
            "kind": "Status",
            "status": "Failure",
            "reason": "Forbidden",
            "message": 'pods "postgres-main-0" is forbidden: cannot create resource "pods/exec"',
        }
    ).encode()
    server = WebSocketServer([], refuse=(403, body))
    client = K8sClient(ApiClientStub(server.url))
    with pytest.raises(Forbidden, match='403 pods "postgres-main-0" is forbidden'):
        ExecSession.open(client, TARGET, ["pg_dump"])
    server.thread.join(5)


def test_no_exec_is_started_once_the_clients_timeout_is_spent():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(0.5)
    clock = [0.0]
    client = K8sClient(
        ApiClientStub("http://127.0.0.1:%d" % listener.getsockname()[1]), timeout=5, clock=lambda: clock[0]
    )
    clock[0] = 5.0
    try:
        with pytest.raises(DeadlineExceeded, match="exec of pg_dump in .*: not started, the timeout of 5 s is spent"):
            ExecSession.open(client, TARGET, ["pg_dump"])
        with pytest.raises(socket.timeout):
            listener.accept()  # never connected
    finally:
        listener.close()


def test_the_exec_handshake_waits_no_longer_than_the_timeout_left(monkeypatch):
    timeouts = []
    original_settimeout = k8s_exec.websocket.WebSocket.settimeout
    monkeypatch.setattr(
        k8s_exec.websocket.WebSocket,
        "settimeout",
        lambda self, value: (timeouts.append(value), original_settimeout(self, value))[1],
    )
    listener = socket.socket()  # accepts the connection, never answers the upgrade
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    clock = [0.0]
    client = K8sClient(
        ApiClientStub("http://127.0.0.1:%d" % listener.getsockname()[1]), timeout=60, clock=lambda: clock[0]
    )
    clock[0] = 59.75  # 0.25 s left, where the handshake alone would wait 30 s
    try:
        with pytest.raises(ExecStreamError, match="Connection timed out"):
            ExecSession.open(client, TARGET, ["pg_dump"])
    finally:
        listener.close()
    assert timeouts[0] == 0.25
