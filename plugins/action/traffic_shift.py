# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Action plugin of ceres.rollout.traffic_shift: shifts the traffic in the controller process,
so a loop over a step's apps (the canary rollback) costs one API round trip per app, not one
module process each (AnsiballZ, a Python start, the imports). The documentation and the
argument spec are in plugins/modules/traffic_shift.py, whose main() does the same for a direct
run; the engine is plugins/module_utils/istio/traffic.py. The result is the module's: same keys, same
messages, ``changed`` true on a failure after the write landed, values of no_log options
(``api_key``, ``password``, ``kubeconfig``...) masked."""

from __future__ import annotations

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.ceres.rollout.plugins.module_utils.common.errors import CeresError
from ansible_collections.ceres.rollout.plugins.module_utils.istio.traffic import (
    request_from_params,
    shift_output,
    shift_traffic,
)
from ansible_collections.ceres.rollout.plugins.module_utils.k8s.client import (
    HAS_KUBERNETES,
    K8sClient,
    auth_options,
)
from ansible_collections.ceres.rollout.plugins.modules.traffic_shift import argument_spec
from ansible_collections.ceres.rollout.plugins.plugin_utils.controller_action import ControllerModuleAction


class ActionModule(ControllerModuleAction):
    MODULE_NAME = "ceres.rollout.traffic_shift"
    # Without kubeconfig and context, the client reads $KUBECONFIG: the task's, as the module's process had it.
    PROCESS_ENVIRONMENT = ("KUBECONFIG",)

    def module_spec(self):
        return argument_spec(), {}

    def run_module(self, run):
        if not HAS_KUBERNETES:
            return {"failed": True, "msg": missing_required_lib("kubernetes")}
        params = run.params
        client = None
        try:
            request = request_from_params(params)
            client = K8sClient.from_auth(auth_options(params))
            result = shift_traffic(client, request, check_mode=run.check_mode)
        except CeresError as error:  # TrafficShiftError, K8sError
            # A failure after the write landed (the read-back) still changed the VirtualService.
            return {"failed": True, "msg": str(error), "changed": getattr(error, "written", False)}
        finally:
            if client is not None:
                client.close()

        return shift_output(result, run.diff)
