"""The Prometheus client: how every kind of answer is classified, and what goes over the wire."""

from __future__ import annotations

import base64
import json
import subprocess

import pytest
from ansible.module_utils import urls
from prometheus_stub import CannedAnswer, error, refused_url, scalar, start_stub, success, vector

from ansible_collections.ceres.rollout.plugins.module_utils.gate import prometheus as prometheus_module
from ansible_collections.ceres.rollout.plugins.module_utils.gate.prometheus import (
    AMBIGUOUS,
    INCONCLUSIVE,
    NO_DATA,
    QUERY_ERROR,
    VALUE,
    PrometheusClient,
    PrometheusConfigError,
    classify_response,
)

TOKEN = "s3cr3t-token-value"
PASSWORD = "pa55-w0rd-value"


@pytest.fixture
def prometheus():
    stub = start_stub()
    yield stub
    stub.stop()


def body(answer: CannedAnswer) -> bytes:
    return answer.body


# --- classification of response bodies ---------------------------------------------------


@pytest.mark.parametrize(
    "answer, kind, value",
    [
        (vector("0.25"), VALUE, 0.25),
        (vector("0"), VALUE, 0.0),
        (vector("-3.5"), VALUE, -3.5),
        (vector("1e3"), VALUE, 1000.0),
        (scalar("42"), VALUE, 42.0),
        (vector(), NO_DATA, None),
        (vector("NaN"), NO_DATA, None),
        (vector("+Inf"), NO_DATA, None),
        (vector("-Inf"), NO_DATA, None),
        (scalar("NaN"), NO_DATA, None),
        (vector("1", "2"), AMBIGUOUS, None),
    ],
    ids=[
        "real",
        "zero",
        "negative",
        "exponent",
        "scalar",
        "empty",
        "nan",
        "plus-inf",
        "minus-inf",
        "scalar-nan",
        "two-series",
    ],
)
def test_classify_values(answer, kind, value):
    result = classify_response(200, body(answer))
    assert result.kind == kind
    assert result.value == value


def test_ambiguous_names_the_series_and_counts_as_error():
    result = classify_response(200, body(vector("1", "2", "3", "4")))
    assert result.kind == AMBIGUOUS
    assert result.is_error
    assert "4 series" in result.message
    assert 'pod="pod-0"' in result.message


def test_status_error_is_a_query_error_with_prometheus_message():
    result = classify_response(400, body(error(400, "bad_data", 'parse error at char 5: unexpected "}"')))
    assert result.kind == QUERY_ERROR
    assert result.is_error
    assert "bad_data" in result.message
    assert "parse error" in result.message


def test_status_error_with_http_200_is_still_a_query_error():
    result = classify_response(200, body(error(200, "execution", "query processing would load too many samples")))
    assert result.kind == QUERY_ERROR


@pytest.mark.parametrize("raw_body", [b"<html>502 Bad Gateway</html>", b"", b"\xff\xfe", b"[1, 2]", b'{"data": {}}'])
def test_bodies_that_are_not_the_api_envelope_are_query_errors(raw_body):
    assert classify_response(200, raw_body).kind == QUERY_ERROR


def test_success_envelope_with_http_error_status_is_a_query_error():
    assert classify_response(503, body(vector("1"))).kind == QUERY_ERROR


@pytest.mark.parametrize("result_type", ["matrix", "string"])
def test_non_numeric_result_types_are_query_errors(result_type):
    answer = success({"resultType": result_type, "result": []})
    result = classify_response(200, body(answer))
    assert result.kind == QUERY_ERROR
    assert result_type in result.message


def test_a_value_that_is_not_a_number_is_a_query_error():
    answer = success({"resultType": "vector", "result": [{"metric": {}, "value": [1, "many"]}]})
    assert classify_response(200, body(answer)).kind == QUERY_ERROR


def test_warnings_make_the_answer_inconclusive_but_keep_the_value():
    answer = success(
        {"resultType": "vector", "result": [{"metric": {}, "value": [1, "0.5"]}]},
        warnings=["store 10.0.0.3:10901 did not respond"],
    )
    result = classify_response(200, body(answer))
    assert result.kind == INCONCLUSIVE
    assert result.value == 0.5
    assert "did not respond" in result.message
    assert not result.is_error


