from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.ceres.rollout.plugins.module_utils.common.retry import RetryPolicy
from ansible_collections.ceres.rollout.plugins.module_utils.k8s import errors as k8s_errors
from ansible_collections.ceres.rollout.plugins.module_utils.k8s.args import (
    DEFAULT_TIMEOUT,
    K8S_AUTH_ARG_SPEC,
    K8S_CONNECTION_ARG_SPEC,
)
from ansible_collections.ceres.rollout.plugins.module_utils.k8s.client import (
    K8sClient,
    api_path,
    auth_options,
    build_api_client,
    build_configuration,
)
from ansible_collections.ceres.rollout.plugins.module_utils.k8s.errors import (
    BadRequest,
    Conflict,
    DeadlineExceeded,
    Forbidden,
    K8sConfigError,
    K8sConnectionError,
    NotFound,
    ServerError,
    TooManyRequests,
    parse_retry_after,
)

SECRET_TOKEN = "very-secret-token-value"


# --------------------------------------------------------------------------- a scripted API server


class ScriptedApiServer:
    """A local HTTP server answering from a script of (status, body, headers) and recording requests."""

    def __init__(self) -> None:
        self.script: list[tuple[int, object, dict]] = []
        self.requests: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw_body = self.rfile.read(length) if length else b""
                server.requests.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "headers": self.headers,
                        "body": json.loads(raw_body) if raw_body else None,
                    }
                )
                status, body, headers = server.script.pop(0) if server.script else (500, "script exhausted", {})
                payload = (
                    body
                    if isinstance(body, bytes)
                    else (body.encode() if isinstance(body, str) else json.dumps(body).encode())
                )
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_PUT = do_POST = do_PATCH = do_DELETE = _answer

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    def answer(self, status: int, body: object = None, headers: dict | None = None) -> ScriptedApiServer:
        self.script.append((status, {} if body is None else body, headers or {}))
        return self

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def api_status(code: int, reason: str, message: str, name: str | None = None) -> dict:
    status = {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "code": code,
        "reason": reason,
        "message": message,
    }
    if name:
        status["details"] = {"name": name, "group": "networking.istio.io", "kind": "virtualservices"}
    return status


@pytest.fixture()
def api_server():
    server = ScriptedApiServer()
    yield server
    server.close()


class RecordingSleep:
    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def make_client(server: ScriptedApiServer, sleeps: RecordingSleep | None = None, **auth) -> K8sClient:
    options = {"host": server.url, "api_key": SECRET_TOKEN}
    options.update(auth)
    return K8sClient.from_auth(
        options,
        sleep=sleeps or RecordingSleep(),
        retry_policy=RetryPolicy(attempts=4, base_delay=0.01, max_delay=0.05, deadline=30),
    )


# --------------------------------------------------------------------------- argument spec


def test_auth_spec_has_kubernetes_core_names_and_hides_secrets():
    assert set(K8S_AUTH_ARG_SPEC) == {
        "kubeconfig",
        "context",
        "host",
        "api_key",
        "username",
        "password",
        "validate_certs",
        "ca_cert",
        "client_cert",
        "client_key",
        "proxy",
        "no_proxy",
        "proxy_headers",
        "persist_config",
        "impersonate_user",
        "impersonate_groups",
    }
    for secret in ("api_key", "password", "kubeconfig"):
        assert K8S_AUTH_ARG_SPEC[secret]["no_log"] is True
    assert K8S_AUTH_ARG_SPEC["validate_certs"]["aliases"] == ["verify_ssl"]
    assert K8S_AUTH_ARG_SPEC["ca_cert"]["aliases"] == ["ssl_ca_cert"]


def test_auth_options_fall_back_to_k8s_auth_environment(monkeypatch):
    monkeypatch.setenv("K8S_AUTH_HOST", "https://api.example:6443")
    monkeypatch.setenv("K8S_AUTH_API_KEY", SECRET_TOKEN)
    monkeypatch.setenv("K8S_AUTH_VERIFY_SSL", "no")
    monkeypatch.setenv("K8S_AUTH_IMPERSONATE_GROUPS", "ops,auditors")
    result = ArgumentSpecValidator(K8S_AUTH_ARG_SPEC).validate({})
    assert result.error_messages == []
    params = auth_options(result.validated_parameters)
    assert params["host"] == "https://api.example:6443"
    assert params["api_key"] == SECRET_TOKEN
    assert params["validate_certs"] is False
    assert params["impersonate_groups"] == ["ops", "auditors"]
    assert SECRET_TOKEN in result._no_log_values


