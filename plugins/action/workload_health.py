# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Action plugin of ceres.rollout.workload_health: judges the workloads in the controller process,
so a rollout step's health check starts no module process (AnsiballZ, a Python start, the
imports). The documentation and the argument spec are in plugins/modules/workload_health.py,
whose ``health_outcome()`` both its main() and this plugin run; the engine is
plugins/module_utils/workloads/health.py. The result is the module's: same keys, same messages,
``changed=false``, values of no_log options masked."""

from __future__ import annotations

from ansible_collections.ceres.rollout.plugins.modules.workload_health import (
    MUTUALLY_EXCLUSIVE,
    REQUIRED_ONE_OF,
    argument_spec,
    health_outcome,
)
from ansible_collections.ceres.rollout.plugins.plugin_utils.controller_action import ControllerModuleAction


class ActionModule(ControllerModuleAction):
    MODULE_NAME = "ceres.rollout.workload_health"
    # Without kubeconfig and context, the client reads $KUBECONFIG: the task's, as the module's process had it.
    PROCESS_ENVIRONMENT = ("KUBECONFIG",)

    def module_spec(self):
        return argument_spec(), {"required_one_of": REQUIRED_ONE_OF, "mutually_exclusive": MUTUALLY_EXCLUSIVE}

    def run_module(self, run):
        return health_outcome(run.params)