def test_warnings_on_an_empty_result_are_inconclusive_not_no_data():
    answer = success({"resultType": "vector", "result": []}, warnings=["partial response"])
    assert classify_response(200, body(answer)).kind == INCONCLUSIVE


def test_ambiguity_wins_over_warnings():
    answer = success(
        {
            "resultType": "vector",
            "result": [{"metric": {"a": "1"}, "value": [1, "1"]}, {"metric": {"a": "2"}, "value": [1, "2"]}],
        },
        warnings=["partial response"],
    )
    assert classify_response(200, body(answer)).kind == AMBIGUOUS


# --- over HTTP ---------------------------------------------------------------------------


def test_query_over_http_sends_the_promql_and_a_server_side_timeout(prometheus):
    prometheus.answers = lambda promql: vector("0.99")
    client = PrometheusClient(prometheus.url, timeout=7)
    result = client.query('sum(rate(istio_requests_total{destination_workload="a"}[1m]))')
    assert (result.kind, result.value) == (VALUE, 0.99)
    request = prometheus.requests[-1]
    assert request.path == "/api/v1/query"
    assert request.params["query"] == ['sum(rate(istio_requests_total{destination_workload="a"}[1m]))']
    assert request.params["timeout"] == ["7s"]
    assert request.headers.get("accept") == "application/json"
    assert "authorization" not in request.headers


def test_path_prefix_is_kept(prometheus):
    client = PrometheusClient(prometheus.url + "/prometheus/")
    client.query("up")
    assert prometheus.requests[-1].path == "/prometheus/api/v1/query"


def test_a_full_query_url_is_accepted(prometheus):
    client = PrometheusClient(prometheus.url + "/api/v1/query")
    client.query("up")
    assert prometheus.requests[-1].path == "/api/v1/query"


def test_bearer_token_and_extra_headers_are_sent(prometheus):
    client = PrometheusClient(
        prometheus.url, bearer_token=TOKEN, headers={"X-Scope-OrgID": "ceres"}, allow_insecure_auth=True
    )
    assert client.query("up").kind == VALUE
    headers = prometheus.requests[-1].headers
    assert headers["authorization"] == "Bearer " + TOKEN
    assert headers["x-scope-orgid"] == "ceres"


def test_basic_auth_is_sent(prometheus):
    client = PrometheusClient(prometheus.url, username="gate", password=PASSWORD, allow_insecure_auth=True)
    client.query("up")
    expected = base64.b64encode(("gate:" + PASSWORD).encode()).decode()
    assert prometheus.requests[-1].headers["authorization"] == "Basic " + expected


def test_http_400_with_prometheus_error_body(prometheus):
    prometheus.answers = lambda promql: error(400, "bad_data", "1:5: parse error: unexpected end of input")
    result = PrometheusClient(prometheus.url).query("sum(")
    assert result.kind == QUERY_ERROR
    assert "HTTP 400" in result.message
    assert "parse error" in result.message


def test_http_502_from_a_proxy(prometheus):
    prometheus.answers = lambda promql: CannedAnswer(502, b"<html>Bad Gateway</html>")
    result = PrometheusClient(prometheus.url).query("up")
    assert result.kind == QUERY_ERROR
    assert "HTTP 502" in result.message


def test_invalid_json_over_http(prometheus):
    prometheus.answers = lambda promql: CannedAnswer(200, b"{not json")
    assert PrometheusClient(prometheus.url).query("up").kind == QUERY_ERROR


def test_timeout_is_a_query_error(prometheus):
    prometheus.answers = lambda promql: CannedAnswer(200, body(vector("1")), delay_seconds=2.5)
    result = PrometheusClient(prometheus.url, timeout=1).query("up")
    assert result.kind == QUERY_ERROR
    assert "timeout" in result.message


def test_connection_refused_is_a_query_error():
    url = refused_url()
    result = PrometheusClient(url).query("up")
    assert result.kind == QUERY_ERROR
    assert "connection refused" in result.message
    assert url.split("//")[1] in result.message


def test_unresolvable_host_is_a_query_error():
    result = PrometheusClient("http://prometheus.invalid:9090").query("up")
    assert result.kind == QUERY_ERROR
    assert "prometheus.invalid" in result.message


def test_tls_to_a_plain_http_server_is_a_query_error(prometheus):
    result = PrometheusClient(prometheus.url.replace("http://", "https://"), timeout=3).query("up")
    assert result.kind == QUERY_ERROR