def test_proxy_header_environment_applies_without_the_option(monkeypatch):
    monkeypatch.setenv("K8S_AUTH_PROXY_HEADERS_PROXY_BASIC_AUTH", "user:proxy-secret")
    result = ArgumentSpecValidator(K8S_AUTH_ARG_SPEC).validate({})
    assert result.validated_parameters["proxy_headers"]["proxy_basic_auth"] == "user:proxy-secret"
    assert "user:proxy-secret" in result._no_log_values
    configuration = build_configuration(
        dict(
            auth_options(result.validated_parameters),
            host="https://api.example",
            api_key="t",
            proxy="http://proxy:3128",
        )
    )
    assert configuration.proxy_headers["proxy-authorization"].startswith("Basic ")


def test_auth_options_from_raw_task_args_resolve_aliases_and_environment(monkeypatch):
    monkeypatch.setenv("K8S_AUTH_CONTEXT", "from-env")
    options = auth_options(
        {"verify_ssl": "false", "ssl_ca_cert": "/etc/ca.pem", "namespace": "not-auth", "api_key": None}
    )
    assert options["validate_certs"] is False
    assert options["ca_cert"] == "/etc/ca.pem"
    assert options["context"] == "from-env"
    assert "namespace" not in options and "verify_ssl" not in options


def test_auth_options_reject_bad_types_without_echoing_values():
    with pytest.raises(K8sConfigError) as raised:
        auth_options({"validate_certs": "certainly", "api_key": SECRET_TOKEN})
    assert "validate_certs" in str(raised.value)
    assert SECRET_TOKEN not in str(raised.value)
    with pytest.raises(K8sConfigError) as raised:
        auth_options({"api_key": SECRET_TOKEN, "persist_config": SECRET_TOKEN})  # a paste in the wrong field
    assert "persist_config" in str(raised.value)
    assert SECRET_TOKEN not in str(raised.value)


# --------------------------------------------------------------------------- configuration


def bearer(configuration) -> str:
    return configuration.auth_settings()["BearerToken"]["value"]


def write_kubeconfig(tmp_path, server="https://kube.example:6443", token="kubeconfig-token"):
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "admin",
        "clusters": [
            {"name": "local", "cluster": {"server": server, "insecure-skip-tls-verify": True}},
            {"name": "other", "cluster": {"server": "https://other.example:6443"}},
        ],
        "users": [{"name": "admin", "user": {"token": token}}, {"name": "viewer", "user": {"token": "viewer-token"}}],
        "contexts": [
            {"name": "admin", "context": {"cluster": "local", "user": "admin"}},
            {"name": "viewer", "context": {"cluster": "other", "user": "viewer"}},
        ],
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path, config


def test_configuration_from_kubeconfig_file_and_context(tmp_path):
    path, _config = write_kubeconfig(tmp_path)
    configuration = build_configuration({"kubeconfig": str(path)})
    assert configuration.host == "https://kube.example:6443"
    assert bearer(configuration) == "Bearer kubeconfig-token"
    viewer = build_configuration({"kubeconfig": str(path), "context": "viewer"})
    assert viewer.host == "https://other.example:6443"
    assert bearer(viewer) == "Bearer viewer-token"


def test_configuration_from_kubeconfig_dict_with_overrides(tmp_path):
    _path, config = write_kubeconfig(tmp_path)
    configuration = build_configuration(
        {"kubeconfig": config, "api_key": "override", "validate_certs": True, "ca_cert": "/etc/ca.pem"}
    )
    assert configuration.host == "https://kube.example:6443"
    assert bearer(configuration) == "Bearer override"
    assert configuration.verify_ssl is True
    assert configuration.ssl_ca_cert == "/etc/ca.pem"


def test_default_kubeconfig_comes_from_the_environment(tmp_path, monkeypatch):
    path, _config = write_kubeconfig(tmp_path, server="https://from-env.example:6443")
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(path))
    assert build_configuration({}).host == "https://from-env.example:6443"


def test_host_and_token_need_no_kubeconfig(monkeypatch, tmp_path):
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    configuration = build_configuration(
        {
            "host": "https://api.example:6443/",
            "api_key": SECRET_TOKEN,
            "validate_certs": False,
            "proxy": "http://proxy:3128",
            "proxy_headers": {"proxy_basic_auth": "u:p", "user_agent": None},
        }
    )
    assert configuration.host == "https://api.example:6443"
    assert configuration.verify_ssl is False
    assert configuration.proxy == "http://proxy:3128"
    assert "proxy-authorization" in configuration.proxy_headers


