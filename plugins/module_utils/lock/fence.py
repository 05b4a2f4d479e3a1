# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The fence: which holding of the rollout lock the journal obeys.

The Lease (:mod:`lease`) says who holds the lock *now*; it says nothing once it is deleted, and
a run that lost it may still be half-way through a write. So every new holding of the lock
(acquired, taken over, forced, taken back) is also written on the journal's ConfigMap, as the
annotation ``rollout.ceres.io/fence``: a token one higher than the last, with the run and
holder it belongs to. The ConfigMap is written with its resourceVersion, so:

* a journal write (:func:`check_writer`) is refused unless the Lease is held by the writing run
  (and holder) *and* the fence names it: a new holder raises the fence before it acts, and a
  write from the old holder that read the ConfigMap before the raise is refused by the API
  server (409), read again, and refused by the fence;
* raising the fence (:func:`raise_fence`) re-reads the Lease after reading the ConfigMap, and
  writes only while that Lease is still held by the raiser, so two runs racing for the lock
  leave the fence naming the one that holds the Lease;
* a run whose Lease vanished (deleted by an operator, or released by someone else) can prove that
  nobody held the lock since: the fence still names it (:func:`names`), and it may take the
  lock back; otherwise it has lost the lock.

A journal without a fence (written before fences existed) accepts the Lease's holder alone; the
first new holding raises one.
"""

from __future__ import annotations

import json
import random
import time
import typing as t

from ansible_collections.ceres.rollout.plugins.module_utils.common.errors import CeresError
from ansible_collections.ceres.rollout.plugins.module_utils.k8s.client import api_path
from ansible_collections.ceres.rollout.plugins.module_utils.k8s.conflicts import ReadAgain, read_decide_write
from ansible_collections.ceres.rollout.plugins.module_utils.k8s.errors import (
    DeadlineExceeded,
    K8sConnectionError,
    NotFound,
    ServerError,
)
from ansible_collections.ceres.rollout.plugins.module_utils.lock.lease_state import (
    LEASE_API_VERSION,
    LEASE_PLURAL,
    MANAGED_BY_LABELS,
    LeaseState,
    LockError,
    LockLost,
    micro_time,
    utc_now,
)

ANNOTATION_FENCE = "rollout.ceres.io/fence"
JOURNAL_SUFFIX = "-journal"
LABEL_LOCK = "rollout.ceres.io/lock"
ANNOTATION_FORMAT = "rollout.ceres.io/journal-format"
JOURNAL_FORMAT = "1"


class FenceError(LockError):
    """The fence could not be read or raised (other than by losing the lock)."""


def journal_name(lock_name: str) -> str:
    return lock_name + JOURNAL_SUFFIX


def configmap_path(namespace: str, name: str | None = None) -> str:
    return api_path("v1", "configmaps", namespace, name)


def lease_path(namespace: str, name: str) -> str:
    return api_path(LEASE_API_VERSION, LEASE_PLURAL, namespace, name)


def new_journal(namespace: str, lock_name: str) -> dict[str, t.Any]:
    """An empty journal ConfigMap (no records, no fence)."""
    labels = dict(MANAGED_BY_LABELS)
    labels[LABEL_LOCK] = lock_name
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": journal_name(lock_name),
            "namespace": namespace,
            "labels": labels,
            "annotations": {ANNOTATION_FORMAT: JOURNAL_FORMAT},
        },
        "data": {},
    }


def read_fence(configmap: t.Mapping[str, t.Any] | None) -> dict[str, t.Any] | None:
    """The fence a journal ConfigMap carries (``token``, ``run_id``, ``holder``, ``phase``, ``at``), or None."""
    annotations = ((configmap or {}).get("metadata") or {}).get("annotations") or {}
    text = annotations.get(ANNOTATION_FENCE)
    if not text:
        return None
    try:
        fence = json.loads(text)
    except ValueError:
        fence = None
    if not isinstance(fence, dict) or not isinstance(fence.get("token"), int):
        # A fence nobody can read proves nothing: treat it as naming nobody (a write is refused).
        return {"token": -1, "run_id": None, "holder": None, "unreadable": True}
    return fence


def names(fence: t.Mapping[str, t.Any] | None, run_id: str, holder: str | None) -> bool:
    """Whether ``fence`` names this run (and holder, when given)."""
    return fence is not None and fence.get("run_id") == run_id and (holder is None or fence.get("holder") == holder)


def describe(fence: t.Mapping[str, t.Any] | None) -> str:
    if fence is None:
        return "no fence"
    if fence.get("unreadable"):
        return "an unreadable fence"
    return "fence %s of run %s (holder %s, %s) since %s" % (
        fence.get("token"),
        fence.get("run_id") or "?",
        fence.get("holder") or "?",
        fence.get("phase") or "no phase",
        fence.get("at") or "?",
    )


def check_writer(
    configmap: t.Mapping[str, t.Any] | None,
    lease: t.Mapping[str, t.Any] | None,
    reference: str,
    run_id: str,
    holder: str,
    now_summary: t.Callable[[LeaseState], dict[str, t.Any]],
) -> None:
    """Raise :class:`LockLost` unless ``run_id``/``holder`` may write the journal: it holds the
    Lease, and the journal's fence (when it has one) names it."""
    state = LeaseState(lease)
    if not state.held_by(run_id, holder):
        who = (
            "the lock is held by %s" % state.describe_holder()
            if state.held
            else ("the lock is free" if state.exists else "the Lease does not exist")
        )
        raise LockLost(
            "%s: write refused: run %s (holder %s) does not hold the rollout lock (%s); only the run holding it "
            "writes the journal" % (reference, run_id, holder, who),
            lock=now_summary(state),
        )
    fence = read_fence(configmap)
    if fence is not None and not names(fence, run_id, holder):
        raise LockLost(
            "%s: write refused: the journal obeys %s, not run %s (holder %s); the lock changed hands since this "
            "run took it" % (reference, describe(fence), run_id, holder),
            lock=now_summary(state),
        )


