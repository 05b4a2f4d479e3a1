# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The module ceres.rollout.backup_manifest apart from its documentation: its argument spec. Its
work runs on the controller only, through its action plugin (plugins/action/backup_manifest.py),
which reads the vault password as ansible-vault does (a file, a script, the run's own vault
secret); the signature itself is postgres/manifest_signature.py. Run as a plain module it fails."""

from __future__ import annotations

from ansible_collections.ceres.rollout.plugins.module_utils.common.module import ModuleDefinition
from ansible_collections.ceres.rollout.plugins.module_utils.secrets.controller_only import controller_only

STATES = ("signed", "verified")
MUTUALLY_EXCLUSIVE = [("vault_password", "vault_password_file")]


def argument_spec() -> dict:
    return {
        "path": {"type": "path", "required": True},
        "state": {"type": "str", "choices": list(STATES), "default": "verified"},
        "vault_password": {"type": "str", "no_log": True},
        "vault_password_file": {"type": "path"},
        "vault_id": {"type": "str"},
        "allow_unsigned": {"type": "bool", "default": False},
        "expected_sha256": {"type": "str"},
        "backup_id": {"type": "str"},
    }


BACKUP_MANIFEST = ModuleDefinition(
    argument_spec,
    controller_only("backup_manifest"),
    constraints={"mutually_exclusive": MUTUALLY_EXCLUSIVE},
)