def test_build_configuration_leaves_the_global_default_alone(tmp_path):
    from kubernetes import client

    before = client.Configuration.get_default_copy().host
    path, _config = write_kubeconfig(tmp_path)
    build_configuration({"kubeconfig": str(path)})
    assert client.Configuration.get_default_copy().host == before


def test_missing_kubeconfig_is_a_config_error(tmp_path):
    with pytest.raises(K8sConfigError, match="could not"):
        build_configuration({"kubeconfig": str(tmp_path / "nope")})
    with pytest.raises(K8sConfigError, match="kubeconfig must be a path or a dict"):
        build_configuration({"kubeconfig": ["a"]})


def test_unknown_context_is_a_config_error(tmp_path):
    path, _config = write_kubeconfig(tmp_path)
    with pytest.raises(K8sConfigError):
        build_configuration({"kubeconfig": str(path), "context": "does-not-exist"})


def test_build_api_client_makes_no_request(tmp_path):
    path, _config = write_kubeconfig(tmp_path, server="http://127.0.0.1:9")  # nothing listens there
    api_client = build_api_client({"kubeconfig": str(path)})
    assert api_client.configuration.host == "http://127.0.0.1:9"


# --------------------------------------------------------------------------- paths


@pytest.mark.parametrize(
    "arguments, expected",
    [
        (("v1", "pods", "ns"), "/api/v1/namespaces/ns/pods"),
        (("v1", "namespaces", None, "ns"), "/api/v1/namespaces/ns"),
        (("apps/v1", "deployments", "ns", "web", "scale"), "/apis/apps/v1/namespaces/ns/deployments/web/scale"),
        (
            ("networking.istio.io/v1", "virtualservices", "pilot-apps", "checkout"),
            "/apis/networking.istio.io/v1/namespaces/pilot-apps/virtualservices/checkout",
        ),
    ],
)
def test_api_path(arguments, expected):
    assert api_path(*arguments) == expected


def test_retry_after_parsing():
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(" 0.5 ") == 0.5
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("Thu, 01 Jan 1970 00:00:10 GMT", now=4.0) == pytest.approx(6.0)
    assert parse_retry_after("Thu, 01 Jan 1970 00:00:10 GMT", now=20.0) == 0.0


# --------------------------------------------------------------------------- requests


def test_get_sends_the_token_and_decodes_json(api_server):
    api_server.answer(200, {"kind": "Namespace", "metadata": {"name": "x"}})
    client = make_client(api_server)
    assert client.get("/api/v1/namespaces/x", query={"pretty": False, "skip": None}) == {
        "kind": "Namespace",
        "metadata": {"name": "x"},
    }
    request = api_server.requests[0]
    assert request["method"] == "GET"
    assert request["path"] == "/api/v1/namespaces/x?pretty=false"
    assert request["headers"]["Authorization"] == "Bearer %s" % SECRET_TOKEN
    assert request["headers"]["Accept"] == "application/json"


def test_put_and_patch_send_json_bodies_with_their_content_types(api_server):
    api_server.answer(200, {"ok": 1}).answer(200, {"ok": 2}).answer(201, {"ok": 3})
    client = make_client(api_server)
    assert client.put("/apis/x/v1/things/a", {"spec": {"n": 1}}) == {"ok": 1}
    assert client.patch("/apis/x/v1/things/a", [{"op": "replace", "path": "/spec/n", "value": 2}]) == {"ok": 2}
    assert client.post("/apis/x/v1/things", {"metadata": {"name": "b"}}) == {"ok": 3}
    put, patch, post = api_server.requests
    assert put["body"] == {"spec": {"n": 1}}
    assert put["headers"]["Content-Type"] == "application/json"
    assert patch["headers"]["Content-Type"] == "application/json-patch+json"
    assert post["method"] == "POST"
    with pytest.raises(ValueError):
        client.patch("/x", {}, patch_type="bogus")


def test_empty_answer_is_none(api_server):
    api_server.answer(200, b"")
    assert make_client(api_server).delete("/api/v1/namespaces/x") is None


def test_impersonation_headers(api_server):
    api_server.answer(200, {})
    make_client(api_server, impersonate_user="alice", impersonate_groups=["ops", "auditors"]).get("/api")
    headers = api_server.requests[0]["headers"]
    assert headers["Impersonate-User"] == "alice"
    assert headers.get_all("Impersonate-Group") == ["ops", "auditors"]


