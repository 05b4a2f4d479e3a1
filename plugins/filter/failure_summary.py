# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: failure_summary
short_description: One line saying why a canary step failed, naming the check, its values and the threshold
version_added: 0.3.0
author:
  - CERES platform team (@ceres)
description:
  - Turns the result of the task that failed a canary step (C(ansible_failed_result) in a C(rescue)) into one line
    for the play's failure message and the journal.
  - For a M(ceres.rollout.metric_gate) result, every check that did not pass with its status, its values (oldest
    first, C(no data) for a sample without data), its bounds and the gate's own words.
  - For a M(ceres.rollout.workload_health) result, every unhealthy workload with its reasons.
  - For anything else, the task's C(msg).
options:
  _input:
    description: The failed task's result.
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Fail the play, saying why
  ansible.builtin.fail:
    msg: "{{ ansible_failed_result | ceres.rollout.failure_summary }}"
"""

RETURN = r"""
_value:
  description: The summary.
  type: str
"""

import math
from collections.abc import Mapping

MAX_VALUES_SHOWN = 6


def failure_summary(result):
    """Return one line saying why ``result`` failed."""
    if not isinstance(result, Mapping):
        return "the step failed (no result to tell why: %r)" % (result,)
    if isinstance(result.get("results"), list):
        failed = [item for item in result["results"] if isinstance(item, Mapping) and item.get("failed")]
        if failed:
            return "; ".join(failure_summary(item) for item in failed)
    if isinstance(result.get("checks"), list) and "verdict" in result:
        return _gate_summary(result)
    if isinstance(result.get("workloads"), list) and "healthy" in result:
        return _health_summary(result)
    return str(result.get("msg") or "the step failed without a message")


def _gate_summary(result):
    parts = []
    for check in result["checks"]:
        if not isinstance(check, Mapping) or check.get("status") == "pass":
            continue
        parts.append(
            "%s %s: values %s (%s); %s"
            % (
                check.get("name"),
                check.get("status"),
                _values(check.get("values") or []),
                _bounds(check),
                check.get("message") or "",
            )
        )
    reason = result.get("reason") or result.get("msg") or ""
    head = "metric gate verdict %s" % result.get("verdict")
    return "%s: %s" % (head, " | ".join(parts) if parts else reason)


def _health_summary(result):
    parts = []
    for workload in result["workloads"]:
        if isinstance(workload, Mapping) and not workload.get("healthy", True):
            reasons = workload.get("reasons") or [workload.get("message") or "unhealthy"]
            parts.append(
                "%s %s/%s: %s"
                % (workload.get("kind"), workload.get("namespace"), workload.get("name"), "; ".join(map(str, reasons)))
            )
    return "workload health: %s" % (" | ".join(parts) if parts else result.get("msg") or "unhealthy")


def _values(values):
    shown = values[-MAX_VALUES_SHOWN:]
    text = ", ".join(_number(value) for value in shown)
    return "[%s%s]" % ("..., " if len(values) > len(shown) else "", text)


def _number(value):
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "no data"
    if isinstance(value, (int, float)):
        return "%.6g" % value
    return str(value)


def _bounds(check):
    bounds = []
    if check.get("min") is not None:
        bounds.append("min %s" % _number(check["min"]))
    if check.get("max") is not None:
        bounds.append("max %s" % _number(check["max"]))
    return ", ".join(bounds) or "no bounds"


class FilterModule:
    def filters(self):
        return {"failure_summary": failure_summary}
