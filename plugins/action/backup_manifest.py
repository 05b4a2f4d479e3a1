# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Action plugin of ceres.rollout.backup_manifest: signs and verifies a backup's manifest.json on the
controller, where the vault password is (a file or a script read as ansible-vault reads it, or the
run's own vault secret). The documentation is in the module file (modules/backup_manifest.py), the
argument spec in plugins/module_utils/postgres/backup_manifest.py, the signature in
plugins/module_utils/postgres/manifest_signature.py."""

from __future__ import annotations

import hashlib
import re

from ansible.errors import AnsibleActionFail, AnsibleError

from ansible_collections.ceres.rollout.plugins.module_utils.postgres.backup_manifest import BACKUP_MANIFEST
from ansible_collections.ceres.rollout.plugins.module_utils.postgres.manifest_signature import (
    SIGNATURE_FIELD,
    UNSIGNED,
    VALID,
    ManifestSignatureError,
    parse_manifest,
    serialize_manifest,
    sign_manifest,
    signature_status,
)
from ansible_collections.ceres.rollout.plugins.plugin_utils.controller_action import ControllerModuleAction
from ansible_collections.ceres.rollout.plugins.plugin_utils.secrets.bundle import (
    SecretsBundleError,
    VaultCodec,
    write_file_atomically,
)

SHA256_PATTERN = re.compile(r"^[0-9a-f]{64}$")
# Far above any real manifest (a directory dump of thousands of files); a larger one is refused unread,
# as whoever can write to the bucket can write one of any size.
MAX_MANIFEST_BYTES = 32 * 1024 * 1024


class ActionModule(ControllerModuleAction):
    MODULE_NAME = "ceres.rollout.backup_manifest"
    MODULE = BACKUP_MANIFEST

    def invalid_arguments(self, message):
        raise AnsibleActionFail(message, obj=self._task.args)

    def run_module(self, run):
        args = run.params
        what = (
            "the manifest of backup %s (%s)" % (args["backup_id"], args["path"])
            if args["backup_id"]
            else "the manifest %s" % args["path"]
        )
        result = {"changed": False, "path": args["path"], "signed": False, "verified": False}
        try:
            try:
                with open(args["path"], "rb") as handle:
                    data = handle.read(MAX_MANIFEST_BYTES + 1)
            except FileNotFoundError:
                raise ManifestSignatureError("%s does not exist" % what) from None
            if len(data) > MAX_MANIFEST_BYTES:
                raise ManifestSignatureError("%s is larger than %d bytes: refused unread" % (what, MAX_MANIFEST_BYTES))
            result["sha256"] = hashlib.sha256(data).hexdigest()
            manifest = parse_manifest(data, what)
            result["signed"] = SIGNATURE_FIELD in manifest
            if args["state"] == "signed":
                return self.sign(run, manifest, result)
            return self.verify(run, manifest, what, result)
        except (ManifestSignatureError, SecretsBundleError, OSError) as error:
            return dict(result, failed=True, msg="backup_manifest: %s" % error)

    def password(self, args) -> bytes:
        try:
            codec = VaultCodec.from_options(
                args["vault_password"], args["vault_password_file"], args["vault_id"], self._loader
            )
            return codec.secret.bytes
        except AnsibleError as error:
            raise SecretsBundleError("cannot read the vault password: %s" % error.message) from None

    def sign(self, run, manifest, result):
        password = self.password(run.params)
        if result["signed"] and signature_status(manifest, password)[0] == VALID:
            return dict(result, verified=True)
        content = serialize_manifest(sign_manifest(manifest, password))
        if not run.check_mode:
            write_file_atomically(run.params["path"], content, mode=0o600)
        return dict(result, changed=True, signed=True, verified=True, sha256=hashlib.sha256(content).hexdigest())

    def verify(self, run, manifest, what, result):
        args = run.params
        problems = []
        expected = args["expected_sha256"]
        if expected:
            if not SHA256_PATTERN.match(expected.lower()):
                raise ManifestSignatureError("expected_sha256 must be 64 hex digits, got %r" % expected)
            if result["sha256"] != expected.lower():
                problems.append(
                    "its sha256 is %s, but %s was recorded when the backup was taken (expected_sha256)"
                    % (result["sha256"], expected.lower())
                )
        if args["backup_id"] and manifest.get("backup_id") != args["backup_id"]:
            problems.append("it names backup %s, not %s" % (manifest.get("backup_id"), args["backup_id"]))
        if result["signed"]:
            status, reason = signature_status(manifest, self.password(args))
        else:
            status, reason = UNSIGNED, "it has no signature"
        if status == VALID:
            result["verified"] = True
        elif status != UNSIGNED or not args["allow_unsigned"]:
            problems.append(reason)
        if problems:
            hint = (
                " (a backup taken before manifests were signed can be used only with allow_unsigned: true, "
                "restore_allow_unsigned for the restore role, once you trust its origin)"
                if status == UNSIGNED and not args["allow_unsigned"]
                else ""
            )
            return dict(
                result, failed=True, msg="backup_manifest: %s is refused: %s%s" % (what, "; ".join(problems), hint)
            )
        if status == UNSIGNED:
            run.warn(
                "%s is UNSIGNED and was accepted only because allow_unsigned is true: nothing shows that it was "
                "written by the backup role rather than by whoever can write to the bucket" % what
            )
        return result
