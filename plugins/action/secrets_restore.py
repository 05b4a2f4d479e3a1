# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Action plugin of ceres.rollout.secrets_restore: decrypts the bundle in memory on the
controller and applies its Secrets through the Kubernetes API. The documentation is in the
module file (modules/secrets_restore.py), the argument spec in
plugins/module_utils/secrets/secrets_restore.py; the work is in
plugins/plugin_utils/secrets/transfer.py."""

from __future__ import annotations

from ansible_collections.ceres.rollout.plugins.module_utils.secrets.secrets_restore import SECRETS_RESTORE
from ansible_collections.ceres.rollout.plugins.plugin_utils.secrets.action import SecretsTransferAction
from ansible_collections.ceres.rollout.plugins.plugin_utils.secrets.transfer import RestoreRequest, restore_secrets


class ActionModule(SecretsTransferAction):
    MODULE_NAME = "secrets_restore"
    MODULE = SECRETS_RESTORE

    def build_request(self, args):
        namespaces = list(args["namespaces"]) if args["namespaces"] is not None else None
        return RestoreRequest(src=args["src"], namespaces=namespaces)

    def transfer(self, client, codec, request, check_mode, diff, redactor):
        return restore_secrets(client, codec, request, check_mode=check_mode, diff=diff, redactor=redactor)
