# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The module ceres.rollout.workload_health apart from its documentation: its argument spec and
its work, run by its main() (plugins/modules/workload_health.py) and by its action plugin
(plugins/action/workload_health.py), which runs it on the controller. The engine is
:mod:`health`."""

from __future__ import annotations

from ansible_collections.ceres.rollout.plugins.module_utils.common.module import ModuleDefinition, ModuleRun
from ansible_collections.ceres.rollout.plugins.module_utils.k8s.args import K8S_CONNECTION_ARG_SPEC
from ansible_collections.ceres.rollout.plugins.module_utils.k8s.client import K8sClient, auth_options
from ansible_collections.ceres.rollout.plugins.module_utils.k8s.library import KUBERNETES
from ansible_collections.ceres.rollout.plugins.module_utils.workloads.health import (
    DEFAULT_UNHEALTHY_REASONS,
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
        }
    )
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


def health_outcome(run: ModuleRun) -> dict:
    """The module's outcome; failed when a workload is unhealthy and ``fail_on_unhealthy``. Check
    mode changes nothing: the module only reads. Raises HealthError, SelectionError, K8sError."""
    params = run.params
    request = health_request(params)
    client = K8sClient.from_auth(auth_options(params), warn=run.warn)
    try:
        result = check_health(client, request)
    finally:
        client.close()

    output = {
        "changed": False,
        "healthy": result.healthy,
        "unhealthy": result.unhealthy(),
        "summary": result.summary(),
        "baseline": result.baseline,
        "workloads": result.workloads,
        "msg": result.message(),
    }
    if not result.healthy and params["fail_on_unhealthy"]:
        output["failed"] = True
    return output


WORKLOAD_HEALTH = ModuleDefinition(
    argument_spec,
    health_outcome,
    constraints={"required_one_of": REQUIRED_ONE_OF, "mutually_exclusive": MUTUALLY_EXCLUSIVE},
    required_libraries=[KUBERNETES],
)
