# Copyright (c) 2025, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A small client for the Prometheus instant-query API (``/api/v1/query``).

Every answer is classified into exactly one :class:`QueryResult` kind, so callers never
have to guess what an odd response means:

``value``
    one series (or a scalar) holding a finite number.
``no_data``
    an empty vector, or a single value that is NaN, +Inf or -Inf.
``ambiguous``
    more than one series: the query must aggregate to one number; a gate never picks one.
``query_error``
    ``status: error``, an HTTP error, a timeout, a refused connection, a TLS failure,
    a body that is not the Prometheus JSON envelope, or a result type that is not a
    number (matrix, string).
``inconclusive``
    a response carrying ``warnings`` (a partial answer, for example a store that did
    not reply): the number may be wrong, so it is not trusted.

Error messages never contain the bearer token, the password or header values.
"""

from __future__ import annotations

import base64
import http.client
import json
import math
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.parse import urlencode, urlsplit, urlunsplit

from ansible.module_utils.urls import ConnectionError as UrlsConnectionError
from ansible.module_utils.urls import Request, make_context

from ansible_collections.ceres.rollout.plugins.module_utils.common.errors import CeresError
from ansible_collections.ceres.rollout.plugins.module_utils.common.redaction import redact

VALUE = "value"
NO_DATA = "no_data"
AMBIGUOUS = "ambiguous"
QUERY_ERROR = "query_error"
INCONCLUSIVE = "inconclusive"

RESULT_KINDS = (VALUE, NO_DATA, AMBIGUOUS, QUERY_ERROR, INCONCLUSIVE)

QUERY_PATH = "/api/v1/query"
DEFAULT_TIMEOUT_SECONDS = 10


class PrometheusConfigError(CeresError, ValueError):
    """The connection settings cannot work (bad URL, half of a credential pair, ...)."""


@dataclass(frozen=True)
class QueryResult:
    """One classified answer to one instant query."""

    kind: str
    value: float | None = None
    message: str = ""

    @property
    def is_error(self) -> bool:
        """Whether this answer counts against a gate's error limit."""
        return self.kind in (QUERY_ERROR, AMBIGUOUS)


def open_with_context(url, method="GET", **kwargs):
    """``ansible.module_utils.urls.open_url`` with a TLS ``context`` made by the caller (open_url
    cannot take one, and makes a new context - the CA bundle loaded again - for every request)."""
    return Request().open(method, url, **kwargs)


