# Copyright (c) 2025, CERES platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The errors of the Kubernetes client: one class per HTTP status a caller handles, raised by
module utils and turned into a failed task only by a module's main(); plus reading a
``Retry-After`` header."""

from __future__ import annotations

import email.utils
import time

from ansible_collections.ceres.rollout.plugins.module_utils.common.errors import CeresError

# --------------------------------------------------------------------------- exceptions


class K8sError(CeresError):
    """A Kubernetes API call failed. ``status`` is the HTTP status (``None`` when no answer
    arrived); ``reason`` the API ``Status`` reason (``NotFound``, ``Conflict``...) or the
    HTTP reason phrase; ``details`` the ``Status`` details dict when there was one."""

    def __init__(
        self,
        message: str,
        status: int | None = None,
        reason: str | None = None,
        details: dict | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.details = details or {}
        self.retry_after = retry_after


class K8sConfigError(K8sError):
    """The connection options or the kubeconfig could not be turned into a client."""


class K8sConnectionError(K8sError):
    """No HTTP answer: refused, reset, timed out, TLS failure, DNS failure."""

    def __init__(self, message: str, request_sent: bool = True) -> None:
        super().__init__(message)
        # False when the request certainly never reached the server (safe to retry any method).
        self.request_sent = request_sent


class DeadlineExceeded(K8sConnectionError):
    """The task's time budget (``timeout``) was spent before the request could be sent."""

    def __init__(self, message: str) -> None:
        super().__init__(message, request_sent=False)


class BadRequest(K8sError):
    """400."""


class Unauthorized(K8sError):
    """401: the credentials were rejected."""


class Forbidden(K8sError):
    """403: authenticated, but RBAC denies the call."""


class NotFound(K8sError):
    """404: the object, or the resource type itself, does not exist."""

    @property
    def resource_type_missing(self) -> bool:
        """True when the API server does not serve the path's resource type (or group/version)
        at all, rather than the object being absent: a 404 without an API ``Status`` naming
        an object."""
        return not self.details.get("name")


class Conflict(K8sError):
    """409: a resourceVersion conflict or an object that already exists."""


class Invalid(K8sError):
    """422: the object failed validation (schema, admission)."""


class TooManyRequests(K8sError):
    """429: the API server asked us to slow down (``retry_after`` seconds)."""


class ServerError(K8sError):
    """5xx."""


_ERROR_BY_STATUS: dict[int, type[K8sError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    422: Invalid,
    429: TooManyRequests,
}


def error_for_status(
    status: int, message: str, reason: str | None = None, details: dict | None = None, retry_after: float | None = None
) -> K8sError:
    """The domain exception for an HTTP error status."""
    if status >= 500:
        error_class: type[K8sError] = ServerError
    else:
        error_class = _ERROR_BY_STATUS.get(status, K8sError)
    return error_class(message, status=status, reason=reason, details=details, retry_after=retry_after)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if moment is None:
        return None
    current = time.time() if now is None else now
    return max(0.0, moment.timestamp() - current)
