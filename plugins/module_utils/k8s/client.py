# Copyright (c) 2025, CERES platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Kubernetes plumbing shared by every Kubernetes-facing module of ceres.rollout.

Three layers, each usable on its own:

* ``K8S_AUTH_ARG_SPEC``: the kubernetes.core authentication options (same names, aliases
  and ``K8S_AUTH_*`` environment variables), paired with the ``ceres.rollout.k8s_auth``
  doc fragment; ``K8S_CONNECTION_ARG_SPEC`` adds ``timeout``, the one total time budget of
  a task (``ceres.rollout.k8s_auth.timeout``).
* ``build_configuration()`` / ``build_api_client()``: a ``kubernetes.client`` configuration
  from those options (kubeconfig file or dict, context, in-cluster, host/api_key overrides).
  No API discovery happens, so building a client costs no request.
* ``K8sClient``: raw REST calls (``get``/``put``/``post``/``patch``/``delete`` by path, JSON
  in and out) with a bounded, jittered retry policy, raising the domain exceptions below.
  Every request, retry, backoff sleep and socket timeout of one client shares its
  ``deadline`` (``timeout`` seconds from the client's creation), and so does every loop
  built on it (``deadline_of(client)``: istio's conflict re-reads, the exec handshake).
  Only a module's ``main()`` turns those exceptions into ``fail_json``.

Credentials never appear in exception messages: messages are built from the HTTP method,
the request path, the status and the API server's ``Status`` message only.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import random
import re
import time
import traceback
import typing as t
import warnings
from urllib.parse import quote, urlencode

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.ceres.rollout.plugins.module_utils.common.redaction import redact
from ansible_collections.ceres.rollout.plugins.module_utils.common.retry import (
    UNBOUNDED,
    Deadline,
    RetryPolicy,
    retry_call,
)
from ansible_collections.ceres.rollout.plugins.module_utils.k8s.args import (
    DEFAULT_TIMEOUT,
    K8S_CONNECTION_ARG_SPEC,
)
from ansible_collections.ceres.rollout.plugins.module_utils.k8s.errors import (
    DeadlineExceeded,
    K8sConfigError,
    K8sConnectionError,
    K8sError,
    ServerError,
    TooManyRequests,
    error_for_status,
    parse_retry_after,
)

try:
    import urllib3
    from kubernetes import client as kubernetes_client
    from kubernetes import config as kubernetes_config
except ImportError as import_error:
    HAS_KUBERNETES = False
    KUBERNETES_IMPORT_ERROR: ImportError | None = import_error
    KUBERNETES_IMPORT_TRACEBACK: str | None = traceback.format_exc()
else:
    HAS_KUBERNETES = True
    KUBERNETES_IMPORT_ERROR = None
    KUBERNETES_IMPORT_TRACEBACK = None


# Every request: at most 10 s to connect and 60 s to read (the API server answers well within
# that), and never past the task's timeout.
DEFAULT_REQUEST_TIMEOUT = (10.0, 60.0)
# Transient failures (connection errors, 429, 5xx): five tries, within the task's timeout.
DEFAULT_REQUEST_RETRY_POLICY = RetryPolicy(attempts=5, base_delay=0.5, max_delay=8.0, deadline=None)
# urllib3 refuses a zero timeout; a request started with this little time left fails at once.
MIN_SOCKET_TIMEOUT = 0.001

IDEMPOTENT_METHODS = frozenset(["GET", "HEAD", "PUT", "DELETE", "OPTIONS"])
PATCH_CONTENT_TYPES = {
    "json": "application/json-patch+json",
    "merge": "application/merge-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "apply": "application/apply-patch+yaml",
}


# --------------------------------------------------------------------------- configuration


def _auth_option_names() -> set[str]:
    names = set(K8S_CONNECTION_ARG_SPEC)
    for spec in K8S_CONNECTION_ARG_SPEC.values():
        names.update(spec.get("aliases", ()))
    return names


def auth_options(params: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    """The connection options (auth and ``timeout``) out of a module's params or an action
    plugin's raw task args, validated against ``K8S_CONNECTION_ARG_SPEC``: aliases resolved,
    types converted, defaults and the ``K8S_AUTH_*`` environment fallbacks applied (a no-op
    for params AnsibleModule validated). A module whose argument spec has no ``timeout`` gets
    the default."""
    names = _auth_option_names()
    given = {name: value for name, value in params.items() if name in names and value is not None}
    result = ArgumentSpecValidator(K8S_CONNECTION_ARG_SPEC).validate(given)
    if result.error_messages:
        secrets = list(result._no_log_values)  # pylint: disable=protected-access
        # ... and these even when their own type check failed (so no no_log value was recorded)
        secrets += [given[name] for name in ("api_key", "password", "kubeconfig") if isinstance(given.get(name), str)]
        raise K8sConfigError(
            "invalid Kubernetes connection options: %s" % redact("; ".join(result.error_messages), secrets)
        )
    return {name: result.validated_parameters.get(name) for name in K8S_CONNECTION_ARG_SPEC}


def _require_kubernetes() -> None:
    if not HAS_KUBERNETES:
        raise K8sConfigError(
            "the Python kubernetes client is required (pip install kubernetes): %s" % (KUBERNETES_IMPORT_ERROR,)
        )


def _load_kubeconfig(configuration: t.Any, kubeconfig: t.Any, context: str | None, persist_config: bool) -> None:
    if isinstance(kubeconfig, dict):
        kubernetes_config.load_kube_config_from_dict(
            config_dict=kubeconfig, context=context, client_configuration=configuration, persist_config=persist_config
        )
    else:
        # The default is read now, not when the kubernetes package was imported:
        # $KUBECONFIG (several files joined by ':'), then ~/.kube/config.
        config_file = kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
        kubernetes_config.load_kube_config(
            config_file=config_file, context=context, client_configuration=configuration, persist_config=persist_config
        )


def build_configuration(auth: t.Mapping[str, t.Any]) -> t.Any:
    """A fresh ``kubernetes.client.Configuration`` from the auth options.

    Like kubernetes.core: when ``host`` plus a credential (``api_key``, ``username`` and
    ``password``, or ``client_cert`` and ``client_key``) are given, no kubeconfig is read;
    otherwise ``kubeconfig``/``context`` are loaded, or when neither is set the in-cluster
    service account and then the default kubeconfig. Explicit options then override what
    was loaded. The process-wide default configuration is never modified.
    """
    _require_kubernetes()
    host = (auth.get("host") or "").rstrip("/") or None
    api_key = auth.get("api_key")
    username, password = auth.get("username"), auth.get("password")
    client_cert, client_key = auth.get("client_cert"), auth.get("client_key")
    kubeconfig, context = auth.get("kubeconfig"), auth.get("context")
    persist_config = bool(auth.get("persist_config"))

    if kubeconfig is not None and not isinstance(kubeconfig, (str, dict)):
        raise K8sConfigError("kubeconfig must be a path or a dict, got %s" % type(kubeconfig).__name__)

    configuration = kubernetes_client.Configuration()
    has_direct_credentials = bool(host) and bool(api_key or (username and password) or (client_cert and client_key))
    try:
        if has_direct_credentials:
            pass
        elif kubeconfig or context:
            _load_kubeconfig(configuration, kubeconfig or None, context, persist_config)
        else:
            try:
                kubernetes_config.load_incluster_config(client_configuration=configuration)
            except kubernetes_config.ConfigException:
                _load_kubeconfig(configuration, None, None, persist_config)
    except kubernetes_config.ConfigException as error:
        raise K8sConfigError("could not load the Kubernetes client configuration: %s" % (error,))
    except (OSError, ValueError, TypeError, KeyError) as error:
        raise K8sConfigError("could not read the kubeconfig: %s: %s" % (type(error).__name__, error))

    if host:
        configuration.host = host
    if api_key:
        configuration.api_key = {"authorization": "Bearer %s" % api_key}
        configuration.api_key_prefix = {}
        configuration.refresh_api_key_hook = None
    elif username and password:
        basic = base64.b64encode(("%s:%s" % (username, password)).encode("utf-8")).decode("ascii")
        configuration.api_key = {"authorization": "Basic %s" % basic}
        configuration.api_key_prefix = {}
        configuration.refresh_api_key_hook = None
    if auth.get("validate_certs") is not None:
        configuration.verify_ssl = bool(auth["validate_certs"])
    if auth.get("ca_cert"):
        configuration.ssl_ca_cert = auth["ca_cert"]
    if client_cert:
        configuration.cert_file = client_cert
    if client_key:
        configuration.key_file = client_key
    if auth.get("proxy"):
        configuration.proxy = auth["proxy"]
    if auth.get("no_proxy"):
        configuration.no_proxy = auth["no_proxy"]
    proxy_headers = {name: value for name, value in (auth.get("proxy_headers") or {}).items() if value is not None}
    if proxy_headers:
        configuration.proxy_headers = urllib3.util.make_headers(**proxy_headers)
    if not configuration.host:
        raise K8sConfigError(
            "no Kubernetes API server: set host, or kubeconfig/context, "
            "or run where a kubeconfig or a service account is available"
        )
    return configuration


@contextlib.contextmanager
def _insecure_request_warnings_muted() -> t.Iterator[None]:
    """urllib3's warning on each request to an unverified server, muted for one request: the client said it
    once through warn(). The process's warning filters are as they were afterwards."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)
        yield


def insecure_tls_warning(configuration: t.Any) -> str | None:
    """The warning a run against an API server whose certificate is not verified gives, or None.
    Said once per task (through ``warn``), instead of urllib3's warning on every request, and
    without turning that warning off for the whole process."""
    if getattr(configuration, "verify_ssl", True) or not str(configuration.host).startswith("https://"):
        return None
    return (
        "the Kubernetes API server at %s is reached without verifying its TLS certificate (validate_certs=false, "
        "or insecure-skip-tls-verify in the kubeconfig): anyone on the network path can impersonate it"
        % configuration.host
    )


def build_api_client(auth: t.Mapping[str, t.Any]) -> t.Any:
    """A ``kubernetes.client.ApiClient`` from the auth options (no request is made)."""
    return kubernetes_client.ApiClient(configuration=build_configuration(auth))


# --------------------------------------------------------------------------- paths


def api_path(
    api_version: str, plural: str, namespace: str | None = None, name: str | None = None, subresource: str | None = None
) -> str:
    """The REST path of a resource collection or object.

    ``api_path('v1', 'pods', 'ns')`` is ``/api/v1/namespaces/ns/pods``;
    ``api_path('apps/v1', 'deployments', 'ns', 'web', 'scale')`` is
    ``/apis/apps/v1/namespaces/ns/deployments/web/scale``.
    """
    base = "/api/%s" % api_version if "/" not in api_version else "/apis/%s" % api_version
    parts = [base]
    if namespace:
        parts.append("namespaces/%s" % quote(namespace, safe=""))
    parts.append(plural)
    if name:
        parts.append(quote(name, safe=""))
        if subresource:
            parts.append(subresource)
    return "/".join(parts)


# --------------------------------------------------------------------------- requests


def deadline_of(client: t.Any) -> Deadline:
    """The time budget a client's calls share; an unbounded one for a stand-in that has none."""
    return getattr(client, "deadline", None) or UNBOUNDED


def header_values(headers: t.Any, name: str) -> list[str]:
    """Every value of a response header (urllib3's HTTPHeaderDict, or a plain mapping)."""
    if headers is None:
        return []
    if hasattr(headers, "getlist"):
        return list(headers.getlist(name))
    value = headers.get(name)
    return [value] if value else []


def parse_warning_header(value: str) -> str:
    """The text of a ``Warning`` header as the API server sends it (``299 - "text"``); the value as it is otherwise."""
    match = re.match(r'^\s*\d{3}\s+\S+\s+"((?:[^"\\]|\\.)*)"', value)
    if not match:
        return value.strip()
    return re.sub(r"\\(.)", r"\1", match.group(1))


class K8sClient:
    """Raw JSON REST calls against the Kubernetes API with a bounded retry policy.

    Connection errors, 429 and 5xx answers are retried with jittered exponential backoff,
    bounded by ``retry_policy.attempts`` and by ``deadline``, the client's one time budget
    (``timeout`` seconds from its creation, a module's whole run), which every request shares:
    each socket timeout is capped by what is left of it, no backoff sleep goes past it, and a
    request is not sent once it is spent. A 429 (or 5xx) carrying ``Retry-After`` waits at
    least that long, or gives up when that would pass the deadline. A request that gives up
    after retrying says so: ``gave up after N attempts in T s: <last error>``. Every other
    4xx raises at once. Non-idempotent calls (POST, PATCH) are retried only when the request
    certainly did not reach the server (connection refused, DNS) or the server refused it
    (429), unless the caller passes ``idempotent=True``.
    """

    def __init__(
        self,
        api_client: t.Any,
        retry_policy: RetryPolicy | None = None,
        request_timeout: t.Any = None,
        impersonate_user: str | None = None,
        impersonate_groups: t.Sequence[str] | None = None,
        sleep: t.Callable[[float], None] | None = None,
        clock: t.Callable[[], float] | None = None,
        timeout: float | None = DEFAULT_TIMEOUT,
        deadline: Deadline | None = None,
        rng: t.Callable[[], float] | None = None,
    ) -> None:
        self.api_client = api_client
        self.configuration = api_client.configuration
        self.insecure_tls_warning = insecure_tls_warning(self.configuration)
        self.retry_policy = retry_policy or DEFAULT_REQUEST_RETRY_POLICY
        self.request_timeout = request_timeout or DEFAULT_REQUEST_TIMEOUT
        self.impersonate_user = impersonate_user
        self.impersonate_groups = list(impersonate_groups or [])
        self._sleep = sleep or time.sleep
        self._clock = clock or time.monotonic
        self._rng = rng or random.random
        if deadline is None:
            try:
                deadline = Deadline(timeout, clock=self._clock)
            except ValueError:
                raise K8sConfigError("timeout must be more than 0 seconds, got %r" % (timeout,)) from None
        self.deadline = deadline
        # The API server's Warning headers (RFC 7234 ``299 - "text"``), every response's, in order: PodSecurity's
        # report of the pods a new level would refuse, deprecations. A caller may clear the list between calls.
        self.warnings: list[str] = []

    @classmethod
    def from_auth(
        cls, auth: t.Mapping[str, t.Any], warn: t.Callable[[str], None] | None = None, **kwargs: t.Any
    ) -> K8sClient:
        """A client from the connection options (e.g. ``auth_options(module.params)``); its
        time budget starts now and lasts ``auth['timeout']`` seconds (``DEFAULT_TIMEOUT``
        when absent). ``warn`` (a module run's) is told when the server's certificate is not verified."""
        if auth.get("timeout") is not None:
            kwargs.setdefault("timeout", auth["timeout"])
        client = cls(
            build_api_client(auth),
            impersonate_user=auth.get("impersonate_user"),
            impersonate_groups=auth.get("impersonate_groups"),
            **kwargs,
        )
        if warn is not None and client.insecure_tls_warning:
            warn(client.insecure_tls_warning)
        return client

    def close(self) -> None:
        self.api_client.rest_client.pool_manager.clear()

    # -- convenience verbs

    def get(self, path: str, query: t.Mapping[str, t.Any] | None = None) -> t.Any:
        return self.request("GET", path, query=query)

    def put(self, path: str, body: t.Any, query: t.Mapping[str, t.Any] | None = None) -> t.Any:
        return self.request("PUT", path, body=body, query=query)

    def post(
        self, path: str, body: t.Any, query: t.Mapping[str, t.Any] | None = None, idempotent: bool = False
    ) -> t.Any:
        return self.request("POST", path, body=body, query=query, idempotent=idempotent)

    def patch(
        self,
        path: str,
        body: t.Any,
        patch_type: str = "json",
        query: t.Mapping[str, t.Any] | None = None,
        idempotent: bool = False,
    ) -> t.Any:
        """PATCH with ``patch_type`` one of ``json`` (RFC 6902, the default), ``merge``,
        ``strategic`` or ``apply`` (server-side apply; pass ``fieldManager`` in ``query``)."""
        if patch_type not in PATCH_CONTENT_TYPES:
            raise ValueError("patch_type must be one of %s" % ", ".join(sorted(PATCH_CONTENT_TYPES)))
        return self.request(
            "PATCH", path, body=body, query=query, content_type=PATCH_CONTENT_TYPES[patch_type], idempotent=idempotent
        )

    def delete(self, path: str, body: t.Any = None, query: t.Mapping[str, t.Any] | None = None) -> t.Any:
        return self.request("DELETE", path, body=body, query=query)

    # -- the request layer

    def request(
        self,
        method: str,
        path: str,
        body: t.Any = None,
        query: t.Mapping[str, t.Any] | None = None,
        content_type: str = "application/json",
        idempotent: bool | None = None,
    ) -> t.Any:
        """Send one API call (retrying transient failures) and return the decoded JSON answer
        (``None`` for an empty body). Raises a :class:`K8sError` subclass on failure."""
        method = method.upper()
        if idempotent is None:
            idempotent = method in IDEMPOTENT_METHODS
        url = self._url(path, query)
        what = "%s %s" % (method, path)

        def send() -> t.Any:
            remaining = self.deadline.remaining()
            if remaining is not None and remaining <= 0:
                raise DeadlineExceeded("%s: not sent, the timeout of %g s is spent" % (what, self.deadline.seconds))
            return self._send_once(method, path, url, body, content_type, remaining)

        return retry_call(
            send,
            self.retry_policy,
            lambda error: self._may_retry(error, idempotent),
            minimum_delay=lambda error: getattr(error, "retry_after", None),
            on_give_up=lambda error, backoff: error.add_context(backoff.give_up_note()),
            sleep=self._sleep,
            clock=self._clock,
            rng=self._rng,
            deadline=self.deadline,
        )

    @staticmethod
    def _may_retry(error: BaseException, idempotent: bool) -> bool:
        if not isinstance(error, K8sError) or isinstance(error, DeadlineExceeded):
            return False
        if isinstance(error, TooManyRequests):
            return True
        if isinstance(error, K8sConnectionError):
            return idempotent or not error.request_sent
        if isinstance(error, ServerError):
            return idempotent
        return False

    def _url(self, path: str, query: t.Mapping[str, t.Any] | None) -> str:
        if not path.startswith("/"):
            path = "/" + path
        url = self.configuration.host.rstrip("/") + path
        if query:
            pairs = []
            for key, value in query.items():
                if value is None:
                    continue
                if isinstance(value, bool):
                    value = "true" if value else "false"
                pairs.append((key, value))
            if pairs:
                url += "?" + urlencode(pairs)
        return url

    def _headers(self, body: t.Any, content_type: str) -> t.Any:
        headers = urllib3.HTTPHeaderDict()
        headers["Accept"] = "application/json"
        headers["User-Agent"] = "ceres.rollout"
        for name, value in (getattr(self.api_client, "default_headers", None) or {}).items():
            headers[name] = value
        for setting in self.configuration.auth_settings().values():
            if setting.get("in") == "header" and setting.get("value"):
                headers[setting["key"]] = setting["value"]
        if body is not None:
            headers["Content-Type"] = content_type
        if self.impersonate_user:
            headers["Impersonate-User"] = self.impersonate_user
        for group in self.impersonate_groups:
            headers.add("Impersonate-Group", group)
        return headers

    def _timeout(self, remaining: float | None) -> t.Any:
        connect, read = (
            self.request_timeout
            if isinstance(self.request_timeout, tuple)
            else (self.request_timeout, self.request_timeout)
        )
        if remaining is not None:
            # Never wait on one request past the deadline.
            connect, read = min(connect, remaining), min(read, remaining)
        return urllib3.Timeout(connect=max(connect, MIN_SOCKET_TIMEOUT), read=max(read, MIN_SOCKET_TIMEOUT))

    def _send_once(
        self, method: str, path: str, url: str, body: t.Any, content_type: str, remaining: float | None
    ) -> t.Any:
        if body is None:
            encoded_body = None
        elif isinstance(body, (bytes, str)):
            encoded_body = body
        else:
            encoded_body = json.dumps(body)
        what = "%s %s" % (method, path)
        try:
            with _insecure_request_warnings_muted() if self.insecure_tls_warning else contextlib.nullcontext():
                response = self.api_client.rest_client.pool_manager.request(
                    method,
                    url,
                    body=encoded_body,
                    headers=self._headers(body, content_type),
                    timeout=self._timeout(remaining),
                    retries=False,
                    preload_content=True,
                )
        except urllib3.exceptions.SSLError as error:
            raise K8sConnectionError("%s: TLS error talking to the API server: %s" % (what, error), request_sent=False)
        except (
            urllib3.exceptions.NewConnectionError,
            urllib3.exceptions.ConnectTimeoutError,
            urllib3.exceptions.ProxyError,
        ) as error:
            raise K8sConnectionError("%s: cannot connect to the API server: %s" % (what, error), request_sent=False)
        except urllib3.exceptions.HTTPError as error:
            raise K8sConnectionError("%s: no answer from the API server: %s" % (what, error))
        except OSError as error:
            raise K8sConnectionError("%s: connection error: %s" % (what, error))

        self.warnings.extend(parse_warning_header(value) for value in header_values(response.headers, "Warning"))
        data = response.data or b""
        if 200 <= response.status < 300:
            if not data:
                return None
            try:
                return json.loads(data.decode("utf-8"))
            except ValueError:
                raise K8sError(
                    "%s: the API server answered %s with a body that is not JSON" % (what, response.status),
                    status=response.status,
                )
        raise self._error_from_response(
            what, response.status, response.reason, data, response.headers.get("Retry-After")
        )

    @staticmethod
    def _error_from_response(
        what: str, status: int, http_reason: str | None, data: bytes, retry_after_header: str | None
    ) -> K8sError:
        api_status: dict[str, t.Any] = {}
        try:
            decoded = json.loads(data.decode("utf-8")) if data else None
            if isinstance(decoded, dict) and decoded.get("kind") == "Status":
                api_status = decoded
        except ValueError:
            pass
        reason = api_status.get("reason") or http_reason
        detail = api_status.get("message")
        if not detail:
            detail = data[:200].decode("utf-8", "replace").strip() if data else ""
        message = "%s: %s %s" % (what, status, reason or "")
        if detail:
            message = "%s: %s" % (message.rstrip(), detail)
        return error_for_status(
            status,
            message,
            reason=reason,
            details=api_status.get("details"),
            retry_after=parse_retry_after(retry_after_header),
        )
