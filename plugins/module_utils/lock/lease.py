# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The rollout lock: a ``coordination.k8s.io/v1`` Lease held by one run at a time.

A run holds the Lease when ``spec.holderIdentity`` names its holder and the annotation
``rollout.ceres.io/run-id`` its run id; it keeps it alive by renewing ``spec.renewTime``.
The decision is pure (:func:`plan_lock`, from the Lease as read and the time); the API
cycle (:func:`apply_lock`) GETs the Lease, decides, writes it with its resourceVersion (or
creates it), and on a conflict (409: another run wrote in between) reads it again and decides
again, within the client's one time budget. So two runs acquiring at once never both succeed:
the second write is refused by the API server and, re-read, the lock is the other run's.

Rules (documented in the rollout_journal module):

* ``acquired``: a free lock is taken; a lock this run holds is renewed; a lock whose holder
  stopped renewing for longer than its ``leaseDurationSeconds`` is taken over; a live lock
  of another run is refused, naming it, unless ``force`` (what rollback uses) takes it.
* A run that lost the lock (taken by force, or taken over once it expired) is remembered in
  ``rollout.ceres.io/lost-runs``: it can neither renew nor acquire it again without force,
  so a rollout that rollback interrupted stops at its next step instead of carrying on.
* ``renewed``: only by the run holding it; anything else fails, saying who has it.
* ``released``: only by the run holding it; releasing a free lock or another run's lock
  changes nothing and says so.
* A renewal of a lock the run already holds, with the same holder, phase and duration, is not
  a change (``changed: false``): the lock's state is the same, only its ``renewTime`` moved.

