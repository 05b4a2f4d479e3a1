# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Action plugin of ceres.rollout.secrets_restore: decrypts the bundle in memory on the
controller and applies its Secrets through the Kubernetes API. The documentation and
argument spec are in plugins/modules/secrets_restore.py; the work is in
plugins/plugin_utils/secrets_transfer.py."""

from __future__ import annotations

from ansible.errors import AnsibleError
from ansible.plugins.action import ActionBase

from ansible_collections.ceres.rollout.plugins.module_utils.k8s_client import K8sClient, K8sError, auth_options
from ansible_collections.ceres.rollout.plugins.modules.secrets_restore import MUTUALLY_EXCLUSIVE, argument_spec
from ansible_collections.ceres.rollout.plugins.plugin_utils.secrets_bundle import (
    SecretsBundleError,
    ValueRedactor,
    VaultCodec,
)
from ansible_collections.ceres.rollout.plugins.plugin_utils.secrets_transfer import RestoreRequest, restore_secrets


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        _validation, args = self.validate_argument_spec(argument_spec=argument_spec(),
                                                        mutually_exclusive=MUTUALLY_EXCLUSIVE)
        namespaces = list(args['namespaces']) if args['namespaces'] is not None else None
        request = RestoreRequest(src=args['src'], namespaces=namespaces)
        redactor = ValueRedactor()
        try:
            codec = VaultCodec.from_options(args['vault_password'], args['vault_password_file'], args['vault_id'],
                                            self._loader)
            client = K8sClient.from_auth(auth_options(args))
            try:
                outcome = restore_secrets(client, codec, request, check_mode=bool(self._task.check_mode),
                                          diff=bool(self._task.diff), redactor=redactor)
            finally:
                client.close()
        except (K8sError, SecretsBundleError, AnsibleError, OSError) as error:
            result.update(failed=True, changed=False, msg=redactor.redact('secrets_restore: %s' % (error,)))
            return result
        result.update(outcome)
        return result
