"""What the backup and restore roles' sandbox tests share (test_backup_roles.py, test_backup_retention.py): the S3
client and key helpers, the vault password file, running a role against the sandbox host, database and manifest
helpers, a bucket prefix per test. Loaded as a pytest plugin (pytest_plugins), so its fixtures are found."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import socket
import uuid
from pathlib import Path

import boto3
import psycopg2
import pytest
from integration_support import SANDBOX_ENV, run_ansible
from psycopg2 import sql

BUCKET = SANDBOX_ENV["CERES_BACKUP_BUCKET"]
CLUSTER = "sandbox"  # the inventory host: backups live under <prefix><cluster>/<id>/


# --------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def s3():
    return boto3.client(
        "s3",
        endpoint_url=SANDBOX_ENV["AWS_ENDPOINT_URL"],
        region_name=SANDBOX_ENV["AWS_REGION"],
        aws_access_key_id=SANDBOX_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=SANDBOX_ENV["AWS_SECRET_ACCESS_KEY"],
    )


def list_keys(s3, prefix: str) -> list[str]:
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        keys.extend(item["Key"] for item in page.get("Contents", []))
    return sorted(keys)


def delete_prefix(s3, prefix: str) -> None:
    for key in list_keys(s3, prefix):
        s3.delete_object(Bucket=BUCKET, Key=key)


def read_object(s3, key: str) -> bytes:
    return s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()


@pytest.fixture(scope="module")
def sandbox_vault_password():
    """The sandbox-only vault password file the local inventory points at; created for the
    tests when missing and removed again afterwards."""
    path = Path(SANDBOX_ENV["CERES_SANDBOX_DIR"]) / "vault-password"
    created = not path.exists()
    if created:
        path.write_text(uuid.uuid4().hex + "\n")
        path.chmod(0o600)
    yield path
    # never removed: the other backup test module may use it at the same time on another worker, and the sandbox's
    # other tests write the same file (rollout_world.ensure_vault_password)


def s3_target(prefix: str, **overrides) -> dict:
    target = {
        "kind": "s3",
        "bucket": BUCKET,
        "endpoint_url": SANDBOX_ENV["AWS_ENDPOINT_URL"],
        "region": SANDBOX_ENV["AWS_REGION"],
        "prefix": prefix,
        "keep": 5,
    }
    target.update(overrides)
    return target


def run_role(tmp_path: Path, role: str, extra_vars: dict, *args: str, later_phase: bool = False):
    """Run one role against the sandbox host and return (completed process, its result fact or
    None). With later_phase, a second play (standing for the next rollout phase) writes a marker."""
    result_file = tmp_path / f"{role}-result-{uuid.uuid4().hex[:6]}.json"
    marker = tmp_path / "later-phase-ran"
    plays = [
        {
            "name": f"Run the {role} role",
            "hosts": "sandbox",
            "gather_facts": False,
            "roles": [{"role": f"ceres.rollout.{role}"}],
            "tasks": [
                {
                    "name": "Save the result",
                    "ansible.builtin.copy": {
                        "content": "{{ %s_result | to_json }}" % role,
                        "dest": str(result_file),
                        "mode": "0600",
                    },
                    "check_mode": False,
                }
            ],
        }
    ]
    if later_phase:
        plays.append(
            {
                "name": "The next phase",
                "hosts": "sandbox",
                "gather_facts": False,
                "tasks": [
                    {"name": "Mark", "ansible.builtin.copy": {"content": "ran", "dest": str(marker), "mode": "0600"}}
                ],
            }
        )
    playbook = tmp_path / f"{role}-{uuid.uuid4().hex[:6]}.yml"
    playbook.write_text(json.dumps(plays))
    vars_file = tmp_path / f"vars-{uuid.uuid4().hex[:6]}.json"
    vars_file.write_text(json.dumps(extra_vars))
    completed = run_ansible(
        ["ansible-playbook", "-i", "inventories/local", str(playbook), "-e", f"@{vars_file}", *args], check=False
    )
    result = json.loads(result_file.read_text()) if result_file.exists() else None
    return completed, result


def table_fingerprints(database: str) -> dict[str, tuple[int, str]]:
    """schema.table -> (row count, md5 of the rows' text in a fixed order), computed here,
    independently of the collection's own hashing."""
    connection = psycopg2.connect(
        dbname=database, options="-c TimeZone=UTC -c DateStyle=ISO,YMD -c extra_float_digits=1"
    )
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT schemaname, tablename FROM pg_tables "
                "WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2"
            )
            tables = cursor.fetchall()
            fingerprints = {}
            for schema, table in tables:
                cursor.execute(
                    sql.SQL(
                        "SELECT count(*), md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), ''))"
                        " FROM {}.{} AS t"
                    ).format(sql.Identifier(schema), sql.Identifier(table))
                )
                fingerprints[f"{schema}.{table}"] = cursor.fetchone()
            return fingerprints
    finally:
        connection.close()


