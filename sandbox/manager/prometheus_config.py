# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The sandbox Prometheus' configuration: what it scrapes, how often, and the rules it evaluates.

``CERES_SANDBOX_SCRAPE_INTERVAL`` sets the scrape interval (default ``1s``: soaks in
seconds). Set it to a production-like ``15s`` to see the world as a real cluster's
Prometheus sees it: series that appear a scrape late, rates that need two scrapes. The
integration tests and ``bench/gate_reaction`` also start extra Prometheus servers with
:func:`render_config` at other intervals, scraping the same simulator.

The sandbox's Prometheus also evaluates the rollout's alert rules (monitoring/ at the root of
the clone), rendered with the sandbox's settings (:func:`write_sandbox_rules`: windows and
``for:`` of seconds, widened to cover a slower scrape interval) into its state directory.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path

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


def scrape_interval_from_env() -> tuple[str, float]:
    """The configured scrape interval as (text, seconds)."""
    text = os.environ.get(SCRAPE_INTERVAL_ENV, "").strip() or DEFAULT_SCRAPE_INTERVAL
    return text, parse_scrape_interval(text)


def _milliseconds(seconds: float) -> str:
    return "%dms" % max(int(round(seconds * 1000)), 1)


def render_config(scrape_interval_seconds: float, jobs: Sequence[tuple], rule_files: Sequence[str] = ()) -> str:
    """prometheus.yml scraping each ``(job name, host:port)`` every ``scrape_interval_seconds``.

    A job may carry a third element, its ``metrics_path``; such a job honours the labels of
    what it scrapes (``honor_labels: true``), as OpenCost's documentation configures its job.
    The scrape timeout is 90% of the interval (at most 10 s), so a slow scrape never
    overlaps the next one. ``rule_files`` are the rules files it evaluates (none by default).
    """
    timeout_seconds = min(scrape_interval_seconds * 0.9, 10.0)
    lines = [
        "global:",
        "  scrape_interval: %s" % _milliseconds(scrape_interval_seconds),
        "  evaluation_interval: %s" % _milliseconds(scrape_interval_seconds),
        "  scrape_timeout: %s" % _milliseconds(timeout_seconds),
    ]
    if rule_files:
        lines.append("rule_files:")
        lines += ["  - %s" % json.dumps(str(path)) for path in rule_files]
    lines.append("scrape_configs:")
    for job_name, target, *metrics_path in jobs:
        lines.append("  - job_name: %s" % job_name)
        if metrics_path:
            lines += ["    metrics_path: %s" % metrics_path[0], "    honor_labels: true"]
        lines += [
            "    static_configs:",
            "      - targets: ['%s']" % target,
        ]
    return "\n".join(lines) + "\n"


SANDBOX_RULES_FILE = "ceres-rollout.rules.yml"
# The rules' shortest windows: a rate needs samples of several scrapes, a group need not run more
# often than Prometheus scrapes.
MIN_RATE_WINDOW_SECONDS = 30
RATE_WINDOW_SCRAPES = 4
MIN_GROUP_INTERVAL_SECONDS = 2


def _monitoring(root: Path):
    """The rules' source (monitoring/ at the root of the clone), loaded by path: it is not on sys.path."""
    if "monitoring" not in sys.modules:
        directory = root / "monitoring"
        spec = importlib.util.spec_from_file_location(
            "monitoring", directory / "__init__.py", submodule_search_locations=[str(directory)]
        )
        package = importlib.util.module_from_spec(spec)
        sys.modules["monitoring"] = package
        spec.loader.exec_module(package)
    return importlib.import_module("monitoring.rules"), importlib.import_module("monitoring.render")


def sandbox_rule_settings(rules, scrape_interval_seconds: float):
    """The rules' sandbox settings, their rate window covering a few scrapes of the configured interval."""
    window = max(MIN_RATE_WINDOW_SECONDS, math.ceil(RATE_WINDOW_SCRAPES * scrape_interval_seconds))
    interval = max(MIN_GROUP_INTERVAL_SECONDS, math.ceil(scrape_interval_seconds))
    return dataclasses.replace(rules.SANDBOX, rate_window="%ds" % window, group_interval="%ds" % interval)


def write_sandbox_rules(directory: Path, root: Path, scrape_interval_seconds: float) -> Path:
    """Render the rollout's alert rules with the sandbox's settings into ``directory``; return the file."""
    rules, render = _monitoring(root)
    path = directory / SANDBOX_RULES_FILE
    path.write_text(render.rules_file(sandbox_rule_settings(rules, scrape_interval_seconds), "sandbox"))
    return path


class ExtraPrometheus:
    """A Prometheus of its own, scraping the given targets at another interval (tests, benchmarks).

    ``with ExtraPrometheus(5.0, [("sim", "127.0.0.1:16401")], work_dir) as prometheus:``
    starts ``prometheus`` on a free loopback port with its data under ``work_dir``, waits
    until every target is up, and stops the whole process group on exit.
    """

    def __init__(
        self,
        scrape_interval_seconds: float,
        jobs: Sequence[tuple[str, str]],
        work_dir: str,
        binary: str = "prometheus",
        ready_timeout: float = 60.0,
    ):
        self.scrape_interval_seconds = scrape_interval_seconds
        self.jobs = list(jobs)
        self.work_dir = work_dir
        self.binary = binary
        self.ready_timeout = ready_timeout
        self.url = ""
        self._process = None

    def __enter__(self) -> ExtraPrometheus:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        config_path = os.path.join(self.work_dir, "prometheus.yml")
        with open(config_path, "w", encoding="utf-8") as config:
            config.write(render_config(self.scrape_interval_seconds, self.jobs))
        log = open(os.path.join(self.work_dir, "prometheus.log"), "wb")  # noqa: SIM115 - lives as long as the process
        self._process = subprocess.Popen(  # noqa: S603
            [
                self.binary,
                "--config.file=%s" % config_path,
                "--storage.tsdb.path=%s" % os.path.join(self.work_dir, "data"),
                "--web.listen-address=127.0.0.1:%d" % port,
                "--storage.tsdb.retention.time=1d",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        log.close()
        self.url = "http://127.0.0.1:%d" % port
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(
                    "prometheus exited with %s; see %s/prometheus.log" % (self._process.returncode, self.work_dir)
                )
            if self._targets_up() == len(self.jobs):
                return self
            time.sleep(0.25)
        self.__exit__(None, None, None)
        raise RuntimeError("prometheus at %s did not scrape its targets within %ss" % (self.url, self.ready_timeout))

    def _targets_up(self) -> int:
        query = urllib.parse.urlencode({"query": "sum(up)"})
        try:
            with urllib.request.urlopen("%s/api/v1/query?%s" % (self.url, query), timeout=2) as response:
                result = json.load(response)["data"]["result"]
        except (OSError, urllib.error.URLError, ValueError, KeyError):
            return 0
        return int(float(result[0]["value"][1])) if result else 0

    def __exit__(self, *unused_exc_info) -> None:
        if self._process is not None and self._process.poll() is None:
            os.killpg(self._process.pid, signal.SIGTERM)
            try:
                self._process.wait(timeout=20)
            except subprocess.TimeoutExpired:  # a stuck server is killed
                os.killpg(self._process.pid, signal.SIGKILL)
                self._process.wait()
