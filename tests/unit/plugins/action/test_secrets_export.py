"""secrets_export and secrets_restore: stripping, service-account tokens, values never in
results, idempotence, and the restore plan, against an in-memory stand-in for the API."""

from __future__ import annotations

import base64
import copy
import json
import os
import stat
from unittest import mock

import pytest
from ansible.errors import AnsibleActionFail
from ansible.parsing.dataloader import DataLoader
from ansible.parsing.vault import VaultLib, VaultSecret
from ansible.playbook.task import Task

from ansible_collections.ceres.rollout.plugins.action import secrets_export as export_action
from ansible_collections.ceres.rollout.plugins.action import secrets_restore as restore_action
from ansible_collections.ceres.rollout.plugins.module_utils.k8s.client import (
    K8sClient,
)
from ansible_collections.ceres.rollout.plugins.module_utils.k8s.errors import (
    Conflict,
    Invalid,
    NotFound,
)
from ansible_collections.ceres.rollout.plugins.plugin_utils.secrets import bundle as secrets_bundle
from ansible_collections.ceres.rollout.plugins.plugin_utils.secrets import transfer as secrets_transfer
from ansible_collections.ceres.rollout.plugins.plugin_utils.secrets.bundle import (
    LAST_APPLIED_ANNOTATION,
    SecretsBundleError,
    ValueRedactor,
    VaultCodec,
    exportable_secret,
    parse_bundle,
)
from ansible_collections.ceres.rollout.plugins.plugin_utils.secrets.transfer import (
    CREATE,
    REPLACE,
    SKIP,
    UNCHANGED,
    ExportRequest,
    RestoreRequest,
    export_secrets,
    plan_secret_restore,
    restore_secrets,
)

PASSWORD = "unit-vault-password"
# Values that must never show up in a result, a diff or a message.
DB_PASSWORD = "S3cr3t-Pa55w0rd-never-shown"
API_KEY = "api-key-0123456789abcdef"
SIGNING_KEY = "-----BEGIN KEY-----\nMIIEvQIBADANBgkqh\n-----END KEY-----"
SA_TOKEN = "eyJhbGciOiJSUzI1NiJ9.service-account-token"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def live_secret(namespace, name, data, secret_type="Opaque", **extra):
    """A Secret as the API server returns it, with every server-managed field set."""
    metadata = {
        "name": name,
        "namespace": namespace,
        "uid": "uid-%s" % name,
        "resourceVersion": "41",
        "creationTimestamp": "2026-01-31T09:30:00Z",
        "generation": 1,
        "selfLink": "/api/v1/x",
        "managedFields": [{"manager": "kubectl-client-side-apply", "operation": "Update"}],
        "labels": {"app.kubernetes.io/part-of": "ceres"},
        "annotations": {LAST_APPLIED_ANNOTATION: json.dumps({"data": data}), "team": "payments"},
    }
    metadata.update(extra.pop("metadata", {}))
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata,
        "type": secret_type,
        "data": {key: b64(value) for key, value in data.items()},
    }
    secret.update(extra)
    return secret


