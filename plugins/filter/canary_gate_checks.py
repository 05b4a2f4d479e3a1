# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: canary_gate_checks
short_description: The plan's SLO checks for every app of a canary step, as metric_gate checks
version_added: 0.3.0
author:
  - CERES platform team (@ceres)
description:
  - Builds the O(ceres.rollout.metric_gate#module:checks) of one gate for all the apps of a step, so the apps share
    one soak. Per app an error-rate check (V(istio_error_rate), at most C(max_error_rate), backed by the rule-of-three
    sample size the template implies), a p95 and a p99 latency check (V(istio_latency_p95) and V(istio_latency_p99),
    at most C(max_latency_p95_ms) and C(max_latency_p99_ms)).
  - Check names are C(<app>/error-rate), C(<app>/p95-ms) and C(<app>/p99-ms); when two apps of different namespaces
    share a name, C(<namespace>/<app>/...).
  - A threshold left out of O(slo) (or null) leaves that check out; an SLO without any of the three is refused, as is
    a threshold that is not a positive number.
options:
  _input:
    description: The apps, as M(ceres.rollout.canary_apps) returns them (C(name), C(namespace), C(host), C(canary_deployment)).
    type: list
    elements: dict
    required: true
  slo:
    description: The inventory's C(ceres_slo) (C(max_error_rate) as a fraction, C(max_latency_p95_ms), C(max_latency_p99_ms)).
    type: dict
    required: true
  window:
    description: The range of the rates (V(15s), V(5m)).
    type: str
    required: true
  scrape_interval:
    description: How often Prometheus scrapes the proxies (the templates' freshness guard is four of them).
    type: str
    required: true
  workload:
    description: Which Deployment of each app the checks ask about - the canary's, or the stable's (the preflight's
      gate self-test).
    type: str
    choices: [canary_deployment, stable_deployment]
    default: canary_deployment
"""

EXAMPLES = r"""
- name: Gate the step's apps together
  ceres.rollout.metric_gate:
    checks: "{{ apps | ceres.rollout.canary_gate_checks(slo=ceres_slo, window='1m', scrape_interval='15s') }}"
    samples: 10
    interval: 1m
"""

RETURN = r"""
_value:
  description: The checks (C(name), C(template), C(params), C(max)), three per app in the order of the apps.
  type: list
  elements: dict
"""

import math
from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

# check suffix, template, SLO key
CHECKS = (
    ("error-rate", "istio_error_rate", "max_error_rate"),
    ("p95-ms", "istio_latency_p95", "max_latency_p95_ms"),
    ("p99-ms", "istio_latency_p99", "max_latency_p99_ms"),
)


def canary_gate_checks(apps, slo=None, window=None, scrape_interval=None, workload="canary_deployment"):
    """Return metric_gate checks of the plan's SLOs for every app of ``apps``."""
    if not isinstance(slo, Mapping):
        raise AnsibleFilterError("canary_gate_checks: slo must be a dict such as ceres_slo, got %r" % (slo,))
    thresholds = {}
    for _suffix, _template, key in CHECKS:
        value = slo.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise AnsibleFilterError("canary_gate_checks: slo.%s must be a positive number, got %r" % (key, value))
        thresholds[key] = float(value)
    if not thresholds:
        raise AnsibleFilterError(
            "canary_gate_checks: slo has none of %s; a gate needs at least one"
            % ", ".join(check[2] for check in CHECKS)
        )
    for field, value in (("window", window), ("scrape_interval", scrape_interval)):
        if not isinstance(value, str) or not value:
            raise AnsibleFilterError("canary_gate_checks: %s must be a duration such as 1m, got %r" % (field, value))
    if workload not in ("canary_deployment", "stable_deployment"):
        raise AnsibleFilterError(
            "canary_gate_checks: workload must be canary_deployment or stable_deployment, got %r" % (workload,)
        )
    if not isinstance(apps, (list, tuple)) or not apps:
        raise AnsibleFilterError("canary_gate_checks: expected the apps from canary_apps, got %r" % (apps,))
    checks = []
    names = [(app or {}).get("name") for app in apps]
    for index, app in enumerate(apps):
        missing = [key for key in ("name", "namespace", "host", workload) if not (app or {}).get(key)]
        if missing:
            raise AnsibleFilterError(
                "canary_gate_checks: apps[%d] has no %s (resolve apps with canary_apps)" % (index, missing)
            )
        params = {
            "namespace": app["namespace"],
            "workload": app[workload],
            "service": app["host"].split(".")[0],
            "window": window,
            "scrape_interval": scrape_interval,
        }
        label = app["name"] if names.count(app["name"]) == 1 else "%s/%s" % (app["namespace"], app["name"])
        for suffix, template, key in CHECKS:
            if key in thresholds:
                checks.append(
                    {
                        "name": "%s/%s" % (label, suffix),
                        "template": template,
                        "params": params,
                        "max": thresholds[key],
                    }
                )
    return checks


class FilterModule:
    def filters(self):
        return {"canary_gate_checks": canary_gate_checks}
