# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The module ceres.rollout.rollout_approval apart from its documentation: a person's "proceed or roll
back?" between two phases, kept on the rollout's journal ConfigMap.

A run that needs a decision has recorded ``<phase>/approval`` (outcome ``started``, ``data.approval:
waiting``) in the journal, as the holder of the lock. ``state=decided`` (playbooks/approve.yml, from any
terminal or AWX) finds that record as the journal's last and writes the decision as the annotation
``rollout.ceres.io/approval`` of the journal ConfigMap - not a record: the journal takes records only from
the run holding the lock - bound to the waiting run and phase, with who, when and why. ``state=waited``
(the waiting run) looks at that annotation every ``interval`` until a decision for its own run and phase
is there or ``wait_timeout`` has passed, keeping its lock alive meanwhile (``renew_lock``); the run then
records the decision in the journal itself. A decision is never inferred: no answer is ``timeout``.
"""

from __future__ import annotations

import copy
import json
import time
import types
import typing as t

from ansible_collections.ceres.rollout.plugins.module_utils.common.errors import CeresError
from ansible_collections.ceres.rollout.plugins.module_utils.common.module import ModuleDefinition, ModuleRun
from ansible_collections.ceres.rollout.plugins.module_utils.common.timestamps import utc_timestamp
from ansible_collections.ceres.rollout.plugins.module_utils.gate.renew_lock import RENEW_LOCK_ARGSPEC, lock_keeper
from ansible_collections.ceres.rollout.plugins.module_utils.gate.verdict import GateStopped
from ansible_collections.ceres.rollout.plugins.module_utils.k8s.args import K8S_CONNECTION_ARG_SPEC
from ansible_collections.ceres.rollout.plugins.module_utils.k8s.client import K8sClient, auth_options
from ansible_collections.ceres.rollout.plugins.module_utils.k8s.errors import Conflict
from ansible_collections.ceres.rollout.plugins.module_utils.k8s.library import KUBERNETES
from ansible_collections.ceres.rollout.plugins.module_utils.lock import fence
from ansible_collections.ceres.rollout.plugins.module_utils.lock import journal_records as layout
from ansible_collections.ceres.rollout.plugins.module_utils.lock.keep_alive import (
    LockLostDuringWork,
    lock_failure_values,
)
from ansible_collections.ceres.rollout.plugins.module_utils.lock.lease_state import (
    default_holder,
    validate_lock_name,
    validate_run_id,
)

ANNOTATION = "rollout.ceres.io/approval"
DECISIONS = ("approve", "reject")
APPROVAL_STEP = "approval"  # the step of a phase: <phase>/approval
# Writes of the decision that met another writer's change (a 409) are decided again at most this often.
MAX_CONFLICTS = 5
# What a decision's reason may hold (it is shown in the journal and the play's failure).
MAX_REASON = 500


def argument_spec() -> dict[str, dict[str, t.Any]]:
    spec: dict[str, dict[str, t.Any]] = {
        "state": {"type": "str", "required": True, "choices": ["decided", "waited"]},
        "namespace": {"type": "str", "default": "ceres-system"},
        "name": {"type": "str", "default": "ceres-rollout"},
        "phase": {"type": "str"},
        "run_id": {"type": "str"},
        "decision": {"type": "str", "choices": list(DECISIONS)},
        "reason": {"type": "str", "default": ""},
        "by": {"type": "str"},
        "wait_timeout": {"type": "float"},
        "interval": {"type": "float", "default": 2.0},
    }
    spec.update(RENEW_LOCK_ARGSPEC)
    spec.update(K8S_CONNECTION_ARG_SPEC)
    return spec


REQUIRED_IF = [
    ("state", "decided", ["decision"]),
    ("state", "waited", ["phase", "run_id", "wait_timeout"]),
]


class ApprovalError(CeresError):
    """Bad input, nothing waiting for the decision given, or a decision that contradicts one already made."""


def step_id(phase: str) -> str:
    return "%s/%s" % (phase, APPROVAL_STEP)


def is_waiting(record: t.Mapping[str, t.Any] | None) -> bool:
    """Whether ``record`` is a run's request for a decision (and nothing came after it)."""
    if not record:
        return False
    data = record.get("data") or {}
    return (
        str(record.get("step_id") or "").endswith("/" + APPROVAL_STEP)
        and record.get("outcome") == "started"
        and data.get("approval") == "waiting"
    )