class FakeKube:
    """Namespaces and Secrets in memory, speaking K8sClient's get/post/put by path."""

    def __init__(self, namespaces, secrets=()):
        self.namespaces = set(namespaces)
        self.secrets = {(s["metadata"]["namespace"], s["metadata"]["name"]): copy.deepcopy(s) for s in secrets}
        self.calls = []
        self.version = 100
        self.conflicts_to_raise = 0

    def _split(self, path):
        parts = path.strip("/").split("/")
        # /api/v1/namespaces/NS[/secrets[/NAME]]
        assert parts[:3] == ["api", "v1", "namespaces"], path
        namespace = parts[3]
        name = parts[5] if len(parts) > 5 else None
        return namespace, len(parts) > 4, name

    def get(self, path, query=None):
        self.calls.append(("GET", path, dict(query or {})))
        namespace, is_secrets, name = self._split(path)
        if not is_secrets:
            if namespace not in self.namespaces:
                raise NotFound("GET %s: 404 NotFound" % path, status=404, details={"name": namespace})
            return {"metadata": {"name": namespace}}
        if name:
            if (namespace, name) not in self.secrets:
                raise NotFound("GET %s: 404 NotFound" % path, status=404, details={"name": name})
            return copy.deepcopy(self.secrets[(namespace, name)])
        selector = (query or {}).get("labelSelector")
        items = [copy.deepcopy(secret) for (ns, _name), secret in sorted(self.secrets.items()) if ns == namespace]
        if selector:
            key, _equals, value = selector.partition("=")
            items = [s for s in items if (s["metadata"].get("labels") or {}).get(key) == value]
        for item in items:  # a list answer carries no apiVersion/kind per item
            item.pop("apiVersion", None)
            item.pop("kind", None)
        start = int((query or {}).get("continue") or 0)
        limit = int((query or {}).get("limit") or len(items) or 1)
        page = items[start : start + limit]
        following = start + limit
        return {
            "kind": "SecretList",
            "metadata": {"continue": str(following) if following < len(items) else None},
            "items": page,
        }

    def _stored(self, body):
        stored = copy.deepcopy(body)
        self.version += 1
        stored["metadata"].update(
            uid="uid-%s" % body["metadata"]["name"],
            resourceVersion=str(self.version),
            creationTimestamp="2026-02-01T00:00:00Z",
        )
        return stored

    def post(self, path, body, query=None):
        self.calls.append(("POST", path, body))
        namespace, _is_secrets, _name = self._split(path)
        key = (namespace, body["metadata"]["name"])
        if key in self.secrets:
            raise Conflict("POST %s: 409 AlreadyExists" % path, status=409)
        self.secrets[key] = self._stored(body)
        return copy.deepcopy(self.secrets[key])

    def put(self, path, body, query=None):
        self.calls.append(("PUT", path, body))
        namespace, _is_secrets, name = self._split(path)
        current = self.secrets[(namespace, name)]
        if self.conflicts_to_raise:
            self.conflicts_to_raise -= 1
            current["metadata"]["resourceVersion"] = str(int(current["metadata"]["resourceVersion"]) + 1)
            raise Conflict("PUT %s: 409 Conflict" % path, status=409)
        if body["metadata"].get("resourceVersion") != current["metadata"]["resourceVersion"]:
            raise Conflict("PUT %s: 409 Conflict" % path, status=409)
        if current.get("immutable") and (body.get("data") != current.get("data") or not body.get("immutable")):
            raise Invalid("PUT %s: 422 Invalid: field is immutable when `immutable` is set" % path, status=422)
        self.secrets[(namespace, name)] = self._stored(body)
        return copy.deepcopy(self.secrets[(namespace, name)])

    def writes(self):
        return [call for call in self.calls if call[0] in ("POST", "PUT")]

    def close(self):
        pass


def ceres_secrets():
    return [
        live_secret(
            "ceres-system",
            "ceres-db-credentials",
            {"username": "ceres", "password": DB_PASSWORD},
            metadata={
                "ownerReferences": [{"kind": "Deployment", "name": "postgres-main", "uid": "u1"}],
                "finalizers": ["example.com/keep"],
            },
        ),
        live_secret("ceres-system", "ceres-api-keys", {"payments-api-key": API_KEY}),
        live_secret("ceres-system", "ceres-jwt-signing", {"signing-key": SIGNING_KEY}),
        live_secret(
            "ceres-system",
            "default-token-abcde",
            {"token": SA_TOKEN},
            secret_type="kubernetes.io/service-account-token",
            metadata={"annotations": {"kubernetes.io/service-account.name": "default"}},
        ),
    ]


def all_secret_values():
    values = [DB_PASSWORD, API_KEY, SIGNING_KEY, SA_TOKEN, "MIIEvQIBADANBgkqh"]
    return values + [b64(value) for value in values[:4]]


