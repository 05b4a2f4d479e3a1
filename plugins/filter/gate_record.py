# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Two filters: gate_record (a metric_gate result as the journal keeps it) and rollback_record
# (the journal record of a step that failed and was rolled back). Each is documented in the YAML
# file of its name beside this one.

from __future__ import annotations

import math
from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

# The journal keeps at most this many characters of a failure's message.
MESSAGE_LIMIT = 4000


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


def rollback_record(
    failed_result,
    step_id=None,
    apps=None,
    weight=0,
    message="",
    not_rolled_back=None,
    rolled_back_at=None,
):
    """Return the journal record of a step that failed (``failed_result``) and was rolled back."""
    if not isinstance(failed_result, Mapping):
        raise AnsibleFilterError("rollback_record: expected the failed task's result, got %r" % (failed_result,))
    if not isinstance(step_id, str) or not step_id:
        raise AnsibleFilterError("rollback_record: step_id must name the step, got %r" % (step_id,))
    if isinstance(weight, bool) or not isinstance(weight, int):
        raise AnsibleFilterError("rollback_record: weight must be a whole number, got %r" % (weight,))
    if not isinstance(message, str):
        raise AnsibleFilterError("rollback_record: message must be a string, got %r" % (message,))
    if not isinstance(not_rolled_back or [], list):
        raise AnsibleFilterError("rollback_record: not_rolled_back must list the apps, got %r" % (not_rolled_back,))
    record = {
        "step_id": step_id,
        "outcome": "failed" if not_rolled_back else "rolled_back",
        "apps": apps if apps is not None else [],
        "weight": weight,
        "message": _truncate(message.strip(), MESSAGE_LIMIT),
    }
    if "checks" in failed_result and "verdict" in failed_result:
        gate = gate_record(failed_result)
        last_sample_times = [
            check["times"][-1] for check in failed_result["checks"] if isinstance(check, Mapping) and check.get("times")
        ]
        record.update(
            {
                "verdict": failed_result["verdict"],
                "gate": gate,
                "data": {"failing_sample_at": max(last_sample_times + [0]), "rolled_back_by": rolled_back_at},
            }
        )
    return record


def _truncate(text, length, end="...", leeway=5):
    # Jinja's truncate filter with its defaults: a text at most `leeway` characters too long is
    # kept whole; a longer one is cut at the last word boundary and ends with `end`.
    if len(text) <= length + leeway:
        return text
    return text[: length - len(end)].rsplit(" ", 1)[0] + end


def _finite(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class FilterModule:
    def filters(self):
        return {"gate_record": gate_record, "rollback_record": rollback_record}
