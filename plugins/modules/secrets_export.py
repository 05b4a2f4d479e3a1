#!/usr/bin/python
# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: secrets_export
short_description: Export the Secrets of namespaces to an ansible-vault encrypted file
version_added: 0.1.0
description:
  - Reads the Secrets of O(namespaces) (optionally only those matching O(label_selector)) from the Kubernetes API and
    writes them, encrypted with ansible-vault, to O(dest) on the Ansible controller.
  - The decrypted file is a Kubernetes C(v1) C(List) of Secrets in JSON, sorted by namespace and name, so
    C(ansible-vault view DEST | kubectl apply -f -) can also read it. M(ceres.rollout.secrets_restore) applies it back.
  - Each Secret keeps only what its owner declared, C(metadata.name), C(metadata.namespace), C(metadata.labels),
    C(metadata.annotations), C(type), C(immutable) and C(data). Server-managed metadata is dropped (C(uid),
    C(resourceVersion), C(generation), C(creationTimestamp), C(deletionTimestamp), C(deletionGracePeriodSeconds),
    C(selfLink), C(managedFields)), and so are C(ownerReferences) (they name owners by uid, which a restored cluster does
    not have, and the garbage collector would delete a restored Secret whose owner is unknown), C(finalizers)
    (controller state) and the C(kubectl.kubernetes.io/last-applied-configuration) annotation (it holds the values in
    clear).
  - Service-account tokens (type C(kubernetes.io/service-account-token)) are skipped and reported in RV(skipped_secrets), because the
    token controller issues them and a copy would not be valid elsewhere. Helm release records (type
    C(helm.sh/release.v1)) are skipped likewise, as they are Helm's own state of a release, and an older copy would make
    Helm believe in a release that is not what runs.
  - B(The plaintext never touches the disk.) The Secrets are encrypted in memory and written under a temporary name in
    the directory of O(dest) with mode V(0600), fsynced, then renamed to O(dest). A failure leaves O(dest) as it was.
  - B(Values never appear in the output:) the result, the diff and error messages hold names, key names and counts only,
    at any verbosity.
  - B(Idempotent:) when O(dest) exists and decrypts to the same Secrets, it is not rewritten and the task reports
    RV(ignore:changed=false). (Encryption uses a random salt, so comparing encrypted bytes would always differ.)
  - Runs on the controller through an action plugin (ansible-vault is a controller library), whatever the host's
    connection. The Kubernetes API is reached from the controller.
  - Every request to the Kubernetes API (each namespace and each page of Secrets), and every retry, fits in
    O(timeout); when it runs out the task fails and O(dest) is left as it was.
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
      - Reads the Secrets and O(dest) and reports whether O(dest) would change; writes nothing.
  diff_mode:
    support: full
    details:
      - The diff lists Secrets and the names of their keys (keys whose value changed are marked), never values.
  idempotent:
    support: full
options:
  namespaces:
    description:
      - The namespaces whose Secrets are exported. A namespace that does not exist is an error.
    type: list
    elements: str
    required: true
  label_selector:
    description:
      - Export only the Secrets matching this label selector, for example V(app.kubernetes.io/part-of=ceres).
    type: str
  dest:
    description:
      - The encrypted file to write, on the controller. Its directory must exist.
      - Written with mode V(0600).
    type: path
    required: true
  vault_password:
    description:
      - The vault password that encrypts O(dest).
      - Mutually exclusive with O(vault_password_file). When neither is given, the vault secret the playbook runs with
        (C(--vault-id), C(--vault-password-file), an AWX vault credential) is used, the one labelled O(vault_id) when set.
    type: str
  vault_password_file:
    description:
      - A file holding the vault password, or an executable script printing it, as C(ansible-playbook --vault-password-file).
    type: path
  vault_id:
    description:
      - The vault id label written in the encrypted file's header (format 1.2), and the label of the run's vault secret to
        use when neither O(vault_password) nor O(vault_password_file) is given.
    type: str
  force:
    description:
      - Replace an existing O(dest) that cannot be decrypted with the given password (or is not a bundle), for example
        after changing the vault password.
      - When V(false), such a O(dest) fails the task and is left untouched.
    type: bool
    default: false
notes:
  - Labels and annotations are exported as they are; do not keep secret values in annotations.
seealso:
  - module: ceres.rollout.secrets_restore
  - name: Kubernetes Secrets
    description: Types, immutability and the data field.
    link: https://kubernetes.io/docs/concepts/configuration/secret/
"""

EXAMPLES = r"""
---
- name: Export the CERES application Secrets before the pilot
  ceres.rollout.secrets_export:
    namespaces: [ceres-system]
    label_selector: app.kubernetes.io/part-of=ceres
    dest: /var/backups/ceres/secrets.vault
    vault_password: "{{ lookup('ansible.builtin.env', 'CERES_VAULT_PASSWORD') }}"
  register: secrets_backup

- name: Show what was exported (names only)
  ansible.builtin.debug:
    msg: "{{ secrets_backup.count }} Secrets, sha256 {{ secrets_backup.sha256 }}"

- name: Export every wave namespace with the playbook's own vault secret (ansible-playbook --vault-id prod@prompt)
  ceres.rollout.secrets_export:
    kubeconfig: ~/.kube/production
    context: ceres-production-eks
    namespaces: [non-critical, important-apps, critical]
    dest: /var/backups/ceres/wave-secrets.vault
    vault_id: prod
"""

RETURN = r"""
dest:
  description: The encrypted file.
  returned: success
  type: str
  sample: /var/backups/ceres/secrets.vault
sha256:
  description: sha256 of the encrypted file at RV(dest) (not of the plaintext).
  returned: success, when RV(dest) exists after the task (not in check mode when it would change)
  type: str
  sample: 0f3a6c2e59d1c4b3a2d0b8f6c53f1c1d5b0e5aa3b44ddc2e5e0c6b1b0b6cbb1a
count:
  description: Number of Secrets in the file.
  returned: success
  type: int
  sample: 3
namespaces:
  description: Per namespace, the number and the names of the exported Secrets.
  returned: success
  type: dict
  sample:
    ceres-system:
      count: 3
      names: [ceres-api-keys, ceres-db-credentials, ceres-jwt-signing]
skipped_secrets:
  description:
    - The Secrets left out, each with C(namespace), C(name) and C(reason).
    - Not named C(skipped), which Ansible would read as "the task was skipped".
  returned: success
  type: list
  elements: dict
  sample:
    - namespace: ceres-system
      name: default-token-x7k2p
      reason: "service-account token: the token controller issues it for the service account, ..."
diff:
  description: In diff mode, the Secrets and key names before and after (values never shown).
  returned: in diff mode, when the file changes
  type: dict
"""

from ansible_collections.ceres.rollout.plugins.module_utils.common.module import CeresModule
from ansible_collections.ceres.rollout.plugins.module_utils.secrets.secrets_export import SECRETS_EXPORT

# The module's options, where tools and tests look for them.
argument_spec = SECRETS_EXPORT.argument_spec


def main() -> None:
    CeresModule(SECRETS_EXPORT).run()


if __name__ == "__main__":
    main()
