# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Restart workloads the way ``kubectl rollout restart`` does, all at once, then wait for
all of them together.

Rules (documented in the rollout_restart module):

* A restart is a strategic-merge patch of the pod template's annotations only:
  ``kubectl.kubernetes.io/restartedAt`` (one UTC timestamp for the whole run) and
  ``rollout.ceres.io/restart-id`` (the run's ``restart_id``, or removed when there is none).
  The controller then replaces every pod, as for any template change.
* With a ``restart_id``, a workload whose template already carries that id is not restarted
  again, so a second identical run changes nothing. Without one, every run restarts.
* Everything that can refuse the run does so before the first patch: the selection
  (``workloads.select_workloads``), a paused Deployment and a StatefulSet or DaemonSet with
  the ``OnDelete`` strategy (the patch would not replace their pods).
* The patches are sent concurrently. A 409 re-reads the workload and patches again (bounded
  by ``max_conflict_retries`` and the client's time budget); one that already carries the
  run's id by then counts as restarted by a concurrent run of the same id.
* Then one wait for all the selected workloads: one list per namespace and kind still
  pending, every poll, until each is ready (``workloads.rollout_status``), failed (a
  Deployment past its progress deadline) or gone, or until ``wait_timeout`` or the client's
  budget runs out.
"""

from __future__ import annotations

import time
import typing as t

from ansible_collections.ceres.rollout.plugins.module_utils.common.errors import CeresError
from ansible_collections.ceres.rollout.plugins.module_utils.common.retry import Deadline, RetryPolicy, retry_call
from ansible_collections.ceres.rollout.plugins.module_utils.common.timestamps import utc_timestamp
from ansible_collections.ceres.rollout.plugins.module_utils.k8s.client import (
    deadline_of,
)
from ansible_collections.ceres.rollout.plugins.module_utils.k8s.errors import (
    Conflict,
    DeadlineExceeded,
    K8sConnectionError,
    K8sError,
)
from ansible_collections.ceres.rollout.plugins.module_utils.workloads.selection import (
    DEFAULT_PARALLELISM,
    RolloutStatus,
    Selection,
    Workload,
    WorkloadError,
    describe,
    list_path,
    name_list,
    rollout_status,
    run_concurrently,
    select_workloads,
    update_strategy,
)

ANNOTATION_RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
ANNOTATION_RESTART_ID = "rollout.ceres.io/restart-id"
RESTART_ANNOTATIONS = (ANNOTATION_RESTARTED_AT, ANNOTATION_RESTART_ID)

# Polls of the wait: quick at first (a small rollout is done in a second or two), then every
# POLL_MAX seconds.
POLL_FIRST = 0.5
POLL_MAX = 2.0
POLL_GROWTH = 1.5
# The wait stops this long before the client's budget ends, so its last list can still be sent.
BUDGET_RESERVE = 1.0


class RestartError(WorkloadError):
    """The restart could not be done, or its workloads did not become ready.

    ``changed`` tells whether a patch landed before the failure; ``outcomes`` holds what is
    known of every workload (for the module's per-workload result)."""

    def __init__(self, message: str, changed: bool = False, outcomes: list[Outcome] | None = None) -> None:
        super().__init__(message, changed=changed)
        self.outcomes = outcomes or []


class RestartRequest:
    def __init__(
        self,
        selection: Selection,
        restart_id: str | None = None,
        wait: bool = True,
        wait_timeout: float | None = None,
        max_conflict_retries: int = 5,
        parallelism: int = DEFAULT_PARALLELISM,
    ) -> None:
        self.selection = selection
        self.restart_id = restart_id or None
        self.wait = wait
        self.wait_timeout = wait_timeout
        self.max_conflict_retries = max_conflict_retries
        self.parallelism = parallelism

    def validate(self, client_timeout: float | None = None) -> None:
        self.selection.validate()
        if self.wait_timeout is not None and self.wait_timeout <= 0:
            raise RestartError("wait_timeout must be more than 0 seconds, got %r" % (self.wait_timeout,))
        if self.wait_timeout is not None and client_timeout is not None and self.wait_timeout > client_timeout:
            raise RestartError(
                "wait_timeout (%g s) is longer than timeout (%g s), the whole task's time budget, which the wait "
                "is part of: raise timeout as well, or lower wait_timeout" % (self.wait_timeout, client_timeout)
            )
        if self.max_conflict_retries < 0:
            raise RestartError("max_conflict_retries must not be negative")


class Outcome:
    """What became of one workload: whether this run restarted it (or, in check mode, would),
    its template annotations before and after, its rollout status as last read, an error."""

    def __init__(self, workload: Workload, restart: bool) -> None:
        self.workload = workload
        self.restart = restart
        self.restarted = False
        self.before = restart_annotations(workload.template_annotations())
        self.after = dict(self.before)
        self.status: RolloutStatus = rollout_status(workload.kind, workload.obj)
        self.error: str | None = None

    def observe(self, obj: dict[str, t.Any]) -> None:
        self.workload.obj = obj
        self.status = rollout_status(self.workload.kind, obj)

    def as_result(self) -> dict[str, t.Any]:
        metadata = self.workload.obj.get("metadata") or {}
        status = self.workload.obj.get("status") or {}
        annotations = self.workload.template_annotations()
        result = {
            "namespace": self.workload.namespace,
            "kind": self.workload.kind,
            "name": self.workload.name,
            "restarted": self.restarted,
            "generation": metadata.get("generation"),
            "observed_generation": status.get("observedGeneration"),
            "ready": self.status.ready,
            "message": self.error or self.status.message,
            "restarted_at": annotations.get(ANNOTATION_RESTARTED_AT),
            "restart_id": annotations.get(ANNOTATION_RESTART_ID),
        }
        result.update(self.status.counts)
        return result


class RestartResult:
    def __init__(self, outcomes: list[Outcome], restarted_at: str, waited: bool) -> None:
        self.outcomes = outcomes
        self.restarted_at = restarted_at
        self.waited = waited

    @property
    def changed(self) -> bool:
        return any(outcome.restarted for outcome in self.outcomes)

    def summary(self) -> dict[str, int]:
        return summarize(self.outcomes)


def summarize(outcomes: t.Sequence[Outcome]) -> dict[str, int]:
    return {
        "total": len(outcomes),
        "restarted": sum(1 for outcome in outcomes if outcome.restarted),
        "unchanged": sum(1 for outcome in outcomes if not outcome.restarted),
        "ready": sum(1 for outcome in outcomes if outcome.status.ready),
        "not_ready": sum(1 for outcome in outcomes if not outcome.status.ready),
    }


def restart_annotations(annotations: t.Mapping[str, str]) -> dict[str, str | None]:
    return {name: annotations.get(name) for name in RESTART_ANNOTATIONS}


def needs_restart(workload: Workload, restart_id: str | None) -> bool:
    """Without a restart id always; with one, unless the template already carries it."""
    if restart_id is None:
        return True
    return workload.template_annotations().get(ANNOTATION_RESTART_ID) != restart_id


def restart_patch(restarted_at: str, restart_id: str | None) -> dict[str, t.Any]:
    """The strategic-merge patch of a restart: the template's two annotations, nothing else
    (``None`` removes a restart id left by an earlier run)."""
    return {
        "spec": {
            "template": {
                "metadata": {
                    "annotations": {
                        ANNOTATION_RESTARTED_AT: restarted_at,
                        ANNOTATION_RESTART_ID: restart_id,
                    }
                }
            }
        }
    }


def refuse_unrestartable(workloads: t.Sequence[Workload]) -> None:
    """Raise, before anything changes, for workloads a restart cannot roll: a paused
    Deployment (``kubectl rollout restart`` refuses it too) and a StatefulSet or DaemonSet
    whose ``OnDelete`` strategy replaces pods only when someone deletes them."""
    problems = []
    for workload in workloads:
        if workload.kind == "Deployment" and (workload.obj.get("spec") or {}).get("paused"):
            problems.append("%s is paused (resume it first)" % workload.label)
        elif workload.kind != "Deployment" and update_strategy(workload.kind, workload.obj) == "OnDelete":
            problems.append(
                "%s has the OnDelete update strategy: a restart would not replace its pods" % workload.label
            )
    if problems:
        raise RestartError("cannot restart: %s; nothing was restarted" % "; ".join(problems))


def patch_workload(
    client: t.Any, workload: Workload, patch: dict[str, t.Any], restart_id: str | None, max_conflict_retries: int = 5
) -> tuple[dict[str, t.Any], bool]:
    """Send the restart patch; on a 409 re-read and patch again. Returns the object and
    whether this call's patch landed (``False`` when a concurrent run of the same restart id
    got there first)."""
    state = {"raced": False}

    def attempt() -> tuple[dict[str, t.Any], bool]:
        if state["raced"]:
            current = client.get(workload.path)
            if (
                restart_id is not None
                and Workload(workload.kind, current).template_annotations().get(ANNOTATION_RESTART_ID) == restart_id
            ):
                return current, False
        try:
            return client.patch(workload.path, patch, patch_type="strategic", idempotent=True), True
        except Conflict:
            state["raced"] = True
            raise

    policy = RetryPolicy(attempts=max_conflict_retries + 1, base_delay=0.2, max_delay=2.0, deadline=None)
    sleep = getattr(client, "_sleep", None) or time.sleep
    try:
        return retry_call(
            attempt,
            policy,
            lambda error: isinstance(error, Conflict),
            sleep=sleep,
            deadline=deadline_of(client),
            on_give_up=lambda error, backoff: error.add_context(
                "409 Conflict on every try, %s" % backoff.give_up_note()
            ),
        )
    except K8sError as error:
        raise error.add_context(workload.label) if workload.label not in str(error) else error


def restart_workloads(
    client: t.Any,
    request: RestartRequest,
    check_mode: bool = False,
    sleep: t.Callable[[float], None] = time.sleep,
    clock: t.Callable[[], float] = time.monotonic,
    now: t.Callable[[], str] | None = None,
    before_poll: t.Callable[[int], None] | None = None,
) -> RestartResult:
    """Select, refuse what cannot be restarted, patch everything at once, then wait for all.

    ``before_poll(n)`` (rollout_restart's renew_lock) runs right before the patches (n=1: the
    restart is fenced by it) and before every poll of the wait; whatever it raises ends the call.

    Raises :class:`RestartError` (with ``changed`` and ``outcomes``) when a patch failed or a
    workload did not become ready, and ``SelectionError``/``K8sError`` before any change."""
    workloads = select_workloads(client, request.selection, request.parallelism)
    outcomes = [Outcome(workload, needs_restart(workload, request.restart_id)) for workload in workloads]
    refuse_unrestartable([outcome.workload for outcome in outcomes if outcome.restart])
    restarted_at = now() if now else utc_timestamp(timespec="seconds")
    for outcome in outcomes:
        if outcome.restart:
            outcome.after = {ANNOTATION_RESTARTED_AT: restarted_at, ANNOTATION_RESTART_ID: request.restart_id}
    if check_mode:
        for outcome in outcomes:
            outcome.restarted = outcome.restart
        return RestartResult(outcomes, restarted_at, waited=False)

    to_patch = [outcome for outcome in outcomes if outcome.restart]
    if before_poll is not None:
        before_poll(1)  # fenced: nothing is patched by a run that no longer holds its lock
    patch = restart_patch(restarted_at, request.restart_id)
    patched = run_concurrently(
        lambda outcome: patch_workload(
            client, outcome.workload, patch, request.restart_id, request.max_conflict_retries
        ),
        to_patch,
        request.parallelism,
    )
    failures, unanswered = [], 0
    for outcome, (answer, error) in zip(to_patch, patched):
        if error is not None:
            outcome.error = "not restarted: %s" % error
            failures.append(str(error))
            # A patch sent but never answered may have landed: report a possible change.
            unanswered += isinstance(error, K8sConnectionError) and error.request_sent
            continue
        obj, landed = answer
        outcome.restarted = landed
        if not landed:
            outcome.after = restart_annotations(Workload(outcome.workload.kind, obj).template_annotations())
        outcome.observe(obj)
    if failures:
        restarted = any(outcome.restarted for outcome in outcomes)
        notes = []
        if restarted:
            notes.append("the others were restarted")
        if unanswered:
            notes.append("%d sent but unanswered may have landed" % unanswered)
        raise RestartError(
            "%d of %d restart%s failed%s: %s"
            % (
                len(failures),
                len(to_patch),
                "s" if len(to_patch) != 1 else "",
                " (%s)" % "; ".join(notes) if notes else "",
                "; ".join(failures[:10]),
            ),
            changed=restarted or bool(unanswered),
            outcomes=outcomes,
        )

    result = RestartResult(outcomes, restarted_at, waited=request.wait)
    if request.wait and outcomes:
        wait_for_rollouts(client, outcomes, request, sleep=sleep, clock=clock, before_poll=before_poll)
    return result


def wait_for_rollouts(
    client: t.Any,
    outcomes: t.Sequence[Outcome],
    request: RestartRequest,
    sleep: t.Callable[[float], None] = time.sleep,
    clock: t.Callable[[], float] = time.monotonic,
    before_poll: t.Callable[[int], None] | None = None,
) -> None:
    """One wait for all: poll every pending workload (one list per namespace and kind) until
    each is ready or failed, or time runs out; raise :class:`RestartError` naming the ones
    that are not ready."""
    budget = deadline_of(client)
    wait_deadline = Deadline(request.wait_timeout, clock=clock) if request.wait_timeout else None
    by_key = {outcome.workload.key: outcome for outcome in outcomes}
    query = {"labelSelector": request.selection.selector} if request.selection.selector else None
    interval = POLL_FIRST
    stopped_by = None
    started = clock()
    polls = 1  # the first "poll" was the patch
    while True:
        pending = [
            outcome
            for outcome in outcomes
            if not outcome.status.ready and not outcome.status.failed and outcome.error is None
        ]
        if not pending:
            break
        left_wait = wait_deadline.remaining() if wait_deadline is not None else None
        left_budget = budget.remaining()
        if left_wait is not None and left_wait <= 0:
            stopped_by = "wait_timeout"
            break
        if left_budget is not None and left_budget <= BUDGET_RESERVE:
            stopped_by = "timeout"
            break
        nap = interval
        if left_wait is not None:
            nap = min(nap, left_wait)
        if left_budget is not None:
            nap = min(nap, left_budget - BUDGET_RESERVE)
        sleep(max(0.0, nap))
        interval = min(POLL_MAX, interval * POLL_GROWTH)
        polls += 1
        if before_poll is not None:
            try:
                before_poll(polls)
            except CeresError as error:  # the restarts were sent: say so, with what is known of each
                error.changed = any(outcome.restarted for outcome in outcomes)
                error.outcomes = list(outcomes)
                raise
        groups = sorted({(outcome.workload.namespace, outcome.workload.kind) for outcome in pending})

        def list_group(group: tuple[str, str]) -> list[dict[str, t.Any]]:
            return (client.get(list_path(group[1], group[0]), query=query) or {}).get("items") or []

        listed = run_concurrently(list_group, groups, request.parallelism)
        errors = [error for _items, error in listed if error is not None]
        if errors:
            if budget.expired() or any(isinstance(error, DeadlineExceeded) for error in errors):
                stopped_by = "timeout"
                break
            raise RestartError(
                "an API error while waiting for the rollouts (the restarts were sent): %s" % errors[0],
                changed=any(outcome.restarted for outcome in outcomes),
                outcomes=list(outcomes),
            )
        seen = set()
        for (namespace, kind), (items, _error) in zip(groups, listed):
            for item in items:
                key = (namespace, kind, item["metadata"]["name"])
                if key in by_key:
                    seen.add(key)
                    by_key[key].observe(item)
        for outcome in pending:
            if outcome.workload.key not in seen:
                outcome.error = "deleted (or no longer matching the selector) while waiting"

    not_ready = [outcome for outcome in outcomes if not outcome.status.ready]
    if not not_ready:
        return
    elapsed = clock() - started
    if stopped_by == "wait_timeout":
        why = "within wait_timeout (%g s)" % request.wait_timeout
    elif stopped_by == "timeout":
        why = "within the task's timeout (%g s)" % budget.seconds
    else:
        why = "after %.0f s of waiting" % elapsed
    details = ["%s (%s)" % (outcome.workload.label, outcome.error or outcome.status.message) for outcome in not_ready]
    raise RestartError(
        "%d of %d workloads did not become ready %s: %s" % (len(not_ready), len(outcomes), why, name_list(details)),
        changed=any(outcome.restarted for outcome in outcomes),
        outcomes=list(outcomes),
    )


def diff_of(outcomes: t.Sequence[Outcome]) -> dict[str, t.Any]:
    """The pod-template restart annotations before and after, per restarted workload."""
    changed = [outcome for outcome in outcomes if outcome.restarted]
    return {
        "before": {describe(*_label_parts(outcome)): _present(outcome.before) for outcome in changed},
        "after": {describe(*_label_parts(outcome)): _present(outcome.after) for outcome in changed},
    }


def _label_parts(outcome: Outcome) -> tuple[str, str, str]:
    return outcome.workload.kind, outcome.workload.namespace, outcome.workload.name


def _present(annotations: t.Mapping[str, str | None]) -> dict[str, str]:
    return {name: value for name, value in annotations.items() if value is not None}
