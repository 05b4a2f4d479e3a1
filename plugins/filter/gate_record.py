# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: gate_record
short_description: The compact form of a metric_gate result that the rollout journal keeps
version_added: 0.3.0
author:
  - CERES platform team (@ceres)
description:
  - Turns a M(ceres.rollout.metric_gate) result into what the journal records for a step, small enough for a
    six-hour soak of many apps (a journal record holds at most 64 KiB).
  - Per check (by name), its C(status), C(accepted) samples, bounds (C(min), C(max)) and its last O(keep) values
    (null for a sample without data); and the gate's C(verdict) and C(elapsed).
options:
  _input:
    description: The registered result of M(ceres.rollout.metric_gate).
    type: dict
    required: true
  keep:
    description: How many of each check's last values to keep.
    type: int
    default: 5
"""

EXAMPLES = r"""
- name: Record the gate of a step
  ceres.rollout.rollout_journal:
    state: recorded
    run_id: "{{ rollout_run_id }}"
    record:
      step_id: pilot/pilot-apps/weight-10
      phase: pilot
      outcome: passed
      gate: "{{ gate | ceres.rollout.gate_record }}"
"""

RETURN = r"""
_value:
  description: C(verdict), C(elapsed) and C(checks) (check name to C(status), C(accepted), C(min), C(max), C(values)).
  type: dict
"""

import math
from collections.abc import Mapping

from ansible.errors import AnsibleFilterError


def gate_record(result, keep=5):
    """Return the journal's compact record of a metric_gate result."""
    if not isinstance(result, Mapping) or not isinstance(result.get("checks"), list):
        raise AnsibleFilterError("gate_record: expected a metric_gate result with checks, got %r" % (result,))
    if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
        raise AnsibleFilterError("gate_record: keep must be a whole number of at least 1, got %r" % (keep,))
    checks = {}
    for check in result["checks"]:
        if not isinstance(check, Mapping) or not check.get("name"):
            continue
        values = [_finite(value) for value in (check.get("values") or [])[-keep:]]
        checks[check["name"]] = {
            "status": check.get("status"),
            "accepted": check.get("accepted"),
            "min": check.get("min"),
            "max": check.get("max"),
            "values": values,
        }
    return {"verdict": result.get("verdict"), "elapsed": result.get("elapsed"), "checks": checks}


def _finite(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class FilterModule:
    def filters(self):
        return {"gate_record": gate_record}
