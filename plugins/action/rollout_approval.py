# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Action plugin of ceres.rollout.rollout_approval: gives or waits for a decision in the controller
process (a wait of an hour holds no module process). The argument spec and the work are in
plugins/module_utils/lock/approval.py, which the module's main() runs too; the documentation is in
its module file (modules/rollout_approval.py). The result is the module's: same keys, same
messages, values of no_log options masked."""

from __future__ import annotations

from ansible_collections.ceres.rollout.plugins.module_utils.lock.approval import ROLLOUT_APPROVAL
from ansible_collections.ceres.rollout.plugins.plugin_utils.controller_action import ControllerModuleAction


class ActionModule(ControllerModuleAction):
    MODULE_NAME = "ceres.rollout.rollout_approval"
    MODULE = ROLLOUT_APPROVAL
    # Without kubeconfig and context, the client reads $KUBECONFIG: the task's, as the module's process had it.
    PROCESS_ENVIRONMENT = ("KUBECONFIG",)
