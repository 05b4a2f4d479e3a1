# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Action plugin of ceres.rollout.rollout_journal: takes, renews and releases the rollout lock and
reads and writes the journal in the controller process, so the three journal tasks of a rollout
step start no module process each (AnsiballZ, a Python start, the imports). The documentation and
the argument spec are in plugins/modules/rollout_journal.py, whose ``journal_outcome()`` both its
main() and this plugin run; the engines are plugins/module_utils/lock/lease.py and journal.py.
The result is the module's: same keys, same messages and warnings, ``changed`` true on a failure
after a write landed, the same default ``holder`` (``user@host`` of the controller, where the
module ran through a local connection), values of no_log options masked."""

from __future__ import annotations

from ansible_collections.ceres.rollout.plugins.modules.rollout_journal import (
    REQUIRED_IF,
    argument_spec,
    journal_outcome,
)
from ansible_collections.ceres.rollout.plugins.plugin_utils.controller_action import ControllerModuleAction


class ActionModule(ControllerModuleAction):
    MODULE_NAME = "ceres.rollout.rollout_journal"
    # Without kubeconfig and context, the client reads $KUBECONFIG: the task's, as the module's process had it.
    PROCESS_ENVIRONMENT = ("KUBECONFIG",)

    def module_spec(self):
        return argument_spec(), {"required_if": REQUIRED_IF}

    def run_module(self, run):
        return journal_outcome(run.params, run.check_mode, run.diff, run.warn)
