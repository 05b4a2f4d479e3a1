# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The sandbox Prometheus' configuration: what it scrapes, and how often.

``CERES_SANDBOX_SCRAPE_INTERVAL`` sets the scrape interval (default ``1s``: soaks in
seconds). Set it to a production-like ``15s`` to see the world as a real cluster's
Prometheus sees it: series that appear a scrape late, rates that need two scrapes. The
integration tests and ``bench/gate_reaction`` also start extra Prometheus servers with
:func:`render_config` at other intervals, scraping the same simulator.
"""

from __future__ import annotations

import os
import re
from typing import Sequence, Tuple

SCRAPE_INTERVAL_ENV = "CERES_SANDBOX_SCRAPE_INTERVAL"
DEFAULT_SCRAPE_INTERVAL = "1s"
_INTERVAL = re.compile(r"([0-9]+)(ms|s|m)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0}


def parse_scrape_interval(text: str) -> float:
    """Seconds of a scrape interval written as ``500ms``, ``1s``, ``15s`` or ``1m`` (100 ms to 5 min)."""
    match = _INTERVAL.fullmatch(str(text).strip())
    if not match:
        raise ValueError("%s must be a duration such as 1s, 5s or 15s, got %r" % (SCRAPE_INTERVAL_ENV, text))
    seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if not 0.1 <= seconds <= 300:
        raise ValueError("%s must be between 100ms and 5m, got %r" % (SCRAPE_INTERVAL_ENV, text))
    return seconds


def scrape_interval_from_env() -> Tuple[str, float]:
    """The configured scrape interval as (text, seconds)."""
    text = os.environ.get(SCRAPE_INTERVAL_ENV, "").strip() or DEFAULT_SCRAPE_INTERVAL
    return text, parse_scrape_interval(text)


def _milliseconds(seconds: float) -> str:
    return "%dms" % max(int(round(seconds * 1000)), 1)


def render_config(scrape_interval_seconds: float, jobs: Sequence[Tuple[str, str]]) -> str:
    """prometheus.yml scraping each ``(job name, host:port)`` every ``scrape_interval_seconds``.

    The scrape timeout is 90% of the interval (at most 10 s), so a slow scrape never
    overlaps the next one.
    """
    timeout_seconds = min(scrape_interval_seconds * 0.9, 10.0)
    lines = [
        "global:",
        "  scrape_interval: %s" % _milliseconds(scrape_interval_seconds),
        "  evaluation_interval: %s" % _milliseconds(scrape_interval_seconds),
        "  scrape_timeout: %s" % _milliseconds(timeout_seconds),
        "scrape_configs:",
    ]
    for job_name, target in jobs:
        lines += [
            "  - job_name: %s" % job_name,
            "    static_configs:",
            "      - targets: ['%s']" % target,
        ]
    return "\n".join(lines) + "\n"
