# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The records of the rollout journal, and how they are laid out in a ConfigMap. Pure: no API call.

Layout: one ConfigMap key per run, ``run.<run_id>``, holding that run's records as JSON
lines (one compact JSON object per line, in the order they were recorded). One key per run
keeps a run's history together, readable with ``kubectl get configmap -o yaml``, and an
append touches one key only.

A record has validated fields (:data:`RECORD_FIELDS`); ``seq`` (its position in its run),
``recorded_at`` and ``updated_at`` are set here, never by the caller. Every record has a
``step_id``, the caller's or a generated one: recording a step_id again with the same content
changes nothing, with other content replaces that record in place.

Size: the API server refuses a ConfigMap whose values exceed 1 MiB (1,048,576 bytes), and
etcd refuses larger objects still. The journal stops short of it, at :data:`MAX_JOURNAL_BYTES`
of keys and values, and a single record may take at most :data:`MAX_RECORD_BYTES`: gate
values belong in a record as summaries (the values a verdict was made on), not raw series.
"""

from __future__ import annotations

import json
import math
import re
import typing as t

from ansible_collections.ceres.rollout.plugins.module_utils.common.errors import CeresError

RUN_KEY_PREFIX = "run."
# Below the API server's 1 MiB for ConfigMap values, with room for the object's metadata.
MAX_JOURNAL_BYTES = 1000 * 1000
MAX_RECORD_BYTES = 64 * 1024

OUTCOMES = ("started", "passed", "failed", "inconclusive", "rolled_back", "completed", "aborted", "skipped")
VERDICTS = ("pass", "fail", "inconclusive")
STEP_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,252}$")

# Set by the journal, never by the caller. ``order`` is journal-wide: one more than the journal's last
# (the annotation ORDER_ANNOTATION), taken under the ConfigMap's resourceVersion at each write, so
# records sort by the order the API server accepted them, not by each controller's clock.
SERVER_FIELDS = ("seq", "order", "recorded_at", "updated_at")
ORDER_ANNOTATION = "rollout.ceres.io/order"

# field: (type description, validator). Order is the order of a stored record's keys.
RECORD_FIELDS = (
    "step_id",
    "run_id",
    "phase",
    "outcome",
    "cluster",
    "namespace",
    "apps",
    "weight",
    "verdict",
    "gate",
    "backup_id",
    "approvals",
    "message",
    "data",
)
STRING_FIELDS = ("step_id", "run_id", "phase", "cluster", "namespace", "backup_id", "message")


class RecordError(CeresError):
    """A record cannot be stored as given. ``field`` names the record field at fault."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__("record.%s: %s" % (field, problem))
        self.field = field


class JournalCorrupt(CeresError):
    """A journal key holds something that is not journal records."""


def run_key(run_id: str) -> str:
    return RUN_KEY_PREFIX + run_id