class PrometheusClient:
    """Instant queries against one Prometheus-compatible endpoint.

    ``prometheus_url`` is the server's base URL, with any path prefix
    (``https://mon.example.com/prometheus``); ``/api/v1/query`` is appended.
    ``opener`` replaces :func:`open_with_context` in tests. The TLS context (the CA bundle
    loaded, ~10 ms of CPU) is made once per client, on its first query, not once per query: a
    gate sends one query per check every round, and ``open_url`` would make one each time.
    """

    def __init__(
        self,
        prometheus_url: str,
        bearer_token: str | None = None,
        username: str | None = None,
        password: str | None = None,
        ca_cert: str | None = None,
        validate_certs: bool = True,
        headers: Mapping[str, Any] | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        opener=None,
        public_headers: Mapping[str, Any] | None = None,
        allow_insecure_auth: bool = False,
    ):
        # `headers` values are secrets (redacted from every message); `public_headers` values,
        # such as a tenant id, are not.
        self._secrets = [secret for secret in (bearer_token, password) if secret]
        self._secrets.extend(str(header_value) for header_value in (headers or {}).values() if header_value)
        clashing = sorted(
            {str(name).lower() for name in public_headers or {}} & {str(name).lower() for name in headers or {}}
        )
        if clashing:
            raise PrometheusConfigError(
                "public_headers and headers both set %s; give each header once" % ", ".join(clashing)
            )
        if any(str(name).lower() in ("authorization", "proxy-authorization") for name in public_headers or {}):
            raise PrometheusConfigError(
                "public_headers must not carry Authorization; use bearer_token, "
                "username/password or headers, whose values are kept secret"
            )
        self.query_url = _query_url(prometheus_url)
        self.display_url = _display_url(self.query_url)
        if bearer_token and (username or password):
            raise PrometheusConfigError("use either bearer_token or username/password, not both")
        if bool(username) != bool(password):
            raise PrometheusConfigError("username and password must be given together")
        if timeout is None or timeout <= 0:
            raise PrometheusConfigError("timeout must be a positive number of seconds, got %r" % (timeout,))
        self.timeout = timeout
        self.ca_cert = ca_cert
        self.validate_certs = validate_certs
        self._headers = _request_headers(
            dict(public_headers or {}, **dict(headers or {})), bearer_token, username, password
        )
        authorization = self._headers.get("Authorization", "")
        self._secrets.extend([authorization, authorization.partition(" ")[2]])
        self._secrets = [secret for secret in self._secrets if secret]
        self._opener = opener or open_with_context
        self._context = None  # the TLS context, made on the first query (see the class docstring)
        self.insecure_auth_warning = _insecure_auth(
            self.query_url, self.display_url, bearer_token, password, headers, allow_insecure_auth
        )

    @classmethod
    def from_module_params(cls, params: Mapping[str, Any]) -> PrometheusClient:
        """Build a client from the options of ``prometheus_args.PROMETHEUS_CONNECTION_ARGSPEC``."""
        return cls(
            prometheus_url=params["prometheus_url"],
            bearer_token=params.get("bearer_token"),
            username=params.get("username"),
            password=params.get("password"),
            ca_cert=params.get("ca_cert"),
            validate_certs=params.get("validate_certs", True),
            headers=params.get("headers"),
            timeout=params.get("timeout", DEFAULT_TIMEOUT_SECONDS),
            public_headers=params.get("public_headers"),
            allow_insecure_auth=params.get("allow_insecure_auth", False),
        )

    def query(self, promql: str) -> QueryResult:
        """Run one instant query now and classify the answer; never raises for server trouble."""
        try:
            status_code, body = self._get(promql)
        except TransportError as transport_error:
            return QueryResult(QUERY_ERROR, message=self.redact(str(transport_error)))
        return classify_response(status_code, body, redact=self.redact)

    def redact(self, text: str) -> str:
        """``text`` with every credential this client knows replaced by ``********``."""
        return redact(text, self._secrets)

    def _get(self, promql: str):
        # Prometheus gets the same deadline, so a slow query is cancelled server-side too.
        return self.request(QUERY_PATH, {"query": promql, "timeout": "%ds" % max(1, int(self.timeout))})

    def request(self, path: str, parameters: Mapping[str, Any]) -> tuple[int, bytes]:
        """GET ``path`` of the server's API (``/api/v1/query_range``...) with ``parameters``, over this client's
        connection (its TLS context, headers, timeout): ``(status, body)``, an HTTP error's included. Raises
        :class:`TransportError` when no answer comes (pass its message through :meth:`redact`)."""
        url = "%s%s?%s" % (self.query_url[: -len(QUERY_PATH)], path, urlencode(parameters))
        where = "Prometheus at %s" % self.display_url
        try:
            if self._context is None:
                # inside the try: a CA file that cannot be read is a transport error, as it was per query
                self._context = make_context(cafile=self.ca_cert, validate_certs=self.validate_certs)
            response = self._opener(
                url,
                method="GET",
                headers=self._headers,
                timeout=self.timeout,
                context=self._context,
                follow_redirects="safe",
                unredirected_headers=["Authorization"],
                use_netrc=False,
            )
            return response.getcode(), response.read()
        except HTTPError as http_error:
            # Prometheus answers 400/422/503 with its JSON envelope explaining why.
            try:
                error_body = http_error.read()
            except Exception:  # pylint: disable=broad-except
                error_body = b""
            return http_error.code, error_body or b""
        except TimeoutError:
            raise TransportError("%s did not answer within %s seconds (timeout)" % (where, self.timeout))
        except URLError as url_error:
            raise TransportError("cannot reach %s: %s" % (where, _describe_reason(url_error.reason, self.timeout)))
        except (ssl.SSLError, UrlsConnectionError) as tls_error:
            raise TransportError("cannot reach %s: %s" % (where, tls_error))
        except http.client.HTTPException as protocol_error:
            raise TransportError("%s broke off the HTTP exchange: %r" % (where, protocol_error))
        except (OSError, ValueError) as other_error:
            raise TransportError("cannot reach %s: %s" % (where, _describe_reason(other_error, self.timeout)))