def test_secrets_never_appear_in_messages(prometheus):
    # A server (or proxy) that echoes the credentials it received in its error message.
    def echo_credentials(promql):
        request = prometheus.requests[-1]
        echoed = "%s / %s" % (request.headers.get("authorization"), request.headers.get("x-api-key"))
        return error(401, "unauthorized", "rejected " + echoed)

    prometheus.answers = echo_credentials
    basic_credentials = base64.b64encode(("gate:" + PASSWORD).encode()).decode()
    for client in (
        PrometheusClient(
            prometheus.url, bearer_token=TOKEN, headers={"X-Api-Key": "tenant-key-123"}, allow_insecure_auth=True
        ),
        PrometheusClient(
            prometheus.url,
            username="gate",
            password=PASSWORD,
            headers={"X-Api-Key": "tenant-key-123"},
            allow_insecure_auth=True,
        ),
    ):
        result = client.query("up")
        assert result.kind == QUERY_ERROR
        assert "rejected" in result.message
        for secret in (TOKEN, PASSWORD, basic_credentials, "tenant-key-123"):
            assert secret not in result.message
        assert "********" in result.message


def test_messages_do_not_show_the_token_of_an_unreachable_server():
    result = PrometheusClient(refused_url(), bearer_token=TOKEN, allow_insecure_auth=True).query("up")
    assert TOKEN not in result.message


# --- configuration -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "url, expected_text",
    [
        ("", "prometheus_url is required"),
        (None, "CERES_PROMETHEUS_URL"),
        ("prometheus:9090", "http:// or https://"),
        ("ftp://prometheus:9090", "http:// or https://"),
        ("http://user:%s@prometheus:9090" % PASSWORD, "must not contain credentials"),
    ],
)
def test_bad_urls_are_config_errors(url, expected_text):
    with pytest.raises(PrometheusConfigError) as raised:
        PrometheusClient(url)
    assert expected_text in str(raised.value)
    assert PASSWORD not in str(raised.value)


def test_token_and_basic_auth_are_exclusive():
    with pytest.raises(PrometheusConfigError, match="either bearer_token or username/password"):
        PrometheusClient("http://prometheus:9090", bearer_token=TOKEN, username="gate", password=PASSWORD)


def test_username_needs_password():
    with pytest.raises(PrometheusConfigError, match="together"):
        PrometheusClient("http://prometheus:9090", username="gate")


def test_public_headers_are_sent_and_not_redacted_while_headers_are(prometheus):
    def echo_headers(promql):
        request = prometheus.requests[-1]
        return error(
            403,
            "forbidden",
            "tenant %s with key %s is not allowed"
            % (request.headers.get("x-scope-orgid"), request.headers.get("x-api-key")),
        )

    prometheus.answers = echo_headers
    client = PrometheusClient(
        prometheus.url,
        headers={"X-Api-Key": "tenant-key-123"},
        public_headers={"X-Scope-OrgID": "pilot-apps"},
        allow_insecure_auth=True,
    )
    result = client.query("up")
    assert prometheus.requests[-1].headers["x-scope-orgid"] == "pilot-apps"
    assert prometheus.requests[-1].headers["x-api-key"] == "tenant-key-123"
    assert "tenant pilot-apps with key" in result.message
    assert "tenant-key-123" not in result.message


@pytest.mark.parametrize(
    "headers, public_headers, message",
    [
        ({"X-Scope-OrgID": "a"}, {"x-scope-orgid": "b"}, "public_headers and headers both set x-scope-orgid"),
        (None, {"Authorization": "Bearer abc"}, "public_headers must not carry Authorization"),
    ],
)
def test_public_headers_cannot_repeat_a_header_or_carry_credentials(headers, public_headers, message):
    with pytest.raises(PrometheusConfigError, match=message):
        PrometheusClient("http://prometheus:9090", headers=headers, public_headers=public_headers)


def test_timeout_must_be_positive():
    with pytest.raises(PrometheusConfigError, match="timeout"):
        PrometheusClient("http://prometheus:9090", timeout=0)


