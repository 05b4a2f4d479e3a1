# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The controller-side run shared by the secrets_export and secrets_restore action plugins:
the work their modules cannot do on a host (ansible-vault lives on the controller; the
modules' definitions, plugins/module_utils/secrets/, hold their argument specs and fail when
run as plain modules). On the controller_action base (the module's validation, the task's
environment fallbacks, check mode and diff mode, ``invocation`` and no_log masking of the
result), build the vault codec and the Kubernetes client, run the transfer, and turn its
errors into a redacted failure. Arguments that do not validate raise ``AnsibleActionFail``. A transfer that failed
part-way (``RestoreIncomplete``) still reports what it did: its result, ``changed`` included,
with ``failed`` set."""

from __future__ import annotations

from ansible.errors import AnsibleActionFail, AnsibleError

from ansible_collections.ceres.rollout.plugins.module_utils.k8s.client import (
    K8sClient,
    auth_options,
)
from ansible_collections.ceres.rollout.plugins.module_utils.k8s.errors import (
    K8sError,
)
from ansible_collections.ceres.rollout.plugins.plugin_utils.controller_action import ControllerModuleAction
from ansible_collections.ceres.rollout.plugins.plugin_utils.secrets.bundle import (
    SecretsBundleError,
    ValueRedactor,
    VaultCodec,
)
from ansible_collections.ceres.rollout.plugins.plugin_utils.secrets.transfer import RestoreIncomplete


class SecretsTransferAction(ControllerModuleAction):
    """Subclasses name the module (its short name, which begins the failure messages) and its
    definition (``MODULE``, for the argument spec), and supply its request and transfer."""

    MODULE_NAME = ""
    # Without kubeconfig and context, the client reads $KUBECONFIG: the task's, as a module's process has it.
    PROCESS_ENVIRONMENT = ("KUBECONFIG",)

    def build_request(self, args):
        raise NotImplementedError

    def transfer(self, client, codec, request, check_mode, diff, redactor):
        raise NotImplementedError

    def module_fqcn(self):
        return "ceres.rollout.%s" % self.MODULE_NAME

    def invalid_arguments(self, message):
        raise AnsibleActionFail(message, obj=self._task.args)

    def run_module(self, run):
        args = run.params
        request = self.build_request(args)
        redactor = ValueRedactor()
        try:
            codec = VaultCodec.from_options(
                args["vault_password"], args["vault_password_file"], args["vault_id"], self._loader
            )
            client = K8sClient.from_auth(auth_options(args), warn=run.warn)
            try:
                return self.transfer(
                    client, codec, request, check_mode=run.check_mode, diff=run.diff, redactor=redactor
                )
            finally:
                client.close()
        except RestoreIncomplete as error:
            # Part of the work was done: report it (changed, created, replaced...) and fail.
            return dict(error.result, failed=True, msg=redactor.redact("%s: %s" % (self.MODULE_NAME, error)))
        except (K8sError, SecretsBundleError, AnsibleError, OSError) as error:
            return {"failed": True, "changed": False, "msg": redactor.redact("%s: %s" % (self.MODULE_NAME, error))}
