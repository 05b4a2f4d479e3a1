# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The plan's success criteria, each judged PASS, FAIL or NOT MEASURED (with why), and the overall verdict.

Fail-closed: a criterion whose data is missing, ambiguous or too thin is NOT MEASURED, never PASS.
The *required* criteria are those this collection has a source for (the journal, Prometheus, the
cluster); the overall verdict is PASS only when every required criterion passes (the others count
when they were measured), FAIL when any criterion fails, and NOT MEASURED otherwise.
"""

from __future__ import annotations

import math
import typing as t

PASS = "PASS"
FAIL = "FAIL"
NOT_MEASURED = "NOT MEASURED"
VERDICTS = (PASS, FAIL, NOT_MEASURED)

DEFAULT_TARGETS = {
    "error_rate_max": 0.001,
    "latency_p95_max_ms": 100.0,
    "latency_p99_max_ms": 200.0,
    "availability_min": 0.999,
    "max_restarts": 0,
    "monthly_cost_reduction_min": 0.20,
    "monthly_cost_reduction_max": 0.30,
    "cost_per_request_change_max": -0.25,
    "user_satisfaction_min": 0.90,
}
REQUIRED = ("services_running", "error_rate", "latency_p95", "latency_p99", "pod_restarts", "zero_data_loss", "sla")


def criterion(identifier, name, target, verdict, measured, why, source):
    if verdict not in VERDICTS:
        raise ValueError("unknown verdict %r" % (verdict,))
    return {
        "id": identifier,
        "name": name,
        "target": target,
        "measured": measured,
        "verdict": verdict,
        "why": why,
        "source": source,
        "required": identifier in REQUIRED,
    }


def percent(ratio: float, digits: int = 3) -> str:
    return "%s%%" % format_number(ratio * 100, digits)


def format_number(value: float, digits: int = 3) -> str:
    """A number with at most ``digits`` decimals, no trailing zeros (deterministic)."""
    text = ("%%.%df" % digits) % value
    text = text.rstrip("0").rstrip(".") if "." in text else text
    return "0" if text in ("-0", "") else text


def real(value: t.Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def overall(criteria: list[dict]) -> dict:
    counted = [item for item in criteria if item["required"] or item["verdict"] != NOT_MEASURED]
    failed = [item["id"] for item in criteria if item["verdict"] == FAIL]
    passed = [item["id"] for item in criteria if item["verdict"] == PASS]
    not_measured = [item["id"] for item in criteria if item["verdict"] == NOT_MEASURED]
    missing_required = [item["id"] for item in criteria if item["required"] and item["verdict"] == NOT_MEASURED]
    if failed:
        verdict = FAIL
        summary = "FAIL: %d of %d criteria failed (%s)" % (len(failed), len(counted), ", ".join(failed))
    elif missing_required:
        verdict = NOT_MEASURED
        summary = "NOT MEASURED: %d required criteria could not be measured (%s); none failed" % (
            len(missing_required),
            ", ".join(missing_required),
        )
    else:
        verdict = PASS
        summary = "PASS: all %d measured criteria passed" % len(passed)
    summary += "; %d of %d criteria not measured" % (len(not_measured), len(criteria))
    return {
        "verdict": verdict,
        "summary": summary,
        "passed": passed,
        "failed": failed,
        "not_measured": not_measured,
        "required_not_measured": missing_required,
    }
