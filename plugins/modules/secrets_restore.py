#!/usr/bin/python
# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: secrets_restore
short_description: Apply the Secrets of a file written by ceres.rollout.secrets_export
version_added: 0.1.0
description:
  - Decrypts a file written by M(ceres.rollout.secrets_export) on the controller and applies its Secrets through the
    Kubernetes API.
  - A Secret missing in the cluster is created. One that differs is replaced (a full update carrying the live
    C(resourceVersion), re-read and retried when another writer changed it in between). One that matches is left
    alone, so a second run reports RV(ignore:changed=false).
  - A Secret matches when its C(type) and C(data) are the file's, it is immutable when the file's is, and every label
    and annotation of the file is present with the file's value. Labels and annotations added in the cluster since the
    export are kept; C(ownerReferences) and C(finalizers) of a live Secret are kept too.
  - A Secret the API server would refuse to change is B(skipped, not failed), and reported with the reason in
    RV(skipped_secrets) - an immutable Secret whose data differ, an immutable Secret the file has as mutable, a Secret whose
    C(type) differs. Delete it first to restore the file's version.
  - Secrets of the cluster that are not in the file are left alone. Service-account tokens and Helm release records (C(helm.sh/release.v1)) are never applied.
  - Every namespace must exist; a missing one fails the task before anything is changed.
  - B(A Secret that cannot be restored does not stop the others) - the API server refuses to read or write it (for
    example C(403) Forbidden by RBAC, C(422) Invalid, refused by an admission webhook), or it kept changing between
    read and write through every retry. The remaining Secrets are still restored, then the task B(fails) with the
    full report - RV(created), RV(replaced), RV(unchanged) and RV(skipped_secrets) as on success, RV(ignore:changed=true) when
    any Secret was applied, and every failing Secret in RV(failures) with the HTTP status and the API server's
    message.
  - When the API server stops answering, rejects the credentials (C(401)) or keeps throttling (C(429)) past the
    retries, or O(timeout) runs out, the restore stops at that Secret, since the next ones would fail the same way; the
    Secrets not tried are listed in RV(not_attempted), and the task fails with the same report.
  - A partial restore is never reported as a success. Running the task again once the cause is fixed applies what
    is still missing and leaves the rest alone.
  - B(Values never appear in the output:) the result, the diff and error messages hold names, key names and counts only,
    at any verbosity. The plaintext is never written to disk.
  - Runs on the controller through an action plugin, whatever the host's connection.
author:
  - CERES platform team (@ceres)
extends_documentation_fragment:
  - ceres.rollout.k8s_auth
  - ceres.rollout.k8s_auth.timeout
  - ceres.rollout.attributes
  - ceres.rollout.attributes.k8s_action_group
  - ceres.rollout.attributes.controller_action
  - ansible.builtin.action_common_attributes.flow
attributes:
  check_mode:
    support: full
    details:
      - Reads the live Secrets and reports what would be created, replaced and skipped; changes nothing.
  diff_mode:
    support: full
    details:
      - One diff per created or replaced Secret, showing its type, labels, annotation names and key names (keys whose
        value changes are marked), never values.
  idempotent:
    support: full
options:
  src:
    description:
      - The encrypted file, on the controller, as written by M(ceres.rollout.secrets_export).
    type: path
    required: true
  namespaces:
    description:
      - Apply only the Secrets of these namespaces. All the file's Secrets when omitted.
      - A namespace the file has no Secret of is reported as a warning.
    type: list
    elements: str
  vault_password:
    description:
      - The vault password of O(src).
      - Mutually exclusive with O(vault_password_file). When neither is given, the vault secret the playbook runs with
        (C(--vault-id), C(--vault-password-file), an AWX vault credential) is used, the one labelled O(vault_id) when set.
    type: str
  vault_password_file:
    description:
      - A file holding the vault password, or an executable script printing it, as C(ansible-playbook --vault-password-file).
    type: path
  vault_id:
    description:
      - The label of the run's vault secret to use when neither O(vault_password) nor O(vault_password_file) is given.
    type: str
seealso:
  - module: ceres.rollout.secrets_export
"""

EXAMPLES = r"""
---
- name: Put the CERES Secrets back as they were before the rollout
  ceres.rollout.secrets_restore:
    src: /var/backups/ceres/secrets.vault
    vault_password: "{{ lookup('ansible.builtin.env', 'CERES_VAULT_PASSWORD') }}"
  register: secrets_restored