def assert_no_values(text):
    for value in all_secret_values():
        assert value not in text


@pytest.fixture
def codec():
    return VaultCodec(VaultSecret(PASSWORD.encode()))


@pytest.fixture
def kube():
    return FakeKube(["ceres-system", "pilot-apps"], ceres_secrets())


def decrypt_file(path, password=PASSWORD):
    with open(path, "rb") as handle:
        return VaultLib([("default", VaultSecret(password.encode()))]).decrypt(handle.read())


# --------------------------------------------------------------------------- stripping


def test_exportable_secret_keeps_only_declared_fields():
    exported = exportable_secret(ceres_secrets()[0])
    assert exported == {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": "ceres-db-credentials",
            "namespace": "ceres-system",
            "labels": {"app.kubernetes.io/part-of": "ceres"},
            "annotations": {"team": "payments"},
        },
        "data": {"username": b64("ceres"), "password": b64(DB_PASSWORD)},
    }


def test_exportable_secret_drops_every_server_managed_field_and_the_last_applied_annotation():
    exported = exportable_secret(ceres_secrets()[0])
    for dropped in (
        "uid",
        "resourceVersion",
        "creationTimestamp",
        "managedFields",
        "generation",
        "selfLink",
        "ownerReferences",
        "finalizers",
    ):
        assert dropped not in exported["metadata"]
    assert LAST_APPLIED_ANNOTATION not in exported["metadata"]["annotations"]


def test_exportable_secret_folds_string_data_and_keeps_immutability():
    secret = live_secret("ns", "mixed", {"a": "one"}, immutable=True, stringData={"b": "two"})
    exported = exportable_secret(secret)
    assert exported["data"] == {"a": b64("one"), "b": b64("two")}
    assert exported["immutable"] is True
    assert "stringData" not in exported


def test_exportable_secret_without_annotations_left_has_no_annotations_key():
    secret = live_secret("ns", "plain", {"a": "x"}, metadata={"annotations": {LAST_APPLIED_ANNOTATION: "{}"}})
    assert "annotations" not in exportable_secret(secret)["metadata"]


def test_a_value_that_is_not_base64_is_refused_by_key_name_only():
    secret = live_secret("ns", "broken", {})
    secret["data"] = {"token": "not base64 " + DB_PASSWORD}
    with pytest.raises(SecretsBundleError) as error:
        exportable_secret(secret)
    assert "token" in str(error.value)
    assert DB_PASSWORD not in str(error.value)


# --------------------------------------------------------------------------- export


def test_export_writes_an_encrypted_0600_bundle_without_service_account_tokens(tmp_path, kube, codec):
    dest = str(tmp_path / "secrets.vault")
    result = export_secrets(kube, codec, ExportRequest(namespaces=["ceres-system"], dest=dest))

    assert result["changed"] is True
    assert result["count"] == 3
    assert result["namespaces"] == {
        "ceres-system": {"count": 3, "names": ["ceres-api-keys", "ceres-db-credentials", "ceres-jwt-signing"]}
    }
    assert [(entry["namespace"], entry["name"]) for entry in result["skipped_secrets"]] == [
        ("ceres-system", "default-token-abcde")
    ]
    assert "service-account token" in result["skipped_secrets"][0]["reason"]
    assert stat.S_IMODE(os.stat(dest).st_mode) == 0o600
    with open(dest, "rb") as handle:
        assert handle.read().startswith(b"$ANSIBLE_VAULT;1.1;AES256")
    bundle = json.loads(decrypt_file(dest))
    assert bundle["kind"] == "List"
    assert [item["metadata"]["name"] for item in bundle["items"]] == [
        "ceres-api-keys",
        "ceres-db-credentials",
        "ceres-jwt-signing",
    ]
    assert result["sha256"] == secrets_bundle.file_sha256(dest)
    assert os.listdir(tmp_path) == ["secrets.vault"]  # no temporary file left


