# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The module ceres.rollout.rollout_restart apart from its documentation: its argument spec and
its work, run by its main() (plugins/modules/rollout_restart.py). The engine is :mod:`restart`."""

from __future__ import annotations

import types
import typing as t

from ansible_collections.ceres.rollout.plugins.module_utils.common.errors import CeresError
from ansible_collections.ceres.rollout.plugins.module_utils.common.module import ModuleDefinition, ModuleRun
from ansible_collections.ceres.rollout.plugins.module_utils.gate.renew_lock import RENEW_LOCK_ARGSPEC, lock_keeper
from ansible_collections.ceres.rollout.plugins.module_utils.gate.verdict import GateStopped
from ansible_collections.ceres.rollout.plugins.module_utils.k8s.args import K8S_CONNECTION_ARG_SPEC
from ansible_collections.ceres.rollout.plugins.module_utils.k8s.client import K8sClient, auth_options
from ansible_collections.ceres.rollout.plugins.module_utils.k8s.library import KUBERNETES
from ansible_collections.ceres.rollout.plugins.module_utils.workloads.restart import (
    POLL_MAX,
    RestartError,
    RestartRequest,
    diff_of,
    restart_workloads,
    summarize,
)
from ansible_collections.ceres.rollout.plugins.module_utils.workloads.selection import (
    SELECTION_ARG_SPEC,
    SELECTION_REQUIRED_ONE_OF,
    selection_from_params,
)


def argument_spec() -> dict:
    spec = dict(SELECTION_ARG_SPEC)
    spec.update(
        {
            "restart_id": {"type": "str"},
            "wait": {"type": "bool", "default": True},
            "wait_timeout": {"type": "float"},
            "max_conflict_retries": {"type": "int", "default": 5},
        }
    )
    spec.update(RENEW_LOCK_ARGSPEC)
    spec.update(K8S_CONNECTION_ARG_SPEC)
    return spec


REQUIRED_ONE_OF = SELECTION_REQUIRED_ONE_OF


def restart_request(params: dict) -> RestartRequest:
    return RestartRequest(
        selection_from_params(params),
        restart_id=params["restart_id"],
        wait=params["wait"],
        wait_timeout=params["wait_timeout"],
        max_conflict_retries=params["max_conflict_retries"],
    )


def restart_outcome(run: ModuleRun) -> dict:
    """The module's outcome. Raises RestartError (``changed`` when a patch landed before the
    failure, ``outcomes`` what is known of every workload), SelectionError, K8sError."""
    request = restart_request(run.params)
    auth = auth_options(run.params)
    request.validate(client_timeout=auth.get("timeout"))
    # renew_lock: the restart fenced by the lock, kept alive while it waits (a poll is at most POLL_MAX apart)
    keeper = lock_keeper(run.params, types.SimpleNamespace(interval_seconds=POLL_MAX), check_mode=run.check_mode)
    client = K8sClient.from_auth(auth, warn=run.warn)
    try:
        result = restart_workloads(
            client, request, check_mode=run.check_mode, before_poll=keeper.before_round if keeper else None
        )
    except GateStopped as stopped:
        raise LockLostDuringRestart(str(stopped), stopped, keeper)
    finally:
        if keeper is not None:
            keeper.close(warn=run.warn)
    output = {
        "changed": result.changed,
        "restart_id": request.restart_id,
        "restarted_at": result.restarted_at,
        "workloads": [outcome.as_result() for outcome in result.outcomes],
        "summary": result.summary(),
    }
    if run.diff:
        output["diff"] = diff_of(result.outcomes)
    if keeper is not None:
        output.update(keeper.result())
    return output


class LockLostDuringRestart(RestartError):
    """renew_lock: this run no longer holds its lock (before the patches: nothing was restarted)."""

    def __init__(self, message: str, stopped: CeresError, keeper: t.Any) -> None:
        super().__init__(
            "rollout_restart stopped: %s" % message,
            changed=stopped.changed,
            outcomes=getattr(stopped, "outcomes", None),
        )
        self.lock = keeper.lock


def failure_values(error: CeresError) -> dict[str, t.Any]:
    """A failure reports every workload as far as it is known, and their summary (and, with renew_lock,
    ``lock_lost`` and the lock as last seen when the run lost it)."""
    outcomes = getattr(error, "outcomes", [])
    values = {"workloads": [outcome.as_result() for outcome in outcomes], "summary": summarize(outcomes)}
    if isinstance(error, LockLostDuringRestart):
        values.update(lock_lost=True, lock=error.lock)
    return values


ROLLOUT_RESTART = ModuleDefinition(
    argument_spec,
    restart_outcome,
    constraints={"required_one_of": REQUIRED_ONE_OF},
    required_libraries=[KUBERNETES],
    failure_values=failure_values,
)
