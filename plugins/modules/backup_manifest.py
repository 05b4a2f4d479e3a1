#!/usr/bin/python
# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: backup_manifest
short_description: Sign a backup's manifest.json, or verify its signature and digest before it is trusted
version_added: 0.4.0
description:
  - A backup's C(manifest.json) (written by the C(ceres.rollout.backup) role) names every file of the backup with its
    sha256. Whoever can write to the bucket can replace a dump and its manifest together; the signature is what they
    cannot make without the vault password.
  - With O(state=signed), adds an HMAC-SHA256 signature to the manifest at O(path), as its C(signature) member, and
    rewrites the file atomically (temporary file in its directory, mode V(0600), fsync, rename).
  - With O(state=verified), checks the manifest at O(path) and fails, naming every problem, when its signature is
    missing (unless O(allow_unsigned=true)) or does not verify, when its sha256 is not O(expected_sha256), or when it
    names another backup than O(backup_id). It changes nothing.
  - The key is derived from the vault password, never the password itself, with PBKDF2-HMAC-SHA256 (100,000
    iterations, salt C(ceres.rollout/backup-manifest/v1:) followed by 16 random bytes stored in the signature). The
    signed bytes are C(ceres.rollout/backup-manifest/v1), a newline, and the manifest without its signature as
    canonical JSON (keys sorted, no spaces, UTF-8). Signatures are compared in constant time.
  - B(The password, the key and any computed signature never appear in the output, in errors or in the diff.)
  - Runs on the controller through an action plugin, where the vault password is, whatever the host's connection.
author:
  - CERES platform team (@ceres)
extends_documentation_fragment:
  - ceres.rollout.attributes
  - ceres.rollout.attributes.controller_action
  - ansible.builtin.action_common_attributes.flow
attributes:
  check_mode:
    support: full
    details:
      - O(state=signed) reports whether the manifest would be signed and writes nothing; O(state=verified) only reads.
  diff_mode:
    support: none
  idempotent:
    support: full
    details:
      - A manifest that already carries a signature that verifies with the password is not rewritten.
options:
  path:
    description:
      - The manifest file, on the controller.
    type: path
    required: true
  state:
    description:
      - V(signed) signs the manifest; V(verified) checks it.
    type: str
    choices: [signed, verified]
    default: verified
  vault_password:
    description:
      - The vault password the signature is keyed by (the one that encrypts the backup's Secrets).
      - Mutually exclusive with O(vault_password_file). When neither is given, the vault secret the playbook runs with
        (C(--vault-id), C(--vault-password-file), an AWX vault credential) is used, the one labelled O(vault_id) when set.
      - Not needed to accept an unsigned manifest with O(allow_unsigned=true).
    type: str
  vault_password_file:
    description:
      - A file holding the vault password, or an executable script printing it, as C(ansible-playbook --vault-password-file).
    type: path
  vault_id:
    description:
      - The label of the run's vault secret to use when neither O(vault_password) nor O(vault_password_file) is given.
    type: str
  allow_unsigned:
    description:
      - With O(state=verified), accept a manifest that has no signature (a backup taken before manifests were signed),
        with a warning. A signature that is there and does not verify is refused all the same.
    type: bool
    default: false
  expected_sha256:
    description:
      - With O(state=verified), the sha256 the manifest file must have (the one the run recorded in its journal when it
        took the backup). Empty or omitted, not checked.
    type: str
  backup_id:
    description:
      - The backup the manifest must describe (its C(backup_id)); also names the backup in messages.
    type: str
notes:
  - Anyone who holds the vault password can sign a manifest; keep it where the Secrets' password is kept.
seealso:
  - name: HMAC (RFC 2104)
    description: The message authentication code used.
    link: https://www.rfc-editor.org/rfc/rfc2104
"""

EXAMPLES = r"""
---
- name: Sign the manifest before it is uploaded
  ceres.rollout.backup_manifest:
    path: /tmp/ceres-backup/manifest.json
    state: signed
    vault_password_file: ~/.ceres/vault-password
  register: signed_manifest

- name: Verify a downloaded manifest against the digest the journal recorded
  ceres.rollout.backup_manifest:
    path: /tmp/ceres-restore/files/manifest.json
    backup_id: 20261201T093000Z-a1b2c3
    expected_sha256: "{{ recorded.manifest_sha256 }}"
    vault_password: "{{ lookup('ansible.builtin.env', 'CERES_VAULT_PASSWORD') }}"
"""

RETURN = r"""
path:
  description: The manifest file.
  returned: always
  type: str
  sample: /tmp/ceres-restore/files/manifest.json
sha256:
  description:
    - sha256 of the manifest file after the task (with O(state=signed) in check mode, of what would be written).
  returned: when the file could be read
  type: str
  sample: 0f3a6c2e59d1c4b3a2d0b8f6c53f1c1d5b0e5aa3b44ddc2e5e0c6b1b0b6cbb1a
signed:
  description: The manifest has a signature (after the task, for O(state=signed)).
  returned: always
  type: bool
verified:
  description: The signature verifies with the vault password. V(false) for an unsigned manifest accepted with O(allow_unsigned=true).
  returned: always
  type: bool
"""

from ansible_collections.ceres.rollout.plugins.module_utils.common.module import CeresModule
from ansible_collections.ceres.rollout.plugins.module_utils.postgres.backup_manifest import BACKUP_MANIFEST

# The module's options, where tools and tests look for them.
argument_spec = BACKUP_MANIFEST.argument_spec


def main() -> None:
    CeresModule(BACKUP_MANIFEST).run()


if __name__ == "__main__":
    main()