def test_export_result_and_diff_hold_no_value(tmp_path, kube, codec):
    dest = str(tmp_path / "secrets.vault")
    result = export_secrets(kube, codec, ExportRequest(namespaces=["ceres-system"], dest=dest), diff=True)
    text = json.dumps(result)
    assert_no_values(text)
    assert "ceres-db-credentials: database" not in text  # keys, not invented ones
    assert "ceres-system/ceres-db-credentials: password, username" in result["diff"]["after"]

    kube.secrets[("ceres-system", "ceres-db-credentials")]["data"]["password"] = b64("rotated-" + DB_PASSWORD)
    second = export_secrets(kube, codec, ExportRequest(namespaces=["ceres-system"], dest=dest), diff=True)
    assert second["changed"] is True
    assert "password (value changed)" in second["diff"]["after"]
    assert_no_values(json.dumps(second))
    assert "rotated-" not in json.dumps(second)


def test_second_export_of_the_same_secrets_is_unchanged_and_does_not_rewrite(tmp_path, kube, codec):
    dest = str(tmp_path / "secrets.vault")
    first = export_secrets(kube, codec, ExportRequest(namespaces=["ceres-system"], dest=dest))
    before = os.stat(dest)
    # The API answers in another order and with new resourceVersions: same content.
    for secret in kube.secrets.values():
        secret["metadata"]["resourceVersion"] = "999"
        secret["metadata"]["managedFields"].append({"manager": "other"})
    second = export_secrets(kube, codec, ExportRequest(namespaces=["ceres-system"], dest=dest))
    assert second["changed"] is False
    assert second["sha256"] == first["sha256"]
    after = os.stat(dest)
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_a_changed_label_or_a_new_secret_changes_the_export(tmp_path, kube, codec):
    dest = str(tmp_path / "secrets.vault")
    export_secrets(kube, codec, ExportRequest(namespaces=["ceres-system"], dest=dest))
    kube.secrets[("ceres-system", "ceres-api-keys")]["metadata"]["labels"]["tier"] = "gold"
    assert export_secrets(kube, codec, ExportRequest(namespaces=["ceres-system"], dest=dest))["changed"] is True
    kube.secrets[("ceres-system", "new-one")] = live_secret("ceres-system", "new-one", {"k": "value-new"})
    result = export_secrets(kube, codec, ExportRequest(namespaces=["ceres-system"], dest=dest))
    assert result["changed"] is True and result["count"] == 4


def test_unchanged_content_with_a_loose_mode_is_tightened_and_reported(tmp_path, kube, codec):
    dest = str(tmp_path / "secrets.vault")
    export_secrets(kube, codec, ExportRequest(namespaces=["ceres-system"], dest=dest))
    os.chmod(dest, 0o644)
    result = export_secrets(kube, codec, ExportRequest(namespaces=["ceres-system"], dest=dest))
    assert result["changed"] is True
    assert stat.S_IMODE(os.stat(dest).st_mode) == 0o600


def test_check_mode_writes_nothing_and_predicts_the_change(tmp_path, kube, codec):
    dest = str(tmp_path / "secrets.vault")
    result = export_secrets(kube, codec, ExportRequest(namespaces=["ceres-system"], dest=dest), check_mode=True)
    assert result["changed"] is True
    assert "sha256" not in result
    assert not os.path.exists(dest)
    export_secrets(kube, codec, ExportRequest(namespaces=["ceres-system"], dest=dest))
    assert (
        export_secrets(kube, codec, ExportRequest(namespaces=["ceres-system"], dest=dest), check_mode=True)["changed"]
        is False
    )


def test_dest_encrypted_with_another_password_is_left_untouched_unless_force(tmp_path, kube, codec):
    dest = str(tmp_path / "secrets.vault")
    other = VaultCodec(VaultSecret(b"another-password"))
    export_secrets(kube, other, ExportRequest(namespaces=["ceres-system"], dest=dest))
    with open(dest, "rb") as handle:
        original = handle.read()
    with pytest.raises(SecretsBundleError, match="cannot be decrypted.*left untouched"):
        export_secrets(kube, codec, ExportRequest(namespaces=["ceres-system"], dest=dest))
    with open(dest, "rb") as handle:
        assert handle.read() == original
    result = export_secrets(kube, codec, ExportRequest(namespaces=["ceres-system"], dest=dest, force=True))
    assert result["changed"] is True
    assert json.loads(decrypt_file(dest))["items"]


