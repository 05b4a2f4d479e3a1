# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Action plugin of ceres.rollout.secrets_export: runs on the controller, where
ansible-vault lives, so the Secrets are encrypted in memory and never reach a disk in clear.
The documentation is in the module file (modules/secrets_export.py), the argument spec in
plugins/module_utils/secrets/secrets_export.py; the work is in
plugins/plugin_utils/secrets/transfer.py."""

from __future__ import annotations

from ansible_collections.ceres.rollout.plugins.module_utils.secrets.secrets_export import SECRETS_EXPORT
from ansible_collections.ceres.rollout.plugins.plugin_utils.secrets.action import SecretsTransferAction
from ansible_collections.ceres.rollout.plugins.plugin_utils.secrets.transfer import ExportRequest, export_secrets


class ActionModule(SecretsTransferAction):
    MODULE_NAME = "secrets_export"
    MODULE = SECRETS_EXPORT

    def build_request(self, args):
        return ExportRequest(
            namespaces=list(args["namespaces"]),
            dest=args["dest"],
            label_selector=args["label_selector"],
            force=args["force"],
        )

    def transfer(self, client, codec, request, check_mode, diff, redactor):
        return export_secrets(client, codec, request, check_mode=check_mode, diff=diff, redactor=redactor)
