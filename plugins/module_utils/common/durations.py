# Copyright (c) 2025, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Durations written the way people write them in inventories: 90s, 2m, 1h30m, 3600.

One parser for the whole collection: the ``to_seconds`` filter, ``metric_gate``'s
``interval`` and anything else that takes a duration use :func:`parse_duration_seconds`,
so a duration means the same thing everywhere.
"""

from __future__ import annotations

import math
import re

from ansible_collections.ceres.rollout.plugins.module_utils.common.errors import CeresError

SECONDS_PER_UNIT = {
    "w": 7 * 24 * 3600,
    "d": 24 * 3600,
    "h": 3600,
    "m": 60,
    "s": 1,
}

# Units in the order they must appear, largest first ("1h30m", never "30m1h").
_UNIT_ORDER = "wdhms"
_DURATION_PART = re.compile(r"([0-9]+)([wdhms])")
_PLAIN_SECONDS = re.compile(r"[0-9]+")
# What Prometheus accepts as a range selector duration ([1m], [30s], [1h30m], [500ms]).
_PROMETHEUS_DURATION = re.compile(r"([0-9]+(ms|s|m|h|d|w|y))+")


class DurationError(CeresError, ValueError):
    """A value that is not a valid duration; the message says what was wrong."""


def parse_duration_seconds(value: object) -> int:
    """Return ``value`` as a whole number of seconds.

    Accepts a non-negative integer (seconds), a string of digits (seconds) or a
    duration string made of ``<number><unit>`` parts with units ``w d h m s``, largest
    unit first, each unit at most once: ``90s``, ``2m``, ``6h``, ``1d``, ``1h30m``.
    Raises :class:`DurationError` for anything else (booleans, negative numbers, empty
    strings, unknown units, fractions).
    """
    if isinstance(value, bool):
        raise DurationError("expected a duration such as 30s, 2m or 1h30m, got a boolean (%s)" % value)
    if isinstance(value, int):
        if value < 0:
            raise DurationError("a duration cannot be negative, got %d" % value)
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            raise DurationError("expected a whole number of seconds, got %r" % value)
        return parse_duration_seconds(int(value))
    if not isinstance(value, str):
        raise DurationError(
            "expected a duration such as 30s, 2m or 1h30m, got a value of type %s" % type(value).__name__
        )

    text = value.strip()
    if not text:
        raise DurationError("expected a duration such as 30s, 2m or 1h30m, got an empty string")
    if text.startswith("-"):
        raise DurationError("a duration cannot be negative, got %r" % value)
    if _PLAIN_SECONDS.fullmatch(text):
        return int(text)
    return _parse_unit_string(text, original=value)


def _parse_unit_string(text: str, original: str) -> int:
    position = 0
    total_seconds = 0
    previous_unit_rank = -1
    for match in _DURATION_PART.finditer(text):
        if match.start() != position:
            break
        unit = match.group(2)
        unit_rank = _UNIT_ORDER.index(unit)
        if unit_rank <= previous_unit_rank:
            raise DurationError(
                "invalid duration %r: units must go from largest to smallest (w, d, h, m, s), each at most once"
                % original
            )
        previous_unit_rank = unit_rank
        total_seconds += int(match.group(1)) * SECONDS_PER_UNIT[unit]
        position = match.end()
    if position != len(text) or position == 0:
        raise DurationError(
            "invalid duration %r: expected seconds (3600) or number+unit parts with units w, d, h, m, s "
            "(for example 90s, 2m, 1h30m)" % original
        )
    return total_seconds


def is_prometheus_duration(text: object) -> bool:
    """Whether ``text`` is a valid PromQL range duration such as ``1m``, ``30s`` or ``1h30m``."""
    return isinstance(text, str) and _PROMETHEUS_DURATION.fullmatch(text) is not None


_PROMETHEUS_UNIT_SECONDS = {
    "ms": 0.001,
    "s": 1,
    "m": 60,
    "h": 3600,
    "d": 24 * 3600,
    "w": 7 * 24 * 3600,
    "y": 365 * 24 * 3600,
}
_PROMETHEUS_DURATION_PART = re.compile(r"([0-9]+)(ms|s|m|h|d|w|y)")


def prometheus_duration_seconds(text: str) -> float:
    """Seconds of a PromQL range duration (``1m`` is 60, ``1m30s`` 90, ``500ms`` 0.5).

    Raises :class:`DurationError` when ``text`` is not one (see :func:`is_prometheus_duration`).
    """
    if not is_prometheus_duration(text):
        raise DurationError("expected a PromQL duration such as 30s, 1m or 5m, got %r" % (text,))
    return sum(int(count) * _PROMETHEUS_UNIT_SECONDS[unit] for count, unit in _PROMETHEUS_DURATION_PART.findall(text))


def prometheus_duration_text(seconds: float) -> str:
    """A PromQL range duration for ``seconds``: whole seconds as ``60s``, anything finer in ``ms``."""
    milliseconds = int(round(seconds * 1000))
    if milliseconds <= 0:
        raise DurationError("a PromQL duration must be positive, got %r seconds" % (seconds,))
    return "%ds" % (milliseconds // 1000) if milliseconds % 1000 == 0 else "%dms" % milliseconds