def test_plaintext_dest_is_refused(tmp_path, kube, codec):
    dest = tmp_path / "secrets.vault"
    dest.write_text("not encrypted")
    with pytest.raises(SecretsBundleError, match="not an ansible-vault"):
        export_secrets(kube, codec, ExportRequest(namespaces=["ceres-system"], dest=str(dest)))


def test_label_selector_and_pagination_are_followed(tmp_path, codec, monkeypatch):
    secrets = [live_secret("big", "secret-%03d" % index, {"k": "value-%d" % index}) for index in range(12)]
    secrets.append(live_secret("big", "unlabelled", {"k": "x"}, metadata={"labels": {}}))
    kube = FakeKube(["big"], secrets)
    monkeypatch.setattr(secrets_transfer, "LIST_PAGE_SIZE", 5)
    result = export_secrets(
        kube,
        codec,
        ExportRequest(
            namespaces=["big"], dest=str(tmp_path / "b.vault"), label_selector="app.kubernetes.io/part-of=ceres"
        ),
    )
    assert result["count"] == 12
    list_calls = [call for call in kube.calls if call[1] == "/api/v1/namespaces/big/secrets"]
    assert len(list_calls) == 3
    assert all(call[2]["labelSelector"] == "app.kubernetes.io/part-of=ceres" for call in list_calls)


def test_a_missing_namespace_is_an_error_and_nothing_is_written(tmp_path, kube, codec):
    dest = str(tmp_path / "secrets.vault")
    with pytest.raises(SecretsBundleError, match="namespace not found: nowhere"):
        export_secrets(kube, codec, ExportRequest(namespaces=["ceres-system", "nowhere"], dest=dest))
    assert not os.path.exists(dest)


def test_a_missing_destination_directory_is_an_error(tmp_path, kube, codec):
    with pytest.raises(SecretsBundleError, match="does not exist"):
        export_secrets(kube, codec, ExportRequest(namespaces=["ceres-system"], dest=str(tmp_path / "no" / "f")))


def test_redactor_scrubs_values_from_foreign_messages():
    redactor = ValueRedactor()
    redactor.learn(ceres_secrets())
    message = 'Secret "x" is invalid: data[password]: Invalid value: "%s" and %s' % (DB_PASSWORD, b64(API_KEY))
    redacted = redactor.redact(message)
    assert_no_values(redacted)
    assert "data[password]" in redacted


def test_redactor_masks_overlapping_values_whole_and_leaves_short_ones():
    """Two values overlapping in the text ("abcdef" and "defgh" in "abcdefgh") leave no tail;
    values under MIN_REDACTED_VALUE_LENGTH are not collected (masking every "on" would garble
    the text while protecting nothing)."""
    redactor = ValueRedactor()
    redactor.learn([live_secret("ns", "a", {"first": "abcdef", "second": "defgh", "flag": "on"})])
    assert redactor.redact("got abcdefgh, flag on") == "got ********, flag on"


def test_parse_bundle_errors_never_quote_content():
    with pytest.raises(SecretsBundleError) as error:
        parse_bundle(('{"items": [ "%s" ' % DB_PASSWORD).encode())
    assert DB_PASSWORD not in str(error.value)
    with pytest.raises(SecretsBundleError, match="twice"):
        secret = exportable_secret(ceres_secrets()[1])
        parse_bundle(json.dumps({"kind": "List", "items": [secret, secret]}).encode())


# --------------------------------------------------------------------------- vault


