# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The traffic simulator (``sandbox/simulator``) and the Prometheus that scrapes it.

Prometheus' configuration comes from :mod:`prometheus_config` (its scrape interval from
``CERES_SANDBOX_SCRAPE_INTERVAL``, the rollout's alert rules rendered for the sandbox beside
it); it is ready once it has scraped the simulator.
"""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path

from .config import SandboxConfig
from .process import Component, http_get
from .prometheus_config import render_config, scrape_interval_from_env, write_sandbox_rules


def _prometheus_config(config: SandboxConfig) -> Path:
    path = config.state / "prometheus" / "prometheus.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    unused_text, interval_seconds = scrape_interval_from_env()
    rules = write_sandbox_rules(path.parent, config.root, interval_seconds)
    path.write_text(
        render_config(
            interval_seconds,
            [
                ("ceres-traffic-simulator", f"127.0.0.1:{config.ports['simulator']}"),
                # the cost suite's series (OpenCost's), served by the simulator while staging's OpenCost runs
                ("opencost", f"127.0.0.1:{config.ports['simulator']}", "/opencost/metrics"),
                # the rollout's route weights and locks, for the alert rules (kube-state-metrics' in production)
                ("ceres-rollout-state", f"127.0.0.1:{config.ports['simulator']}", "/ceres/metrics"),
                ("prometheus", f"127.0.0.1:{config.ports['prometheus']}"),
            ],
            rule_files=[str(rules)],
        )
    )
    return path


def _prometheus_ready(config: SandboxConfig) -> bool:
    query = urllib.parse.quote('up{job="ceres-traffic-simulator"} == 1')
    status, body = http_get(f"http://127.0.0.1:{config.ports['prometheus']}/api/v1/query?query={query}", timeout=1)
    return status == 200 and len(json.loads(body)["data"]["result"]) == 1


def simulator(config: SandboxConfig) -> Component:
    return Component(
        config,
        "simulator",
        ["simulator"],
        lambda ctx: [
            ctx.python,
            str(config.source / "simulator"),
            f"--kubeconfig={config.pki / 'simulator.kubeconfig'}",
            f"--listen=127.0.0.1:{config.ports['simulator']}",
            f"--netpol-engine={ctx.bin_dir / 'ceres-netpol'}",
        ],
        lambda ctx: http_get(f"http://127.0.0.1:{config.ports['simulator']}/healthz", timeout=1)[0] == 200,
    )


def prometheus(config: SandboxConfig) -> Component:
    return Component(
        config,
        "prometheus",
        ["prometheus"],
        lambda ctx: [
            "prometheus",
            f"--config.file={_prometheus_config(config)}",
            f"--storage.tsdb.path={config.state / 'prometheus' / 'data'}",
            f"--web.listen-address=127.0.0.1:{config.ports['prometheus']}",
            "--storage.tsdb.retention.time=1d",
            "--web.enable-lifecycle",
            "--log.level=warn",
        ],
        lambda ctx: _prometheus_ready(config),
    )