- name: Fail when a Secret could not be put back
  ansible.builtin.assert:
    that: secrets_restored.skipped_secrets | length == 0
    fail_msg: "not restored: {{ secrets_restored.skipped_secrets | map(attribute='name') | join(', ') }}"

- name: Preview, with names and keys only, what restoring one namespace would change
  ceres.rollout.secrets_restore:
    src: /var/backups/ceres/secrets.vault
    namespaces: [ceres-system]
    vault_password_file: ~/.ceres/vault-password
  check_mode: true
  diff: true
"""

RETURN = r"""
src:
  description: The file the Secrets were read from.
  returned: success, and when a Secret could not be restored
  type: str
  sample: /var/backups/ceres/secrets.vault
count:
  description: Number of Secrets considered (after the O(namespaces) filter).
  returned: success, and when a Secret could not be restored
  type: int
  sample: 3
created:
  description:
    - The Secrets created (in check mode, that would be), as C(namespace/name).
    - When the task fails because a Secret could not be restored, the Secrets that were created nevertheless.
  returned: success, and when a Secret could not be restored
  type: list
  elements: str
  sample: [ceres-system/ceres-jwt-signing]
replaced:
  description:
    - The Secrets replaced (in check mode, that would be), as C(namespace/name).
    - When the task fails because a Secret could not be restored, the Secrets that were replaced nevertheless.
  returned: success, and when a Secret could not be restored
  type: list
  elements: str
  sample: [ceres-system/ceres-api-keys]
unchanged:
  description: The Secrets that already matched the file, as C(namespace/name).
  returned: success, and when a Secret could not be restored
  type: list
  elements: str
  sample: [ceres-system/ceres-db-credentials]
skipped_secrets:
  description:
    - The Secrets not applied, each with C(namespace), C(name) and C(reason).
    - Not named C(skipped), which Ansible would read as "the task was skipped".
  returned: success, and when a Secret could not be restored
  type: list
  elements: dict
  sample:
    - namespace: ceres-system
      name: ceres-tls-pins
      reason: immutable in the cluster and its data differ from the backup (keys pins); delete it first to restore the backup's version
failures:
  description:
    - The Secrets that could not be restored, each with C(namespace), C(name), C(action) (the call that failed -
      V(create), V(replace), or V(read) for reading the live Secret), C(status) (the HTTP status, V(null) when no
      answer came) and C(reason) (the request, the status and the API server's message; never a value).
    - When a write got no answer (the connection dropped, C(504)), its C(reason) says it may have been applied, and
      RV(ignore:changed=true) is reported.
    - Empty on success; the task fails when it is not.
  returned: success, and when a Secret could not be restored
  type: list
  elements: dict
  sample:
    - namespace: ceres-system
      name: ceres-api-keys
      action: replace
      status: 403
      reason: >-
        PUT /api/v1/namespaces/ceres-system/secrets/ceres-api-keys: 403 Forbidden: secrets "ceres-api-keys" is
        forbidden: User "ceres-restore" cannot update resource "secrets" in API group "" in the namespace
        "ceres-system"
not_attempted:
  description:
    - The Secrets not tried because the restore stopped (the API server stopped answering, rejected the credentials
      or kept throttling), as C(namespace/name). Empty otherwise.
  returned: success, and when a Secret could not be restored
  type: list
  elements: str
  sample: []
namespaces:
  description:
    - Per namespace, the number of Secrets C(created), C(replaced), C(unchanged) and C(skipped).
    - Secrets in RV(failures) or RV(not_attempted) are in none of these counts.
  returned: success, and when a Secret could not be restored
  type: dict
  sample:
    ceres-system: {created: 1, replaced: 1, unchanged: 1, skipped: 0}
diff:
  description:
    - In diff mode, one entry per created or replaced Secret (names, labels and key names only), also when the task
      fails because another Secret could not be restored.
  returned: in diff mode
  type: list
  elements: dict
"""

from ansible_collections.ceres.rollout.plugins.module_utils.common.module import CeresModule
from ansible_collections.ceres.rollout.plugins.module_utils.secrets.secrets_restore import SECRETS_RESTORE

# The module's options, where tools and tests look for them.
argument_spec = SECRETS_RESTORE.argument_spec


def main() -> None:
    CeresModule(SECRETS_RESTORE).run()


if __name__ == "__main__":
    main()