def test_vault_codec_reads_a_password_file_and_labels_the_vault_id(tmp_path):
    password_file = tmp_path / "vault-password"
    password_file.write_text(PASSWORD + "\n")
    codec = VaultCodec.from_options(None, str(password_file), "backup", DataLoader())
    vaulttext = codec.encrypt(b"hello")
    assert vaulttext.startswith(b"$ANSIBLE_VAULT;1.2;AES256;backup")
    assert VaultCodec(VaultSecret(PASSWORD.encode())).decrypt(vaulttext, "x") == b"hello"


def test_vault_codec_without_any_password_says_how_to_give_one(monkeypatch):
    monkeypatch.setattr(secrets_bundle, "_vault_secrets_of_the_run", lambda loader: [])
    with pytest.raises(SecretsBundleError, match="no vault password"):
        VaultCodec.from_options(None, None, None, DataLoader())
    with pytest.raises(SecretsBundleError, match="does not exist"):
        VaultCodec.from_options(None, "/nonexistent/vault-password", None, DataLoader())


def test_vault_codec_uses_the_runs_vault_secret_matching_the_vault_id(monkeypatch):
    run_secrets = [("dev", VaultSecret(b"dev-password")), ("prod", VaultSecret(b"prod-password"))]
    monkeypatch.setattr(secrets_bundle, "_vault_secrets_of_the_run", lambda loader: run_secrets)
    codec = VaultCodec.from_options(None, None, "prod", DataLoader())
    assert VaultCodec(VaultSecret(b"prod-password")).decrypt(codec.encrypt(b"x"), "x") == b"x"


# --------------------------------------------------------------------------- restore plan


def desired(name="app", data=None, **extra):
    return exportable_secret(live_secret("ceres-system", name, data or {"k": "v1-value"}, **extra))


def test_plan_creates_a_missing_secret():
    step = plan_secret_restore(desired(), None)
    assert step.action == CREATE and step.body == desired()


def test_plan_leaves_a_matching_secret_alone_even_with_extra_labels_and_server_fields():
    live = live_secret(
        "ceres-system",
        "app",
        {"k": "v1-value"},
        metadata={"labels": {"app.kubernetes.io/part-of": "ceres", "added-later": "yes"}},
    )
    assert plan_secret_restore(desired(), live).action == UNCHANGED


def test_plan_replaces_different_data_keeping_live_metadata():
    live = live_secret(
        "ceres-system",
        "app",
        {"k": "v2-value", "extra": "e-value"},
        metadata={"ownerReferences": [{"uid": "u"}], "labels": {"added-later": "yes"}},
    )
    step = plan_secret_restore(desired(), live)
    assert step.action == REPLACE
    assert step.body["data"] == {"k": b64("v1-value")}
    assert step.body["metadata"]["resourceVersion"] == "41"
    assert step.body["metadata"]["ownerReferences"] == [{"uid": "u"}]
    assert step.body["metadata"]["labels"] == {"added-later": "yes", "app.kubernetes.io/part-of": "ceres"}
    assert "managedFields" not in step.body["metadata"]
    assert step.changed_keys == ["k"]


def test_plan_skips_an_immutable_secret_whose_data_differ():
    live = live_secret("ceres-system", "app", {"k": "v2-value"}, immutable=True)
    step = plan_secret_restore(desired(immutable=True), live)
    assert step.action == SKIP
    assert "immutable" in step.reason and "keys: k" in step.reason
    assert "v2-value" not in step.reason and "v1-value" not in step.reason


def test_plan_updates_only_the_labels_of_an_immutable_secret_with_the_same_data():
    live = live_secret("ceres-system", "app", {"k": "v1-value"}, immutable=True, metadata={"labels": {}})
    step = plan_secret_restore(desired(immutable=True), live)
    assert step.action == REPLACE and step.body["immutable"] is True


def test_plan_skips_a_type_change_and_an_immutable_secret_the_backup_has_as_mutable():
    assert (
        plan_secret_restore(
            desired(), live_secret("ceres-system", "app", {"k": "v1-value"}, secret_type="kubernetes.io/tls")
        ).action
        == SKIP
    )
    step = plan_secret_restore(desired(), live_secret("ceres-system", "app", {"k": "v1-value"}, immutable=True))
    assert step.action == SKIP and "mutable in the backup" in step.reason


