# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The controller-side run shared by the secrets_export and secrets_restore action plugins:
validate the arguments, build the vault codec and the Kubernetes client, run the transfer,
and turn its errors into a redacted failure. A transfer that failed part-way
(``RestoreIncomplete``) still reports what it did: its result, ``changed`` included, with
``failed`` set."""

from __future__ import annotations

from ansible.errors import AnsibleError
from ansible.plugins.action import ActionBase

from ansible_collections.ceres.rollout.plugins.module_utils.k8s_client import (
    K8sClient,
    auth_options,
)
from ansible_collections.ceres.rollout.plugins.module_utils.k8s_errors import (
    K8sError,
)
from ansible_collections.ceres.rollout.plugins.plugin_utils.secrets_bundle import (
    SecretsBundleError,
    ValueRedactor,
    VaultCodec,
)
from ansible_collections.ceres.rollout.plugins.plugin_utils.secrets_transfer import RestoreIncomplete


class SecretsTransferAction(ActionBase):
    """Subclasses name the module and supply its argument spec, request and transfer."""

    TRANSFERS_FILES = False
    _requires_connection = False
    MODULE_NAME = ""

    def argument_spec(self):
        """Return (argument_spec, mutually_exclusive) of the module."""
        raise NotImplementedError

    def build_request(self, args):
        raise NotImplementedError

    def transfer(self, client, codec, request, check_mode, diff, redactor):
        raise NotImplementedError

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        spec, mutually_exclusive = self.argument_spec()
        _validation, args = self.validate_argument_spec(argument_spec=spec, mutually_exclusive=mutually_exclusive)
        request = self.build_request(args)
        redactor = ValueRedactor()
        try:
            codec = VaultCodec.from_options(
                args["vault_password"], args["vault_password_file"], args["vault_id"], self._loader
            )
            client = K8sClient.from_auth(auth_options(args))
            try:
                outcome = self.transfer(
                    client,
                    codec,
                    request,
                    check_mode=bool(self._task.check_mode),
                    diff=bool(self._task.diff),
                    redactor=redactor,
                )
            finally:
                client.close()
        except RestoreIncomplete as error:
            # Part of the work was done: report it (changed, created, replaced...) and fail.
            result.update(error.result)
            result.update(failed=True, msg=redactor.redact("%s: %s" % (self.MODULE_NAME, error)))
            return result
        except (K8sError, SecretsBundleError, AnsibleError, OSError) as error:
            result.update(failed=True, changed=False, msg=redactor.redact("%s: %s" % (self.MODULE_NAME, error)))
            return result
        result.update(outcome)
        return result