def get_or_none(client: t.Any, path: str) -> dict[str, t.Any] | None:
    """GET ``path``; ``None`` when the object does not exist."""
    try:
        return client.get(path)
    except NotFound:
        return None


def read_journal(client: t.Any, namespace: str, lock_name: str) -> dict[str, t.Any] | None:
    """The journal ConfigMap of the lock ``lock_name``, or ``None``."""
    return get_or_none(client, configmap_path(namespace, journal_name(lock_name)))


def read_lease(client: t.Any, namespace: str, lock_name: str) -> dict[str, t.Any] | None:
    """The lock's Lease, or ``None``."""
    return get_or_none(client, lease_path(namespace, lock_name))


def write_journal(
    client: t.Any,
    namespace: str,
    desired: dict[str, t.Any],
    exists: bool,
    missing_namespace: t.Callable[[], Exception],
) -> None:
    """PUT (``exists``) or POST the journal ConfigMap ``desired``, for a read-decide-write loop: a
    journal deleted meanwhile, or a create whose answer was lost, is ReadAgain; a missing namespace
    raises ``missing_namespace()`` (the journal never creates namespaces)."""
    try:
        if exists:
            client.put(configmap_path(namespace, desired["metadata"]["name"]), desired)
        else:
            client.post(configmap_path(namespace), desired)
    except NotFound as error:
        if exists and (error.details or {}).get("kind") != "namespaces":
            raise ReadAgain("the journal was deleted while being written")
        raise missing_namespace()
    except (K8sConnectionError, ServerError) as error:
        # The client retries neither for a POST once sent: it may have landed, so read again and
        # decide again (a record or fence that is already ours is then left as it is).
        if exists or isinstance(error, DeadlineExceeded):
            raise
        raise ReadAgain("the create's answer was lost: %s" % error)


def raise_fence(
    client: t.Any,
    namespace: str,
    lock_name: str,
    run_id: str,
    holder: str,
    phase: str | None,
    taking_back: bool = False,
    max_conflict_retries: int = 5,
    clock: t.Callable[[], t.Any] = utc_now,
    sleep: t.Callable[[float], None] = time.sleep,
    rng: t.Callable[[], float] = random.random,
) -> dict[str, t.Any]:
    """Write a new fence naming ``run_id``/``holder`` on the journal, one token above the last.

    Read the ConfigMap, then the Lease: written only while the Lease is held by this run (else
    :class:`LockLost`), with the ConfigMap's resourceVersion (a 409 reads both again). With
    ``taking_back`` (a run taking back a lock it found free), the fence must still name this run:
    anyone else's fence means the lock changed hands since, and the run has lost it."""
    reference = "%s/%s" % (namespace, journal_name(lock_name))

    def attempt() -> dict[str, t.Any]:
        configmap = read_journal(client, namespace, lock_name)
        lease = read_lease(client, namespace, lock_name)
        state = LeaseState(lease)
        fence = read_fence(configmap)
        if not state.held_by(run_id, holder):
            raise LockLost(
                "%s: the fence was not raised: the lock is no longer held by run %s (%s holds it)"
                % (reference, run_id, state.describe_holder() if state.held else "nobody"),
                lock=state.summary(namespace, lock_name, clock()),
            )
        if taking_back and not names(fence, run_id, holder):
            raise LockLost(
                "%s: the lock was free, but the journal obeys %s: it changed hands since run %s held it, so this "
                "run has lost it" % (reference, describe(fence), run_id),
                lock=state.summary(namespace, lock_name, clock()),
            )
        desired = dict(configmap) if configmap is not None else new_journal(namespace, lock_name)
        metadata = dict(desired.get("metadata") or {})
        annotations = dict(metadata.get("annotations") or {})
        new_fence = {
            "token": max(0, (fence or {}).get("token") or 0) + 1,
            "run_id": run_id,
            "holder": holder,
            "phase": phase,
            "at": micro_time(clock()),
        }
        annotations[ANNOTATION_FENCE] = json.dumps(new_fence, separators=(",", ":"))
        metadata["annotations"] = annotations
        desired["metadata"] = metadata
        write_journal(
            client,
            namespace,
            desired,
            configmap is not None,
            lambda: FenceError("%s: namespace %s does not exist; create it first" % (reference, namespace)),
        )
        return new_fence

    try:
        return read_decide_write(
            attempt,
            client,
            "the journal %s" % reference,
            max_conflict_retries,
            lambda field, message: FenceError("%s: %s" % (field, message)),
            sleep=sleep,
            rng=rng,
        )
    except CeresError as error:
        error.changed = True  # the Lease was written before the fence: the lock changed whatever happens now
        raise