# --------------------------------------------------------------------------- restore


@pytest.fixture
def exported(tmp_path, kube, codec):
    dest = str(tmp_path / "secrets.vault")
    export_secrets(kube, codec, ExportRequest(namespaces=["ceres-system"], dest=dest))
    return dest


def test_restore_round_trip_recreates_deleted_secrets_with_identical_data(exported, kube, codec):
    original = {key: copy.deepcopy(value) for key, value in kube.secrets.items()}
    del kube.secrets[("ceres-system", "ceres-db-credentials")]
    kube.secrets[("ceres-system", "ceres-api-keys")]["data"]["payments-api-key"] = b64("tampered")

    result = restore_secrets(kube, codec, RestoreRequest(src=exported), diff=True)
    assert result["changed"] is True
    assert result["created"] == ["ceres-system/ceres-db-credentials"]
    assert result["replaced"] == ["ceres-system/ceres-api-keys"]
    assert result["unchanged"] == ["ceres-system/ceres-jwt-signing"]
    assert result["namespaces"] == {"ceres-system": {"created": 1, "replaced": 1, "unchanged": 1, "skipped": 0}}
    for key in ("ceres-db-credentials", "ceres-api-keys"):
        assert kube.secrets[("ceres-system", key)]["data"] == original[("ceres-system", key)]["data"]
    text = json.dumps(result)
    assert_no_values(text)
    assert "tampered" not in text and b64("tampered") not in text
    diff_by_secret = {entry["before_header"]: entry for entry in result["diff"]}
    assert "payments-api-key (value changed)" in diff_by_secret["Secret ceres-system/ceres-api-keys (cluster)"]["after"]
    assert diff_by_secret["Secret ceres-system/ceres-db-credentials (cluster)"]["before"] == ""

    again = restore_secrets(kube, codec, RestoreRequest(src=exported))
    assert again["changed"] is False and len(again["unchanged"]) == 3


def test_restore_check_mode_changes_nothing(exported, kube, codec):
    del kube.secrets[("ceres-system", "ceres-db-credentials")]
    result = restore_secrets(kube, codec, RestoreRequest(src=exported), check_mode=True)
    assert result["changed"] is True and result["created"] == ["ceres-system/ceres-db-credentials"]
    assert kube.writes() == []


def test_restore_skips_an_immutable_conflict_and_applies_the_rest(exported, kube, codec):
    jwt = kube.secrets[("ceres-system", "ceres-jwt-signing")]
    jwt["immutable"] = True
    jwt["data"]["signing-key"] = b64("a newer signing key")
    del kube.secrets[("ceres-system", "ceres-api-keys")]
    result = restore_secrets(kube, codec, RestoreRequest(src=exported))
    assert result["created"] == ["ceres-system/ceres-api-keys"]
    assert [entry["name"] for entry in result["skipped_secrets"]] == ["ceres-jwt-signing"]
    assert "immutable" in result["skipped_secrets"][0]["reason"]
    assert jwt["data"]["signing-key"] == b64("a newer signing key")


def test_restore_filters_namespaces_and_warns_about_one_not_in_the_bundle(exported, kube, codec):
    result = restore_secrets(kube, codec, RestoreRequest(src=exported, namespaces=["pilot-apps"]))
    assert result["count"] == 0
    assert result["warnings"] == ["the bundle %s holds no Secret of namespace pilot-apps" % exported]


def test_restore_into_a_missing_namespace_fails_before_any_write(exported, codec):
    kube = FakeKube(["other"])
    with pytest.raises(SecretsBundleError, match="namespace not found: ceres-system"):
        restore_secrets(kube, codec, RestoreRequest(src=exported))
    assert kube.writes() == []