def test_basic_auth_header(api_server):
    api_server.answer(200, {})
    make_client(api_server, api_key=None, username="admin", password="pw").get("/api")
    assert api_server.requests[0]["headers"]["Authorization"] == "Basic YWRtaW46cHc="


def test_not_found_object_versus_missing_resource_type(api_server):
    api_server.answer(404, api_status(404, "NotFound", 'virtualservices "x" not found', name="x"))
    api_server.answer(404, "404 page not found", {"Content-Type": "text/plain"})
    client = make_client(api_server)
    with pytest.raises(NotFound) as missing_object:
        client.get("/apis/networking.istio.io/v1/namespaces/a/virtualservices/x")
    assert not missing_object.value.resource_type_missing
    assert missing_object.value.reason == "NotFound"
    assert 'virtualservices "x" not found' in str(missing_object.value)
    with pytest.raises(NotFound) as missing_type:
        client.get("/apis/nothing.example/v1/namespaces/a/things/x")
    assert missing_type.value.resource_type_missing
    assert len(api_server.requests) == 2  # no retries on 404


@pytest.mark.parametrize(
    "status, reason, error_class",
    [
        (400, "BadRequest", BadRequest),
        (403, "Forbidden", Forbidden),
        (409, "Conflict", Conflict),
    ],
)
def test_other_client_errors_raise_at_once(api_server, status, reason, error_class):
    api_server.answer(status, api_status(status, reason, "the %s message" % reason))
    sleeps = RecordingSleep()
    with pytest.raises(error_class) as raised:
        make_client(api_server, sleeps).put("/apis/x/v1/things/a", {"a": 1})
    assert raised.value.status == status
    assert raised.value.reason == reason
    assert "PUT /apis/x/v1/things/a: %d %s: the %s message" % (status, reason, reason) == str(raised.value)
    assert sleeps.delays == []
    assert len(api_server.requests) == 1


def test_server_errors_are_retried_with_backoff(api_server):
    api_server.answer(503, api_status(503, "ServiceUnavailable", "etcd is sad"))
    api_server.answer(500, "oops")
    api_server.answer(200, {"ok": True})
    sleeps = RecordingSleep()
    assert make_client(api_server, sleeps).get("/api/v1/pods") == {"ok": True}
    assert len(api_server.requests) == 3
    assert len(sleeps.delays) == 2
    assert all(0 <= delay <= 0.05 for delay in sleeps.delays)


def test_server_errors_give_up_after_the_attempts(api_server):
    for _attempt in range(5):
        api_server.answer(502, "bad gateway")
    sleeps = RecordingSleep()
    with pytest.raises(ServerError) as raised:
        make_client(api_server, sleeps).get("/api/v1/pods")
    assert raised.value.status == 502
    assert len(api_server.requests) == 4  # the policy allows 4 attempts
    assert len(sleeps.delays) == 3


def test_server_errors_on_non_idempotent_calls_are_not_retried(api_server):
    api_server.answer(500, "maybe created").answer(200, {})
    with pytest.raises(ServerError):
        make_client(api_server).post("/api/v1/namespaces", {"metadata": {"name": "x"}})
    assert len(api_server.requests) == 1


def test_server_error_on_post_is_retried_when_declared_idempotent(api_server):
    api_server.answer(500, "boom").answer(201, {"status": {"allowed": True}})
    review = make_client(api_server).post("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", {}, idempotent=True)
    assert review == {"status": {"allowed": True}}


def test_too_many_requests_honours_retry_after(api_server):
    api_server.answer(429, api_status(429, "TooManyRequests", "slow down"), {"Retry-After": "2"})
    api_server.answer(200, {"ok": True})
    sleeps = RecordingSleep()
    assert make_client(api_server, sleeps).post("/api/v1/namespaces", {}) == {"ok": True}
    assert sleeps.delays == [2.0]


def test_retry_after_beyond_the_deadline_gives_up_at_once(api_server):
    api_server.answer(429, api_status(429, "TooManyRequests", "slow down"), {"Retry-After": "120"})
    sleeps = RecordingSleep()
    with pytest.raises(TooManyRequests) as raised:
        make_client(api_server, sleeps).get("/api/v1/pods")
    assert raised.value.retry_after == 120.0
    assert sleeps.delays == []


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_connection_refused_is_retried_then_raised_without_the_token():
    sleeps = RecordingSleep()
    client = K8sClient.from_auth(
        {"host": "http://127.0.0.1:%d" % free_port(), "api_key": SECRET_TOKEN},
        sleep=sleeps,
        retry_policy=RetryPolicy(attempts=3, base_delay=0.01),
    )
    with pytest.raises(K8sConnectionError) as raised:
        client.post("/api/v1/namespaces", {"metadata": {"name": "x"}})
    assert not raised.value.request_sent
    assert raised.value.status is None
    assert "cannot connect to the API server" in str(raised.value)
    assert SECRET_TOKEN not in str(raised.value)
    assert len(sleeps.delays) == 2  # refused: never sent, so even a POST is retried


