"""backup_manifest: signs a backup's manifest.json on the controller and verifies it (signature, expected
digest, backup id); an unsigned manifest only when allowed, with a warning; the password never shown."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

import pytest
from action_runner import run_action

from ansible_collections.ceres.rollout.plugins.action import backup_manifest as manifest_action
from ansible_collections.ceres.rollout.plugins.module_utils.postgres import manifest_signature as signature

PASSWORD = "unit-vault-password-never-shown"
BACKUP_ID = "20261201T000000Z-aaaaaa"
MANIFEST = {
    "manifest_version": 1,
    "backup_id": BACKUP_ID,
    "cluster": "sandbox",
    "database": {"name": "ceres_db", "path": "ceres_db.dump", "verified": True},
    "files": {"ceres_db.dump": {"sha256": "ab" * 32, "size_bytes": 123}},
    "secrets": None,
}


def write(path, document):
    path.write_text(json.dumps(document, indent=2) + "\n")
    return str(path)


def sha256_of(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def shown(result):
    return json.dumps(result)


@pytest.fixture()
def signed_path(tmp_path):
    path = write(tmp_path / "manifest.json", MANIFEST)
    result = run_action(manifest_action, {"path": path, "state": "signed", "vault_password": PASSWORD})
    assert result.get("failed") is not True, result
    return path


def test_signing_adds_a_signature_atomically_and_a_second_run_changes_nothing(tmp_path):
    path = write(tmp_path / "manifest.json", MANIFEST)
    first = run_action(manifest_action, {"path": path, "state": "signed", "vault_password": PASSWORD})
    assert first["changed"] is True and first["signed"] is True and first["verified"] is True
    assert first["sha256"] == sha256_of(path)
    document = json.loads(open(path, "rb").read())
    assert signature.signature_status(document, PASSWORD.encode()) == ("valid", "")
    assert {key: value for key, value in document.items() if key != "signature"} == MANIFEST
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert [name for name in os.listdir(tmp_path) if name != "manifest.json"] == []  # no temporary file left

    second = run_action(manifest_action, {"path": path, "state": "signed", "vault_password": PASSWORD})
    assert second["changed"] is False and second["sha256"] == first["sha256"]
    assert PASSWORD not in shown(first) + shown(second)


def test_signing_in_check_mode_writes_nothing(tmp_path):
    path = write(tmp_path / "manifest.json", MANIFEST)
    before = open(path, "rb").read()
    result = run_action(manifest_action, {"path": path, "state": "signed", "vault_password": PASSWORD}, check_mode=True)
    assert result["changed"] is True and open(path, "rb").read() == before


def test_a_signed_manifest_verifies_and_matches_its_digest(signed_path):
    result = run_action(
        manifest_action,
        {
            "path": signed_path,
            "vault_password": PASSWORD,
            "expected_sha256": sha256_of(signed_path),
            "backup_id": BACKUP_ID,
        },
    )
    assert result.get("failed") is not True, result
    assert result["changed"] is False and result["verified"] is True and result["signed"] is True
    assert result["sha256"] == sha256_of(signed_path)
    assert "warnings" not in result


def test_a_swapped_manifest_is_refused_naming_the_backup(signed_path):
    document = json.loads(open(signed_path).read())
    document["files"]["ceres_db.dump"]["sha256"] = "cd" * 32  # the attacker's dump
    write(Path(signed_path), document)
    result = run_action(manifest_action, {"path": signed_path, "vault_password": PASSWORD, "backup_id": BACKUP_ID})
    assert result["failed"] is True and result["verified"] is False
    assert "manifest of backup %s" % BACKUP_ID in result["msg"]
    assert "signature does not verify" in result["msg"]
    assert PASSWORD not in shown(result)
    assert document["signature"]["value"] not in result["msg"]


def test_the_wrong_password_is_refused(signed_path):
    result = run_action(manifest_action, {"path": signed_path, "vault_password": "another password"})
    assert result["failed"] is True and "signature does not verify" in result["msg"]
    assert "another password" not in shown(result)


def test_an_unsigned_manifest_is_refused_unless_allowed_and_then_warned_about(tmp_path):
    path = write(tmp_path / "manifest.json", MANIFEST)
    refused = run_action(manifest_action, {"path": path, "vault_password": PASSWORD, "backup_id": BACKUP_ID})
    assert refused["failed"] is True and refused["signed"] is False
    assert "it has no signature" in refused["msg"] and "allow_unsigned" in refused["msg"]

    allowed = run_action(manifest_action, {"path": path, "allow_unsigned": True, "backup_id": BACKUP_ID})
    assert allowed.get("failed") is not True, allowed
    assert allowed["verified"] is False and allowed["signed"] is False
    assert any("UNSIGNED" in warning and BACKUP_ID in warning for warning in allowed["warnings"])


def test_allow_unsigned_does_not_accept_a_signature_that_fails(signed_path):
    result = run_action(
        manifest_action, {"path": signed_path, "vault_password": "another password", "allow_unsigned": True}
    )
    assert result["failed"] is True and "signature does not verify" in result["msg"]


def test_a_digest_other_than_the_recorded_one_is_refused(signed_path):
    recorded = "0" * 64
    result = run_action(manifest_action, {"path": signed_path, "vault_password": PASSWORD, "expected_sha256": recorded})
    assert result["failed"] is True
    assert "its sha256 is %s" % sha256_of(signed_path) in result["msg"] and recorded in result["msg"]


def test_a_malformed_expected_digest_names_the_option(signed_path):
    result = run_action(manifest_action, {"path": signed_path, "vault_password": PASSWORD, "expected_sha256": "abc"})
    assert result["failed"] is True and "expected_sha256" in result["msg"]


def test_a_manifest_of_another_backup_is_refused(signed_path):
    other = "20261202T000000Z-bbbbbb"
    result = run_action(manifest_action, {"path": signed_path, "vault_password": PASSWORD, "backup_id": other})
    assert result["failed"] is True and "names backup %s" % BACKUP_ID in result["msg"]


def test_a_missing_manifest_and_a_missing_password_fail_clearly(tmp_path, signed_path, monkeypatch):
    missing = run_action(manifest_action, {"path": str(tmp_path / "none.json"), "vault_password": PASSWORD})
    assert missing["failed"] is True and "none.json" in missing["msg"]
    no_password = run_action(manifest_action, {"path": signed_path})
    assert no_password["failed"] is True and "vault_password" in no_password["msg"]


def test_the_password_file_is_read_like_a_vault_password_file(tmp_path, signed_path):
    password_file = tmp_path / "vault-password"
    password_file.write_text(PASSWORD + "\n")
    result = run_action(manifest_action, {"path": signed_path, "vault_password_file": str(password_file)})
    assert result.get("failed") is not True, result
    assert result["verified"] is True


def test_an_oversized_manifest_is_refused_unread(tmp_path, monkeypatch):
    monkeypatch.setattr(manifest_action, "MAX_MANIFEST_BYTES", 64)
    path = write(tmp_path / "manifest.json", MANIFEST)
    result = run_action(manifest_action, {"path": path, "vault_password": PASSWORD})
    assert result["failed"] is True and "is larger than 64 bytes" in result["msg"]
