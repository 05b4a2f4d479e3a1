# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The module ceres.rollout.workload_health apart from its documentation: its argument spec and
its work, run by its main() (plugins/modules/workload_health.py) and by its action plugin
(plugins/action/workload_health.py), which runs it on the controller. The engine is
:mod:`health`."""

from __future__ import annotations

import time
import types
import typing as t

from ansible_collections.ceres.rollout.plugins.module_utils.common.errors import CeresError
from ansible_collections.ceres.rollout.plugins.module_utils.common.module import ModuleDefinition, ModuleRun
from ansible_collections.ceres.rollout.plugins.module_utils.gate.renew_lock import RENEW_LOCK_ARGSPEC, lock_keeper
from ansible_collections.ceres.rollout.plugins.module_utils.gate.verdict import GateStopped
from ansible_collections.ceres.rollout.plugins.module_utils.k8s.args import K8S_CONNECTION_ARG_SPEC
from ansible_collections.ceres.rollout.plugins.module_utils.k8s.client import K8sClient, auth_options
from ansible_collections.ceres.rollout.plugins.module_utils.k8s.library import KUBERNETES
from ansible_collections.ceres.rollout.plugins.module_utils.workloads.health import (
    DEFAULT_UNHEALTHY_REASONS,
    HealthError,
    HealthRequest,
    check_health,
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
            "max_restarts": {"type": "int", "default": 0},
            "since": {"type": "str"},
            "baseline": {"type": "dict"},
            "unhealthy_reasons": {"type": "list", "elements": "str", "default": list(DEFAULT_UNHEALTHY_REASONS)},
            "fail_on_unhealthy": {"type": "bool", "default": True},
            "wait_timeout": {"type": "float"},
        }
    )
    spec.update(RENEW_LOCK_ARGSPEC)
    spec.update(K8S_CONNECTION_ARG_SPEC)
    return spec


REQUIRED_ONE_OF = SELECTION_REQUIRED_ONE_OF
MUTUALLY_EXCLUSIVE = [("since", "baseline")]


def health_request(params: dict) -> HealthRequest:
    request = HealthRequest(
        selection_from_params(params),
        max_restarts=params["max_restarts"],
        since=params["since"],
        baseline=params["baseline"],
        unhealthy_reasons=params["unhealthy_reasons"],
    )
    request.validate()
    return request


# With wait_timeout, the workloads are looked at again every WAIT_INTERVAL seconds until healthy.
WAIT_INTERVAL = 2.0


class LockLostWhileWaiting(HealthError):
    """renew_lock: this run no longer holds its lock; the wait stopped."""

    def __init__(self, message: str, lock: t.Any) -> None:
        super().__init__("workload_health stopped waiting: %s" % message)
        self.lock = lock


def health_outcome(
    run: ModuleRun, sleep: t.Callable[[float], None] = time.sleep, clock: t.Callable[[], float] = time.monotonic
) -> dict:
    """The module's outcome; failed when a workload is unhealthy and ``fail_on_unhealthy``. Check
    mode changes nothing: the module only reads. With ``wait_timeout`` it looks again every
    WAIT_INTERVAL seconds until the workloads are healthy or the time is up; with ``renew_lock`` it
    keeps the run's lock alive meanwhile (and stops when another run took it). Raises HealthError,
    SelectionError, K8sError, GateConfigError."""
    params = run.params
    request = health_request(params)
    wait_timeout = params.get("wait_timeout")
    if wait_timeout is not None and not 0 < wait_timeout <= params["timeout"]:
        raise HealthError(
            "wait_timeout must be more than 0 seconds and at most timeout (%g s), the whole task's time budget; got %r"
            % (params["timeout"], wait_timeout)
        )
    keeper = lock_keeper(params, types.SimpleNamespace(interval_seconds=WAIT_INTERVAL), check_mode=run.check_mode)
    client = K8sClient.from_auth(auth_options(params), warn=run.warn)
    started, looks = clock(), 0
    try:
        while True:
            if keeper is not None:
                keeper.before_round(looks + 1)
            result = check_health(client, request)
            looks += 1
            left = (wait_timeout - (clock() - started)) if wait_timeout is not None else 0
            if result.healthy or left <= 0:
                break
            sleep(min(WAIT_INTERVAL, left))
    except GateStopped as stopped:
        raise LockLostWhileWaiting(str(stopped), keeper.lock if keeper else None)
    finally:
        client.close()
        if keeper is not None:
            keeper.close(warn=run.warn)

    output = {
        "changed": False,
        "healthy": result.healthy,
        "unhealthy": result.unhealthy(),
        "summary": result.summary(),
        "baseline": result.baseline,
        "workloads": result.workloads,
        "msg": result.message(),
    }
    if wait_timeout is not None:
        output["looks"] = looks
    if keeper is not None:
        output.update(keeper.result())
    if not result.healthy and params["fail_on_unhealthy"]:
        output["failed"] = True
    return output


def failure_values(error: CeresError) -> dict[str, t.Any]:
    """A wait stopped by a lost lock says so (``lock_lost``) with the lock as last seen."""
    if isinstance(error, LockLostWhileWaiting):
        return {"lock_lost": True, "lock": error.lock}
    return {}


WORKLOAD_HEALTH = ModuleDefinition(
    argument_spec,
    health_outcome,
    constraints={"required_one_of": REQUIRED_ONE_OF, "mutually_exclusive": MUTUALLY_EXCLUSIVE},
    required_libraries=[KUBERNETES],
    failure_values=failure_values,
)
