# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Action plugin of ceres.rollout.metric_gate: runs the gate in the controller process, so each
sampling round is shown as it comes (one line per round, through Display, which a worker process
forwards to the main process at once) instead of one silent task for the whole soak. The
argument spec and the work are in plugins/module_utils/gate/metric_gate.py, which the module's
main() runs too; this plugin only adds the round lines (RoundPrinter). The documentation is in
its module file (modules/metric_gate.py). The result is the module's: same keys, same failure
message, ``changed=false``, values of no_log options masked."""

from __future__ import annotations

import time

from ansible.utils.display import Display

from ansible_collections.ceres.rollout.plugins.module_utils.gate.metric_gate import METRIC_GATE
from ansible_collections.ceres.rollout.plugins.module_utils.gate.verdict import format_number
from ansible_collections.ceres.rollout.plugins.plugin_utils.controller_action import ControllerModuleAction

display = Display()

_SAMPLING = "sampling"  # a check's status until it is decided (verdict.CheckProgress)
_MESSAGE_CHARS = 160  # a query error's message is cut to this in a round line


class ActionModule(ControllerModuleAction):
    MODULE_NAME = "ceres.rollout.metric_gate"
    MODULE = METRIC_GATE
    # For renew_lock without kubeconfig and context, the client reads $KUBECONFIG: the task's.
    PROCESS_ENVIRONMENT = ("KUBECONFIG",)

    def run_module(self, run):
        return self.MODULE.outcome(run, watch_rounds=self.round_printer(run))

    def round_printer(self, run):
        """What makes the printer of the rounds (given the gate's policy and lock keeper), or None
        when the rounds are not shown: ``progress=false``, or a no_log task."""
        if not run.params["progress"] or run.no_log:
            return None
        host = run.task_vars.get("inventory_hostname") or "localhost"

        def printer(policy, keeper):
            return RoundPrinter(
                host,
                policy,
                emit=lambda line: display.display(run.mask(line)),
                round_note=(lambda: keeper.note) if keeper else None,
            )

        return printer


class RoundPrinter:
    """Turns each round of :func:`verdict.run_gate` into one line through ``emit``:

    ``metric_gate [host] round 3 (2/10 samples, warm-up): error-rate=0 (max 0.001, 4210 req) ok; p95-ms=74.2
    (max 100) ok``

    Names, values, bounds, request counts and what the sample did; never the queries. Pass
    :meth:`wall_clock` as run_gate's ``wall_clock`` so the line knows when its round started
    (for "warm-up"); the engine asks for it once per round, when the round starts.
    ``round_note()`` (optional) says what the round did besides sampling, for example
    ``lock renewed``; it is added to the line's header.
    """

    def __init__(self, host, policy, emit, clock=time.monotonic, wall_clock=time.time, round_note=None):
        self.host = host
        self.policy = policy
        self.emit = emit
        self._round_note = round_note
        self._clock = clock
        self._wall_clock = wall_clock
        self._started_at = clock()
        self._round_started_at = self._started_at
        self._seen = {}

    def wall_clock(self):
        self._round_started_at = self._clock()
        return self._wall_clock()

    def on_round(self, round_number, progress):
        # Showing a round must never stop the gate: the verdict matters more than the line.
        try:
            self.emit(self.format_round(round_number, progress))
        except Exception as error:  # pylint: disable=broad-except
            try:
                self.emit("metric_gate [%s] round %d: (cannot show this round: %s)" % (self.host, round_number, error))
            except Exception:  # pylint: disable=broad-except
                pass

    def format_round(self, round_number, progress):
        counted = min(check_progress.counted for check_progress in progress)
        header = "%d/%d samples" % (counted, self.policy.samples)
        if self._round_started_at - self._started_at < self.policy.warmup_seconds:
            header += ", warm-up"
        note = self._round_note() if self._round_note is not None else None
        if note:
            header += ", %s" % note
        parts = []
        for index, check_progress in enumerate(progress):
            before = self._seen.get(index) or _Snapshot()
            parts.append(self._check_part(before, check_progress))
            self._seen[index] = _Snapshot.of(check_progress)
        return "metric_gate [%s] round %d (%s): %s" % (self.host, round_number, header, "; ".join(parts))

    def _check_part(self, before, now):
        check = now.check
        if before.status != _SAMPLING:
            return "%s %s" % (check.name, now.status)  # decided in an earlier round, not sampled
        if now.errors > before.errors:
            message = now.message if len(now.message) <= _MESSAGE_CHARS else now.message[: _MESSAGE_CHARS - 3] + "..."
            if now.status == _SAMPLING:
                part = "%s: query error (%d in a row, error_limit %d): %s" % (
                    check.name,
                    now.consecutive_errors,
                    self.policy.error_limit,
                    message,
                )
            else:  # the message says how many errors in a row ended the check
                part = "%s: %s" % (check.name, message)
            word = "query error"
        else:
            value = now.values[-1] if now.values else None
            details = [_bounds(check)]
            requests = now.requests[-1] if check.needs_evidence and now.requests else None
            if requests is not None and value is not None:
                details.append("%d req" % round(requests))
            word = _what_the_sample_did(before, now)
            shown = "no data" if value is None else format_number(value)
            part = "%s=%s (%s) %s" % (check.name, shown, ", ".join(details), word)
        if now.status != _SAMPLING and now.status != word:
            part += " -> %s" % now.status
        return part


class _Snapshot:
    """The counters of one check after a round, to tell what the next round's sample did."""

    def __init__(self, status=_SAMPLING, accepted=0, breaches=0, short_of_evidence=0, warmup_ignored=0, errors=0):
        self.status = status
        self.accepted = accepted
        self.breaches = breaches
        self.short_of_evidence = short_of_evidence
        self.warmup_ignored = warmup_ignored
        self.errors = errors

    @classmethod
    def of(cls, check_progress):
        return cls(
            check_progress.status,
            check_progress.accepted,
            check_progress.breaches,
            check_progress.short_of_evidence,
            check_progress.warmup_ignored,
            check_progress.errors,
        )


def _what_the_sample_did(before, now):
    if now.breaches > before.breaches:
        return "BREACH"
    if now.short_of_evidence > before.short_of_evidence:
        return "too few requests (min %s)" % format_number(now.check.min_requests)
    if now.warmup_ignored > before.warmup_ignored:
        return "warm-up, not counted"
    if now.accepted > before.accepted:
        return "ok"
    return now.status  # inconclusive: a response with warnings, or no data with no_data=inconclusive


def _bounds(check):
    bounds = []
    if check.min is not None:
        bounds.append("min %s" % format_number(check.min))
    if check.max is not None:
        bounds.append("max %s" % format_number(check.max))
    return ", ".join(bounds)
