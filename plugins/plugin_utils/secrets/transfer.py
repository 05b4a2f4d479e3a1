# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Export Secrets from the Kubernetes API into a vault-encrypted bundle, and apply one back.

The action plugins ceres.rollout.secrets_export and ceres.rollout.secrets_restore only
validate their options and build the K8sClient and VaultCodec; everything they do is here:

* ``export_secrets``: list the Secrets of each namespace (paginated, optional label
  selector), leave out service-account tokens, build the bundle, compare it with what an
  existing ``dest`` decrypts to (same content: nothing is written), encrypt, write atomically.
* ``restore_secrets``: decrypt and parse a bundle, then for each Secret create it when
  missing, replace it when it differs, leave it alone when it matches, and skip it (with a
  reason) when the API server would refuse the change (immutable data, a different type).
  A Secret the API server refuses (403, 422, conflicts past the retries...) does not stop
  the others; the restore then raises ``RestoreIncomplete``, whose ``result`` says what was
  applied and what failed. Only an API server that stops answering, rejects the credentials
  or keeps throttling, or the task's ``timeout`` running out, stops the restore at that Secret.

Every request of an export or a restore, and every re-read after a conflict, shares the
client's one time budget (``timeout``).

Results and diffs hold names, key names, counts and reasons, never values.
"""

from __future__ import annotations

import copy
import os
import stat
import time
import typing as t
from dataclasses import dataclass, field

from ansible_collections.ceres.rollout.plugins.module_utils.common.errors import CeresError
from ansible_collections.ceres.rollout.plugins.module_utils.common.retry import (
    STOPPED_BY_ATTEMPTS,
    RetryPolicy,
    retry_call,
)
from ansible_collections.ceres.rollout.plugins.module_utils.k8s.client import (
    K8sClient,
    api_path,
    deadline_of,
)
from ansible_collections.ceres.rollout.plugins.module_utils.k8s.errors import (
    Conflict,
    Forbidden,
    K8sConnectionError,
    K8sError,
    NotFound,
    TooManyRequests,
    Unauthorized,
)
from ansible_collections.ceres.rollout.plugins.plugin_utils.secrets.bundle import (
    SecretsBundleError,
    ValueRedactor,
    VaultCodec,
    build_bundle,
    bundle_outline,
    changed_data_keys,
    check_destination_directory,
    export_skip_reason,
    file_sha256,
    never_transferred_reason,
    parse_bundle,
    secret_outline,
    secret_ref,
    serialize_bundle,
    write_file_atomically,
)

LIST_PAGE_SIZE = 250
EXPORT_FILE_MODE = 0o600
# Re-read and re-plan a Secret this many times when another writer changes it under us
# (a short jittered pause between attempts, all within the task's timeout).
MAX_CONFLICT_RETRIES = 3
CONFLICT_RETRY_POLICY = RetryPolicy(attempts=MAX_CONFLICT_RETRIES + 1, base_delay=0.05, max_delay=1.0, deadline=None)


def unique(values: t.Iterable[str]) -> list[str]:
    """The values in their first order, without repeats."""
    seen: set[str] = set()
    return [value for value in values if not (value in seen or seen.add(value))]


def missing_namespaces(client: K8sClient, namespaces: t.Iterable[str]) -> list[str]:
    """Namespaces the API server says do not exist. A namespace we may not read (403) counts
    as present: listing Secrets needs no right on the Namespace object itself."""
    missing = []
    for namespace in namespaces:
        try:
            client.get(api_path("v1", "namespaces", name=namespace))
        except NotFound:
            missing.append(namespace)
        except Forbidden:
            pass
    return missing


def require_namespaces(client: K8sClient, namespaces: t.Iterable[str], advice: str = "") -> None:
    """Raise :class:`SecretsBundleError` naming the namespaces that do not exist (see
    :func:`missing_namespaces`); ``advice`` follows the names, ``{them}`` in it read as
    "them" or "it"."""
    absent = missing_namespaces(client, namespaces)
    if absent:
        many = len(absent) > 1
        raise SecretsBundleError(
            "namespace%s not found: %s%s"
            % ("s" if many else "", ", ".join(absent), advice.format(them="them" if many else "it"))
        )


def list_namespace_secrets(
    client: K8sClient, namespace: str, label_selector: str | None = None, page_size: int | None = None
) -> list[dict[str, t.Any]]:
    """Every Secret of a namespace (following ``continue`` tokens), with apiVersion and kind set."""
    page_size = page_size or LIST_PAGE_SIZE
    secrets: list[dict[str, t.Any]] = []
    continue_token = None
    while True:
        page = (
            client.get(
                api_path("v1", "secrets", namespace),
                query={"limit": page_size, "continue": continue_token, "labelSelector": label_selector or None},
            )
            or {}
        )
        for item in page.get("items") or []:
            item.setdefault("apiVersion", "v1")
            item.setdefault("kind", "Secret")
            secrets.append(item)
        continue_token = (page.get("metadata") or {}).get("continue")
        if not continue_token:
            return secrets


def skipped_entry(secret: t.Mapping[str, t.Any], reason: str) -> dict[str, str]:
    metadata = secret.get("metadata") or {}
    return {"namespace": metadata.get("namespace"), "name": metadata.get("name"), "reason": reason}


# --------------------------------------------------------------------------- export


@dataclass(frozen=True)
class ExportRequest:
    namespaces: list[str]
    dest: str
    label_selector: str | None = None
    force: bool = False


@dataclass
class ExistingExport:
    """What is at ``dest`` before the export: absent, or a bundle we can read."""

    exists: bool
    secrets: list[dict[str, t.Any]] | None = None
    mode: int | None = None


def read_existing_export(dest: str, codec: VaultCodec, force: bool) -> ExistingExport:
    """The Secrets in an existing ``dest``. A ``dest`` that is not a bundle this password opens
    is an error (it is left untouched) unless ``force``, which treats it as different."""
    if not os.path.lexists(dest):
        return ExistingExport(exists=False)
    mode = stat.S_IMODE(os.stat(dest).st_mode)
    with open(dest, "rb") as handle:
        vaulttext = handle.read()
    try:
        secrets = parse_bundle(codec.decrypt(vaulttext, "dest %s" % dest))
    except SecretsBundleError as error:
        if force:
            return ExistingExport(exists=True, secrets=None, mode=mode)
        raise SecretsBundleError("%s; it was left untouched (force=true replaces it)" % error) from None
    return ExistingExport(exists=True, secrets=secrets, mode=mode)


def export_secrets(
    client: K8sClient,
    codec: VaultCodec,
    request: ExportRequest,
    check_mode: bool = False,
    diff: bool = False,
    redactor: ValueRedactor | None = None,
) -> dict[str, t.Any]:
    """Export the Secrets of ``request.namespaces`` to ``request.dest``; the module result."""
    redactor = redactor if redactor is not None else ValueRedactor()
    namespaces = unique(request.namespaces)
    check_destination_directory(request.dest)
    require_namespaces(client, namespaces)

    exported, skipped = [], []
    for namespace in namespaces:
        listed = list_namespace_secrets(client, namespace, request.label_selector)
        redactor.learn(listed)
        for secret in listed:
            reason = export_skip_reason(secret)
            if reason:
                skipped.append(skipped_entry(secret, reason))
            else:
                exported.append(secret)

    bundle = build_bundle(exported)
    secrets = bundle["items"]
    existing = read_existing_export(request.dest, codec, request.force)
    if existing.secrets is not None:
        redactor.learn(existing.secrets)
    content_changed = existing.secrets != secrets
    mode_changed = existing.exists and not content_changed and existing.mode != EXPORT_FILE_MODE

    if not check_mode:
        if content_changed:
            write_file_atomically(request.dest, codec.encrypt(serialize_bundle(bundle)), EXPORT_FILE_MODE)
        elif mode_changed:
            os.chmod(request.dest, EXPORT_FILE_MODE)

    result: dict[str, t.Any] = {
        "changed": content_changed or mode_changed,
        "dest": request.dest,
        "count": len(secrets),
        "namespaces": {
            namespace: {
                "count": sum(1 for secret in secrets if secret["metadata"]["namespace"] == namespace),
                "names": [
                    secret["metadata"]["name"] for secret in secrets if secret["metadata"]["namespace"] == namespace
                ],
            }
            for namespace in namespaces
        },
        "skipped_secrets": skipped,
    }
    if os.path.exists(request.dest) and not (check_mode and content_changed):
        result["sha256"] = file_sha256(request.dest)
    if diff and content_changed:
        before_by_ref = {secret_ref(secret): secret for secret in existing.secrets or []}
        changed_keys = {
            secret_ref(secret): changed_data_keys(before_by_ref.get(secret_ref(secret)), secret) for secret in secrets
        }
        result["diff"] = {
            "before_header": "%s (Secrets and keys, decrypted)" % request.dest,
            "after_header": "%s (Secrets and keys, decrypted)" % request.dest,
            "before": bundle_outline(existing.secrets or [])
            if existing.secrets is not None
            else ("(not readable with this vault password)\n" if existing.exists else ""),
            "after": bundle_outline(secrets, changed_keys),
        }
    return result


# --------------------------------------------------------------------------- restore

CREATE, REPLACE, UNCHANGED, SKIP = "create", "replace", "unchanged", "skip"


@dataclass
class RestoreStep:
    """What to do with one Secret of a bundle, given the live one."""

    action: str
    desired: dict[str, t.Any]
    live: dict[str, t.Any] | None = None
    body: dict[str, t.Any] | None = None
    reason: str = ""
    changed_keys: list[str] = field(default_factory=list)

    @property
    def ref(self) -> str:
        return secret_ref(self.desired)


def _data_differences(desired: t.Mapping[str, t.Any], live: t.Mapping[str, t.Any]) -> list[str]:
    """Key names whose presence or value differs between two Secrets."""
    desired_data, live_data = desired.get("data") or {}, live.get("data") or {}
    return sorted(key for key in set(desired_data) | set(live_data) if desired_data.get(key) != live_data.get(key))


def _missing_entries(wanted: t.Mapping[str, str], present: t.Mapping[str, str]) -> bool:
    return any(present.get(key) != value for key, value in wanted.items())


def _refusal(desired: t.Mapping[str, t.Any], live: t.Mapping[str, t.Any], data_differences: list[str]) -> str | None:
    """Why the API server would refuse to bring ``live`` to ``desired`` (the skip's reason), or
    ``None`` when it would not."""
    live_type = live.get("type") or "Opaque"
    if live_type != desired.get("type"):
        return (
            "its type is %s in the cluster and %s in the backup, and the type of a Secret cannot change; "
            "delete it first to restore the backup's" % (live_type, desired.get("type"))
        )
    if live.get("immutable") and data_differences:
        return (
            "immutable in the cluster and its data differ from the backup (keys: %s); "
            "delete it first to restore the backup's version" % ", ".join(data_differences)
        )
    if live.get("immutable") and not desired.get("immutable"):
        return (
            "immutable in the cluster but mutable in the backup, and immutability cannot be undone; "
            "delete it first to restore the backup's version"
        )
    return None


def plan_secret_restore(desired: dict[str, t.Any], live: dict[str, t.Any] | None) -> RestoreStep:
    """Decide how to bring the live Secret to the bundle's.

    In sync means: same ``type`` and ``data``, immutable when the bundle's is, and every label
    and annotation of the bundle present with its value (labels and annotations added in the
    cluster since the export are kept). A difference is fixed with a full replace (PUT, with
    the live ``resourceVersion``) unless the API server would refuse it: a Secret's ``type``
    never changes, and an immutable Secret's data and immutability do not either. Those are
    skipped with the reason.
    """
    never = never_transferred_reason(desired)
    if never:
        return RestoreStep(SKIP, desired, live, reason=never)
    if live is None:
        return RestoreStep(CREATE, desired, body=copy.deepcopy(desired))

    live_metadata = live.get("metadata") or {}
    desired_metadata = desired["metadata"]
    data_differences = _data_differences(desired, live)
    live_immutable = bool(live.get("immutable"))
    type_differs = (live.get("type") or "Opaque") != desired.get("type")
    immutability_differs = bool(desired.get("immutable")) != live_immutable
    labels_differ = _missing_entries(desired_metadata.get("labels") or {}, live_metadata.get("labels") or {})
    annotations_differ = _missing_entries(
        desired_metadata.get("annotations") or {}, live_metadata.get("annotations") or {}
    )
    changed_keys = changed_data_keys(live, desired)

    if not (data_differences or type_differs or immutability_differs or labels_differ or annotations_differ):
        return RestoreStep(UNCHANGED, desired, live)
    refusal = _refusal(desired, live, data_differences)
    if refusal:
        # (With the data the same, as when only immutability differs, changed_keys is empty.)
        return RestoreStep(SKIP, desired, live, changed_keys=changed_keys, reason=refusal)

    body = copy.deepcopy(live)
    body.pop("status", None)
    body_metadata = body.setdefault("metadata", {})
    body_metadata.pop("managedFields", None)
    body_metadata["labels"] = {**(live_metadata.get("labels") or {}), **(desired_metadata.get("labels") or {})}
    body_metadata["annotations"] = {
        **(live_metadata.get("annotations") or {}),
        **(desired_metadata.get("annotations") or {}),
    }
    for name in ("labels", "annotations"):
        if not body_metadata[name]:
            del body_metadata[name]
    body["data"] = copy.deepcopy(desired.get("data") or {})
    body.pop("stringData", None)
    if desired.get("immutable"):
        body["immutable"] = True
    return RestoreStep(REPLACE, desired, live, body=body, changed_keys=changed_keys)


@dataclass(frozen=True)
class RestoreRequest:
    src: str
    namespaces: list[str] | None = None


def read_bundle(src: str, codec: VaultCodec) -> list[dict[str, t.Any]]:
    if not os.path.isfile(src):
        raise SecretsBundleError("src %s does not exist or is not a file" % src)
    with open(src, "rb") as handle:
        vaulttext = handle.read()
    return parse_bundle(codec.decrypt(vaulttext, "src %s" % src))


def _read_live_secret(client: K8sClient, namespace: str, name: str) -> dict[str, t.Any] | None:
    try:
        return client.get(api_path("v1", "secrets", namespace, name))
    except NotFound:
        return None


def _apply_step(client: K8sClient, step: RestoreStep) -> None:
    metadata = step.desired["metadata"]
    if step.action == CREATE:
        client.post(api_path("v1", "secrets", metadata["namespace"]), step.body)
    elif step.action == REPLACE:
        client.put(api_path("v1", "secrets", metadata["namespace"], metadata["name"]), step.body)


class SecretRestoreError(CeresError):
    """One Secret could not be restored. ``action`` is the write that failed (``create`` or
    ``replace``), or ``read`` when reading the live Secret failed; ``error`` the API error."""

    def __init__(self, desired: dict[str, t.Any], action: str, error: K8sError, note: str = "") -> None:
        super().__init__("%s: %s%s" % (secret_ref(desired), error, note))
        self.desired = desired
        self.action = action
        self.error = error
        self.note = note

    @property
    def write_outcome_unknown(self) -> bool:
        """The write was sent but no answer says whether it landed (no answer, or a 504)."""
        if self.action not in (CREATE, REPLACE):
            return False
        if isinstance(self.error, K8sConnectionError):
            return self.error.request_sent
        return self.error.status == 504

    @property
    def stops_the_restore(self) -> bool:
        """The failure is not about this Secret: the API server does not answer, rejects the
        credentials, or keeps throttling; the next Secrets would fail the same way."""
        return isinstance(self.error, (K8sConnectionError, Unauthorized, TooManyRequests))


class RestoreIncomplete(SecretsBundleError):
    """Some Secrets of the bundle could not be restored. ``result`` is the module result all
    the same: what was created, replaced, left alone and skipped, ``changed`` when any was
    applied, and ``failures`` (and ``not_attempted``) for the rest."""

    def __init__(self, message: str, result: dict[str, t.Any]) -> None:
        super().__init__(message)
        self.result = result


def restore_one_secret(
    client: K8sClient,
    desired: dict[str, t.Any],
    check_mode: bool,
    redactor: ValueRedactor | None = None,
    sleep: t.Callable[[float], None] = time.sleep,
) -> RestoreStep:
    """Plan and (unless check mode) apply one Secret, re-reading it after a conflict (at most
    ``MAX_CONFLICT_RETRIES`` times, within the client's deadline).

    Raises :class:`SecretRestoreError` when the API server refuses to read or write it."""
    metadata = desired["metadata"]
    planned: list[RestoreStep] = []

    def read_plan_apply() -> RestoreStep:
        try:
            live = _read_live_secret(client, metadata["namespace"], metadata["name"])
        except K8sError as error:
            raise SecretRestoreError(desired, "read", error) from error
        if live is not None and redactor is not None:
            redactor.learn([live])
        step = plan_secret_restore(desired, live)
        planned.append(step)
        if not check_mode and step.action not in (UNCHANGED, SKIP):
            _apply_step(client, step)  # a Conflict: created or changed by someone else since our read
        return step

    def kept_changing(error: BaseException, backoff: t.Any) -> SecretRestoreError:
        if backoff.stopped_by == STOPPED_BY_ATTEMPTS:
            why = "gave up after %d retries" % MAX_CONFLICT_RETRIES
        else:
            why = backoff.give_up_note()
        return SecretRestoreError(
            desired, planned[-1].action, error, note=(" (%s: it kept changing between our read and our write)" % why)
        )

    try:
        return retry_call(
            read_plan_apply,
            CONFLICT_RETRY_POLICY,
            lambda error: isinstance(error, Conflict),
            on_give_up=kept_changing,
            sleep=sleep,
            deadline=deadline_of(client),
        )
    except K8sError as error:
        raise SecretRestoreError(desired, planned[-1].action, error) from error


def _restore_diff(step: RestoreStep) -> dict[str, str]:
    return {
        "before_header": "Secret %s (cluster)" % step.ref,
        "after_header": "Secret %s (%s)" % (step.ref, "created" if step.action == CREATE else "replaced"),
        "before": secret_outline(step.live),
        "after": secret_outline(step.body, step.changed_keys),
    }


def _failure_entry(failure: SecretRestoreError, redactor: ValueRedactor) -> dict[str, t.Any]:
    reason = str(failure.error) + failure.note
    if failure.write_outcome_unknown:
        reason += " (no answer came back, so the write may have been applied; check the Secret)"
    entry = skipped_entry(failure.desired, redactor.redact(reason))
    entry.update(action=failure.action, status=failure.error.status)
    return entry


def _incomplete_message(result: t.Mapping[str, t.Any], check_mode: bool) -> str:
    failures, not_attempted = result["failures"], result["not_attempted"]
    parts = [
        "%d of %d Secrets could not be restored: %s"
        % (
            len(failures) + len(not_attempted),
            result["count"],
            "; ".join("%s/%s: %s" % (entry["namespace"], entry["name"], entry["reason"]) for entry in failures),
        )
    ]
    if not_attempted:
        parts.append("The restore stopped there; not attempted: %s" % ", ".join(not_attempted))
    parts.append(
        "%s: %s; %s: %s"
        % (
            "Would be created" if check_mode else "Created",
            ", ".join(result["created"]) or "none",
            "would be replaced" if check_mode else "replaced",
            ", ".join(result["replaced"]) or "none",
        )
    )
    return ". ".join(parts)


def restore_secrets(
    client: K8sClient,
    codec: VaultCodec,
    request: RestoreRequest,
    check_mode: bool = False,
    diff: bool = False,
    redactor: ValueRedactor | None = None,
) -> dict[str, t.Any]:
    """Apply the Secrets of the bundle ``request.src``; the module result.

    A Secret the API server refuses does not stop the others; once all were tried,
    :class:`RestoreIncomplete` is raised with the result (what was applied, and the failures).
    When the API server stops answering, rejects the credentials or keeps throttling, the
    restore stops at that Secret and the rest are reported as ``not_attempted``.
    """
    redactor = redactor if redactor is not None else ValueRedactor()
    secrets = read_bundle(request.src, codec)
    redactor.learn(secrets)
    warnings = []
    if request.namespaces is not None:
        wanted = unique(request.namespaces)
        in_bundle = {secret["metadata"]["namespace"] for secret in secrets}
        for namespace in wanted:
            if namespace not in in_bundle:
                warnings.append("the bundle %s holds no Secret of namespace %s" % (request.src, namespace))
        secrets = [secret for secret in secrets if secret["metadata"]["namespace"] in wanted]
    namespaces = unique(secret["metadata"]["namespace"] for secret in secrets)
    require_namespaces(client, namespaces, "; create {them} before restoring its Secrets (nothing was changed)")

    steps: list[RestoreStep] = []
    failures: list[SecretRestoreError] = []
    not_attempted: list[str] = []
    for index, secret in enumerate(secrets):
        try:
            steps.append(restore_one_secret(client, secret, check_mode, redactor))
        except SecretRestoreError as failure:
            failures.append(failure)
            if failure.stops_the_restore:
                not_attempted = [secret_ref(rest) for rest in secrets[index + 1 :]]
                break

    def refs(action: str) -> list[str]:
        return [step.ref for step in steps if step.action == action]

    result: dict[str, t.Any] = {
        "changed": (
            any(step.action in (CREATE, REPLACE) for step in steps)
            or any(failure.write_outcome_unknown for failure in failures)
        ),
        "src": request.src,
        "count": len(secrets),
        "created": refs(CREATE),
        "replaced": refs(REPLACE),
        "unchanged": refs(UNCHANGED),
        "skipped_secrets": [skipped_entry(step.desired, step.reason) for step in steps if step.action == SKIP],
        "failures": [_failure_entry(failure, redactor) for failure in failures],
        "not_attempted": not_attempted,
        "namespaces": {
            namespace: {
                action_name: sum(
                    1 for step in steps if step.action == action and step.desired["metadata"]["namespace"] == namespace
                )
                for action_name, action in (
                    ("created", CREATE),
                    ("replaced", REPLACE),
                    ("unchanged", UNCHANGED),
                    ("skipped", SKIP),
                )
            }
            for namespace in namespaces
        },
    }
    if warnings:
        result["warnings"] = warnings
    if diff:
        result["diff"] = [_restore_diff(step) for step in steps if step.action in (CREATE, REPLACE)]
    if failures:
        raise RestoreIncomplete(redactor.redact(_incomplete_message(result, check_mode)), result)
    return result
