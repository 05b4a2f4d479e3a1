# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Action plugin of ceres.rollout.workload_health: judges the workloads in the controller process,
so a rollout step's health check starts no module process (AnsiballZ, a Python start, the
imports). The argument spec and the work are in
plugins/module_utils/workloads/workload_health.py, which the module's main() runs too; the
documentation is in its module file (modules/workload_health.py). The result is the module's:
same keys, same messages, ``changed=false``, values of no_log options masked."""

from __future__ import annotations

from ansible_collections.ceres.rollout.plugins.module_utils.workloads.workload_health import WORKLOAD_HEALTH
from ansible_collections.ceres.rollout.plugins.plugin_utils.controller_action import ControllerModuleAction


class ActionModule(ControllerModuleAction):
    MODULE_NAME = "ceres.rollout.workload_health"
    MODULE = WORKLOAD_HEALTH
    # Without kubeconfig and context, the client reads $KUBECONFIG: the task's, as the module's process had it.
    PROCESS_ENVIRONMENT = ("KUBECONFIG",)
