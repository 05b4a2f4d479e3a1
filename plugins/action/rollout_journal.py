# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Action plugin of ceres.rollout.rollout_journal: takes, renews and releases the rollout lock and
reads and writes the journal in the controller process, so the three journal tasks of a rollout
step start no module process each (AnsiballZ, a Python start, the imports). The argument spec
and the work are in plugins/module_utils/lock/rollout_journal.py, which the module's main() runs
too; the documentation is in its module file (modules/rollout_journal.py). The result is the
module's: same keys, same messages and warnings, ``changed`` true on a failure after a write
landed, the same default ``holder`` (``user@host`` of the controller, where the module ran
through a local connection), values of no_log options masked."""

from __future__ import annotations

from ansible_collections.ceres.rollout.plugins.module_utils.lock.rollout_journal import ROLLOUT_JOURNAL
from ansible_collections.ceres.rollout.plugins.plugin_utils.controller_action import ControllerModuleAction


class ActionModule(ControllerModuleAction):
    MODULE_NAME = "ceres.rollout.rollout_journal"
    MODULE = ROLLOUT_JOURNAL
    # Without kubeconfig and context, the client reads $KUBECONFIG: the task's, as the module's process had it.
    PROCESS_ENVIRONMENT = ("KUBECONFIG",)
