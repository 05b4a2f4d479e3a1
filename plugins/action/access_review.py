# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Action plugin of ceres.rollout.access_review: asks the API server in the controller process, so a preflight of
many reviews starts no module process. The argument spec and the work are in
plugins/module_utils/k8s/access_review.py, which the module's main() runs too; the documentation is in its module
file (modules/access_review.py). The result is the module's."""

from __future__ import annotations

from ansible_collections.ceres.rollout.plugins.module_utils.k8s.access_review import ACCESS_REVIEW
from ansible_collections.ceres.rollout.plugins.plugin_utils.controller_action import ControllerModuleAction


class ActionModule(ControllerModuleAction):
    MODULE_NAME = "ceres.rollout.access_review"
    MODULE = ACCESS_REVIEW
    # Without kubeconfig and context, the client reads $KUBECONFIG: the task's, as the module's process had it.
    PROCESS_ENVIRONMENT = ("KUBECONFIG",)
