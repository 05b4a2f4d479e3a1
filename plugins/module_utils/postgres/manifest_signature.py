# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The signature of a backup's ``manifest.json`` (the backup role's, naming every file of a backup and
its sha256): whoever can write to the bucket can replace a dump and its manifest together, so the
manifest carries an HMAC-SHA256 that only a holder of the backup's vault password can compute.

The signature is the manifest's ``signature`` member::

    "signature": {"algorithm": "HMAC-SHA256", "key_derivation": "PBKDF2-HMAC-SHA256",
                  "context": "ceres.rollout/backup-manifest/v1", "iterations": 100000,
                  "salt": "<16 random bytes, hex>", "value": "<64 hex digits>"}

* Key: ``PBKDF2-HMAC-SHA256(password, salt = context + ":" + salt bytes, iterations)``, 32 bytes. The
  vault password is never used raw: the fixed context makes the key this signature's own (ansible-vault
  derives its keys from other salts), and the iterations make a guess of the password against a signed
  manifest cost at least what a guess against the vault file costs (ansible-vault: 10,000).
* Value: ``HMAC-SHA256(key, context + "\\n" + canonical JSON of the manifest without "signature")``;
  canonical JSON is ``json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False)`` in UTF-8, so
  key order and indentation do not matter and every value does.
* Verification accepts exactly these parameters (an attacker cannot choose a cheaper derivation, or
  make a verification run for hours) and compares with ``hmac.compare_digest``.

Nothing here puts the password, the key or a computed signature into a message: a computed value is the
one thing that would let whoever reads the message forge the manifest.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import typing as t

from ansible_collections.ceres.rollout.plugins.module_utils.common.errors import CeresError

SIGNATURE_FIELD = "signature"
ALGORITHM = "HMAC-SHA256"
KEY_DERIVATION = "PBKDF2-HMAC-SHA256"
CONTEXT = "ceres.rollout/backup-manifest/v1"
ITERATIONS = 100000
SALT_BYTES = 16
_HEX = re.compile(r"^[0-9a-f]+$")

VALID = "valid"
UNSIGNED = "unsigned"
INVALID = "invalid"


class ManifestSignatureError(CeresError):
    """A manifest cannot be read, signed or verified. The message never holds the password, the key
    or a computed signature."""


def parse_manifest(data: bytes, what: str) -> dict[str, t.Any]:
    """The manifest in ``data`` (the content of ``what``): one JSON object in UTF-8, no key twice (a
    parser that kept the first and one that kept the last would read two different manifests), no NaN."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ManifestSignatureError("%s is not UTF-8 text" % what) from None

    def unique_keys(pairs: list[tuple[str, t.Any]]) -> dict[str, t.Any]:
        document: dict[str, t.Any] = {}
        for key, value in pairs:
            if key in document:
                raise ManifestSignatureError("%s has the key %r twice" % (what, key))
            document[key] = value
        return document

    def no_constant(name: str) -> t.NoReturn:
        raise ValueError("%s is not a JSON number" % name)

    try:
        document = json.loads(text, object_pairs_hook=unique_keys, parse_constant=no_constant)
    except ValueError as error:
        raise ManifestSignatureError("%s is not JSON (%s)" % (what, getattr(error, "msg", error))) from None
    if not isinstance(document, dict):
        raise ManifestSignatureError("%s is not a JSON object" % what)
    return document


def canonical_bytes(manifest: t.Mapping[str, t.Any]) -> bytes:
    """What is signed: the manifest without its signature, as canonical JSON in UTF-8."""
    unsigned = {key: value for key, value in manifest.items() if key != SIGNATURE_FIELD}
    return json.dumps(unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode(
        "utf-8"
    )


def serialize_manifest(manifest: t.Mapping[str, t.Any]) -> bytes:
    """The file's content: indented, key-sorted JSON and a final newline."""
    return (json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")


def _signing_key(password: bytes, salt: bytes) -> bytes:
    if not password:
        raise ManifestSignatureError("the vault password that keys the manifest's signature is empty")
    return hashlib.pbkdf2_hmac("sha256", password, CONTEXT.encode("ascii") + b":" + salt, ITERATIONS)


def _mac(key: bytes, manifest: t.Mapping[str, t.Any]) -> str:
    return hmac.new(key, CONTEXT.encode("ascii") + b"\n" + canonical_bytes(manifest), hashlib.sha256).hexdigest()


def sign_manifest(manifest: t.Mapping[str, t.Any], password: bytes, salt: bytes | None = None) -> dict[str, t.Any]:
    """``manifest`` with a fresh ``signature`` (a previous one is replaced)."""
    salt = os.urandom(SALT_BYTES) if salt is None else salt
    unsigned = {key: value for key, value in manifest.items() if key != SIGNATURE_FIELD}
    try:
        value = _mac(_signing_key(password, salt), unsigned)
    except ValueError as error:  # NaN or infinity in the manifest
        raise ManifestSignatureError("the manifest cannot be signed: %s" % error) from None
    unsigned[SIGNATURE_FIELD] = {
        "algorithm": ALGORITHM,
        "key_derivation": KEY_DERIVATION,
        "context": CONTEXT,
        "iterations": ITERATIONS,
        "salt": salt.hex(),
        "value": value,
    }
    return unsigned


def _block_problem(block: t.Any) -> str | None:
    """What is wrong with a signature block's form, or None."""
    if not isinstance(block, dict):
        return "signature is not an object"
    expected = {"algorithm": ALGORITHM, "key_derivation": KEY_DERIVATION, "context": CONTEXT}
    for field, value in expected.items():
        if block.get(field) != value:
            return "signature.%s must be %s" % (field, value)
    iterations = block.get("iterations")
    if isinstance(iterations, bool) or iterations != ITERATIONS:
        return "signature.iterations must be %d" % ITERATIONS
    salt = block.get("salt")
    if not isinstance(salt, str) or len(salt) != 2 * SALT_BYTES or not _HEX.match(salt):
        return "signature.salt must be %d lowercase hex digits" % (2 * SALT_BYTES)
    value = block.get("value")
    if not isinstance(value, str) or len(value) != 64 or not _HEX.match(value):
        return "signature.value must be 64 lowercase hex digits"
    unknown = sorted(set(block) - {"algorithm", "key_derivation", "context", "iterations", "salt", "value"})
    if unknown:
        return "signature has unknown fields %s" % ", ".join(unknown)
    return None


def signature_status(manifest: t.Mapping[str, t.Any], password: bytes) -> tuple[str, str]:
    """(``valid``, ""), (``unsigned``, why) or (``invalid``, why) for ``manifest`` and ``password``."""
    if SIGNATURE_FIELD not in manifest:
        return UNSIGNED, "it has no signature"
    block = manifest[SIGNATURE_FIELD]
    problem = _block_problem(block)
    if problem:
        return INVALID, "its signature is malformed (%s)" % problem
    try:
        expected = _mac(_signing_key(password, bytes.fromhex(block["salt"])), manifest)
    except ValueError:
        return INVALID, "its signature does not verify (the manifest holds a value JSON cannot carry)"
    if not hmac.compare_digest(expected.encode("ascii"), block["value"].encode("ascii")):
        return INVALID, (
            "its signature does not verify: the manifest was changed after it was signed, or was signed with "
            "another vault password"
        )
    return VALID, ""
