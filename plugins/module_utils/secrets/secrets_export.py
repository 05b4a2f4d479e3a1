# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The module ceres.rollout.secrets_export apart from its documentation: its argument spec. Its
work runs on the controller only, through its action plugin (plugins/action/secrets_export.py,
plugins/plugin_utils/secrets/transfer.py); run as a plain module it fails (:mod:`controller_only`)."""

from __future__ import annotations

from ansible_collections.ceres.rollout.plugins.module_utils.common.module import ModuleDefinition
from ansible_collections.ceres.rollout.plugins.module_utils.k8s.args import K8S_CONNECTION_ARG_SPEC
from ansible_collections.ceres.rollout.plugins.module_utils.secrets.controller_only import controller_only

MUTUALLY_EXCLUSIVE = [("vault_password", "vault_password_file")]


def argument_spec() -> dict:
    spec = {
        "namespaces": {"type": "list", "elements": "str", "required": True},
        "label_selector": {"type": "str"},
        "dest": {"type": "path", "required": True},
        "vault_password": {"type": "str", "no_log": True},
        "vault_password_file": {"type": "path"},
        "vault_id": {"type": "str"},
        "force": {"type": "bool", "default": False},
    }
    spec.update(K8S_CONNECTION_ARG_SPEC)
    return spec


SECRETS_EXPORT = ModuleDefinition(
    argument_spec,
    controller_only("secrets_export"),
    constraints={"mutually_exclusive": MUTUALLY_EXCLUSIVE},
)