def drop_database(name: str) -> None:
    connection = psycopg2.connect(dbname="postgres")
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    finally:
        connection.close()


def database_exists(name: str) -> bool:
    connection = psycopg2.connect(dbname="postgres")
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            return cursor.fetchone() is not None
    finally:
        connection.close()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


SIGNATURE_CONTEXT = "ceres.rollout/backup-manifest/v1"


def vault_password_of(path: Path) -> bytes:
    """The password in a vault password file, as ansible-vault reads it (surrounding whitespace stripped)."""
    return path.read_bytes().strip()


def manifest_signature(manifest: dict, password: bytes, salt: bytes) -> str:
    """The signature the README documents, computed here independently of the collection: HMAC-SHA256
    keyed by PBKDF2-HMAC-SHA256(password, "<context>:" + salt, 100000), over "<context>\\n" and the
    manifest without its signature as canonical JSON."""
    unsigned = {key: value for key, value in manifest.items() if key != "signature"}
    key = hashlib.pbkdf2_hmac("sha256", password, SIGNATURE_CONTEXT.encode() + b":" + salt, 100000)
    canonical = json.dumps(unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    return hmac.new(key, SIGNATURE_CONTEXT.encode() + b"\n" + canonical, hashlib.sha256).hexdigest()


def signed_manifest(manifest: dict, password: bytes | None) -> dict:
    """The manifest signed with password (as whoever holds the vault password can), or unsigned with None."""
    unsigned = {key: value for key, value in manifest.items() if key != "signature"}
    if password is None:
        return unsigned
    salt = os.urandom(16)
    block = {
        "algorithm": "HMAC-SHA256",
        "key_derivation": "PBKDF2-HMAC-SHA256",
        "context": SIGNATURE_CONTEXT,
        "iterations": 100000,
        "salt": salt.hex(),
        "value": manifest_signature(unsigned, password, salt),
    }
    return {**unsigned, "signature": block}


def copy_backup(
    s3,
    source_prefix: str,
    target_prefix: str,
    target_id: str,
    corrupt: str | None = None,
    verified: bool = True,
    signing_password: bytes | None = None,
) -> None:
    """Copy a backup's objects under another id (rewriting the manifest's id), optionally
    flipping one byte of the file `corrupt`, or marking the dump as never verified (as a
    backup taken with backup_verify: none is). The copy's manifest is signed with
    signing_password (as a backup the vault password's holder took), or unsigned without one."""
    for key in list_keys(s3, source_prefix):
        name = key[len(source_prefix) :]
        body = read_object(s3, key)
        if name == "manifest.json":
            manifest = json.loads(body)
            manifest["backup_id"] = target_id
            manifest["database"]["verified"] = manifest["database"]["verified"] and verified
            body = json.dumps(signed_manifest(manifest, signing_password)).encode()
        if name == corrupt:
            body = body[:100] + bytes([body[100] ^ 0xFF]) + body[101:]
        s3.put_object(Bucket=BUCKET, Key=f"{target_prefix}{name}", Body=body)


@pytest.fixture()
def own_prefix(s3):
    prefix = f"ceres-test-{uuid.uuid4().hex[:8]}/"
    yield prefix
    delete_prefix(s3, prefix)


def backup_step(phase: str, backup_id: str, outcome: str = "passed") -> dict:
    return {"step_id": f"{phase}/backup", "phase": phase, "outcome": outcome, "backup_id": backup_id}