Expiry is judged with this machine's clock against the holder's ``renewTime``: the machines
running rollouts must keep their clocks in sync (NTP), well within a lease duration.
"""

from __future__ import annotations

import copy
import datetime
import json
import random
import time
import typing as t

from ansible_collections.ceres.rollout.plugins.module_utils.common.errors import CeresError
from ansible_collections.ceres.rollout.plugins.module_utils.k8s.client import (
    api_path,
)
from ansible_collections.ceres.rollout.plugins.module_utils.k8s.conflicts import ReadAgain, read_decide_write
from ansible_collections.ceres.rollout.plugins.module_utils.k8s.errors import (
    DeadlineExceeded,
    K8sConnectionError,
    NotFound,
    ServerError,
)
from ansible_collections.ceres.rollout.plugins.module_utils.lock import fence as fencing
from ansible_collections.ceres.rollout.plugins.module_utils.lock.lease_state import (
    ANNOTATION_HOLDER_PROCESS,
    ANNOTATION_LOST_RUNS,
    ANNOTATION_PHASE,
    ANNOTATION_RELEASED,
    ANNOTATION_RUN_ID,
    ANNOTATION_TAKEN_OVER_FROM,
    HOW_EXPIRED,
    HOW_FORCED,
    HOW_HOLDER_GONE,
    LEASE_API_VERSION,
    LEASE_PLURAL,
    LOCK_STATES,
    LOST_RUNS_KEPT,
    MANAGED_BY_LABELS,
    OUTCOME_ACQUIRED,
    OUTCOME_ALREADY_FREE,
    OUTCOME_FORCED,
    OUTCOME_HELD_BY_ANOTHER_RUN,
    OUTCOME_RELEASED,
    OUTCOME_RENEWED,
    OUTCOME_TAKEN_BACK,
    OUTCOME_TAKEN_OVER,
    RELEASED,
    RENEWED,
    InvalidLockRequest,
    LeaseState,
    LockError,
    LockLost,
    LockRefused,
    LockRequest,
    TooManyConflicts,
    holder_process_gone,
    micro_time,
    ownership,
    utc_now,
    validate_lock_name,
    validate_lock_request,
)

# --------------------------------------------------------------------------- the decision

# The outcomes where this run begins a holding of the lock, so the journal's fence is raised for it.
NEW_HOLDINGS = (OUTCOME_ACQUIRED, OUTCOME_TAKEN_OVER, OUTCOME_FORCED, OUTCOME_TAKEN_BACK)


class LockPlan:
    """What to do: ``outcome`` (one of the OUTCOME_* names) and the Lease to write (``None``: nothing)."""

    def __init__(
        self, outcome: str, desired: dict[str, t.Any] | None, taken_over_from: dict[str, t.Any] | None = None
    ) -> None:
        self.outcome = outcome
        self.desired = desired
        self.taken_over_from = taken_over_from


def _new_lease(request: LockRequest) -> dict[str, t.Any]:
    return {
        "apiVersion": LEASE_API_VERSION,
        "kind": "Lease",
        "metadata": {
            "name": request.name,
            "namespace": request.namespace,
            "labels": dict(MANAGED_BY_LABELS),
            "annotations": {},
        },
        "spec": {},
    }


def _compact_json(value: t.Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _describe_loss(request: LockRequest, loss: t.Mapping[str, t.Any]) -> str:
    """``lock taken by run X (rollback) at T, by force``: how this run lost the lock."""
    how = (
        "by force"
        if loss.get("how") == HOW_FORCED
        else "after run %s stopped renewing it for longer than its lease" % request.run_id
    )
    return "lock taken by run %s (%s) at %s, %s" % (
        loss.get("by_run_id") or "?",
        loss.get("by_phase") or "no phase",
        loss.get("at") or "?",
        how,
    )


def _lost_message(request: LockRequest, loss: t.Mapping[str, t.Any]) -> str:
    return "%s: %s; run %s no longer holds it and must stop (start a new run to go on)" % (
        request.reference,
        _describe_loss(request, loss),
        request.run_id,
    )


def _refusal_message(request: LockRequest, state: LeaseState, now: datetime.datetime) -> str:
    parts = ["%s is held by %s" % (request.reference, state.describe_holder())]
    if state.acquired_at:
        parts.append("since %s" % micro_time(state.acquired_at))
    if state.renewed_at:
        parts.append("last renewed %s" % micro_time(state.renewed_at))
    expires_at = state.expires_at
    if expires_at is not None:
        parts.append(
            "lease %d s, expiring at %s (in %d s)"
            % (state.lease_duration or 0, micro_time(expires_at), max(0, round((expires_at - now).total_seconds())))
        )
    return (
        "%s; run %s refuses to start: wait for that run to end (or for its lease to expire), or take the lock "
        "with force=true as a rollback does" % (", ".join(parts), request.run_id)
    )


def _held_by_this_run(
    desired: dict[str, t.Any], request: LockRequest, now: datetime.datetime, new_holding: bool
) -> None:
    metadata = desired.setdefault("metadata", {})
    annotations = metadata.get("annotations") or {}
    labels = metadata.get("labels") or {}
    labels.update(MANAGED_BY_LABELS)
    metadata["labels"] = labels
    annotations[ANNOTATION_RUN_ID] = request.run_id
    if request.phase:
        annotations[ANNOTATION_PHASE] = request.phase
    elif new_holding:
        annotations.pop(ANNOTATION_PHASE, None)
    if new_holding:  # the previous holder's process is not this one's
        annotations.pop(ANNOTATION_HOLDER_PROCESS, None)
    if request.process:
        annotations[ANNOTATION_HOLDER_PROCESS] = _compact_json(request.process)
    spec = desired.setdefault("spec", {})
    spec["holderIdentity"] = request.holder
    spec["leaseDurationSeconds"] = request.lease_duration
    spec["renewTime"] = micro_time(now)
    if new_holding:
        # Like client-go's leader election: a Lease's first holder is transition 0, each new holder one more.
        had_holders = bool(metadata.get("resourceVersion"))
        spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + (1 if had_holders else 0)
        spec["acquireTime"] = micro_time(now)
        annotations.pop(ANNOTATION_TAKEN_OVER_FROM, None)
        annotations.pop(ANNOTATION_RELEASED, None)
    metadata["annotations"] = annotations


def _take_from(
    desired: dict[str, t.Any], state: LeaseState, request: LockRequest, now: datetime.datetime, how: str
) -> dict[str, t.Any]:
    """Record on ``desired`` whom the lock is taken from; return that record."""
    taken_over_from = {
        "run_id": state.run_id,
        "holder": state.holder,
        "phase": state.phase,
        "acquired_at": micro_time(state.acquired_at) if state.acquired_at else None,
        "renewed_at": micro_time(state.renewed_at) if state.renewed_at else None,
        "lease_duration": state.lease_duration,
        "how": how,
        "at": micro_time(now),
    }
    annotations = desired["metadata"]["annotations"]
    annotations[ANNOTATION_TAKEN_OVER_FROM] = _compact_json(taken_over_from)
    if state.run_id and state.run_id != request.run_id:  # a run resumed by a new process did not lose it
        lost_runs = {run_id: loss for run_id, loss in state.lost_runs.items() if run_id != state.run_id}
        lost_runs[state.run_id] = {
            "by_run_id": request.run_id,
            "by_phase": request.phase,
            "by_holder": request.holder,
            "at": micro_time(now),
            "how": how,
        }
        kept = list(lost_runs.items())[-LOST_RUNS_KEPT:]
        annotations[ANNOTATION_LOST_RUNS] = _compact_json(dict(kept))
    return taken_over_from


def plan_lock(
    lease: t.Mapping[str, t.Any] | None,
    request: LockRequest,
    action: str,
    now: datetime.datetime,
    fence: t.Mapping[str, t.Any] | None = None,
) -> LockPlan:
    """Decide what ``action`` (acquired, renewed, released) does to the Lease as read.
    ``fence`` is the journal's fence (:mod:`fence`), read when a renewal finds the lock free.
    Raises :class:`LockRefused` or :class:`LockLost` when it must not be done."""
    state = LeaseState(lease)
    summary = state.summary(request.namespace, request.name, now)
    if action == RELEASED:
        return _plan_release(lease, state, request, now)
    desired = copy.deepcopy(dict(lease)) if lease is not None else _new_lease(request)

    if state.held_by(request.run_id, request.holder):
        _held_by_this_run(desired, request, now, new_holding=False)
        return LockPlan(OUTCOME_RENEWED, desired)

    loss = state.lost_runs.get(request.run_id)
    if action == RENEWED:
        if loss is not None:
            raise LockLost(_lost_message(request, loss), lock=summary)
        if not state.held and _may_take_back(state, request, fence):
            # Deleted by an operator, or released by hand: nobody held it since this run did (the
            # journal's fence still names it), so the run takes it back and carries on.
            _held_by_this_run(desired, request, now, new_holding=True)
            return LockPlan(OUTCOME_TAKEN_BACK, desired)
        if not state.held:
            released = state.released or {}
            why = (
                "it was released by this run at %s" % released.get("at")
                if released.get("run_id") == request.run_id
                else "it is free"
            )
            raise LockLost(
                "%s: run %s does not hold the lock (%s); acquire it first" % (request.reference, request.run_id, why),
                lock=summary,
            )
        raise LockLost(
            "%s: run %s does not hold the lock, %s does; this run must stop"
            % (request.reference, request.run_id, state.describe_holder()),
            lock=summary,
        )

    if loss is not None and not request.force:
        raise LockLost(_lost_message(request, loss), lock=summary)
    if not state.held:
        _held_by_this_run(desired, request, now, new_holding=True)
        return LockPlan(OUTCOME_ACQUIRED, desired)
    if state.expired(now):
        _held_by_this_run(desired, request, now, new_holding=True)
        return LockPlan(OUTCOME_TAKEN_OVER, desired, _take_from(desired, state, request, now, HOW_EXPIRED))
    if request.process and holder_process_gone(state.process, request.process):
        # killed on this machine (Ctrl-C twice, a closed terminal, a cancelled job): no need to wait for its lease
        _held_by_this_run(desired, request, now, new_holding=True)
        return LockPlan(OUTCOME_TAKEN_OVER, desired, _take_from(desired, state, request, now, HOW_HOLDER_GONE))
    if request.force:
        _held_by_this_run(desired, request, now, new_holding=True)
        return LockPlan(OUTCOME_FORCED, desired, _take_from(desired, state, request, now, HOW_FORCED))
    raise LockRefused(_refusal_message(request, state, now), lock=summary)


def _may_take_back(state: LeaseState, request: LockRequest, fence: t.Mapping[str, t.Any] | None) -> bool:
    """A free lock this run may take back on renewal: it did not release it itself, and the journal's
    fence still names this run and holder (no one took the lock since)."""
    released_by = (state.released or {}).get("run_id")
    return released_by != request.run_id and fencing.names(fence, request.run_id, request.holder)


def _plan_release(
    lease: t.Mapping[str, t.Any] | None, state: LeaseState, request: LockRequest, now: datetime.datetime
) -> LockPlan:
    if not state.held:
        return LockPlan(OUTCOME_ALREADY_FREE, None)
    if not state.held_by(request.run_id, request.holder):
        return LockPlan(OUTCOME_HELD_BY_ANOTHER_RUN, None)
    desired = copy.deepcopy(dict(lease or {}))
    annotations = desired["metadata"].get("annotations") or {}
    for key in (ANNOTATION_RUN_ID, ANNOTATION_PHASE, ANNOTATION_TAKEN_OVER_FROM, ANNOTATION_HOLDER_PROCESS):
        annotations.pop(key, None)
    annotations[ANNOTATION_RELEASED] = _compact_json(
        {"run_id": request.run_id, "holder": state.holder, "phase": state.phase, "at": micro_time(now)}
    )
    desired["metadata"]["annotations"] = annotations
    for key in ("holderIdentity", "acquireTime", "renewTime"):
        desired["spec"].pop(key, None)
    return LockPlan(OUTCOME_RELEASED, desired)


def release_note(outcome: str, state: LeaseState, request: LockRequest) -> str | None:
    """What a release that changed nothing should tell the user."""
    if outcome == OUTCOME_ALREADY_FREE:
        return "%s was already free; nothing released" % request.reference
    if outcome == OUTCOME_HELD_BY_ANOTHER_RUN:
        loss = state.lost_runs.get(request.run_id)
        why = "; %s" % _describe_loss(request, loss) if loss else ""
        return "%s is held by %s, not by run %s: left as it is%s" % (
            request.reference,
            state.describe_holder(),
            request.run_id,
            why,
        )
    return None


# --------------------------------------------------------------------------- the API cycle


class LockResult:
    def __init__(
        self,
        changed: bool,
        outcome: str,
        before: dict[str, t.Any],
        after: dict[str, t.Any],
        lease: dict[str, t.Any] | None,
        note: str | None = None,
        conflicts: int = 0,
    ) -> None:
        self.changed = changed
        self.outcome = outcome
        self.before = before  # lock summaries
        self.after = after
        self.lease = lease
        self.note = note
        self.conflicts = conflicts


def lease_path(namespace: str, name: str | None = None) -> str:
    return api_path(LEASE_API_VERSION, LEASE_PLURAL, namespace, name)


def read_lease(client: t.Any, namespace: str, name: str) -> dict[str, t.Any] | None:
    """GET the Lease; ``None`` when it does not exist."""
    try:
        return client.get(lease_path(namespace, name))
    except NotFound as error:
        if error.resource_type_missing:
            raise LockError("the API server does not serve %s Leases" % LEASE_API_VERSION)
        return None


def read_lock(
    client: t.Any, namespace: str, name: str, clock: t.Callable[[], datetime.datetime] = utc_now
) -> dict[str, t.Any]:
    """The lock as it is (the ``lock`` return value), read-only."""
    validate_lock_name(name)
    return LeaseState(read_lease(client, namespace, name)).summary(namespace, name, clock())


def _write(client: t.Any, request: LockRequest, desired: dict[str, t.Any], exists: bool) -> t.Any:
    try:
        if exists:
            return client.put(lease_path(request.namespace, request.name), desired)
        return client.post(lease_path(request.namespace), desired)
    except NotFound as error:
        if exists and (error.details or {}).get("kind") != "namespaces":
            raise ReadAgain("the Lease was deleted while being written")
        raise LockError(
            "%s: namespace %s does not exist; create it first (the lock never creates namespaces)"
            % (request.reference, request.namespace)
        )
    except (K8sConnectionError, ServerError) as error:
        # The client retries neither for a POST once sent: it may have landed, so read again and
        # decide again (a Lease or record that is already ours is then left as it is).
        if exists or isinstance(error, DeadlineExceeded):
            raise  # PUTs are retried by the client itself; a spent budget ends the call
        raise ReadAgain("the create's answer was lost: %s" % error)


def apply_lock(
    client: t.Any,
    request: LockRequest,
    action: str,
    check_mode: bool = False,
    clock: t.Callable[[], datetime.datetime] = utc_now,
    sleep: t.Callable[[float], None] = time.sleep,
    rng: t.Callable[[], float] = random.random,
) -> LockResult:
    """GET the Lease, decide, write it with its resourceVersion (POST when absent); on a
    conflict re-read and decide again (at most ``max_conflict_retries`` times, within the
    client's deadline); then read it back. In check mode nothing is written and ``after`` is
    the lock as it would be."""
    if action not in LOCK_STATES:
        raise InvalidLockRequest("state: %r is not a lock state" % (action,))
    validate_lock_request(request)
    initial_now = clock()
    first_read: list[dict[str, t.Any] | None] = []
    conflicts: list[BaseException] = []

    def attempt() -> tuple[dict[str, t.Any] | None, LockPlan, datetime.datetime]:
        lease = read_lease(client, request.namespace, request.name)
        if not first_read:
            first_read.append(lease)
        now = clock()
        fence = None
        if action == RENEWED and not LeaseState(lease).held:
            fence = fencing.read_fence(fencing.read_journal(client, request.namespace, request.name))
        plan = plan_lock(lease, request, action, now, fence)
        if plan.desired is not None and not check_mode:
            _write(client, request, plan.desired, exists=lease is not None)
        return lease, plan, now

    lease, plan, now = read_decide_write(
        attempt,
        client,
        "the Lease %s" % request.reference,
        request.max_conflict_retries,
        lambda field, message: TooManyConflicts("%s: %s" % (field, message)),
        on_retry=lambda error, number, delay: conflicts.append(error),
        sleep=sleep,
        rng=rng,
    )
    before = LeaseState(first_read[0]).summary(request.namespace, request.name, initial_now)
    note = release_note(plan.outcome, LeaseState(lease), request)

    if plan.desired is None or check_mode:
        after_lease = plan.desired if plan.desired is not None else lease
        after = LeaseState(after_lease).summary(request.namespace, request.name, now)
        return LockResult(
            ownership(before) != ownership(after), plan.outcome, before, after, after_lease, note, len(conflicts)
        )

    try:
        read_back = read_lease(client, request.namespace, request.name)
    except CeresError as error:
        error.changed = True  # the write landed: whatever fails now, the lock was changed
        raise
    after = LeaseState(read_back).summary(request.namespace, request.name, clock())
    expected_run = None if action == RELEASED else request.run_id
    if after["run_id"] != expected_run or after["held"] != (action != RELEASED):
        raise LockLost(
            "%s: written, but the Lease reads back %s (changed by another run right after the write?)"
            % (request.reference, LeaseState(read_back).describe_holder() if after["held"] else "free"),
            lock=after,
            changed=True,
        )
    if plan.taken_over_from is not None:
        after["taken_over_from"] = plan.taken_over_from
    if plan.outcome in NEW_HOLDINGS:
        # Before this run acts as the holder, the journal obeys it: a write by the run it took the lock
        # from is refused from now on (fence.check_writer).
        after["fence"] = fencing.raise_fence(
            client,
            request.namespace,
            request.name,
            request.run_id,
            request.holder,
            request.phase,
            taking_back=plan.outcome == OUTCOME_TAKEN_BACK,
            max_conflict_retries=request.max_conflict_retries,
            clock=clock,
            sleep=sleep,
            rng=rng,
        )
    return LockResult(
        ownership(before) != ownership(after), plan.outcome, before, after, read_back, note, len(conflicts)
    )
