# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The journal's records of one rollout, and the evidence they hold.

Which records make "the latest rollout": the journal's runs are cut after every *completed
rollback* run (phase ``rollback``, its ``rollback/done`` record ``completed``). The latest
rollout is the last such part that holds a run of another phase: the runs after the last
completed rollback, or - when nothing ran after it - the rolled-back rollout together with its
rollback (the report then says it was rolled back). With no completed rollback, it is every run
from the journal's first record.
"""

from __future__ import annotations

import datetime
import typing as t
from collections.abc import Mapping

from ansible_collections.ceres.rollout.plugins.module_utils.common.errors import CeresError

ROLLBACK_PHASE = "rollback"
ROLLED_BACK_OUTCOMES = ("rolled_back",)
SELECTION_RULE = (
    "the runs since the last completed rollback (or since the journal's first record); when nothing ran after the "
    "last completed rollback, the rollout it rolled back, with the rollback"
)


class ReportInputError(CeresError, ValueError):
    """The journal's records cannot make a report (none, or not records)."""


def parse_time(text: t.Any) -> float | None:
    """Seconds since the epoch of an RFC 3339 UTC time (``2026-01-31T09:30:00.123Z``), or None."""
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.timestamp()


def format_time(seconds: float) -> str:
    """RFC 3339 UTC with milliseconds, as the journal writes times."""
    moment = datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (moment.microsecond // 1000)


def _runs_in_order(records: list[Mapping]) -> list[tuple[str, list[Mapping]]]:
    runs: dict[str, list[Mapping]] = {}
    for record in records:
        runs.setdefault(str(record.get("run_id")), []).append(record)
    return list(runs.items())


def _is_completed_rollback(run_records: list[Mapping]) -> bool:
    return any(
        record.get("phase") == ROLLBACK_PHASE
        and str(record.get("step_id", "")).endswith("/done")
        and record.get("outcome") == "completed"
        for record in run_records
    )


def latest_rollout(records: t.Any) -> list[Mapping]:
    """The records of the latest rollout (see the module docstring), in the journal's order."""
    if not isinstance(records, list) or not all(isinstance(record, Mapping) for record in records):
        raise ReportInputError("records must be the journal's records (a list of dicts, as rollout_journal reads them)")
    if not records:
        raise ReportInputError("the journal has no record: there is no rollout to report on")
    parts: list[list[tuple[str, list[Mapping]]]] = [[]]
    for run in _runs_in_order(records):
        parts[-1].append(run)
        if _is_completed_rollback(run[1]):
            parts.append([])
    chosen = next(
        (part for part in reversed(parts) if any(_phase(run) != ROLLBACK_PHASE for run in part)),
        next(part for part in reversed(parts) if part),
    )
    return [record for unused_run_id, run_records in chosen for record in run_records]


def _phase(run: tuple[str, list[Mapping]]) -> str:
    return str(run[1][0].get("phase") or "")


def record_time(record: Mapping) -> float | None:
    """When a record was first written (a step's start)."""
    return parse_time(record.get("recorded_at"))


def record_last_time(record: Mapping) -> float | None:
    """When a record was last written (a step's end, for a record updated in place)."""
    return parse_time(record.get("updated_at")) or parse_time(record.get("recorded_at"))


def window(records: list[Mapping]) -> tuple[float, float]:
    """The rollout window: from its first record to the last write of any of its records."""
    starts = [moment for moment in (record_time(record) for record in records) if moment is not None]
    ends = [moment for moment in (record_last_time(record) for record in records) if moment is not None]
    if not starts or not ends:
        raise ReportInputError("the rollout's records carry no recorded_at time: no window to report on")
    return min(starts), max(ends)


def apps(records: list[Mapping]) -> list[str]:
    """Every app (``namespace/name``) a record of the rollout names, sorted."""
    found = set()
    for record in records:
        for label in record.get("apps") or []:
            if isinstance(label, str) and "/" in label:
                found.add(label)
    return sorted(found)


def runs(records: list[Mapping]) -> list[dict]:
    """One summary per run: phase, first and last times, final outcome, who ran it."""
    summaries = []
    for run_id, run_records in _runs_in_order(records):
        done = [record for record in run_records if str(record.get("step_id", "")).endswith("/done")]
        final = done[-1] if done else None
        data = (final or {}).get("data") if isinstance((final or {}).get("data"), Mapping) else {}
        start = min((record_time(record) or 0.0) for record in run_records)
        end = max((record_last_time(record) or 0.0) for record in run_records)
        summaries.append(
            {
                "run_id": run_id,
                "phase": run_records[0].get("phase"),
                "cluster": run_records[0].get("cluster"),
                "started_at": format_time(start),
                "ended_at": format_time(end),
                "outcome": final.get("outcome") if final else "unfinished",
                "message": (final or {}).get("message"),
                "by": data.get("by"),
                "awx": data.get("awx"),
                "records": len(run_records),
            }
        )
    return summaries


def weight_changes(records: list[Mapping]) -> list[dict]:
    """Every weight the rollout set, with when: a step's record is written as the step starts (before the
    shift); a rolled-back step sends the canary back to 0 when its record was last written."""
    changes = []
    for record in records:
        weight = record.get("weight")
        if not isinstance(weight, (int, float)) or isinstance(weight, bool):
            continue
        outcome = record.get("outcome")
        entry = {
            "at": record.get("recorded_at"),
            "run_id": record.get("run_id"),
            "phase": record.get("phase"),
            "step_id": record.get("step_id"),
            "weight": weight,
            "apps": list(record.get("apps") or []),
            "outcome": outcome,
        }
        changes.append(entry)
        if outcome in ROLLED_BACK_OUTCOMES:
            changes.append(dict(entry, at=record.get("updated_at") or record.get("recorded_at"), weight=0))
    return sorted(changes, key=lambda change: parse_time(change["at"]) or 0.0)


def rollbacks(records: list[Mapping]) -> list[dict]:
    """Every step rolled back by a canary's rescue, and every run of the rollback phase."""
    found = []
    for record in records:
        if record.get("outcome") in ROLLED_BACK_OUTCOMES or (
            record.get("phase") == ROLLBACK_PHASE and str(record.get("step_id", "")).endswith("/done")
        ):
            found.append(
                {
                    "at": record.get("updated_at") or record.get("recorded_at"),
                    "run_id": record.get("run_id"),
                    "phase": record.get("phase"),
                    "step_id": record.get("step_id"),
                    "outcome": record.get("outcome"),
                    "weight": record.get("weight"),
                    "message": record.get("message"),
                }
            )
    return found


def gates(records: list[Mapping]) -> list[dict]:
    """Every gate the journal recorded: its verdict and each check's bounds, status and values."""
    found = []
    for record in records:
        gate = record.get("gate")
        if not isinstance(gate, Mapping):
            continue
        checks = gate.get("checks") if isinstance(gate.get("checks"), Mapping) else {}
        found.append(
            {
                "at": record.get("updated_at") or record.get("recorded_at"),
                "run_id": record.get("run_id"),
                "phase": record.get("phase"),
                "step_id": record.get("step_id"),
                "weight": record.get("weight"),
                "outcome": record.get("outcome"),
                "verdict": gate.get("verdict"),
                "elapsed": gate.get("elapsed"),
                "checks": {
                    str(name): {
                        "status": check.get("status"),
                        "min": check.get("min"),
                        "max": check.get("max"),
                        "accepted": check.get("accepted"),
                        "values": list(check.get("values") or []),
                        "query": check.get("query"),
                    }
                    for name, check in sorted(checks.items())
                    if isinstance(check, Mapping)
                },
            }
        )
    return found


def backups(records: list[Mapping]) -> list[dict]:
    """Every backup a run recorded, with its id, where it is, and its manifest's checksum when recorded."""
    found = []
    for record in records:
        if not record.get("backup_id"):
            continue
        data = record.get("data") if isinstance(record.get("data"), Mapping) else {}
        found.append(
            {
                "at": record.get("recorded_at"),
                "run_id": record.get("run_id"),
                "phase": record.get("phase"),
                "step_id": record.get("step_id"),
                "outcome": record.get("outcome"),
                "backup_id": record.get("backup_id"),
                "location": data.get("location"),
                "complete": data.get("complete"),
                "manifest_sha256": data.get("manifest_sha256") or None,
            }
        )
    return found


def approvals(records: list[Mapping]) -> list[dict]:
    """Every approval step: the decision, by whom (``approvals``), its message."""
    found = []
    for record in records:
        if not str(record.get("step_id", "")).endswith("/approval") and not record.get("approvals"):
            continue
        data = record.get("data") if isinstance(record.get("data"), Mapping) else {}
        found.append(
            {
                "at": record.get("updated_at") or record.get("recorded_at"),
                "run_id": record.get("run_id"),
                "phase": record.get("phase"),
                "step_id": record.get("step_id"),
                "outcome": record.get("outcome"),
                "decision": data.get("approval"),
                "approvals": record.get("approvals"),
                "message": record.get("message"),
            }
        )
    return found