def encode(value: t.Any) -> str:
    """Compact JSON; refuses NaN and infinities (not JSON)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _is_json_value(value: t.Any) -> bool:
    if value is None or isinstance(value, (str, bool, int)):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, t.Mapping):
        return all(isinstance(key, str) and _is_json_value(item) for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return all(_is_json_value(item) for item in value)
    return False


def _plain(value: t.Any) -> t.Any:
    """A copy made of plain dicts and lists (Ansible hands over its own string and mapping types)."""
    if isinstance(value, t.Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, str):
        return str(value)
    return value


def normalize_record(record: t.Mapping[str, t.Any], run_id: str, default_phase: str | None = None) -> dict[str, t.Any]:
    """The record as it is stored (without seq and timestamps): fields checked, ``app``
    folded into ``apps``, empty fields left out. Raises :class:`RecordError` naming the field."""
    if not isinstance(record, t.Mapping):
        raise RecordError("", "must be a dict of record fields")
    given = {key: value for key, value in _plain(record).items() if value is not None}
    unknown = sorted(set(given) - set(RECORD_FIELDS) - {"app"})
    if unknown:
        server = [key for key in unknown if key in SERVER_FIELDS]
        if server:
            raise RecordError(server[0], "is set by the journal, not by the caller")
        raise RecordError(
            unknown[0],
            "is not a record field (fields: %s, and app; put anything else in data)" % ", ".join(RECORD_FIELDS),
        )
    if given.get("run_id", run_id) != run_id:
        raise RecordError("run_id", "is %r, but the task's run_id is %r" % (given["run_id"], run_id))
    given["run_id"] = run_id
    given.setdefault("phase", default_phase)
    if given.get("phase") is None:
        raise RecordError("phase", "is required (pilot, wave1, cutover, rollback...), or set the task's phase")
    for field in STRING_FIELDS:
        if field in given and (not isinstance(given[field], str) or not given[field]):
            raise RecordError(field, "must be a non-empty string, got %r" % (given[field],))
    if "step_id" in given and not STEP_ID_PATTERN.match(given["step_id"]):
        raise RecordError(
            "step_id",
            "must be 1 to 253 letters, digits or ._:/@+- starting with a letter or digit, got %r" % (given["step_id"],),
        )
    if given.get("outcome") not in OUTCOMES:
        raise RecordError("outcome", "must be one of %s, got %r" % (", ".join(OUTCOMES), given.get("outcome")))
    if "verdict" in given and given["verdict"] not in VERDICTS:
        raise RecordError("verdict", "must be one of %s, got %r" % (", ".join(VERDICTS), given["verdict"]))
    if "weight" in given:
        weight = given["weight"]
        if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= 100:
            raise RecordError("weight", "must be an integer from 0 to 100, got %r" % (weight,))
    apps = given.pop("app", None)
    if apps is not None:
        if "apps" in given:
            raise RecordError("app", "give app or apps, not both")
        given["apps"] = [apps]
    if "apps" in given:
        if not isinstance(given["apps"], list) or not all(isinstance(app, str) and app for app in given["apps"]):
            raise RecordError("apps", "must be a list of app names, got %r" % (given["apps"],))
    for field in ("gate", "data"):
        if field in given and not isinstance(given[field], dict):
            raise RecordError(field, "must be a dict, got %s" % type(given[field]).__name__)
    if "approvals" in given:
        if not isinstance(given["approvals"], list) or not all(isinstance(item, dict) for item in given["approvals"]):
            raise RecordError("approvals", "must be a list of dicts (for example by, decision, at, comment)")
    for field, value in given.items():
        if not _is_json_value(value):
            raise RecordError(field, "holds a value that is not JSON (NaN, infinity or an object)")
    return {field: given[field] for field in RECORD_FIELDS if field in given and given[field] not in ([], {})}


def content_of(record: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    """What a record says, without what the journal adds (seq, timestamps): equal content, same step."""
    return {key: value for key, value in record.items() if key not in SERVER_FIELDS}


def stored_form(record: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    """Keys in the documented order: seq, the record fields, then the timestamps."""
    ordered = {"seq": record.get("seq")}
    if record.get("order") is not None:
        ordered["order"] = record["order"]
    ordered.update({field: record[field] for field in RECORD_FIELDS if field in record})
    ordered.update({field: record[field] for field in ("recorded_at", "updated_at") if field in record})
    return ordered


def decode_run(key: str, text: str) -> list[dict[str, t.Any]]:
    """The records under one run key."""
    records = []
    for number, line in enumerate((text or "").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as error:
            raise JournalCorrupt(
                "journal key %s, line %d is not JSON (%s); the journal is left as it is" % (key, number, error)
            )
        if not isinstance(record, dict):
            raise JournalCorrupt("journal key %s, line %d is not a record (a JSON object)" % (key, number))
        records.append(record)
    return records


def encode_run(records: t.Sequence[t.Mapping[str, t.Any]]) -> str:
    return "".join(encode(stored_form(record)) + "\n" for record in records)


def decode_journal(data: t.Mapping[str, str] | None) -> dict[str, list[dict[str, t.Any]]]:
    """Every run's records (run id: records), from a journal ConfigMap's ``data``."""
    return {
        key[len(RUN_KEY_PREFIX) :]: decode_run(key, text)
        for key, text in sorted((data or {}).items())
        if key.startswith(RUN_KEY_PREFIX)
    }


def journal_bytes(data: t.Mapping[str, str] | None) -> int:
    """The size the limit applies to: every key and value, in UTF-8 bytes."""
    return sum(len(key.encode("utf-8")) + len((value or "").encode("utf-8")) for key, value in (data or {}).items())


def record_bytes(record: t.Mapping[str, t.Any]) -> int:
    return len(encode(stored_form(record)).encode("utf-8")) + 1


def last_moment(record: t.Mapping[str, t.Any]) -> str:
    return record.get("updated_at") or record.get("recorded_at") or ""


def written_order(record: t.Mapping[str, t.Any]) -> tuple[int, str]:
    """When a record was last written, as the journal ordered it: its ``order`` (records written before
    orders existed count as 0, older than any that has one), then its time."""
    order = record.get("order")
    return (order if isinstance(order, int) and not isinstance(order, bool) else 0, last_moment(record))


def last_order(data: t.Mapping[str, str] | None, annotations: t.Mapping[str, str] | None) -> int:
    """The journal's last order: its annotation, or the highest a record holds when that is higher
    (an annotation deleted by hand must not let orders go back)."""
    try:
        noted = int((annotations or {}).get(ORDER_ANNOTATION) or 0)
    except ValueError:
        noted = 0
    held = [
        record.get("order")
        for records in decode_journal(data).values()
        for record in records
        if isinstance(record.get("order"), int)
    ]
    return max([noted, 0] + held)


def ordered_records(runs: t.Mapping[str, t.Sequence[t.Mapping[str, t.Any]]]) -> list[dict[str, t.Any]]:
    """All records: runs in the order they started, each run's records in order."""

    def started(item: tuple[str, t.Sequence[t.Mapping[str, t.Any]]]) -> tuple[tuple[int, str], str]:
        run_id, records = item
        first = min(
            ((written_order(record)[0], record.get("recorded_at") or "") for record in records), default=(0, "")
        )
        return (first, run_id)

    return [
        dict(record)
        for _run_id, records in sorted(runs.items(), key=started)
        for record in sorted(records, key=lambda record: record.get("seq") or 0)
    ]