def test_restore_rereads_after_a_conflict(exported, kube, codec):
    kube.secrets[("ceres-system", "ceres-api-keys")]["data"]["payments-api-key"] = b64("tampered")
    kube.conflicts_to_raise = 1
    result = restore_secrets(kube, codec, RestoreRequest(src=exported))
    assert result["replaced"] == ["ceres-system/ceres-api-keys"]
    assert len([call for call in kube.calls if call[0] == "PUT"]) == 2


def test_restore_with_the_wrong_password_fails_without_content(exported, kube):
    with pytest.raises(SecretsBundleError, match="cannot be decrypted"):
        restore_secrets(kube, VaultCodec(VaultSecret(b"wrong")), RestoreRequest(src=exported))


# --------------------------------------------------------------------------- the action plugins


def make_action(action_class, args, check_mode=False, diff=False):
    task = Task()
    task.args = args
    task.check_mode = check_mode
    task.diff = diff
    connection = mock.MagicMock()
    connection._shell.tmpdir = "/tmp"
    return action_class(task, connection, mock.MagicMock(), DataLoader(), mock.MagicMock())


@pytest.fixture
def fake_kube_for_actions(kube, monkeypatch):
    monkeypatch.setattr(K8sClient, "from_auth", classmethod(lambda cls, auth, **kwargs: kube))
    for variable in ("K8S_AUTH_HOST", "K8S_AUTH_API_KEY", "K8S_AUTH_KUBECONFIG", "K8S_AUTH_CONTEXT"):
        monkeypatch.delenv(variable, raising=False)
    return kube


def test_action_plugins_export_and_restore_without_values_in_results(tmp_path, fake_kube_for_actions):
    dest = str(tmp_path / "secrets.vault")
    args = {"namespaces": ["ceres-system"], "dest": dest, "vault_password": PASSWORD}
    result = make_action(export_action.ActionModule, dict(args), diff=True).run(task_vars={})
    assert result.get("failed") is not True, result
    assert result["changed"] is True and result["count"] == 3
    assert_no_values(json.dumps(result))
    assert PASSWORD not in json.dumps(result)

    again = make_action(export_action.ActionModule, dict(args)).run(task_vars={})
    assert again["changed"] is False

    del fake_kube_for_actions.secrets[("ceres-system", "ceres-api-keys")]
    restored = make_action(restore_action.ActionModule, {"src": dest, "vault_password": PASSWORD}, diff=True).run(
        task_vars={}
    )
    assert restored["created"] == ["ceres-system/ceres-api-keys"]
    assert_no_values(json.dumps(restored))


def test_action_plugin_failures_are_redacted(tmp_path, fake_kube_for_actions, monkeypatch):
    def leaky_put(path, body, query=None):
        raise Invalid('PUT %s: 422 Invalid: value "%s" rejected' % (path, DB_PASSWORD), status=422)

    dest = str(tmp_path / "secrets.vault")
    make_action(
        export_action.ActionModule, {"namespaces": ["ceres-system"], "dest": dest, "vault_password": PASSWORD}
    ).run(task_vars={})
    fake_kube_for_actions.secrets[("ceres-system", "ceres-db-credentials")]["data"]["password"] = b64("x-changed")
    monkeypatch.setattr(fake_kube_for_actions, "put", leaky_put)
    result = make_action(restore_action.ActionModule, {"src": dest, "vault_password": PASSWORD}).run(task_vars={})
    assert result["failed"] is True
    assert "422 Invalid" in result["msg"]
    assert DB_PASSWORD not in result["msg"]


def test_action_plugin_rejects_two_passwords(tmp_path, fake_kube_for_actions):
    action = make_action(
        export_action.ActionModule,
        {
            "namespaces": ["ceres-system"],
            "dest": str(tmp_path / "f"),
            "vault_password": PASSWORD,
            "vault_password_file": str(tmp_path / "p"),
        },
    )
    with pytest.raises(AnsibleActionFail, match="mutually exclusive"):
        action.run(task_vars={})
