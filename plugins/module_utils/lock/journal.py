# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The rollout journal on the cluster: a ConfigMap beside the lock's Lease, named after it
(``<lock name>-journal``), holding every run's records (layout and size rules in
:mod:`journal_records`).

:func:`record_step` GETs the ConfigMap, merges the record into its run's key, and writes
the ConfigMap back with its resourceVersion (POST when it does not exist yet); on a conflict
(409: another writer in between) it reads it again and merges again, within the client's one
time budget, then reads it back to check the record landed. A journal that would pass its
size limit is refused before anything is written. :func:`read_journal` only reads.
"""

from __future__ import annotations

import copy
import datetime
import random
import time
import typing as t
import uuid

from ansible_collections.ceres.rollout.plugins.module_utils.common.errors import CeresError
from ansible_collections.ceres.rollout.plugins.module_utils.common.timestamps import utc_timestamp
from ansible_collections.ceres.rollout.plugins.module_utils.k8s.conflicts import read_decide_write
from ansible_collections.ceres.rollout.plugins.module_utils.lock import fence as fencing
from ansible_collections.ceres.rollout.plugins.module_utils.lock import journal_records as records_layout
from ansible_collections.ceres.rollout.plugins.module_utils.lock.fence import (
    configmap_path,
    journal_name,
    new_journal,
)
from ansible_collections.ceres.rollout.plugins.module_utils.lock.lease_state import (
    utc_now,
    validate_lock_name,
    validate_run_id,
)

# Above this share of the limit, a write warns that the journal is filling up.
WARN_SHARE = 0.8

STEP_APPENDED = "appended"
STEP_UPDATED = "updated"
STEP_UNCHANGED = "unchanged"


class JournalError(CeresError):
    """The journal cannot be read or written as asked. ``changed`` says whether a write landed."""

    def __init__(self, message: str, changed: bool = False) -> None:
        super().__init__(message, changed=changed)


class JournalFull(JournalError):
    """The record would take the journal, or itself, past its size limit."""


def read_configmap(client: t.Any, namespace: str, name: str) -> dict[str, t.Any] | None:
    return fencing.get_or_none(client, configmap_path(namespace, name))


def journal_info(
    namespace: str, name: str, configmap: t.Mapping[str, t.Any] | None, limit: int = records_layout.MAX_JOURNAL_BYTES
) -> dict[str, t.Any]:
    """The ``journal`` return value: where it is and how full."""
    data = (configmap or {}).get("data") or {}
    size = records_layout.journal_bytes(data)
    return {
        "namespace": namespace,
        "name": name,
        "exists": configmap is not None,
        "runs": len([key for key in data if key.startswith(records_layout.RUN_KEY_PREFIX)]),
        "bytes": size,
        "limit_bytes": limit,
    }


# --------------------------------------------------------------------------- reading


class JournalView:
    def __init__(
        self,
        records: list[dict[str, t.Any]],
        last: dict[str, t.Any] | None,
        runs: list[dict[str, t.Any]],
        info: dict[str, t.Any],
    ) -> None:
        self.records = records
        self.last = last
        self.runs = runs
        self.info = info


def read_journal(client: t.Any, namespace: str, lock_name: str, run_id: str | None = None) -> JournalView:
    """Every record (or only ``run_id``'s), the last one, per-run summaries. A missing journal is empty."""
    validate_lock_name(lock_name)
    if run_id is not None:
        validate_run_id(run_id)
    name = journal_name(lock_name)
    configmap = read_configmap(client, namespace, name)
    runs = records_layout.decode_journal((configmap or {}).get("data"))
    summaries = [
        records_layout.summarize_run(run, runs[run])
        for run in sorted(
            runs,
            key=lambda run: (
                min(
                    ((records_layout.written_order(r)[0], r.get("recorded_at") or "") for r in runs[run]),
                    default=(0, ""),
                ),
                run,
            ),
        )
    ]
    selected = {run_id: runs.get(run_id, [])} if run_id is not None else runs
    records = records_layout.ordered_records(selected)
    return JournalView(records, records_layout.latest(records), summaries, journal_info(namespace, name, configmap))


# --------------------------------------------------------------------------- recording


class RecordRequest:
    """What the rollout_journal module was asked to record."""

    def __init__(
        self,
        namespace: str,
        lock_name: str,
        run_id: str,
        record: t.Mapping[str, t.Any],
        phase: str | None = None,
        max_conflict_retries: int = 5,
        holder: str | None = None,
    ) -> None:
        self.namespace = namespace
        self.lock_name = lock_name
        self.run_id = run_id
        self.record = record
        self.phase = phase
        self.max_conflict_retries = max_conflict_retries
        # When given, the write is fenced: refused unless this run and holder hold the lock (fence.check_writer).
        self.holder = holder

    @property
    def reference(self) -> str:
        return "%s/%s" % (self.namespace, journal_name(self.lock_name))


class RecordResult:
    def __init__(
        self,
        changed: bool,
        step: str,
        record: dict[str, t.Any],
        previous: dict[str, t.Any] | None,
        info: dict[str, t.Any],
        warnings: list[str],
    ) -> None:
        self.changed = changed
        self.step = step  # appended, updated, unchanged
        self.record = record  # as stored (or, in check mode, as it would be)
        self.previous = previous  # the step's record before an update
        self.info = info
        self.warnings = warnings


class MergePlan:
    def __init__(
        self, step: str, record: dict[str, t.Any], previous: dict[str, t.Any] | None, desired: dict[str, t.Any] | None
    ) -> None:
        self.step = step
        self.record = record
        self.previous = previous
        self.desired = desired  # the ConfigMap to write; None: nothing to write


def plan_record(
    configmap: t.Mapping[str, t.Any] | None,
    request: RecordRequest,
    content: dict[str, t.Any],
    now: str,
    limit: int = records_layout.MAX_JOURNAL_BYTES,
    record_limit: int = records_layout.MAX_RECORD_BYTES,
) -> MergePlan:
    """Merge ``content`` (a normalized record with its step_id) into the journal as read."""
    desired = (
        copy.deepcopy(dict(configmap)) if configmap is not None else new_journal(request.namespace, request.lock_name)
    )
    data = desired.get("data") or {}
    key = records_layout.run_key(request.run_id)
    run_records = records_layout.decode_run(key, data.get(key, ""))
    index = next(
        (position for position, record in enumerate(run_records) if record.get("step_id") == content["step_id"]), None
    )
    if index is not None and records_layout.content_of(run_records[index]) == content:
        return MergePlan(STEP_UNCHANGED, run_records[index], None, None)
    metadata = desired.setdefault("metadata", {})
    annotations = dict(metadata.get("annotations") or {})
    order = records_layout.last_order(data, annotations) + 1  # the server's order: written under the resourceVersion
    annotations[records_layout.ORDER_ANNOTATION] = str(order)
    metadata["annotations"] = annotations
    if index is None:
        seq = max([record.get("seq") or 0 for record in run_records] + [0]) + 1
        record = dict(content, seq=seq, order=order, recorded_at=now)
        run_records.append(record)
        step, previous = STEP_APPENDED, None
    else:
        previous = run_records[index]
        record = dict(
            content,
            seq=previous.get("seq"),
            order=order,
            recorded_at=previous.get("recorded_at") or now,
            updated_at=now,
        )
        run_records[index] = record
        step = STEP_UPDATED
    record = records_layout.stored_form(record)
    size = records_layout.record_bytes(record)
    if size > record_limit:
        raise JournalFull(
            "record: %d bytes once stored, more than the %d a record may take; keep gate values to the "
            "summaries a verdict was made on, and large data out of the journal" % (size, record_limit)
        )
    data[key] = records_layout.encode_run(run_records)
    total = records_layout.journal_bytes(data)
    if total > limit:
        raise JournalFull(
            "journal %s would hold %d bytes with this record, more than its limit of %d (a ConfigMap "
            "holds at most 1 MiB); nothing was written. Archive the journal (state=read) and delete "
            "its older run.* keys, or use another lock name" % (request.reference, total, limit)
        )
    desired["data"] = data
    return MergePlan(step, record, previous, desired)


def _write(client: t.Any, request: RecordRequest, desired: dict[str, t.Any], exists: bool) -> None:
    fencing.write_journal(
        client,
        request.namespace,
        desired,
        exists,
        lambda: JournalError(
            "%s: namespace %s does not exist; create it first (the journal never creates namespaces)"
            % (request.reference, request.namespace)
        ),
    )


def record_step(
    client: t.Any,
    request: RecordRequest,
    check_mode: bool = False,
    clock: t.Callable[[], datetime.datetime] | None = None,
    sleep: t.Callable[[float], None] = time.sleep,
    rng: t.Callable[[], float] = random.random,
    limit: int = records_layout.MAX_JOURNAL_BYTES,
    record_limit: int = records_layout.MAX_RECORD_BYTES,
) -> RecordResult:
    """Append (or update, by step_id) one record of ``request.run_id``; see the module docs."""
    validate_lock_name(request.lock_name)
    validate_run_id(request.run_id)
    content = records_layout.normalize_record(request.record, request.run_id, request.phase)
    if "step_id" not in content:
        # Fixed before the first attempt, so a retried write cannot append the record twice.
        content = dict(step_id="step-%s" % uuid.uuid4().hex[:12], **content)
        content = {field: content[field] for field in records_layout.RECORD_FIELDS if field in content}
    now = utc_timestamp(clock() if clock else None)
    path = configmap_path(request.namespace, journal_name(request.lock_name))
    plans: list[MergePlan] = []
    latest: list[dict[str, t.Any] | None] = []

    def attempt() -> MergePlan:
        configmap = read_configmap(client, request.namespace, journal_name(request.lock_name))
        latest[:] = [configmap]
        if request.holder is not None and not check_mode:
            # Fenced: the Lease read after the ConfigMap; a new holder raises the fence on the
            # ConfigMap before it acts, so this write (with the resourceVersion read) then conflicts.
            fencing.check_writer(
                configmap,
                fencing.read_lease(client, request.namespace, request.lock_name),
                request.reference,
                request.run_id,
                request.holder,
                lambda state: state.summary(request.namespace, request.lock_name, utc_now()),
            )
        plan = plan_record(configmap, request, content, now, limit, record_limit)
        plans.append(plan)
        if plan.desired is not None and not check_mode:
            _write(client, request, plan.desired, exists=configmap is not None)
        return plan

    plan = read_decide_write(
        attempt,
        client,
        "the journal %s" % request.reference,
        request.max_conflict_retries,
        lambda field, message: JournalError("%s: %s" % (field, message)),
        sleep=sleep,
        rng=rng,
    )
    first = plans[0]
    # A write whose answer was lost may have landed: then the last attempt finds the step unchanged.
    changed = plan.step != STEP_UNCHANGED or first.step != STEP_UNCHANGED
    step = plan.step if plan.step != STEP_UNCHANGED else first.step
    previous = first.previous if step == STEP_UPDATED else None
    configmap = plan.desired if plan.desired is not None else latest[0]
    if check_mode or plan.desired is None:
        info = journal_info(request.namespace, journal_name(request.lock_name), configmap, limit)
        return RecordResult(changed, step, plan.record, previous, info, _size_warnings(info))

    try:
        read_back = client.get(path)
    except CeresError as error:
        error.changed = True
        raise
    key = records_layout.run_key(request.run_id)
    stored = [
        record
        for record in records_layout.decode_run(key, ((read_back or {}).get("data") or {}).get(key, ""))
        if record.get("step_id") == content["step_id"]
    ]
    if not stored or records_layout.content_of(stored[0]) != content:
        raise JournalError(
            "%s: written, but step %s reads back %s (changed by another writer right after?)"
            % (request.reference, content["step_id"], "differently" if stored else "missing"),
            changed=True,
        )
    info = journal_info(request.namespace, journal_name(request.lock_name), read_back, limit)
    return RecordResult(True, step, records_layout.stored_form(stored[0]), previous, info, _size_warnings(info))


def _size_warnings(info: t.Mapping[str, t.Any]) -> list[str]:
    if info["bytes"] > WARN_SHARE * info["limit_bytes"]:
        return [
            "journal %s/%s holds %d of its %d bytes; archive and trim it before it is full"
            % (info["namespace"], info["name"], info["bytes"], info["limit_bytes"])
        ]
    return []