def latest(records: t.Sequence[t.Mapping[str, t.Any]]) -> dict[str, t.Any] | None:
    """The record recorded or updated last (ties: the later in order)."""
    best = None
    for record in records:
        if best is None or written_order(record) >= written_order(best):
            best = record
    return dict(best) if best is not None else None


def summarize_run(run_id: str, records: t.Sequence[t.Mapping[str, t.Any]]) -> dict[str, t.Any]:
    """One run at a glance (an entry of the ``runs`` return value)."""
    ordered = sorted(records, key=lambda record: record.get("seq") or 0)
    phases: list[str] = []
    outcomes: dict[str, int] = {}
    backup_ids: list[str] = []
    for record in ordered:
        if record.get("phase") and record["phase"] not in phases:
            phases.append(record["phase"])
        outcomes[record.get("outcome") or "?"] = outcomes.get(record.get("outcome") or "?", 0) + 1
        if record.get("backup_id") and record["backup_id"] not in backup_ids:
            backup_ids.append(record["backup_id"])
    last = latest(ordered) or {}
    return {
        "run_id": run_id,
        "records": len(ordered),
        "phases": phases,
        "outcomes": outcomes,
        "backup_ids": backup_ids,
        "started_at": min((record.get("recorded_at") or "" for record in ordered), default="") or None,
        "updated_at": last_moment(last) or None,
        "last_step_id": last.get("step_id"),
        "last_phase": last.get("phase"),
        "last_outcome": last.get("outcome"),
    }
