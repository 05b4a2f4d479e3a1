# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Keeping the rollout lock alive while metric_gate samples: its ``renew_lock`` option.

A run holds the rollout lock (a Lease, :mod:`lease_lock`) only while it renews it. A gate
soaks for up to hours, so the gate itself keeps the lock: :class:`LockKeeper` is its
``before_round`` hook (:func:`verdict.run_gate`), and at the start of every round

* renews the lock (``lease_lock.apply_lock(..., 'renewed')``) on the first round and whenever
  a third of ``lease_duration`` has passed since the last renewal (or the last attempt failed);
* otherwise reads the Lease (one GET) and checks that this run still holds it, so a lock taken
  by another run (a rollback takes it with force) stops the gate within one interval, not at
  the next renewal.

When another run holds the lock (or it is free, or gone), the gate stops at once
(:class:`verdict.GateStopped`), naming the holder: no more rounds, and the task fails.

A renewal or a check that fails otherwise (the API server down or refusing, after the client's
own bounded retries, within ``timeout``) is a *transient* failure: the gate goes on and tries
again at the next round, with a warning (and a note in the round's line), as long as the lease
as last renewed outlives the next possible renewal (one round from now, the round's queries
and the renewal's own budget). Otherwise it fails closed: it stops, since it can no longer
show it holds the lock. Before the first round nothing is known of the lease, so a first
renewal that fails stops the gate too.

Check mode renews nothing: a check-mode run holds no lock. Both the module and its action
plugin use :func:`lock_keeper` and :func:`gate_outcome`, so they behave the same.
"""

from __future__ import annotations

import time
import typing as t

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.ceres.rollout.plugins.module_utils.common.errors import CeresError
from ansible_collections.ceres.rollout.plugins.module_utils.gate.verdict import (
    GateConfigError,
    GatePolicy,
    GateResult,
    GateStopped,
)
from ansible_collections.ceres.rollout.plugins.module_utils.k8s.args import K8S_AUTH_ARG_SPEC
from ansible_collections.ceres.rollout.plugins.module_utils.k8s.client import (
    HAS_KUBERNETES,
    K8sClient,
    build_api_client,
)
from ansible_collections.ceres.rollout.plugins.module_utils.lock.lease import apply_lock, read_lease
from ansible_collections.ceres.rollout.plugins.module_utils.lock.lease_state import (
    HOW_FORCED,
    OUTCOME_TAKEN_BACK,
    RENEWED,
    InvalidLockRequest,
    LeaseState,
    LockLost,
    LockRefused,
    LockRequest,
    default_holder,
    describe_holder,
    utc_now,
    validate_lock_request,
)

# The lock is renewed once this share of its lease duration has passed since the last renewal.
RENEW_AFTER_SHARE_OF_LEASE = 1 / 3
# The time budget of one renewal (or check), every request and retry of it included.
DEFAULT_RENEWAL_TIMEOUT = 30.0
_NOTE_CHARS = 160  # an error in a round line is cut to this

# The suboptions of metric_gate's renew_lock: the lock's fields as rollout_journal names them,
# and the Kubernetes connection options (kubernetes.core's names, aliases and environment
# variables). Documented in plugins/modules/metric_gate.py.
RENEW_LOCK_OPTIONS: dict[str, dict[str, t.Any]] = dict(
    {
        "namespace": {"type": "str", "default": "ceres-system"},
        "name": {"type": "str", "default": "ceres-rollout"},
        "run_id": {"type": "str", "required": True},
        "holder": {"type": "str"},
        "phase": {"type": "str"},
        "lease_duration": {"type": "int", "default": 600},
        "timeout": {"type": "float", "default": DEFAULT_RENEWAL_TIMEOUT},
    },
    **K8S_AUTH_ARG_SPEC,
)
RENEW_LOCK_ARGSPEC: dict[str, dict[str, t.Any]] = {"renew_lock": {"type": "dict", "options": RENEW_LOCK_OPTIONS}}


def lock_request(options: t.Mapping[str, t.Any]) -> LockRequest:
    """The renewal request of validated ``renew_lock`` options; GateConfigError naming the field."""
    request = LockRequest(
        namespace=options["namespace"],
        name=options["name"],
        run_id=options["run_id"],
        holder=options.get("holder") or default_holder(),
        lease_duration=options["lease_duration"],
        phase=options.get("phase"),
    )
    if not isinstance(request.namespace, str) or not request.namespace:
        raise GateConfigError("renew_lock.namespace: must be a namespace name, got %r" % (request.namespace,))
    try:
        validate_lock_request(request)
    except InvalidLockRequest as invalid:  # its message starts with the field's name
        raise GateConfigError("renew_lock.%s" % invalid)
    return request


def renewal_budget(options: t.Mapping[str, t.Any], lease_duration: int) -> float:
    """Seconds one renewal may take: ``timeout``, and never more than the share of the lease between renewals."""
    timeout = options.get("timeout")
    if timeout is None or not timeout > 0:
        raise GateConfigError("renew_lock.timeout: must be more than 0 seconds, got %r" % (timeout,))
    return min(float(timeout), lease_duration * RENEW_AFTER_SHARE_OF_LEASE)


def check_lease_covers_interval(request: LockRequest, policy: GatePolicy) -> None:
    if request.lease_duration < 3 * policy.interval_seconds:
        raise GateConfigError(
            "renew_lock.lease_duration (%d s) must be at least three times interval (%g s): the gate renews the lock "
            "between rounds once a third of the lease has passed, so with a longer interval the lease could expire "
            "between two rounds" % (request.lease_duration, policy.interval_seconds)
        )


def lock_keeper(params: t.Mapping[str, t.Any], policy: GatePolicy, check_mode: bool) -> LockKeeper | None:
    """The keeper of metric_gate's ``renew_lock`` (validated options), or None when there is nothing
    to renew: no ``renew_lock``, or check mode (a check-mode run holds no lock; the options are
    still checked). Raises GateConfigError naming the field, before any query or request."""
    options = params.get("renew_lock")
    if options is None:
        return None
    request = lock_request(options)
    budget = renewal_budget(options, request.lease_duration)
    check_lease_covers_interval(request, policy)
    if check_mode:
        return None
    if not HAS_KUBERNETES:
        raise GateConfigError("renew_lock: %s" % missing_required_lib("kubernetes"))
    auth = {name: options.get(name) for name in K8S_AUTH_ARG_SPEC}
    try:
        api_client = build_api_client(auth)  # reads the kubeconfig; no request yet
    except CeresError as error:  # K8sConfigError
        raise GateConfigError("renew_lock: %s" % error)

    def connect(seconds: float) -> K8sClient:
        # A client per renewal: each has its own time budget (a client's deadline starts when it is made).
        return K8sClient(
            api_client,
            timeout=seconds,
            impersonate_user=auth.get("impersonate_user"),
            impersonate_groups=auth.get("impersonate_groups"),
        )

    return LockKeeper(
        request,
        connect,
        interval_seconds=policy.interval_seconds,
        round_seconds=float(params.get("timeout") or 0),
        renewal_seconds=budget,
        close=api_client.rest_client.pool_manager.clear,
    )


class LockKeeper:
    """Renews (or checks) the rollout lock at the start of every round of a gate; see the module's docstring.

    ``connect(seconds)`` gives an API client whose calls fit in ``seconds``; ``interval_seconds``
    is the gate's interval, ``round_seconds`` the longest its queries may take (Prometheus's
    timeout), ``renewal_seconds`` the budget of one renewal. ``clock`` is monotonic time,
    ``wall_clock`` the UTC time the lock's expiry is judged with.
    """

    def __init__(
        self,
        request: LockRequest,
        connect: t.Callable[[float], t.Any],
        interval_seconds: float,
        round_seconds: float = 0.0,
        renewal_seconds: float = DEFAULT_RENEWAL_TIMEOUT,
        clock: t.Callable[[], float] = time.monotonic,
        wall_clock=utc_now,
        close: t.Callable[[], None] | None = None,
    ) -> None:
        self.request = request
        self._connect = connect
        self._interval = interval_seconds
        self._round_seconds = round_seconds
        self._renewal_seconds = renewal_seconds
        self._clock = clock
        self._wall_clock = wall_clock
        self._close = close
        self.renewals = 0  # renewals that landed
        self.lock: dict[str, t.Any] | None = None  # the lock as last seen (rollout_journal's ``lock``)
        self.lost = False
        self.note: str | None = None  # what the latest round did with the lock, for its line
        self.warnings: list[str] = []
        self._renewed_at: float | None = None  # (monotonic) when the last renewal that landed started
        self._retry = False  # the last renewal failed: try again at the next round

    @property
    def renew_every(self) -> float:
        return self.request.lease_duration * RENEW_AFTER_SHARE_OF_LEASE

    def before_round(self, round_number: int) -> None:
        """Renew or check the lock before round ``round_number``; GateStopped when this run must stop."""
        self.note = None
        started_at = self._clock()
        due = self._renewed_at is None or self._retry or started_at - self._renewed_at >= self.renew_every
        try:
            still_held = self._renew_now() if due else self._check_now()
        except (LockLost, LockRefused) as refused:
            self.lock = refused.lock or self.lock
            still_held = False
        except CeresError as error:  # the API server unreachable or refusing (K8sError), TooManyConflicts...
            self._failed(round_number, due, started_at, error)
            return
        if not still_held:
            self._stop(lock_lost_message(self.request, self.lock))
        if due:
            self._renewed_at = started_at
            self._retry = False
            self.renewals += 1
            self.note = "lock renewed"

    def _renew_now(self) -> bool:
        result = apply_lock(self._connect(self._renewal_seconds), self.request, RENEWED, clock=self._wall_clock)
        self.lock = result.after
        if result.outcome == OUTCOME_TAKEN_BACK:
            self.warnings.append(taken_back_message(self.request))
        return True

    def _check_now(self) -> bool:
        lease = read_lease(self._connect(self._renewal_seconds), self.request.namespace, self.request.name)
        state = LeaseState(lease)
        self.lock = state.summary(self.request.namespace, self.request.name, self._wall_clock())
        if not state.held:
            # Free (deleted, or released by hand): a renewal takes it back when nobody held it since,
            # and fails otherwise - never a canary left part-way with no run owning it.
            return self._renew_now()
        return state.held_by(self.request.run_id, self.request.holder)

    def close(self, warn: t.Callable[[str], None] | None = None) -> None:
        """Release the keeper's connections; with ``warn``, hand it the keeper's warnings first (a module that
        reports them as Ansible warnings; metric_gate returns them with its result instead)."""
        if warn is not None:
            for warning in self.warnings:
                warn(warning)
        if self._close is not None:
            self._close()

    def result(self) -> dict[str, t.Any]:
        """The lock's return values: ``lock_lost``, ``lock_renewals``, ``lock``."""
        return {"lock_lost": self.lost, "lock_renewals": self.renewals, "lock": self.lock}

    def _stop(self, message: str) -> None:
        self.lost = True
        raise GateStopped(message)

    def _failed(self, round_number: int, due: bool, started_at: float, error: BaseException) -> None:
        what = "renew" if due else "check"
        reference = self.request.reference
        if self._renewed_at is None:
            self._stop(
                "could not renew the rollout lock %s before the gate's first round: %s; the gate does not sample "
                "without knowing it holds the lock, so this run stops" % (reference, error)
            )
        # The lease as last renewed, against the latest the next renewal can land: one round
        # from now (the interval, or the round's queries if they take longer) and its own budget.
        expires_in = self._renewed_at + self.request.lease_duration - started_at
        next_renewal_within = max(self._interval, self._round_seconds) + self._renewal_seconds
        if expires_in <= next_renewal_within:
            self._stop(
                "could not renew the rollout lock %s (last renewed %d s ago, lease %d s): %s; it could expire before "
                "the next renewal, so this run stops"
                % (reference, round(started_at - self._renewed_at), self.request.lease_duration, error)
            )
        self._retry = self._retry or due
        message = str(error)
        short = message if len(message) <= _NOTE_CHARS else message[: _NOTE_CHARS - 3] + "..."
        self.note = "lock NOT %sed (retrying next round): %s" % (what, short)
        self.warnings.append(
            "metric_gate round %d: could not %s the rollout lock %s (retrying at the next round; the lease, last "
            "renewed %d s ago, lasts %d s): %s"
            % (round_number, what, reference, round(started_at - self._renewed_at), self.request.lease_duration, error)
        )


def taken_back_message(request: LockRequest) -> str:
    return (
        "the rollout lock %s was free (its Lease deleted or released by hand) and nobody had held it since run %s; "
        "the run took it back and carries on" % (request.reference, request.run_id)
    )


def lock_lost_message(request: LockRequest, lock: t.Mapping[str, t.Any] | None) -> str:
    """``the rollout lock NS/NAME was taken by run X (holder Y, phase rollback) at T, by force: ...``."""
    lock = lock or {}
    reference = "the rollout lock %s" % request.reference
    if lock.get("held"):
        who = describe_holder(lock.get("run_id"), lock.get("holder"), lock.get("phase"))
        taken = lock.get("taken_over_from") or {}
        how = ""
        if taken.get("run_id") == request.run_id:
            how = " at %s, %s" % (
                taken.get("at") or "?",
                "by force" if taken.get("how") == HOW_FORCED else "after this run's lease expired",
            )
        return "%s was taken by %s%s: run %s (holder %s) no longer holds it, so this run stops" % (
            reference,
            who,
            how,
            request.run_id,
            request.holder,
        )
    if not lock.get("exists", True):
        state = "the Lease does not exist"
    else:
        released = lock.get("released") or {}
        state = "it is free" + (
            ", released by run %s at %s" % (released.get("run_id"), released.get("at")) if released else ""
        )
    return "%s is no longer held by run %s (%s), so this run stops" % (reference, request.run_id, state)


def gate_outcome(
    gate: GateResult, fail_on_breach: bool, keeper: LockKeeper | None, renew_lock: bool
) -> dict[str, t.Any]:
    """metric_gate's outcome (the module's exit_json or fail_json arguments): the gate's result,
    the lock's return values when ``renew_lock`` was given, and a failure when the verdict is
    not pass (with ``fail_on_breach``) or, whatever ``fail_on_breach``, when the gate stopped
    because this run could not keep the lock."""
    outcome = dict(gate.as_dict(), changed=False)
    if renew_lock:
        outcome.update(keeper.result() if keeper else {"lock_lost": False, "lock_renewals": 0, "lock": None})
    if keeper is not None and keeper.warnings:
        outcome["warnings"] = list(keeper.warnings)
    if gate.stopped is not None:
        outcome.update(failed=True, msg="metric gate stopped after %d round(s): %s" % (gate.rounds, gate.stopped))
    elif fail_on_breach and not gate.passed:
        outcome.update(failed=True, msg="metric gate verdict %s: %s" % (gate.verdict, gate.reason))
    return outcome
