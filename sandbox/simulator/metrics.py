# Copyright (c) 2025, CERES platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Istio's request metrics: series labels, the thread-safe registry and the text exposition.

``istio_requests_total`` and ``istio_request_duration_milliseconds`` (Istio's default
buckets), each series exported once per reporting proxy, rendered in the Prometheus text
format 0.0.4.
"""

from __future__ import annotations

import bisect
import math
import threading
from collections.abc import Iterable, Sequence

# Istio's default buckets for istio_request_duration_milliseconds; +Inf is implicit.
DURATION_BUCKETS_MS = (
    0.5,
    1,
    5,
    10,
    25,
    50,
    100,
    250,
    500,
    1000,
    2500,
    5000,
    10000,
    30000,
    60000,
    300000,
    600000,
    1800000,
    3600000,
)

UNKNOWN = "unknown"

REQUESTS_METRIC = "istio_requests_total"
DURATION_METRIC = "istio_request_duration_milliseconds"
EXPOSITION_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

REPORTERS = (
    # (reporter, connection_security_policy) as Istio reports them with mTLS on.
    ("destination", "mutual_tls"),
    ("source", UNKNOWN),
)
SOURCE_REPORTER_ONLY = REPORTERS[1:]
"""Who reports a request that reached no workload: only the caller's proxy."""

Labels = tuple[tuple[str, str], ...]
"""An ordered tuple of (label name, value) pairs: hashable, renders in a stable order."""


def bucket_counts(durations_ms: Iterable[float]) -> list[int]:
    """Per-bucket (not cumulative) counts of durations; the last slot is the +Inf bucket."""
    counts = [0] * (len(DURATION_BUCKETS_MS) + 1)
    locate = bisect.bisect_left
    for duration in durations_ms:
        counts[locate(DURATION_BUCKETS_MS, duration)] += 1
    return counts


def escape_label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def format_labels(labels: Iterable[tuple[str, str]]) -> str:
    return "{" + ",".join('%s="%s"' % (name, escape_label_value(value)) for name, value in labels) + "}"


def format_bound(bound: float) -> str:
    """A bucket bound as Istio writes it: ``0.5``, ``1``, ``3.6e+06`` -> ``3600000``."""
    return str(int(bound)) if float(bound).is_integer() else repr(float(bound))


def format_number(value: float) -> str:
    return str(int(value)) if isinstance(value, int) else repr(float(value))


class SeriesStats:
    """Counters of one series: requests, duration histogram buckets and duration sum."""

    __slots__ = ("requests", "buckets", "duration_sum", "label_texts")

    def __init__(self, label_texts: tuple[tuple[str, str], ...]):
        self.requests = 0
        self.buckets = [0] * (len(DURATION_BUCKETS_MS) + 1)
        self.duration_sum = 0.0
        # (label text for istio_requests_total, label prefix for the histogram) per reporter
        self.label_texts = label_texts


def _series_label_texts(
    labels: Labels, response_code: str, response_flags: str, reporters: Sequence[tuple[str, str]]
) -> tuple[tuple[str, str], ...]:
    texts = []
    for reporter, security_policy in reporters:
        full = (
            (("reporter", reporter),)
            + labels
            + (
                ("response_code", response_code),
                ("response_flags", response_flags),
                ("connection_security_policy", security_policy),
            )
        )
        text = format_labels(full)
        texts.append((text, text[:-1] + ","))
    return tuple(texts)


class MetricsRegistry:
    """Istio request metrics, keyed by (destination labels, response code, response flags).

    Thread-safe: the traffic loop records, the HTTP server renders.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._series: dict[tuple[Labels, str, str], SeriesStats] = {}
        # destination_service_namespace -> keys of its series, to drop a namespace's series at once
        self._by_namespace: dict[str, set] = {}

    def observe(
        self,
        labels: Labels,
        response_code: str,
        response_flags: str,
        durations_ms: Sequence[float],
        reporters: Sequence[tuple[str, str]] = REPORTERS,
    ) -> None:
        """Record ``len(durations_ms)`` requests of one series, as reported by ``reporters``."""
        if not durations_ms:
            return
        counts = bucket_counts(durations_ms)
        total = math.fsum(durations_ms)
        key = (labels, response_code, response_flags, tuple(reporters))
        with self._lock:
            stats = self._series.get(key)
            if stats is None:
                stats = self._series[key] = SeriesStats(_series_label_texts(*key))
                self._by_namespace.setdefault(dict(labels).get("destination_service_namespace", ""), set()).add(key)
            stats.requests += len(durations_ms)
            stats.duration_sum += total
            for index, count in enumerate(counts):
                if count:
                    stats.buckets[index] += count

    def namespaces(self) -> list[str]:
        """The destination service namespaces that have series."""
        with self._lock:
            return list(self._by_namespace)

    def forget_namespace(self, namespace: str) -> int:
        """Drop every series of a destination service namespace (its proxies are gone); return how many."""
        with self._lock:
            keys = self._by_namespace.pop(namespace, set())
            for key in keys:
                del self._series[key]
        return len(keys)

    def requests(self, **label_filter: str) -> int:
        """Total requests of the series whose labels match ``label_filter`` (for tests and tools)."""
        with self._lock:
            items = list(self._series.items())
        total = 0
        for (labels, code, flags, reporters), stats in items:
            values = dict(labels, response_code=code, response_flags=flags)
            reporter_filter = label_filter.get("reporter")
            if reporter_filter is not None and reporter_filter not in {name for name, unused in reporters}:
                continue
            if all(values.get(name) == value for name, value in label_filter.items() if name != "reporter"):
                total += stats.requests
        return total

    def render(self) -> str:
        """The metrics in the Prometheus text exposition format 0.0.4."""
        with self._lock:
            rows = [
                (stats.label_texts, stats.requests, list(stats.buckets), stats.duration_sum)
                for unused_key, stats in sorted(self._series.items(), key=lambda item: item[0])
            ]
        return render_exposition(rows)


def render_exposition(rows: Sequence[tuple[tuple[tuple[str, str], ...], int, list[int], float]]) -> str:
    """Text exposition of (label texts per reporter, requests, bucket counts, duration sum) rows."""
    lines = [
        "# HELP %s Total number of requests handled by an Istio proxy (simulated)." % REQUESTS_METRIC,
        "# TYPE %s counter" % REQUESTS_METRIC,
    ]
    for label_texts, requests, unused_buckets, unused_sum in rows:
        for text, unused_prefix in label_texts:
            lines.append("%s%s %d" % (REQUESTS_METRIC, text, requests))
    lines.append("# HELP %s Duration of requests in milliseconds (simulated)." % DURATION_METRIC)
    lines.append("# TYPE %s histogram" % DURATION_METRIC)
    bounds = [format_bound(bound) for bound in DURATION_BUCKETS_MS] + ["+Inf"]
    for label_texts, requests, buckets, duration_sum in rows:
        for text, prefix in label_texts:
            cumulative = 0
            for bound, count in zip(bounds, buckets):
                cumulative += count
                lines.append('%s_bucket%sle="%s"} %d' % (DURATION_METRIC, prefix, bound, cumulative))
            lines.append("%s_sum%s %s" % (DURATION_METRIC, text, format_number(duration_sum)))
            lines.append("%s_count%s %d" % (DURATION_METRIC, text, requests))
    return "\n".join(lines) + "\n"