class TransportError(Exception):
    """The request never produced an HTTP response."""


def classify_response(status_code: int | None, body: Any, redact=lambda text: text) -> QueryResult:
    """Classify one HTTP answer from ``/api/v1/query`` into a :class:`QueryResult`."""
    http_status = "HTTP %s" % status_code
    try:
        envelope = json.loads(body.decode("utf-8") if isinstance(body, bytes) else body)
    except (ValueError, UnicodeDecodeError):
        return QueryResult(QUERY_ERROR, message="Prometheus answered %s with a body that is not JSON" % http_status)
    if not isinstance(envelope, dict) or "status" not in envelope:
        return QueryResult(QUERY_ERROR, message="Prometheus answered %s without the API's JSON envelope" % http_status)

    if envelope.get("status") != "success":
        error_type = envelope.get("errorType") or "error"
        error_text = envelope.get("error") or "no error message"
        return QueryResult(
            QUERY_ERROR, message=redact("Prometheus query failed (%s, %s): %s" % (http_status, error_type, error_text))
        )
    if status_code is not None and status_code >= 400:
        return QueryResult(QUERY_ERROR, message="Prometheus answered %s" % http_status)

    data = envelope.get("data")
    if not isinstance(data, dict):
        return QueryResult(QUERY_ERROR, message="Prometheus answered success without a data object")
    outcome = _classify_data(data.get("resultType"), data.get("result"))
    warnings = envelope.get("warnings")
    if warnings and outcome.kind != AMBIGUOUS and outcome.kind != QUERY_ERROR:
        return QueryResult(
            INCONCLUSIVE,
            value=outcome.value,
            message=redact(
                "Prometheus returned warnings, the answer may be partial: %s" % "; ".join(map(str, warnings))
            ),
        )
    return outcome


def _classify_data(result_type: Any, result: Any) -> QueryResult:
    if result_type == "scalar":
        return _classify_sample(result, "scalar")
    if result_type == "vector":
        if not isinstance(result, list):
            return QueryResult(QUERY_ERROR, message="Prometheus returned a vector that is not a list")
        if not result:
            return QueryResult(NO_DATA, message="empty result (no series matched)")
        if len(result) > 1:
            labels = [_series_name(series) for series in result[:3]]
            return QueryResult(
                AMBIGUOUS,
                message="the query returned %d series (%s%s); a gate check needs exactly one, aggregate it "
                "with sum(), avg() or max()" % (len(result), ", ".join(labels), ", ..." if len(result) > 3 else ""),
            )
        series = result[0]
        if not isinstance(series, dict):
            return QueryResult(QUERY_ERROR, message="Prometheus returned a malformed vector sample")
        return _classify_sample(series.get("value"), "vector")
    if result_type in ("matrix", "string"):
        return QueryResult(
            QUERY_ERROR,
            message="the query returned a %s, not a number; a gate check must return an instant vector or a scalar"
            % result_type,
        )
    return QueryResult(QUERY_ERROR, message="Prometheus returned an unknown result type %r" % (result_type,))


