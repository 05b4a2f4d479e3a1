# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Action plugin of ceres.rollout.secrets_export: runs on the controller, where
ansible-vault lives, so the Secrets are encrypted in memory and never reach a disk in clear.
The documentation and argument spec are in plugins/modules/secrets_export.py; the work is in
plugins/plugin_utils/secrets_transfer.py."""

from __future__ import annotations

from ansible.errors import AnsibleError
from ansible.plugins.action import ActionBase

from ansible_collections.ceres.rollout.plugins.module_utils.k8s_client import K8sClient, K8sError, auth_options
from ansible_collections.ceres.rollout.plugins.modules.secrets_export import MUTUALLY_EXCLUSIVE, argument_spec
from ansible_collections.ceres.rollout.plugins.plugin_utils.secrets_bundle import (
    SecretsBundleError,
    ValueRedactor,
    VaultCodec,
)
from ansible_collections.ceres.rollout.plugins.plugin_utils.secrets_transfer import ExportRequest, export_secrets


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        _validation, args = self.validate_argument_spec(argument_spec=argument_spec(),
                                                        mutually_exclusive=MUTUALLY_EXCLUSIVE)
        request = ExportRequest(namespaces=list(args['namespaces']), dest=args['dest'],
                                label_selector=args['label_selector'], force=args['force'])
        redactor = ValueRedactor()
        try:
            codec = VaultCodec.from_options(args['vault_password'], args['vault_password_file'], args['vault_id'],
                                            self._loader)
            client = K8sClient.from_auth(auth_options(args))
            try:
                outcome = export_secrets(client, codec, request, check_mode=bool(self._task.check_mode),
                                         diff=bool(self._task.diff), redactor=redactor)
            finally:
                client.close()
        except (K8sError, SecretsBundleError, AnsibleError, OSError) as error:
            result.update(failed=True, changed=False, msg=redactor.redact('secrets_export: %s' % (error,)))
            return result
        result.update(outcome)
        return result