def read_decision(configmap: t.Mapping[str, t.Any] | None) -> dict[str, t.Any] | None:
    """The decision annotation of the journal ConfigMap, or None; an unreadable one is an error (never a decision)."""
    text = (((configmap or {}).get("metadata") or {}).get("annotations") or {}).get(ANNOTATION)
    if not text:
        return None
    try:
        decision = json.loads(text)
    except ValueError:
        raise ApprovalError("the journal's %s annotation is not JSON: %.200s" % (ANNOTATION, text)) from None
    if not isinstance(decision, dict) or decision.get("decision") not in DECISIONS:
        raise ApprovalError("the journal's %s annotation holds no decision: %.200s" % (ANNOTATION, text))
    return decision


def describe(record: t.Mapping[str, t.Any]) -> str:
    return "%s %s by run %s at %s" % (
        record.get("step_id"),
        record.get("outcome"),
        record.get("run_id"),
        record.get("recorded_at") or "?",
    )


def waiting_record(configmap: t.Mapping[str, t.Any] | None) -> tuple[dict[str, t.Any] | None, dict[str, t.Any] | None]:
    """(the journal's last record, that record when it waits for a decision)."""
    runs = layout.decode_journal((configmap or {}).get("data"))
    last = layout.latest(layout.ordered_records(runs))
    return last, (last if is_waiting(last) else None)


def check_text(field: str, value: t.Any, limit: int) -> None:
    if not isinstance(value, str) or len(value) > limit or any(ord(ch) < 32 for ch in value):
        raise ApprovalError("%s: must be one line of at most %d characters" % (field, limit))


# --------------------------------------------------------------------------- decided


def decide(run: ModuleRun, client: t.Any, now: t.Callable[[], str] = utc_timestamp) -> dict[str, t.Any]:
    """Write the decision on the waiting run's phase; refused when nothing waits, another phase waits than
    ``phase``, or a different decision was already made for this wait."""
    params = run.params
    check_text("reason", params["reason"], MAX_REASON)
    by = params.get("by") or default_holder()
    check_text("by", by, 200)
    if params.get("phase") is not None:
        check_text("phase", params["phase"], 63)
    path = fence.configmap_path(params["namespace"], fence.journal_name(params["name"]))
    for _attempt in range(MAX_CONFLICTS + 1):
        configmap = fence.read_journal(client, params["namespace"], params["name"])
        last, waiting = waiting_record(configmap)
        if waiting is None:
            what = describe(last) if last else "the journal has no record"
            raise ApprovalError("nothing is waiting for a decision: the journal's last record is %s" % what)
        phase = str(waiting["step_id"]).rsplit("/", 1)[0]
        waiting_info = {
            "run_id": waiting.get("run_id"),
            "phase": phase,
            "step_id": waiting["step_id"],
            "since": waiting.get("recorded_at"),
        }
        if params.get("phase") is not None and params["phase"] != phase:
            raise ApprovalError(
                "%s is not waiting for a decision: %s is (run %s, since %s)"
                % (params["phase"], phase, waiting_info["run_id"], waiting_info["since"] or "?")
            )
        current = read_decision(configmap)
        if current and current.get("run_id") == waiting_info["run_id"] and current.get("phase") == phase:
            if current["decision"] != params["decision"]:
                raise ApprovalError(
                    "%s of run %s was already decided: %s by %s at %s"
                    % (phase, waiting_info["run_id"], current["decision"], current.get("by"), current.get("at"))
                )
            return {"changed": False, "decision": current, "waiting": waiting_info, "msg": decided_message(current)}
        decision = {
            "run_id": waiting_info["run_id"],
            "phase": phase,
            "decision": params["decision"],
            "by": by,
            "at": now(),
            "reason": params["reason"],
        }
        if run.check_mode:
            return {"changed": True, "decision": decision, "waiting": waiting_info, "msg": decided_message(decision)}
        # The whole ConfigMap back with the resourceVersion it was read at: a write in between (the waiting
        # run's renewal or record) is a 409, and the decision is taken again on what is there then.
        desired = copy.deepcopy(configmap)
        desired["metadata"].setdefault("annotations", {})[ANNOTATION] = json.dumps(decision, sort_keys=True)
        try:
            client.put(path, desired)
        except Conflict:
            continue  # the waiting run wrote meanwhile: decide again on what is there now
        written = read_decision(fence.read_journal(client, params["namespace"], params["name"]))
        if written != decision:
            raise ApprovalError("the decision was written but reads back as %r" % (written,))
        return {"changed": True, "decision": decision, "waiting": waiting_info, "msg": decided_message(decision)}
    raise ApprovalError("the journal changed during each of %d attempts to write the decision" % (MAX_CONFLICTS + 1))


