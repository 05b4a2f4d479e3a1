# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Action plugin of ceres.rollout.objects_info: reads the objects in the controller process, so a
read of the world starts no module process (AnsiballZ, a Python start, the imports). The argument
spec and the work are in plugins/module_utils/k8s/objects_info.py, which the module's main() runs
too; the documentation is in its module file (modules/objects_info.py). The result is the
module's: same keys, same messages, ``changed=false``, values of no_log options masked."""

from __future__ import annotations

from ansible_collections.ceres.rollout.plugins.module_utils.k8s.objects_info import OBJECTS_INFO
from ansible_collections.ceres.rollout.plugins.plugin_utils.controller_action import ControllerModuleAction


class ActionModule(ControllerModuleAction):
    MODULE_NAME = "ceres.rollout.objects_info"
    MODULE = OBJECTS_INFO
    # Without kubeconfig and context, the client reads $KUBECONFIG: the task's, as the module's process had it.
    PROCESS_ENVIRONMENT = ("KUBECONFIG",)
