# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The module ceres.rollout.traffic_shift apart from its documentation: its argument spec and its
work, run by its main() (plugins/modules/traffic_shift.py) and by its action plugin
(plugins/action/traffic_shift.py), which runs it on the controller. The engine is :mod:`traffic`."""

from __future__ import annotations

from ansible_collections.ceres.rollout.plugins.module_utils.common.module import ModuleDefinition, ModuleRun
from ansible_collections.ceres.rollout.plugins.module_utils.istio.traffic import (
    request_from_params,
    shift_output,
    shift_traffic,
)
from ansible_collections.ceres.rollout.plugins.module_utils.k8s.args import K8S_CONNECTION_ARG_SPEC
from ansible_collections.ceres.rollout.plugins.module_utils.k8s.client import K8sClient, auth_options
from ansible_collections.ceres.rollout.plugins.module_utils.k8s.library import KUBERNETES

DESTINATION_OPTIONS = {
    "host": {"type": "str", "required": True},
    "subset": {"type": "str"},
    "port": {"type": "int"},
}


def argument_spec() -> dict:
    spec = {
        "namespace": {"type": "str", "required": True},
        "name": {"type": "str", "required": True},
        "route": {"type": "str"},
        "stable": {"type": "dict", "required": True, "options": DESTINATION_OPTIONS},
        "canary": {"type": "dict", "required": True, "options": DESTINATION_OPTIONS},
        "weight": {"type": "int", "required": True},
        "api_version": {"type": "str"},
        "max_conflict_retries": {"type": "int", "default": 5},
    }
    spec.update(K8S_CONNECTION_ARG_SPEC)
    return spec


def shift_outcome(run: ModuleRun) -> dict:
    """The module's outcome. Raises TrafficShiftError or K8sError, with ``changed`` set when the
    failure came after the write had landed (the read-back): the VirtualService was changed."""
    request = request_from_params(run.params)
    client = K8sClient.from_auth(auth_options(run.params), warn=run.warn)
    try:
        result = shift_traffic(client, request, check_mode=run.check_mode)
    finally:
        client.close()
    return shift_output(result, run.diff)


TRAFFIC_SHIFT = ModuleDefinition(argument_spec, shift_outcome, required_libraries=[KUBERNETES])