def decided_message(decision: t.Mapping[str, t.Any]) -> str:
    why = ": %s" % decision["reason"] if decision.get("reason") else ""
    return "%s of run %s: %s by %s at %s%s" % (
        decision["phase"],
        decision["run_id"],
        "approved" if decision["decision"] == "approve" else "rejected",
        decision.get("by"),
        decision.get("at"),
        why,
    )


# --------------------------------------------------------------------------- waited


def wait(
    run: ModuleRun,
    client: t.Any,
    sleep: t.Callable[[float], None] = time.sleep,
    clock: t.Callable[[], float] = time.monotonic,
) -> dict[str, t.Any]:
    """Look for a decision on ``run_id``'s ``phase`` until one is there or ``wait_timeout`` passed."""
    params = run.params
    validate_run_id(params["run_id"])
    check_text("phase", params["phase"], 63)
    wait_timeout, interval = params["wait_timeout"], params["interval"]
    if not 0 < wait_timeout <= params["timeout"]:
        raise ApprovalError(
            "wait_timeout must be more than 0 seconds and at most timeout (%g s), the task's time budget; got %r"
            % (params["timeout"], wait_timeout)
        )
    if not 0 < interval <= wait_timeout:
        raise ApprovalError("interval must be more than 0 seconds and at most wait_timeout; got %r" % interval)
    keeper = lock_keeper(params, types.SimpleNamespace(interval_seconds=interval), check_mode=run.check_mode)
    started, looks, found = clock(), 0, None
    try:
        while True:
            if keeper is not None:
                keeper.before_round(looks + 1)
            decision = read_decision(fence.read_journal(client, params["namespace"], params["name"]))
            looks += 1
            if decision and decision.get("run_id") == params["run_id"] and decision.get("phase") == params["phase"]:
                found = decision
                break
            left = wait_timeout - (clock() - started)
            if left <= 0:
                break
            sleep(min(interval, left))
    except GateStopped as stopped:
        raise LockLostDuringWork(
            "rollout_approval stopped waiting: %s" % stopped, keeper.lock if keeper else None
        ) from None
    finally:
        if keeper is not None:
            keeper.close(warn=run.warn)
    waited = round(clock() - started, 1)
    if found is None:
        output = {
            "decision": "timeout",
            "by": None,
            "at": None,
            "reason": "no decision within %g s" % wait_timeout,
            "msg": "%s of run %s: no decision within %g s" % (params["phase"], params["run_id"], wait_timeout),
        }
    else:
        output = {key: found.get(key) for key in ("decision", "by", "at", "reason")}
        output["msg"] = decided_message(found)
    output.update({"changed": False, "waited_seconds": waited, "looks": looks})
    if keeper is not None:
        output.update(keeper.result())
    return output


def approval_outcome(run: ModuleRun) -> dict[str, t.Any]:
    validate_lock_name(run.params["name"])
    client = K8sClient.from_auth(auth_options(run.params), warn=run.warn)
    try:
        if run.params["state"] == "decided":
            return decide(run, client)
        return wait(run, client)
    finally:
        client.close()


ROLLOUT_APPROVAL = ModuleDefinition(
    argument_spec,
    approval_outcome,
    constraints={"required_if": REQUIRED_IF},
    required_libraries=[KUBERNETES],
    failure_values=lock_failure_values,  # a wait stopped by a lost lock says so, with the lock as last seen
)
