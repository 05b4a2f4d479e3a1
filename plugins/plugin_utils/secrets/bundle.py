# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The secrets bundle: what ceres.rollout.secrets_export writes and secrets_restore reads.

A bundle is a Kubernetes ``v1`` ``List`` of Secrets serialised as JSON (so a decrypted
bundle is also valid input for ``kubectl apply -f``), sorted by namespace and name, each
Secret reduced to what its owner declared: ``metadata.name``, ``namespace``, ``labels`` and
``annotations`` (without kubectl's last-applied annotation), ``type``, ``immutable`` and
``data``. Everything the API server or controllers manage is dropped (see
``KEPT_METADATA_FIELDS``). The same Secrets always serialise to the same bytes, so two
exports can be compared by content.

The plaintext only ever exists in memory: it is encrypted with ansible-vault
(``VaultCodec``) before it is written, with ``write_file_atomically`` (temporary file in the
destination directory, fsync, rename, mode 0600).

Nothing here puts a Secret's value into a message: errors name Secrets and keys only, and
``ValueRedactor`` scrubs any text that came from elsewhere (the API server) before it is shown.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import tempfile
import typing as t

from ansible.errors import AnsibleError
from ansible.module_utils.common.text.converters import to_bytes
from ansible.parsing.vault import VaultLib, VaultSecret, get_file_vault_secret, is_encrypted

from ansible_collections.ceres.rollout.plugins.module_utils.common.errors import CeresError
from ansible_collections.ceres.rollout.plugins.module_utils.common.redaction import redact

try:  # ansible-core 2.19 and later
    from ansible.parsing.vault import VaultSecretsContext
except ImportError:  # pragma: no cover - ansible-core 2.17 / 2.18
    VaultSecretsContext = None  # type: ignore[assignment,misc]


SERVICE_ACCOUNT_TOKEN_TYPE = "kubernetes.io/service-account-token"
HELM_RELEASE_TYPE = "helm.sh/release.v1"
LAST_APPLIED_ANNOTATION = "kubectl.kubernetes.io/last-applied-configuration"
DEFAULT_SECRET_TYPE = "Opaque"

# The metadata a bundle keeps. Everything else is dropped: uid, resourceVersion, generation,
# creationTimestamp, deletionTimestamp, deletionGracePeriodSeconds, selfLink, managedFields
# (the server's), ownerReferences (they name owners by uid, which a restored cluster does not
# have: the garbage collector would delete a restored Secret whose owner uid is unknown),
# finalizers (controller state: a restored Secret with the finalizer of an absent controller
# could never be deleted) and generateName (the name is fixed once the Secret exists).
KEPT_METADATA_FIELDS = ("name", "namespace", "labels", "annotations")
DROPPED_METADATA_FIELDS = (
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "selfLink",
    "managedFields",
    "ownerReferences",
    "finalizers",
    "generateName",
)

# Values shorter than this are not scrubbed from messages: replacing every "1" or "on" would
# garble the text while protecting nothing.
MIN_REDACTED_VALUE_LENGTH = 4


class SecretsBundleError(CeresError):
    """A bundle, a vault password or a destination cannot be used. The message never holds a
    Secret's value."""


# --------------------------------------------------------------------------- Secrets


def secret_ref(secret: t.Mapping[str, t.Any]) -> str:
    """``namespace/name`` of a Secret."""
    metadata = secret.get("metadata") or {}
    return "%s/%s" % (metadata.get("namespace"), metadata.get("name"))


def never_transferred_reason(secret: t.Mapping[str, t.Any]) -> str | None:
    """Why a Secret of this type is neither exported nor restored, or ``None``."""
    if secret.get("type") == SERVICE_ACCOUNT_TOKEN_TYPE:
        return (
            "service-account token: the token controller issues it for the service account, "
            "a copy from another cluster or time would not be valid"
        )
    if secret.get("type") == HELM_RELEASE_TYPE:
        return (
            "Helm release record: Helm's own state of a release; an older copy would make Helm believe in a "
            "release that is not what runs (back up the chart and its values instead)"
        )
    return None


def export_skip_reason(secret: t.Mapping[str, t.Any]) -> str | None:
    """Why a Secret is left out of a bundle, or ``None`` when it belongs in it."""
    never = never_transferred_reason(secret)
    if never:
        return never
    if (secret.get("metadata") or {}).get("deletionTimestamp"):
        return "being deleted"
    return None


def _string_map(value: t.Any, what: str, ref: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(key, str) and isinstance(item, str) for key, item in value.items()
    ):
        raise SecretsBundleError("Secret %s: %s must map strings to strings" % (ref, what))
    return dict(value)


def exportable_secret(secret: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    """The Secret as a bundle holds it: declared fields only, server-managed ones dropped.

    ``stringData`` (which a hand-written bundle may carry) is folded into ``data`` the way
    the API server does it, so a bundle always compares by ``data``.
    """
    metadata = secret.get("metadata") or {}
    ref = secret_ref(secret)
    if not metadata.get("name") or not metadata.get("namespace"):
        raise SecretsBundleError("a Secret without metadata.name or metadata.namespace (%s)" % ref)
    kept_metadata: dict[str, t.Any] = {"name": metadata["name"], "namespace": metadata["namespace"]}
    labels = _string_map(metadata.get("labels"), "metadata.labels", ref)
    annotations = _string_map(metadata.get("annotations"), "metadata.annotations", ref)
    annotations.pop(LAST_APPLIED_ANNOTATION, None)
    if labels:
        kept_metadata["labels"] = labels
    if annotations:
        kept_metadata["annotations"] = annotations

    data = _string_map(secret.get("data"), "data", ref)
    for key, text in _string_map(secret.get("stringData"), "stringData", ref).items():
        data[key] = base64.b64encode(text.encode("utf-8")).decode("ascii")
    for key, encoded in data.items():
        try:
            base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise SecretsBundleError("Secret %s: the value of key %s is not base64" % (ref, key)) from None

    exported: dict[str, t.Any] = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": kept_metadata,
        "type": secret.get("type") or DEFAULT_SECRET_TYPE,
        "data": data,
    }
    if secret.get("immutable"):
        exported["immutable"] = True
    return exported


def sort_key(secret: t.Mapping[str, t.Any]) -> tuple[str, str]:
    metadata = secret["metadata"]
    return (metadata["namespace"], metadata["name"])


def build_bundle(secrets: t.Iterable[t.Mapping[str, t.Any]]) -> dict[str, t.Any]:
    """A ``v1`` ``List`` of the exportable form of ``secrets``, sorted by namespace and name."""
    items = sorted((exportable_secret(secret) for secret in secrets), key=sort_key)
    return {"apiVersion": "v1", "kind": "List", "metadata": {}, "items": items}


def serialize_bundle(bundle: t.Mapping[str, t.Any]) -> bytes:
    """Canonical bytes: the same Secrets always give the same plaintext."""
    return (json.dumps(bundle, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def parse_bundle(plaintext: bytes) -> list[dict[str, t.Any]]:
    """The Secrets of a decrypted bundle, in exportable form and sorted.

    Error messages describe the structure only (a JSON parser's own messages hold positions,
    never content; the decoded document is never quoted).
    """
    try:
        document = json.loads(plaintext.decode("utf-8"))
    except UnicodeDecodeError:
        raise SecretsBundleError("the decrypted bundle is not UTF-8 text") from None
    except ValueError as error:
        position = getattr(error, "msg", "invalid"), getattr(error, "lineno", "?"), getattr(error, "colno", "?")
        raise SecretsBundleError("the decrypted bundle is not JSON (%s at line %s, column %s)" % position) from None
    if not isinstance(document, dict) or document.get("kind") != "List" or not isinstance(document.get("items"), list):
        raise SecretsBundleError("the decrypted bundle is not a v1 List of Secrets")
    secrets = []
    seen = set()
    for index, item in enumerate(document["items"]):
        if not isinstance(item, dict) or item.get("kind") != "Secret" or item.get("apiVersion") != "v1":
            raise SecretsBundleError("item %d of the bundle is not a v1 Secret" % index)
        secret = exportable_secret(item)
        ref = secret_ref(secret)
        if ref in seen:
            raise SecretsBundleError("the bundle holds Secret %s twice" % ref)
        seen.add(ref)
        secrets.append(secret)
    return sorted(secrets, key=sort_key)


def changed_data_keys(before: t.Mapping[str, t.Any] | None, after: t.Mapping[str, t.Any]) -> list[str]:
    """Keys present on both sides whose values differ (names only)."""
    if before is None:
        return []
    before_data, after_data = before.get("data") or {}, after.get("data") or {}
    return sorted(key for key in set(before_data) & set(after_data) if before_data[key] != after_data[key])


def secret_outline(secret: t.Mapping[str, t.Any] | None, changed_keys: t.Iterable[str] = ()) -> str:
    """A value-free description of a Secret for diffs: type, immutability, labels, the names
    of its annotations and of its keys (keys whose value changed are marked)."""
    if secret is None:
        return ""
    metadata = secret.get("metadata") or {}
    changed = set(changed_keys)
    lines = ["type: %s" % (secret.get("type") or DEFAULT_SECRET_TYPE)]
    if secret.get("immutable"):
        lines.append("immutable: true")
    labels = metadata.get("labels") or {}
    if labels:
        lines.append("labels: %s" % ", ".join("%s=%s" % (key, labels[key]) for key in sorted(labels)))
    annotations = sorted(key for key in (metadata.get("annotations") or {}) if key != LAST_APPLIED_ANNOTATION)
    if annotations:
        lines.append("annotations: %s" % ", ".join(annotations))
    keys = sorted(secret.get("data") or {})
    lines.append("keys:" if keys else "keys: []")
    lines.extend("  - %s%s" % (key, " (value changed)" if key in changed else "") for key in keys)
    return "\n".join(lines) + "\n"


def bundle_outline(
    secrets: t.Iterable[t.Mapping[str, t.Any]], changed_keys_by_ref: t.Mapping[str, t.Iterable[str]] | None = None
) -> str:
    """A value-free listing of a bundle: one line per Secret with the names of its keys."""
    changed_keys_by_ref = changed_keys_by_ref or {}
    lines = []
    for secret in secrets:
        ref = secret_ref(secret)
        changed = set(changed_keys_by_ref.get(ref, ()))
        keys = ["%s (value changed)" % key if key in changed else key for key in sorted(secret.get("data") or {})]
        lines.append("%s: %s" % (ref, ", ".join(keys) if keys else "(no keys)"))
    return "\n".join(lines) + "\n" if lines else ""


# --------------------------------------------------------------------------- redaction


class ValueRedactor:
    """Scrubs Secret values (base64 and decoded) out of text shown to a person: it collects
    the values worth masking (``MIN_REDACTED_VALUE_LENGTH`` characters or more) and masks
    them with the collection's one :func:`redact` (overlapping values included)."""

    def __init__(self) -> None:
        self._values: set[str] = set()

    def learn(self, secrets: t.Iterable[t.Mapping[str, t.Any]]) -> None:
        for secret in secrets:
            for encoded in (secret.get("data") or {}).values():
                if not isinstance(encoded, str):
                    continue
                self._add(encoded)
                try:
                    decoded = base64.b64decode(encoded).decode("utf-8")
                except (binascii.Error, ValueError):
                    continue
                self._add(decoded)
                for line in decoded.splitlines():
                    self._add(line.strip())
            for text in (secret.get("stringData") or {}).values():
                if isinstance(text, str):
                    self._add(text)

    def _add(self, value: str) -> None:
        if len(value) >= MIN_REDACTED_VALUE_LENGTH:
            self._values.add(value)

    def redact(self, text: str) -> str:
        return redact(text, self._values)


# --------------------------------------------------------------------------- vault


def _vault_secrets_of_the_run(loader: t.Any) -> list[tuple[str, VaultSecret]]:
    """The vault secrets ansible-playbook was started with (--vault-id, --vault-password-file,
    an AWX vault credential)."""
    if VaultSecretsContext is not None:
        context = VaultSecretsContext.current(optional=True)
        if context is not None and context.secrets:
            return list(context.secrets)
    vault = getattr(loader, "_vault", None)
    return list(getattr(vault, "secrets", None) or [])


class VaultCodec:
    """ansible-vault encryption and decryption with one secret (and its optional vault id)."""

    def __init__(self, secret: VaultSecret, vault_id: str | None = None) -> None:
        self.secret = secret
        self.vault_id = vault_id or None
        self._vault = VaultLib(secrets=[(self.vault_id or "default", secret)])

    @classmethod
    def from_options(
        cls, password: str | None, password_file: str | None, vault_id: str | None, loader: t.Any
    ) -> VaultCodec:
        """From ``vault_password``, else ``vault_password_file`` (a file or an executable script,
        as ``--vault-password-file``), else the run's own vault secrets (matching ``vault_id``
        when given)."""
        if password is not None and password != "":
            return cls(VaultSecret(to_bytes(str(password), errors="surrogate_or_strict")), vault_id)
        if password_file:
            if not os.path.exists(password_file):
                raise SecretsBundleError("the vault password file %s does not exist" % password_file)
            try:
                file_secret = get_file_vault_secret(filename=password_file, vault_id=vault_id, loader=loader)
                file_secret.load()
            except AnsibleError as error:
                raise SecretsBundleError(
                    "cannot read the vault password from %s: %s" % (password_file, error.message)
                ) from None
            return cls(file_secret, vault_id)
        run_secrets = _vault_secrets_of_the_run(loader)
        if vault_id:
            run_secrets = [(label, secret) for label, secret in run_secrets if label == vault_id]
        if not run_secrets:
            raise SecretsBundleError(
                "no vault password: set vault_password or vault_password_file, or run ansible-playbook with "
                "--vault-id / --vault-password-file%s" % (" (vault id %s)" % vault_id if vault_id else "")
            )
        label, secret = run_secrets[0]
        return cls(secret, vault_id or (label if label != "default" else None))

    def encrypt(self, plaintext: bytes) -> bytes:
        return self._vault.encrypt(plaintext, secret=self.secret, vault_id=self.vault_id)

    def decrypt(self, vaulttext: bytes, what: str) -> bytes:
        """Decrypt ``vaulttext`` (the content of the file ``what``)."""
        if not is_encrypted(vaulttext):
            raise SecretsBundleError("%s is not an ansible-vault encrypted file" % what)
        try:
            return self._vault.decrypt(vaulttext)
        except AnsibleError:
            raise SecretsBundleError("%s cannot be decrypted with the given vault password" % what) from None


# --------------------------------------------------------------------------- files


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync_directory(directory: str) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_file_atomically(path: str, content: bytes, mode: int = 0o600) -> None:
    """Write ``content`` to a temporary file in the directory of ``path`` (created with
    ``mode``), fsync it, rename it over ``path`` and fsync the directory. ``path`` is either
    its old self or complete; a failure leaves no temporary file."""
    directory = os.path.dirname(os.path.abspath(path))
    descriptor, temp_path = tempfile.mkstemp(prefix=".%s." % os.path.basename(path), suffix=".partial", dir=directory)
    try:
        os.fchmod(descriptor, mode)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp_path, path)
    except BaseException:
        try:
            os.unlink(temp_path)
        except FileNotFoundError:
            pass
        raise
    _fsync_directory(directory)


def check_destination_directory(dest: str) -> None:
    directory = os.path.dirname(os.path.abspath(dest))
    if not os.path.isdir(directory):
        raise SecretsBundleError("the directory of dest, %s, does not exist" % directory)
    if os.path.isdir(dest):
        raise SecretsBundleError("dest %s is a directory; give the path of a file" % dest)
    if not os.access(directory, os.W_OK | os.X_OK):
        raise SecretsBundleError("the directory of dest, %s, is not writable" % directory)
