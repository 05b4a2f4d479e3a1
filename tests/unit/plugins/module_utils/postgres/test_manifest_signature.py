"""postgres/manifest_signature.py: the HMAC-SHA256 signature of a backup's manifest.json, keyed by a
key derived from the vault password; verification refuses what was not signed with that key."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json

import pytest

from ansible_collections.ceres.rollout.plugins.module_utils.postgres import manifest_signature as signature
from ansible_collections.ceres.rollout.plugins.module_utils.postgres.manifest_signature import (
    ManifestSignatureError,
)

PASSWORD = b"unit-vault-password"
MANIFEST = {
    "manifest_version": 1,
    "created_by": "ceres.rollout.backup",
    "backup_id": "20261201T000000Z-aaaaaa",
    "cluster": "sandbox",
    "database": {"name": "ceres_db", "path": "ceres_db.dump", "tables": {"public.orders": 10}, "verified": True},
    "files": {"ceres_db.dump": {"sha256": "ab" * 32, "size_bytes": 123}},
    "secrets": None,
    "note": "non-ASCII: Zürich",
}


def independent_signature(manifest: dict, password: bytes) -> str:
    """The documented algorithm, written out again here: PBKDF2-HMAC-SHA256 over the password with the
    salt "<context>:" + salt bytes, then HMAC-SHA256 over "<context>\\n" + the canonical JSON."""
    block = manifest["signature"]
    unsigned = {key: value for key, value in manifest.items() if key != "signature"}
    canonical = json.dumps(unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    key = hashlib.pbkdf2_hmac(
        "sha256", password, block["context"].encode() + b":" + bytes.fromhex(block["salt"]), block["iterations"]
    )
    return hmac.new(key, block["context"].encode() + b"\n" + canonical, hashlib.sha256).hexdigest()


def test_a_signed_manifest_verifies_with_the_same_password_and_follows_the_documented_algorithm():
    signed = signature.sign_manifest(MANIFEST, PASSWORD)
    assert {key: value for key, value in signed.items() if key != "signature"} == MANIFEST
    block = signed["signature"]
    assert block["algorithm"] == "HMAC-SHA256"
    assert block["key_derivation"] == "PBKDF2-HMAC-SHA256"
    assert block["context"] == "ceres.rollout/backup-manifest/v1"
    assert block["iterations"] == signature.ITERATIONS >= 10000  # at least ansible-vault's own cost per guess
    assert len(bytes.fromhex(block["salt"])) == 16
    assert block["value"] == independent_signature(signed, PASSWORD)
    assert signature.signature_status(signed, PASSWORD) == ("valid", "")


def test_the_key_is_not_the_password_and_each_signature_has_its_own_salt():
    first, second = signature.sign_manifest(MANIFEST, PASSWORD), signature.sign_manifest(MANIFEST, PASSWORD)
    assert first["signature"]["salt"] != second["signature"]["salt"]
    raw = hmac.new(PASSWORD, signature.canonical_bytes(MANIFEST), hashlib.sha256).hexdigest()
    assert first["signature"]["value"] != raw


def test_key_order_and_formatting_do_not_matter_but_content_does():
    signed = signature.sign_manifest(MANIFEST, PASSWORD)
    reordered = json.loads(json.dumps(signed, indent=4, sort_keys=False))
    assert signature.signature_status(dict(reversed(list(reordered.items()))), PASSWORD)[0] == "valid"


@pytest.mark.parametrize(
    "tamper",
    [
        lambda m: m["files"]["ceres_db.dump"].update(sha256="cd" * 32),
        lambda m: m.update(backup_id="20261201T000000Z-bbbbbb"),
        lambda m: m["database"].update(verified=False),
        lambda m: m.update(extra="added"),
        lambda m: m.pop("secrets"),
        lambda m: m["signature"].update(salt="00" * 16),
        lambda m: m["signature"].update(value="0" * 64),
    ],
    ids=["file-digest", "backup-id", "verified", "added-key", "removed-key", "salt", "value"],
)
def test_any_change_breaks_the_signature(tamper):
    tampered = copy.deepcopy(signature.sign_manifest(MANIFEST, PASSWORD))
    tamper(tampered)
    status, reason = signature.signature_status(tampered, PASSWORD)
    assert status == "invalid"
    assert "does not verify" in reason


def test_another_password_does_not_verify():
    signed = signature.sign_manifest(MANIFEST, PASSWORD)
    assert signature.signature_status(signed, b"another password")[0] == "invalid"


def test_an_unsigned_manifest_is_reported_as_unsigned():
    assert signature.signature_status(MANIFEST, PASSWORD) == ("unsigned", "it has no signature")


@pytest.mark.parametrize(
    ("block", "problem"),
    [
        ("not a dict", "signature is not an object"),
        ({"algorithm": "HMAC-MD5"}, "signature.algorithm must be HMAC-SHA256"),
        ({"iterations": 1}, "signature.iterations must be"),
        ({"iterations": 10**9}, "signature.iterations must be"),
        ({"key_derivation": "none"}, "signature.key_derivation must be PBKDF2-HMAC-SHA256"),
        ({"context": "other"}, "signature.context must be ceres.rollout/backup-manifest/v1"),
        ({"salt": "xyz"}, "signature.salt must be"),
        ({"value": "short"}, "signature.value must be"),
    ],
)
def test_a_malformed_signature_block_is_invalid_and_named(block, problem):
    signed = signature.sign_manifest(MANIFEST, PASSWORD)
    signed["signature"] = block if not isinstance(block, dict) else {**signed["signature"], **block}
    status, reason = signature.signature_status(signed, PASSWORD)
    assert status == "invalid"
    assert problem in reason


def test_comparison_is_constant_time(monkeypatch):
    calls = []
    real = hmac.compare_digest
    monkeypatch.setattr(signature.hmac, "compare_digest", lambda a, b: calls.append(1) or real(a, b))
    signature.signature_status(signature.sign_manifest(MANIFEST, PASSWORD), PASSWORD)
    assert calls


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"\xff\xfe", "is not UTF-8"),
        (b"{not json", "is not JSON"),
        (b"[1, 2]", "is not a JSON object"),
        (b'{"a": 1, "a": 2}', "has the key 'a' twice"),
        (b'{"a": NaN}', "is not JSON"),
    ],
)
def test_parse_refuses_what_is_not_one_plain_json_object(data, problem):
    with pytest.raises(ManifestSignatureError, match=problem):
        signature.parse_manifest(data, "the manifest x")


def test_serialized_manifest_parses_back_to_the_same_document():
    signed = signature.sign_manifest(MANIFEST, PASSWORD)
    data = signature.serialize_manifest(signed)
    assert data.endswith(b"\n") and "Zürich".encode() in data
    assert signature.parse_manifest(data, "x") == signed


def test_an_empty_password_cannot_sign_or_verify():
    with pytest.raises(ManifestSignatureError, match="empty"):
        signature.sign_manifest(MANIFEST, b"")