def _classify_sample(sample: Any, result_type: str) -> QueryResult:
    # A sample is [<unix time>, "<value as string>"]; the value may be "NaN", "+Inf", "-Inf".
    if not isinstance(sample, (list, tuple)) or len(sample) != 2:
        return QueryResult(QUERY_ERROR, message="Prometheus returned a malformed %s sample" % result_type)
    try:
        number = float(sample[1])
    except (TypeError, ValueError):
        return QueryResult(
            QUERY_ERROR, message="Prometheus returned a %s value that is not a number: %r" % (result_type, sample[1])
        )
    if math.isnan(number):
        return QueryResult(NO_DATA, message="the value is NaN (for example 0/0: no traffic in the window)")
    if math.isinf(number):
        return QueryResult(NO_DATA, message="the value is %sInf (a division by zero)" % ("+" if number > 0 else "-"))
    return QueryResult(VALUE, value=number)


def _series_name(series: Any) -> str:
    metric = series.get("metric") if isinstance(series, dict) else None
    if not isinstance(metric, dict) or not metric:
        return "{}"
    return "{%s}" % ",".join('%s="%s"' % (key, value) for key, value in sorted(metric.items()))


def _describe_reason(reason: Any, timeout: float) -> str:
    if isinstance(reason, (socket.timeout, TimeoutError)):
        return "no answer within %s seconds (timeout)" % timeout
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, socket.gaierror):
        return "the host name does not resolve (%s)" % reason.strerror
    if isinstance(reason, ssl.SSLError):
        return "TLS error: %s" % reason
    return str(reason)


def _query_url(prometheus_url: str | None) -> str:
    if not prometheus_url or not str(prometheus_url).strip():
        raise PrometheusConfigError(
            "prometheus_url is required (set it, or the CERES_PROMETHEUS_URL environment variable)"
        )
    parts = urlsplit(str(prometheus_url).strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise PrometheusConfigError(
            "prometheus_url must be an http:// or https:// URL such as http://prometheus:9090, got %s"
            % _display_url(str(prometheus_url))
        )
    if parts.username or parts.password:
        raise PrometheusConfigError(
            "prometheus_url must not contain credentials; use username/password or bearer_token"
        )
    base_path = parts.path.rstrip("/")
    if base_path.endswith(QUERY_PATH):
        base_path = base_path[: -len(QUERY_PATH)]
    return urlunsplit((parts.scheme, parts.netloc, base_path + QUERY_PATH, "", ""))


def _display_url(url: str) -> str:
    """The URL without userinfo, query string or fragment, for messages."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if ":" in host:
            host = "[%s]" % host
        if parts.port:
            host = "%s:%d" % (host, parts.port)
    except ValueError:
        return "<invalid URL>"
    return urlunsplit((parts.scheme, host, parts.path, "", "")) or "<invalid URL>"


def _insecure_auth(query_url, display_url, bearer_token, password, headers, allowed) -> str | None:
    """None when no credential would travel in clear text; else the warning of an allowed plain-HTTP
    URL (``allow_insecure_auth``). Raises PrometheusConfigError when it is not allowed."""
    if urlsplit(query_url).scheme != "http":
        return None
    named = [name for name, value in (("bearer_token", bearer_token), ("password", password)) if value]
    if any(value for value in (headers or {}).values()):
        named.append("headers")
    if not named:
        return None
    base_url = display_url[: -len("/api/v1/query")] if display_url.endswith("/api/v1/query") else display_url
    credentials = " and ".join(named)
    if not allowed:
        raise PrometheusConfigError(
            "%s would be sent in clear text to %s: use an https:// prometheus_url, or set allow_insecure_auth=true "
            "to send it anyway (a network you trust)" % (credentials, base_url)
        )
    return "%s is sent in clear text to %s (allow_insecure_auth=true): anyone on the path can read it" % (
        credentials,
        base_url,
    )


def _request_headers(headers, bearer_token, username, password) -> dict:
    request_headers = {"Accept": "application/json"}
    for header_name, header_value in (headers or {}).items():
        request_headers[str(header_name)] = str(header_value)
    if bearer_token:
        request_headers["Authorization"] = "Bearer %s" % bearer_token
    elif username:
        credentials = ("%s:%s" % (username, password)).encode("utf-8")
        request_headers["Authorization"] = "Basic %s" % base64.b64encode(credentials).decode("ascii")
    return request_headers
