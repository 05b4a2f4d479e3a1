# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Action plugin of ceres.rollout.traffic_shift: shifts the traffic in the controller process, so a
loop over a step's apps (the canary rollback) costs one API round trip per app, not one module
process each (AnsiballZ, a Python start, the imports). The argument spec and the work are in
plugins/module_utils/istio/traffic_shift.py, which the module's main() runs too; the
documentation is in its module file (modules/traffic_shift.py). The result is the module's: same
keys, same messages, ``changed`` true on a failure after the write landed, values of no_log
options (``api_key``, ``password``, ``kubeconfig``...) masked."""

from __future__ import annotations

from ansible_collections.ceres.rollout.plugins.module_utils.istio.traffic_shift import TRAFFIC_SHIFT
from ansible_collections.ceres.rollout.plugins.plugin_utils.controller_action import ControllerModuleAction


class ActionModule(ControllerModuleAction):
    MODULE_NAME = "ceres.rollout.traffic_shift"
    MODULE = TRAFFIC_SHIFT
    # Without kubeconfig and context, the client reads $KUBECONFIG: the task's, as the module's process had it.
    PROCESS_ENVIRONMENT = ("KUBECONFIG",)
