# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What secrets_export and secrets_restore do when run as plain modules: they fail. Their work
needs ansible-vault, which lives on the controller, so it is in plugins/plugin_utils/secrets/
and runs only through their action plugins; a module file still validates its arguments and
says so."""

from __future__ import annotations

from ansible_collections.ceres.rollout.plugins.module_utils.common.errors import CeresError
from ansible_collections.ceres.rollout.plugins.module_utils.common.module import ModuleRun


class RunsOnTheController(CeresError):
    """The module was run as a plain module, not through its action plugin."""


def controller_only(module_name: str):
    """The outcome function of a module whose work only its action plugin can do."""

    def outcome(run: ModuleRun) -> dict:
        del run  # the arguments were valid; there is nothing a host can do with them
        raise RunsOnTheController(
            "ceres.rollout.%s runs on the controller through its action plugin; it cannot be run as a plain module"
            % module_name
        )

    return outcome