def test_from_module_params_uses_every_option(prometheus):
    client = PrometheusClient.from_module_params(
        {
            "prometheus_url": prometheus.url,
            "bearer_token": TOKEN,
            "username": None,
            "password": None,
            "ca_cert": None,
            "validate_certs": False,
            "headers": {"X-Api-Key": "key"},
            "public_headers": {"X-Scope-OrgID": "ceres"},
            "timeout": 4,
            "allow_insecure_auth": True,
        }
    )
    assert client.timeout == 4
    assert client.validate_certs is False
    client.query("up")
    assert prometheus.requests[-1].headers["x-scope-orgid"] == "ceres"
    assert prometheus.requests[-1].headers["x-api-key"] == "key"
    assert json.dumps(prometheus.requests[-1].params["timeout"]) == '["4s"]'


# --- credentials over plain HTTP -----------------------------------------------------------------


@pytest.mark.parametrize(
    "credentials, named",
    [
        ({"bearer_token": TOKEN}, "bearer_token"),
        ({"username": "gate", "password": PASSWORD}, "password"),
        ({"headers": {"X-Api-Key": "tenant-key-123"}}, "headers"),
    ],
)
def test_credentials_are_not_sent_to_an_http_prometheus_unless_allowed(prometheus, credentials, named):
    with pytest.raises(PrometheusConfigError) as raised:
        PrometheusClient(prometheus.url, **credentials)
    message = str(raised.value)
    assert "%s would be sent in clear text to %s" % (named, prometheus.url) in message, message
    assert "allow_insecure_auth" in message and "https://" in message
    assert TOKEN not in message and PASSWORD not in message and "tenant-key-123" not in message
    assert prometheus.requests == []  # refused before any query

    allowed = PrometheusClient(prometheus.url, allow_insecure_auth=True, **credentials)
    assert allowed.query("up").kind == VALUE
    assert "%s is sent in clear text to %s (allow_insecure_auth=true)" % (named, prometheus.url) in (
        allowed.insecure_auth_warning
    )


def test_no_warning_without_credentials_or_over_https(prometheus):
    assert PrometheusClient(prometheus.url).insecure_auth_warning is None
    assert PrometheusClient(prometheus.url, public_headers={"X-Scope-OrgID": "a"}).insecure_auth_warning is None
    https = PrometheusClient(prometheus.url.replace("http://", "https://"), bearer_token=TOKEN)
    assert https.insecure_auth_warning is None


# --- TLS: the server's certificate checked against the CA given, the context made once per client --------------------


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1 (it is its own CA) and its key."""
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return str(cert), str(key)


@pytest.fixture()
def tls_prometheus(tls_files):
    stub = start_stub(*tls_files)
    yield stub
    stub.stop()


def test_an_https_server_is_trusted_through_the_ca_given_and_refused_without_it(tls_prometheus, tls_files):
    assert tls_prometheus.url.startswith("https://")
    trusted = PrometheusClient(tls_prometheus.url, ca_cert=tls_files[0], timeout=5)
    assert trusted.query("up").kind == VALUE
    refused = PrometheusClient(tls_prometheus.url, timeout=5).query("up")
    assert refused.kind == QUERY_ERROR and "CERTIFICATE_VERIFY_FAILED" in refused.message, refused
    assert PrometheusClient(tls_prometheus.url, validate_certs=False, timeout=5).query("up").kind == VALUE


def test_a_ca_file_that_cannot_be_read_is_a_query_error(tls_prometheus, tmp_path):
    result = PrometheusClient(tls_prometheus.url, ca_cert=str(tmp_path / "missing.pem"), timeout=5).query("up")
    assert result.kind == QUERY_ERROR, result


def test_the_tls_context_is_made_once_per_client_not_once_per_query(tls_prometheus, tls_files, monkeypatch):
    made = []
    real = urls.make_context

    def counting(*args, **kwargs):
        made.append(kwargs)
        return real(*args, **kwargs)

    # wherever the client gets its context from: ansible's urls (open_url makes one per request) or its own import
    monkeypatch.setattr(urls, "make_context", counting)
    monkeypatch.setattr(prometheus_module, "make_context", counting, raising=False)
    client = PrometheusClient(tls_prometheus.url, ca_cert=tls_files[0], timeout=5)
    assert [client.query("up").kind for attempt in range(5)] == [VALUE] * 5
    assert len(made) == 1 and made[0]["cafile"] == tls_files[0], made
    assert len(tls_prometheus.requests) == 5