def test_reset_after_sending_is_not_retried_for_post():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)
    accepted = []

    def accept_and_drop():
        while len(accepted) < 5:
            try:
                connection, _address = listener.accept()
            except OSError:
                return
            accepted.append(connection)
            connection.recv(65536)
            connection.close()

    thread = threading.Thread(target=accept_and_drop, daemon=True)
    thread.start()
    try:
        url = "http://127.0.0.1:%d" % listener.getsockname()[1]
        sleeps = RecordingSleep()
        client = K8sClient.from_auth(
            {"host": url, "api_key": SECRET_TOKEN}, sleep=sleeps, retry_policy=RetryPolicy(attempts=3, base_delay=0.01)
        )
        with pytest.raises(K8sConnectionError) as raised:
            client.post("/api/v1/namespaces", {"metadata": {"name": "x"}})
        assert raised.value.request_sent
        assert sleeps.delays == []
        with pytest.raises(K8sConnectionError):
            client.get("/api/v1/namespaces")
        assert len(sleeps.delays) == 2  # GET is idempotent: retried
    finally:
        listener.close()


def test_error_messages_never_carry_credentials(api_server):
    api_server.answer(401, api_status(401, "Unauthorized", "Unauthorized"))
    with pytest.raises(k8s_errors.Unauthorized) as raised:
        make_client(api_server).get("/api/v1/secrets")
    assert SECRET_TOKEN not in str(raised.value)
    assert SECRET_TOKEN not in repr(raised.value.__dict__)


def test_non_json_success_is_an_error(api_server):
    api_server.answer(200, "not json")
    with pytest.raises(k8s_errors.K8sError, match="not JSON"):
        make_client(api_server).get("/api")


# --------------------------------------------------------------------------- the one time budget


class FakeClock:
    """Monotonic time that moves only when the client sleeps (or the test says so)."""

    def __init__(self) -> None:
        self.now = 500.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def budget_client(server: ScriptedApiServer, clock: FakeClock, timeout: float, **kwargs) -> K8sClient:
    kwargs.setdefault("retry_policy", RetryPolicy(attempts=100, base_delay=1.0, max_delay=1.0, deadline=None))
    return K8sClient.from_auth(
        {"host": server.url, "api_key": SECRET_TOKEN, "timeout": timeout},
        sleep=clock.sleep,
        clock=clock,
        rng=lambda: 1.0,
        **kwargs,
    )


def test_the_timeout_option_has_a_documented_default_and_reaches_the_client():
    assert K8S_CONNECTION_ARG_SPEC["timeout"] == {"type": "float", "default": 120.0}
    assert auth_options({})["timeout"] == 120.0
    assert auth_options({"timeout": "7.5"})["timeout"] == 7.5
    client = K8sClient.from_auth(auth_options({"host": "http://127.0.0.1:9", "api_key": "t", "timeout": 7}))
    assert client.deadline.seconds == 7
    assert K8sClient.from_auth({"host": "http://127.0.0.1:9", "api_key": "t"}).deadline.seconds == DEFAULT_TIMEOUT
    with pytest.raises(K8sConfigError, match="timeout must be more than 0 seconds, got 0"):
        K8sClient.from_auth({"host": "http://127.0.0.1:9", "api_key": "t", "timeout": 0})


def test_retries_stop_at_the_timeout_and_say_so(api_server):
    for _attempt in range(20):
        api_server.answer(503, api_status(503, "ServiceUnavailable", "etcd is sad"))
    clock = FakeClock()
    with pytest.raises(ServerError) as raised:
        budget_client(api_server, clock, timeout=10).get("/api/v1/pods")
    # one attempt per second of backoff; the one that would start at 10 s is not made
    assert len(api_server.requests) == 10
    assert clock.sleeps == [1.0] * 9
    assert str(raised.value) == (
        "gave up after 10 attempts in 9.0 s, the timeout of 10 s leaving no time for "
        "another: GET /api/v1/pods: 503 ServiceUnavailable: etcd is sad"
    )
    assert raised.value.status == 503


