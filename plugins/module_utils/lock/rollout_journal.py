# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The module ceres.rollout.rollout_journal apart from its documentation: its argument spec and
its work, run by its main() (plugins/modules/rollout_journal.py) and by its action plugin
(plugins/action/rollout_journal.py), which runs it on the controller. The engines are
:mod:`lease` (the lock) and :mod:`journal` (the records)."""

from __future__ import annotations

import typing as t

from ansible_collections.ceres.rollout.plugins.module_utils.common.errors import CeresError
from ansible_collections.ceres.rollout.plugins.module_utils.common.module import ModuleDefinition, ModuleRun
from ansible_collections.ceres.rollout.plugins.module_utils.k8s.args import K8S_CONNECTION_ARG_SPEC
from ansible_collections.ceres.rollout.plugins.module_utils.k8s.client import K8sClient, auth_options
from ansible_collections.ceres.rollout.plugins.module_utils.k8s.library import KUBERNETES
from ansible_collections.ceres.rollout.plugins.module_utils.lock import journal, lease_state
from ansible_collections.ceres.rollout.plugins.module_utils.lock import lease as lease_lock

STATES = ["acquired", "renewed", "released", "recorded", "read"]


def argument_spec() -> dict:
    spec = {
        "state": {"type": "str", "required": True, "choices": STATES},
        "namespace": {"type": "str", "default": "ceres-system"},
        "name": {"type": "str", "default": "ceres-rollout"},
        "run_id": {"type": "str"},
        "holder": {"type": "str"},
        "phase": {"type": "str"},
        "lease_duration": {"type": "int", "default": 600},
        "force": {"type": "bool", "default": False},
        "record": {"type": "dict"},
        "max_conflict_retries": {"type": "int", "default": 5},
    }
    spec.update(K8S_CONNECTION_ARG_SPEC)
    return spec


REQUIRED_IF = [
    ("state", "acquired", ["run_id"]),
    ("state", "renewed", ["run_id"]),
    ("state", "released", ["run_id"]),
    ("state", "recorded", ["run_id", "record"]),
]


def lock_task(run: ModuleRun, client: K8sClient) -> dict:
    params = run.params
    request = lease_state.LockRequest(
        namespace=params["namespace"],
        name=params["name"],
        run_id=params["run_id"],
        holder=params["holder"] or lease_state.default_holder(),
        lease_duration=params["lease_duration"],
        phase=params["phase"],
        force=params["force"],
        max_conflict_retries=params["max_conflict_retries"],
        # the ansible-playbook process the lock is held for, which the next run on this machine can see die
        process=lease_state.playbook_process() if run.on_controller else None,
    )
    result = lease_lock.apply_lock(client, request, params["state"], check_mode=run.check_mode)
    if result.outcome == lease_state.OUTCOME_HELD_BY_ANOTHER_RUN and result.note:
        run.warn(result.note)
    if result.outcome == lease_state.OUTCOME_TAKEN_BACK:
        run.warn(
            "%s was free (its Lease deleted or released by hand) and nobody had held it since run %s: taken back"
            % (request.reference, request.run_id)
        )
    output = {"changed": result.changed, "lock": result.after, "lock_outcome": result.outcome}
    if result.note:
        output["lock_note"] = result.note
    if run.diff:
        output["diff"] = {"before": lease_state.ownership(result.before), "after": lease_state.ownership(result.after)}
    return output


def record_task(run: ModuleRun, client: K8sClient) -> dict:
    params = run.params
    request = journal.RecordRequest(
        namespace=params["namespace"],
        lock_name=params["name"],
        run_id=params["run_id"],
        record=params["record"],
        phase=params["phase"],
        max_conflict_retries=params["max_conflict_retries"],
        # fenced: refused unless this run and holder hold the lock, and the journal's fence names them
        holder=params["holder"] or lease_state.default_holder(),
    )
    result = journal.record_step(client, request, check_mode=run.check_mode)
    for warning in result.warnings:
        run.warn(warning)
    output = {"changed": result.changed, "record": result.record, "step": result.step, "journal": result.info}
    if run.diff:
        if result.step == journal.STEP_UNCHANGED:
            before = after = {"record": result.record}
        else:
            before, after = ({"record": result.previous} if result.previous else {}), {"record": result.record}
        output["diff"] = {"before": before, "after": after}
    return output


def read_task(run: ModuleRun, client: K8sClient) -> dict:
    # A read never writes, has no diff and nothing to warn about.
    params = run.params
    view = journal.read_journal(client, params["namespace"], params["name"], run_id=params["run_id"])
    lock = lease_lock.read_lock(client, params["namespace"], params["name"])
    return {
        "changed": False,
        "records": view.records,
        "last": view.last,
        "runs": view.runs,
        "journal": view.info,
        "lock": lock,
    }


TASKS = {"acquired": lock_task, "renewed": lock_task, "released": lock_task, "recorded": record_task, "read": read_task}


def journal_outcome(run: ModuleRun) -> dict:
    """The module's outcome: the task of ``state``. Raises LockError, JournalError, RecordError, K8sError."""
    client = K8sClient.from_auth(auth_options(run.params), warn=run.warn)
    try:
        return TASKS[run.params["state"]](run, client)
    finally:
        client.close()


def failure_values(error: CeresError) -> dict[str, t.Any]:
    """What a failure reports besides its message: the lock as last seen (a refusal, a lost lock),
    and ``lock_lost`` when another run owns the rollout now, so this run must change nothing more."""
    values: dict[str, t.Any] = {}
    if getattr(error, "lock", None) is not None:
        values["lock"] = error.lock
    if isinstance(error, lease_state.LockLost):
        values["lock_lost"] = True
    return values


ROLLOUT_JOURNAL = ModuleDefinition(
    argument_spec,
    journal_outcome,
    constraints={"required_if": REQUIRED_IF},
    required_libraries=[KUBERNETES],
    failure_values=failure_values,
)
