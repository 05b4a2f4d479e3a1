# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Action plugin of ceres.rollout.rollout_report: builds the rollout report and writes its files on the
controller, where a person opens them, whatever the host's connection. The argument spec and the work
are in plugins/module_utils/report/rollout_report.py, which the module's main() runs too; the
documentation is in its module file (modules/rollout_report.py)."""

from __future__ import annotations

from ansible_collections.ceres.rollout.plugins.module_utils.report.rollout_report import ROLLOUT_REPORT
from ansible_collections.ceres.rollout.plugins.plugin_utils.controller_action import ControllerModuleAction


class ActionModule(ControllerModuleAction):
    MODULE_NAME = "ceres.rollout.rollout_report"
    MODULE = ROLLOUT_REPORT