def test_every_request_of_a_client_shares_its_timeout(api_server):
    for _attempt in range(20):
        api_server.answer(503, api_status(503, "ServiceUnavailable", "busy"))
    clock = FakeClock()
    client = budget_client(api_server, clock, timeout=10)
    with pytest.raises(ServerError, match="gave up after 10 attempts in 9.0 s"):
        client.get("/api/v1/pods")
    with pytest.raises(ServerError, match="^gave up after 1 attempt in 0.0 s, the timeout of 10 s"):
        client.get("/api/v1/pods")  # the last second of the budget: no room for a retry
    assert len(api_server.requests) == 11
    clock.now += 1.0
    with pytest.raises(DeadlineExceeded) as raised:
        client.put("/api/v1/namespaces/x", {"metadata": {"name": "x"}})
    assert len(api_server.requests) == 11  # not sent at all
    assert str(raised.value) == "PUT /api/v1/namespaces/x: not sent, the timeout of 10 s is spent"
    assert isinstance(raised.value, K8sConnectionError) and not raised.value.request_sent


def test_a_retry_after_past_the_timeout_gives_up_at_once(api_server):
    api_server.answer(429, api_status(429, "TooManyRequests", "slow down"), {"Retry-After": "8"})
    clock = FakeClock()
    with pytest.raises(TooManyRequests) as raised:
        budget_client(api_server, clock, timeout=5).get("/api/v1/pods")
    assert clock.sleeps == []
    assert len(api_server.requests) == 1
    assert str(raised.value).startswith(
        "gave up after 1 attempt in 0.0 s, the timeout of 5 s leaving no time for another: GET /api/v1/pods: 429"
    )


def test_a_backoff_sleep_never_ends_past_the_timeout(api_server):
    api_server.answer(503, api_status(503, "ServiceUnavailable", "busy"), {"Retry-After": "3"})
    api_server.answer(503, api_status(503, "ServiceUnavailable", "busy"), {"Retry-After": "3"})
    api_server.answer(200, {"ok": True})
    clock = FakeClock()
    with pytest.raises(ServerError, match="gave up after 2 attempts in 3.0 s, the timeout of 5 s"):
        budget_client(api_server, clock, timeout=5).get("/api/v1/pods")
    assert clock.sleeps == [3.0]  # a second 3 s wait would end at 6 s


class SlowApiServer:
    """Answers every request after ``delay`` seconds (an API server that hangs)."""

    def __init__(self, delay: float) -> None:
        self.requests = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests += 1
                time.sleep(delay)
                payload = b"{}"
                try:
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    pass  # the client gave up first

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_a_socket_timeout_is_capped_by_what_is_left_of_the_timeout():
    server = SlowApiServer(delay=3.0)
    try:
        clock = FakeClock()
        client = budget_client(server, clock, timeout=60)
        clock.now += 59.5  # 0.5 s of the budget left: the read timeout is 0.5 s, not 60 s
        with pytest.raises(K8sConnectionError) as raised:
            client.get("/api/v1/pods")
    finally:
        server.close()
    assert server.requests == 1
    assert "read timeout=0.5)" in str(raised.value)
    assert str(raised.value).startswith(
        "gave up after 1 attempt in 0.0 s, the timeout of 60 s leaving no time for "
        "another: GET /api/v1/pods: no answer from the API server"
    )


# --- an API server whose certificate is not verified --------------------------------------------


def test_a_kubeconfig_with_insecure_skip_tls_verify_warns_and_leaves_the_process_warnings_alone(tmp_path):
    import warnings

    path, _config = write_kubeconfig(tmp_path)
    filters_before = list(warnings.filters)
    warned = []
    client = K8sClient.from_auth({"kubeconfig": str(path)}, warn=warned.append)
    assert warned == [
        "the Kubernetes API server at https://kube.example:6443 is reached without verifying its TLS certificate "
        "(validate_certs=false, or insecure-skip-tls-verify in the kubeconfig): anyone on the network path can "
        "impersonate it"
    ]
    assert client.insecure_tls_warning == warned[0]
    assert warnings.filters == filters_before  # urllib3's InsecureRequestWarning is not turned off process-wide


def test_a_verified_api_server_gives_no_warning(tmp_path):
    path, _config = write_kubeconfig(tmp_path)
    warned = []
    client = K8sClient.from_auth({"kubeconfig": str(path), "context": "viewer"}, warn=warned.append)
    assert warned == [] and client.insecure_tls_warning is None
