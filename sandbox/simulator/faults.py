# Copyright (c) 2025, CERES platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Fault profiles: how a version answers, read from its Deployment's annotations.

``sandbox.ceres.io/error-ratio`` and ``sandbox.ceres.io/latency-ms`` on a Deployment, and
``sandbox.ceres.io/rps`` on a VirtualService. An invalid value is reported through a ``warn``
callback and the default applies.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from .cluster import annotations_of, object_key

RPS_ANNOTATION = "sandbox.ceres.io/rps"
ERROR_RATIO_ANNOTATION = "sandbox.ceres.io/error-ratio"
LATENCY_MS_ANNOTATION = "sandbox.ceres.io/latency-ms"

DEFAULT_RPS = Fraction(50)
DEFAULT_ERROR_RATIO = Fraction(0)
DEFAULT_LATENCY_MS = 20.0


# --- annotation values --------------------------------------------------------------------


def parse_rps(text: str) -> Fraction:
    """Requests per second from an annotation: a finite number >= 0."""
    value = Fraction(str(text).strip())
    if value < 0:
        raise ValueError("must be >= 0")
    return value


def parse_error_ratio(text: str) -> Fraction:
    """Share of 5xx responses from an annotation: a number in 0..1, kept exact."""
    value = Fraction(str(text).strip())
    if not 0 <= value <= 1:
        raise ValueError("must be between 0 and 1")
    return value


def parse_latency_ms(text: str) -> float:
    """Median latency in ms from an annotation: a finite number > 0."""
    value = float(str(text).strip())
    if not math.isfinite(value) or value <= 0:
        raise ValueError("must be a finite number > 0")
    return value


Warn = Callable[[str, str, str, str], None]
"""warn(object description, annotation, value, reason): report an ignored annotation."""


def _annotation_value(
    annotations: Mapping[str, str], name: str, parse: Callable, default: Any, owner: str, warn: Warn
) -> Any:
    text = annotations.get(name)
    if text is None:
        return default
    try:
        return parse(text)
    except (ValueError, ZeroDivisionError, ArithmeticError) as error:
        warn(owner, name, text, str(error) or "not a number")
        return default


@dataclass(frozen=True)
class FaultProfile:
    """How a workload answers: the share of 503s and the median latency."""

    error_ratio: Fraction = DEFAULT_ERROR_RATIO
    latency_ms: float = DEFAULT_LATENCY_MS

    def describe(self) -> str:
        return "error-ratio=%g latency-ms=%g" % (float(self.error_ratio), self.latency_ms)


HEALTHY_PROFILE = FaultProfile()


def fault_profile(deployment: Mapping, warn: Warn) -> FaultProfile:
    """The fault profile set by a Deployment's annotations; invalid values fall back to defaults."""
    annotations = annotations_of(deployment)
    owner = "Deployment %s/%s" % object_key(deployment)
    return FaultProfile(
        error_ratio=_annotation_value(
            annotations, ERROR_RATIO_ANNOTATION, parse_error_ratio, DEFAULT_ERROR_RATIO, owner, warn
        ),
        latency_ms=_annotation_value(
            annotations, LATENCY_MS_ANNOTATION, parse_latency_ms, DEFAULT_LATENCY_MS, owner, warn
        ),
    )


def virtual_service_rps(virtual_service: Mapping, default_rps: Fraction, warn: Warn) -> Fraction:
    """The steady load of a VirtualService: its rps annotation, else the default."""
    owner = "VirtualService %s/%s" % object_key(virtual_service)
    return _annotation_value(annotations_of(virtual_service), RPS_ANNOTATION, parse_rps, default_rps, owner, warn)
