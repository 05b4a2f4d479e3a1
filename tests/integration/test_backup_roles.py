"""The backup and restore roles against the sandbox: PostgreSQL, the API server and the S3
server are real. Each test works under its own key prefix of the bucket and removes it after."""

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
from integration_support import ROOT, SANDBOX_ENV, run_ansible
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
    if created:
        path.unlink()


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


# --------------------------------------------------------------------------- one real backup


@pytest.fixture(scope="module")
def backup_prefix(s3):
    prefix = f"ceres-test-{uuid.uuid4().hex[:8]}/"
    yield prefix
    delete_prefix(s3, prefix)


@pytest.fixture(scope="module")
def completed_backup(tmp_path_factory, sandbox_vault_password, backup_prefix):
    tmp_path = tmp_path_factory.mktemp("backup")
    completed, result = run_role(tmp_path, "backup", {"ceres_backup_target": s3_target(backup_prefix)})
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return result


def test_backup_uploads_verified_objects_and_the_manifest(s3, completed_backup, backup_prefix):
    backup_id = completed_backup["id"]
    object_prefix = f"{backup_prefix}{CLUSTER}/{backup_id}/"
    assert completed_backup["complete"] is True
    assert completed_backup["prefix"] == object_prefix
    assert completed_backup["location"] == f"s3://{BUCKET}/{object_prefix}"
    assert sorted(list_keys(s3, object_prefix)) == [
        object_prefix + name
        for name in ("ceres_db.dump", "ceres_db.dump.manifest.json", "manifest.json", "secrets.vault")
    ]

    manifest_body = read_object(s3, object_prefix + "manifest.json")
    assert hashlib.sha256(manifest_body).hexdigest() == completed_backup["manifest_sha256"]
    manifest = json.loads(manifest_body)
    assert manifest["backup_id"] == backup_id and manifest["cluster"] == CLUSTER
    assert set(manifest["files"]) == {"ceres_db.dump", "ceres_db.dump.manifest.json", "secrets.vault"}
    for name, digest in manifest["files"].items():
        body = read_object(s3, object_prefix + name)
        assert hashlib.sha256(body).hexdigest() == digest["sha256"] == completed_backup["files"][name]["sha256"]
        assert len(body) == digest["size_bytes"]
    assert read_object(s3, object_prefix + "secrets.vault").startswith(b"$ANSIBLE_VAULT;")
    assert sum(manifest["database"]["tables"].values()) >= 200000
    assert manifest["database"]["verified"] is True
    assert manifest["secrets"]["namespaces"]["ceres-system"]["names"] == [
        "ceres-api-keys",
        "ceres-db-credentials",
        "ceres-jwt-signing",
    ]


def test_backup_round_trip_restores_identical_tables(tmp_path, completed_backup, backup_prefix):
    scratch = f"ceres_test_restore_{uuid.uuid4().hex[:8]}"
    try:
        completed, restored = run_role(
            tmp_path,
            "restore",
            {
                "ceres_backup_target": s3_target(backup_prefix),
                "restore_backup_id": completed_backup["id"],
                "restore_database": scratch,
            },
        )
        assert completed.returncode == 0, completed.stdout + completed.stderr
        assert restored["id"] == completed_backup["id"] and restored["database"] == scratch
        assert restored["tables"] == completed_backup["database"]["tables"]
        assert restored["secrets"]["skipped"] == []
        assert (
            len(restored["secrets"]["created"])
            + len(restored["secrets"]["replaced"])
            + len(restored["secrets"]["unchanged"])
            == 3
        )

        source, copy = table_fingerprints("ceres_db"), table_fingerprints(scratch)
        assert copy == source
        assert {table: rows for table, (rows, _digest) in copy.items()} == completed_backup["database"]["tables"]
    finally:
        drop_database(scratch)


def test_restore_without_an_id_takes_the_latest_complete_backup_and_check_mode_restores_nothing(
    tmp_path, s3, completed_backup, backup_prefix
):
    # A newer backup whose upload never finished (no manifest) must be passed over.
    incomplete_prefix = f"{backup_prefix}{CLUSTER}/29991231T235959Z-abcdef/"
    s3.put_object(Bucket=BUCKET, Key=incomplete_prefix + "ceres_db.dump", Body=b"half an upload")
    try:
        completed, planned = run_role(tmp_path, "restore", {"ceres_backup_target": s3_target(backup_prefix)}, "--check")
        assert completed.returncode == 0, completed.stdout + completed.stderr
        assert planned["id"] == completed_backup["id"]
        assert planned["check_mode"] is True
        default_name = "ceres_db_restored_" + completed_backup["id"].lower().replace("-", "_")
        assert planned["database"] == default_name
        assert not database_exists(default_name)
    finally:
        delete_prefix(s3, incomplete_prefix)


def test_restore_without_an_id_passes_over_a_newer_unverified_backup(
    tmp_path, s3, completed_backup, backup_prefix, sandbox_vault_password
):
    unverified_id = "29991231T235959Z-0bad00"
    unverified_prefix = f"{backup_prefix}{CLUSTER}/{unverified_id}/"
    copy_backup(
        s3,
        completed_backup["prefix"],
        unverified_prefix,
        unverified_id,
        verified=False,
        signing_password=vault_password_of(sandbox_vault_password),
    )
    try:
        completed, planned = run_role(tmp_path, "restore", {"ceres_backup_target": s3_target(backup_prefix)}, "--check")
        assert completed.returncode == 0, completed.stdout + completed.stderr
        assert planned["id"] == completed_backup["id"]
        # Named explicitly, the unverified backup is what the operator asked for.
        completed, planned = run_role(
            tmp_path,
            "restore",
            {"ceres_backup_target": s3_target(backup_prefix), "restore_backup_id": unverified_id},
            "--check",
        )
        assert completed.returncode == 0, completed.stdout + completed.stderr
        assert planned["id"] == unverified_id
    finally:
        delete_prefix(s3, unverified_prefix)


def test_restore_without_an_id_fails_when_no_backup_was_verified(
    tmp_path, s3, completed_backup, own_prefix, sandbox_vault_password
):
    unverified_id = "29991231T235959Z-0bad01"
    copy_backup(
        s3,
        completed_backup["prefix"],
        f"{own_prefix}{CLUSTER}/{unverified_id}/",
        unverified_id,
        verified=False,
        signing_password=vault_password_of(sandbox_vault_password),
    )
    completed, restored = run_role(tmp_path, "restore", {"ceres_backup_target": s3_target(own_prefix)}, "--check")
    assert completed.returncode != 0 and restored is None
    assert (
        f"no complete backup under s3://{BUCKET}/{own_prefix}{CLUSTER}/ was verified when it was taken "
        f"(unverified: {unverified_id})"
    ) in " ".join(completed.stdout.split())


def test_restore_refuses_a_backup_whose_object_was_altered(
    tmp_path, s3, completed_backup, backup_prefix, sandbox_vault_password
):
    corrupt_id = "29991231T235959Z-c0ffee"
    corrupt_prefix = f"{backup_prefix}{CLUSTER}/{corrupt_id}/"
    copy_backup(
        s3,
        completed_backup["prefix"],
        corrupt_prefix,
        corrupt_id,
        corrupt="ceres_db.dump",
        signing_password=vault_password_of(sandbox_vault_password),
    )
    scratch = f"ceres_test_restore_{uuid.uuid4().hex[:8]}"
    try:
        completed, restored = run_role(
            tmp_path, "restore", {"ceres_backup_target": s3_target(backup_prefix), "restore_database": scratch}
        )
        assert completed.returncode != 0
        assert restored is None
        assert "refusing to restore a corrupt backup" in completed.stdout
        assert f"ceres_db.dump of backup {corrupt_id}" in completed.stdout
        assert not database_exists(scratch)
    finally:
        delete_prefix(s3, corrupt_prefix)
        drop_database(scratch)


def test_restore_refuses_a_manifest_whose_file_names_leave_the_staging_directory(
    tmp_path, s3, completed_backup, backup_prefix
):
    """Whoever can write to the bucket can write a manifest: a file name with '..' (its sha256 matching
    the object stored under that very key) must not become a file outside the staging directory, nor
    make the restore change the mode of a directory outside it. Refused before any file is downloaded,
    even when the operator accepts an unsigned manifest (restore_allow_unsigned, an old backup): the
    file names are checked whatever the signature says."""
    hostile_id = "29991231T235959Z-0bad0b"
    hostile_prefix = f"{backup_prefix}{CLUSTER}/{hostile_id}/"
    copy_backup(s3, completed_backup["prefix"], hostile_prefix, hostile_id)
    staging = tmp_path / "staging"  # the staging directory is made in here: files/ is three levels below tmp_path
    staging.mkdir()
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    payload = b"ssh-ed25519 AAAA attacker\n"
    hostile_names = ["../../../escaped/authorized_keys", "../../../shared/x"]
    manifest = json.loads(read_object(s3, hostile_prefix + "manifest.json"))
    for name in hostile_names:
        s3.put_object(Bucket=BUCKET, Key=hostile_prefix + name, Body=payload)
        manifest["files"][name] = {"sha256": hashlib.sha256(payload).hexdigest(), "size_bytes": len(payload)}
    s3.put_object(Bucket=BUCKET, Key=hostile_prefix + "manifest.json", Body=json.dumps(manifest).encode())
    scratch = f"ceres_test_restore_{uuid.uuid4().hex[:8]}"
    try:
        completed, restored = run_role(
            tmp_path,
            "restore",
            {
                "ceres_backup_target": s3_target(backup_prefix),
                "restore_backup_id": hostile_id,
                "restore_database": scratch,
                "restore_staging_dir": str(staging),
                "restore_allow_unsigned": True,
            },
        )
        output = " ".join(completed.stdout.split())
        assert completed.returncode != 0 and restored is None, completed.stdout
        assert f"the manifest of backup {hostile_id}" in output and "is refused (nothing was downloaded" in output
        for name in hostile_names:
            assert f"file name '{name}' is refused: a '..' path component" in output, output
        assert not (tmp_path / "escaped").exists()
        assert oct(shared.stat().st_mode & 0o777) == oct(0o755) and list(shared.iterdir()) == []
        assert list(staging.iterdir()) == []  # the staging directory was removed, nothing else written
        assert not database_exists(scratch)
    finally:
        delete_prefix(s3, hostile_prefix)
        drop_database(scratch)


# --------------------------------------------------------------------------- authenticity


def test_the_manifest_is_signed_with_a_key_derived_from_the_vault_password(
    s3, completed_backup, sandbox_vault_password
):
    """The signature is the documented one (checked here with an independent implementation), the
    password is never the key, and backup_result.manifest_sha256 is the digest of the signed file."""
    body = read_object(s3, completed_backup["manifest"])
    assert hashlib.sha256(body).hexdigest() == completed_backup["manifest_sha256"]
    manifest = json.loads(body)
    block = manifest["signature"]
    assert {key: block[key] for key in ("algorithm", "key_derivation", "context", "iterations")} == {
        "algorithm": "HMAC-SHA256",
        "key_derivation": "PBKDF2-HMAC-SHA256",
        "context": SIGNATURE_CONTEXT,
        "iterations": 100000,
    }
    password = vault_password_of(sandbox_vault_password)
    assert block["value"] == manifest_signature(manifest, password, bytes.fromhex(block["salt"]))
    assert password.decode() not in body.decode()


@pytest.mark.parametrize("forgery", ["unsigned", "old-signature", "other-password"])
def test_restore_refuses_a_swapped_backup_before_downloading_or_creating_anything(
    tmp_path, s3, completed_backup, backup_prefix, sandbox_vault_password, forgery
):
    """Whoever can write to the bucket swaps the dump and rewrites the manifest to match it: without the
    vault password they can leave it unsigned, keep the old signature, or sign it with a password of
    their own. Each is refused before any file of the backup is downloaded or a database created."""
    swapped_id = "29991231T235959Z-5a4a9e"
    swapped_prefix = f"{backup_prefix}{CLUSTER}/{swapped_id}/"
    copy_backup(
        s3,
        completed_backup["prefix"],
        swapped_prefix,
        swapped_id,
        signing_password=vault_password_of(sandbox_vault_password),
    )
    evil_dump = b"PGDMP attacker's data"
    manifest = json.loads(read_object(s3, swapped_prefix + "manifest.json"))
    manifest["files"]["ceres_db.dump"] = {"sha256": hashlib.sha256(evil_dump).hexdigest(), "size_bytes": len(evil_dump)}
    manifest["database"]["sha256"] = manifest["files"]["ceres_db.dump"]["sha256"]
    if forgery == "unsigned":
        manifest.pop("signature")
    elif forgery == "other-password":
        manifest = signed_manifest(manifest, b"the attacker's own password")
    s3.put_object(Bucket=BUCKET, Key=swapped_prefix + "ceres_db.dump", Body=evil_dump)
    s3.put_object(Bucket=BUCKET, Key=swapped_prefix + "manifest.json", Body=json.dumps(manifest).encode())
    staging = tmp_path / "staging"
    staging.mkdir()
    scratch = f"ceres_test_restore_{uuid.uuid4().hex[:8]}"
    try:
        completed, restored = run_role(
            tmp_path,
            "restore",
            {
                "ceres_backup_target": s3_target(backup_prefix),
                "restore_backup_id": swapped_id,
                "restore_database": scratch,
                "restore_staging_dir": str(staging),
            },
        )
        output = " ".join(completed.stdout.split())
        assert completed.returncode != 0 and restored is None, completed.stdout
        assert f"the manifest of backup {swapped_id}" in output and "is refused" in output
        expected = "it has no signature" if forgery == "unsigned" else "its signature does not verify"
        assert expected in output, output
        assert "Download every file" not in output
        assert list(staging.iterdir()) == []
        assert not database_exists(scratch)
        password = vault_password_of(sandbox_vault_password).decode()
        assert password not in completed.stdout + completed.stderr
    finally:
        delete_prefix(s3, swapped_prefix)
        drop_database(scratch)


def test_an_unsigned_backup_is_restored_only_when_allowed_and_then_with_a_warning(
    tmp_path, s3, completed_backup, backup_prefix
):
    """A backup taken before manifests were signed: refused by default, restored (here in check mode)
    with restore_allow_unsigned: true, which says so visibly."""
    old_id = "20000101T000000Z-01d01d"
    old_prefix = f"{backup_prefix}{CLUSTER}/{old_id}/"
    copy_backup(s3, completed_backup["prefix"], old_prefix, old_id, signing_password=None)
    try:
        variables = {"ceres_backup_target": s3_target(backup_prefix), "restore_backup_id": old_id}
        completed, restored = run_role(tmp_path, "restore", variables, "--check")
        output = " ".join(completed.stdout.split())
        assert completed.returncode != 0 and restored is None
        assert "it has no signature" in output and "restore_allow_unsigned" in output

        completed, restored = run_role(tmp_path, "restore", {**variables, "restore_allow_unsigned": True}, "--check")
        output = " ".join((completed.stdout + completed.stderr).split())
        assert completed.returncode == 0, completed.stdout + completed.stderr
        assert restored["id"] == old_id and restored["manifest_verified"] is False
        assert f"the manifest of backup {old_id}" in output and "is UNSIGNED" in output
    finally:
        delete_prefix(s3, old_prefix)


def test_restore_refuses_a_manifest_whose_digest_is_not_the_recorded_one(
    tmp_path, completed_backup, backup_prefix, sandbox_vault_password
):
    variables = {"ceres_backup_target": s3_target(backup_prefix), "restore_backup_id": completed_backup["id"]}
    recorded = "0" * 64
    # the password given as a variable this time, and -vvv: it must not show anywhere
    password = vault_password_of(sandbox_vault_password).decode()
    completed, restored = run_role(
        tmp_path,
        "restore",
        {
            **variables,
            "restore_expected_manifest_sha256": recorded,
            "ceres_vault_password_file": "",
            "restore_vault_password": password,
        },
        "--check",
        "-vvv",
    )
    output = " ".join(completed.stdout.split())
    assert completed.returncode != 0 and restored is None
    assert f"its sha256 is {completed_backup['manifest_sha256']}, but {recorded} was recorded" in output
    assert password not in completed.stdout + completed.stderr

    completed, restored = run_role(
        tmp_path,
        "restore",
        {**variables, "restore_expected_manifest_sha256": completed_backup["manifest_sha256"]},
        "--check",
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert restored["manifest_sha256"] == completed_backup["manifest_sha256"] and restored["manifest_verified"]


def test_restore_without_an_id_passes_over_a_newer_unsigned_backup(tmp_path, s3, completed_backup, backup_prefix):
    planted_id = "29991231T235959Z-0bad02"
    planted_prefix = f"{backup_prefix}{CLUSTER}/{planted_id}/"
    copy_backup(s3, completed_backup["prefix"], planted_prefix, planted_id, signing_password=None)
    try:
        completed, planned = run_role(tmp_path, "restore", {"ceres_backup_target": s3_target(backup_prefix)}, "--check")
        assert completed.returncode == 0, completed.stdout + completed.stderr
        assert planned["id"] == completed_backup["id"]
    finally:
        delete_prefix(s3, planted_prefix)


def test_restore_into_production_needs_restore_clean(tmp_path, completed_backup, backup_prefix):
    completed, _restored = run_role(
        tmp_path, "restore", {"ceres_backup_target": s3_target(backup_prefix), "restore_database": "ceres_db"}
    )
    assert completed.returncode != 0
    assert "refusing to restore into the production database ceres_db without restore_clean" in completed.stdout


def test_restore_clean_with_parallel_jobs_is_refused_before_anything_runs(tmp_path, completed_backup, backup_prefix):
    scratch = f"ceres_test_restore_{uuid.uuid4().hex[:8]}"
    completed, restored = run_role(
        tmp_path,
        "restore",
        {
            "ceres_backup_target": s3_target(backup_prefix),
            "restore_database": scratch,
            "restore_clean": True,
            "restore_jobs": 2,
        },
    )
    output = " ".join(completed.stdout.split())
    assert completed.returncode != 0 and restored is None
    assert "restore_clean: true with restore_jobs 2 is refused" in output
    assert "Download the manifest" not in output
    assert not database_exists(scratch)


# --------------------------------------------------------------------------- failures and retention


@pytest.fixture()
def own_prefix(s3):
    prefix = f"ceres-test-{uuid.uuid4().hex[:8]}/"
    yield prefix
    delete_prefix(s3, prefix)


@pytest.mark.parametrize("check_target_first", [True, False], ids=["probe", "upload"])
def test_unreachable_s3_fails_the_role_before_the_next_phase_without_a_manifest(
    tmp_path, s3, sandbox_vault_password, own_prefix, check_target_first
):
    unreachable = s3_target(own_prefix, endpoint_url=f"http://127.0.0.1:{closed_port()}")
    staging = tmp_path / "staging"  # this run's own, so another run's staging directory cannot interfere
    staging.mkdir()
    completed, result = run_role(
        tmp_path,
        "backup",
        {
            "ceres_backup_target": unreachable,
            "backup_check_target": check_target_first,
            "backup_staging_dir": str(staging),
        },
        later_phase=True,
    )
    assert completed.returncode != 0
    assert result is None
    assert not (tmp_path / "later-phase-ran").exists()
    if check_target_first:
        assert "Could not connect to the endpoint URL" in completed.stdout
        assert "Dump and verify the database" not in completed.stdout  # failed before dumping anything
    else:
        assert "Failed while looking up bucket" in completed.stdout  # the first upload failed
        assert "Upload the manifest last" not in completed.stdout
    assert [key for key in list_keys(s3, own_prefix) if key.endswith("manifest.json")] == []
    assert list(staging.iterdir()) == []  # the staging directory is gone


def test_retention_keeps_exactly_the_newest_complete_backups(tmp_path, s3, sandbox_vault_password, own_prefix):
    cluster_prefix = f"{own_prefix}{CLUSTER}/"
    old_complete = ["20200101T000000Z-000001", "20200102T000000Z-000002", "20200103T000000Z-000003"]
    for backup_id in old_complete:
        s3.put_object(Bucket=BUCKET, Key=f"{cluster_prefix}{backup_id}/ceres_db.dump", Body=b"old dump")
        s3.put_object(Bucket=BUCKET, Key=f"{cluster_prefix}{backup_id}/manifest.json", Body=b"{}")
    incomplete = f"{cluster_prefix}20190101T000000Z-000009/ceres_db.dump"
    other_cluster = f"{own_prefix}other-cluster/20200101T000000Z-000001/manifest.json"
    unrelated = f"{cluster_prefix}notes/readme.txt"
    for key in (incomplete, other_cluster, unrelated):
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"keep me")

    completed, result = run_role(
        tmp_path, "backup", {"ceres_backup_target": s3_target(own_prefix, keep=2), "backup_secrets": False}
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    complete_now = sorted(
        key[len(cluster_prefix) :].split("/")[0]
        for key in list_keys(s3, cluster_prefix)
        if key.endswith("/manifest.json")
    )
    assert complete_now == ["20200103T000000Z-000003", result["id"]]
    assert result["retention"]["deleted"] == ["20200101T000000Z-000001", "20200102T000000Z-000002"]
    assert result["retention"]["incomplete"] == ["20190101T000000Z-000009"]
    remaining = list_keys(s3, own_prefix)
    for deleted in old_complete[:2]:
        assert not any(deleted in key and key.startswith(cluster_prefix) for key in remaining)
    for kept in (incomplete, other_cluster, unrelated):
        assert kept in remaining


def write_journal(kube, namespace: str, runs: dict[str, list[dict]], name: str = "ceres-rollout") -> None:
    """A rollout journal (the ConfigMap <name>-journal, one JSON line per record under run.<run id>), as
    rollout_journal writes it; runs in the order given, each record stamped a minute after the last."""
    from kubernetes import client

    data, minute = {}, 0
    for run_id, records in runs.items():
        lines = []
        for seq, record in enumerate(records, start=1):
            minute += 1
            stamp = "2020-02-01T%02d:%02d:00Z" % (minute // 60, minute % 60)
            lines.append(json.dumps({"seq": seq, "run_id": run_id, **record, "recorded_at": stamp}))
        data[f"run.{run_id}"] = "\n".join(lines) + "\n"
    client.CoreV1Api(kube).create_namespaced_config_map(
        namespace, {"metadata": {"name": f"{name}-journal"}, "data": data}
    )


def put_complete_backups(s3, cluster_prefix: str, ids: list[str]) -> None:
    for backup_id in ids:
        s3.put_object(Bucket=BUCKET, Key=f"{cluster_prefix}{backup_id}/ceres_db.dump", Body=b"old dump")
        s3.put_object(Bucket=BUCKET, Key=f"{cluster_prefix}{backup_id}/manifest.json", Body=b"{}")


def complete_ids(s3, cluster_prefix: str) -> list[str]:
    return sorted(
        key[len(cluster_prefix) :].split("/")[0]
        for key in list_keys(s3, cluster_prefix)
        if key.endswith("/manifest.json")
    )


def backup_step(phase: str, backup_id: str, outcome: str = "passed") -> dict:
    return {"step_id": f"{phase}/backup", "phase": phase, "outcome": outcome, "backup_id": backup_id}


def done_step(phase: str, outcome: str = "completed") -> dict:
    return {"step_id": f"{phase}/done", "phase": phase, "outcome": outcome}


def test_retention_keeps_every_backup_the_current_rollout_recorded_and_the_cutover_archive(
    tmp_path, s3, kube, sandbox_vault_password, own_prefix, scratch_namespace
):
    """keep: 2 with a rollout that retried: the backups recorded since the last completed cutover (the
    pilot's pre-migration backup, the unfinished cutover's with its archive) stay; those of the rollout a
    completed cutover finished, and those no run recorded, are pruned by count."""
    cluster_prefix = f"{own_prefix}{CLUSTER}/"
    previous_pilot, previous_cutover = "20200101T000000Z-000001", "20200102T000000Z-000002"
    pilot, wave1_retry, cutover = "20200103T000000Z-000003", "20200104T000000Z-000004", "20200105T000000Z-000005"
    unrecorded = "20200106T000000Z-000006"
    put_complete_backups(
        s3, cluster_prefix, [previous_pilot, previous_cutover, pilot, wave1_retry, cutover, unrecorded]
    )
    archive = [
        f"{cluster_prefix}{cutover}/cutover/old-configuration.tar.gz",
        f"{cluster_prefix}{cutover}/cutover/old-configuration.tar.gz.sha256",
    ]
    for key in archive:
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"archive")
    write_journal(
        kube,
        scratch_namespace,
        {
            "pilot-0": [backup_step("pilot", previous_pilot), done_step("pilot")],
            "cutover-0": [backup_step("cutover", previous_cutover), done_step("cutover")],
            "pilot-1": [backup_step("pilot", pilot), done_step("pilot")],
            "wave1-1": [
                backup_step("wave1", "20200103T120000Z-00000a", outcome="failed"),
                done_step("wave1", "failed"),
            ],
            "wave1-2": [backup_step("wave1", wave1_retry), done_step("wave1")],
            "cutover-1": [backup_step("cutover", cutover)],  # killed after its archive: not completed
        },
    )
    completed, result = run_role(
        tmp_path,
        "backup",
        {
            "ceres_backup_target": s3_target(own_prefix, keep=2),
            "backup_secrets": False,
            "backup_journal_namespace": scratch_namespace,
            "backup_journal_name": "ceres-rollout",
        },
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert complete_ids(s3, cluster_prefix) == [pilot, wave1_retry, cutover, unrecorded, result["id"]]
    assert result["retention"]["protected"] == [pilot, wave1_retry, cutover]
    assert result["retention"]["deleted"] == [previous_pilot, previous_cutover]
    remaining = list_keys(s3, own_prefix)
    for key in archive:
        assert key in remaining


def test_retention_prunes_nothing_when_the_journal_cannot_be_read(
    tmp_path, s3, kube, sandbox_vault_password, own_prefix, scratch_namespace
):
    from kubernetes import client

    cluster_prefix = f"{own_prefix}{CLUSTER}/"
    old = ["20200101T000000Z-000001", "20200102T000000Z-000002", "20200103T000000Z-000003"]
    put_complete_backups(s3, cluster_prefix, old)
    client.CoreV1Api(kube).create_namespaced_config_map(
        scratch_namespace, {"metadata": {"name": "ceres-rollout-journal"}, "data": {"run.pilot-1": "not JSON\n"}}
    )
    completed, result = run_role(
        tmp_path,
        "backup",
        {
            "ceres_backup_target": s3_target(own_prefix, keep=1),
            "backup_secrets": False,
            "backup_journal_namespace": scratch_namespace,
            "backup_journal_name": "ceres-rollout",
        },
    )
    output = " ".join((completed.stdout + completed.stderr).split())
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert complete_ids(s3, cluster_prefix) == [*old, result["id"]]
    assert result["retention"]["deleted"] == []
    assert f"the journal {scratch_namespace}/ceres-rollout-journal cannot be read" in output
    assert "no backup is pruned" in output


# --------------------------------------------------------------------------- a resumed run's backup


def resume_with_backup(tmp_path: Path, backup_prefix: str, backup_id: str, recorded_sha256: str | None):
    """rollout_run's backup entry point as a resumed pilot run reaches it: its plan names the backup
    the run recorded (with the manifest's digest, when recorded); a later task writes a marker."""
    marker = tmp_path / f"went-on-{uuid.uuid4().hex[:6]}"
    data = {"location": "s3://...", "complete": True}
    if recorded_sha256:
        data["manifest_sha256"] = recorded_sha256
    record = {**backup_step("pilot", backup_id), "run_id": "pilot-resumed", "data": data}
    play = {
        "name": "Resume a pilot run",
        "hosts": "sandbox",
        "gather_facts": False,
        "vars": {
            "ceres_backup_target": s3_target(backup_prefix),
            "rollout_run_phase": "pilot",
            "rollout_run_id": "pilot-resumed",
            "rollout_run_plan": {"run_id": "pilot-resumed", "resume": True, "completed": False, "backup_id": backup_id},
            "rollout_run_journal": {"records": [record]},
        },
        "tasks": [
            {
                "name": "This run's backup",
                "ansible.builtin.include_role": {"name": "ceres.rollout.rollout_run", "tasks_from": "backup"},
            },
            {"name": "Go on", "ansible.builtin.copy": {"content": "ran", "dest": str(marker), "mode": "0600"}},
        ],
    }
    playbook = tmp_path / f"resume-{uuid.uuid4().hex[:6]}.yml"
    playbook.write_text(json.dumps([play]))
    completed = run_ansible(["ansible-playbook", "-i", "inventories/local", str(playbook)], check=False)
    return completed, marker.exists()


def test_a_resumed_run_goes_on_with_its_recorded_backup_when_it_is_there_signed_and_unchanged(
    tmp_path, completed_backup, backup_prefix
):
    completed, went_on = resume_with_backup(
        tmp_path, backup_prefix, completed_backup["id"], completed_backup["manifest_sha256"]
    )
    assert completed.returncode == 0 and went_on, completed.stdout + completed.stderr
    assert f"migrates from backup {completed_backup['id']}" in completed.stdout


@pytest.mark.parametrize("problem", ["gone", "unsigned", "replaced", "file-gone"])
def test_a_resumed_run_stops_when_its_recorded_backup_is_gone_unsigned_or_replaced(
    tmp_path, s3, completed_backup, backup_prefix, sandbox_vault_password, problem
):
    backup_id = (
        "20000102T000000Z-"
        + {"gone": "aaa001", "unsigned": "aaa002", "replaced": "aaa003", "file-gone": "aaa004"}[problem]
    )
    prefix = f"{backup_prefix}{CLUSTER}/{backup_id}/"
    recorded = None
    if problem != "gone":
        copy_backup(
            s3,
            completed_backup["prefix"],
            prefix,
            backup_id,
            signing_password=None if problem == "unsigned" else vault_password_of(sandbox_vault_password),
        )
        recorded = hashlib.sha256(read_object(s3, prefix + "manifest.json")).hexdigest()
    if problem == "replaced":  # signed by the key holder, but not the manifest the run recorded
        copy_backup(
            s3,
            completed_backup["prefix"],
            prefix,
            backup_id,
            signing_password=vault_password_of(sandbox_vault_password),
        )
    if problem == "file-gone":
        s3.delete_object(Bucket=BUCKET, Key=prefix + "ceres_db.dump")
    try:
        completed, went_on = resume_with_backup(tmp_path, backup_prefix, backup_id, recorded)
        output = " ".join(completed.stdout.split())
        assert completed.returncode != 0 and not went_on, completed.stdout
        assert f"the backup {backup_id} this pilot run recorded cannot be used" in output, output
        expected = {
            "gone": "has no manifest",
            "unsigned": "it has no signature",
            "replaced": f"but {recorded} was recorded",
            "file-gone": "ceres_db.dump is missing",
        }[problem]
        assert expected in output, output
    finally:
        delete_prefix(s3, prefix)


def test_directory_format_backup_round_trip(tmp_path, s3, sandbox_vault_password, own_prefix):
    """A directory-format dump (several files, dumped with two jobs) travels as one object per file."""
    completed, result = run_role(
        tmp_path,
        "backup",
        {
            "ceres_backup_target": s3_target(own_prefix),
            "backup_format": "directory",
            "backup_jobs": 2,
            "backup_secrets": False,
        },
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert result["secrets"] is None
    assert "ceres_db.d/toc.dat" in result["files"]
    assert len([name for name in result["files"] if name.startswith("ceres_db.d/")]) > 2
    scratch = f"ceres_test_restore_{uuid.uuid4().hex[:8]}"
    try:
        completed, restored = run_role(
            tmp_path,
            "restore",
            {
                "ceres_backup_target": s3_target(own_prefix),
                "restore_database": scratch,
                "restore_secrets": False,
                "restore_jobs": 2,
            },
        )
        assert completed.returncode == 0, completed.stdout + completed.stderr
        assert restored["id"] == result["id"] and restored["secrets"] is None
        assert table_fingerprints(scratch) == table_fingerprints("ceres_db")
    finally:
        drop_database(scratch)


def test_pod_mode_backup_dumps_through_the_exec_api_and_round_trips(tmp_path, s3, sandbox_vault_password, own_prefix):
    """backup_dump_in_pod: pg_dump runs in a Ready pod of ceres-system/postgres-main (the
    inventory's ceres_database.kube_*) through the exec API, as the plan's kubectl exec does."""
    completed, result = run_role(
        tmp_path,
        "backup",
        {"ceres_backup_target": s3_target(own_prefix), "backup_dump_in_pod": True, "backup_secrets": False},
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    source = result["database"]["source"]
    assert source["mode"] == "pod" and source["namespace"] == "ceres-system"
    assert source["pod"].startswith("postgres-main-")
    manifest = json.loads(read_object(s3, result["manifest"]))
    assert manifest["database"]["source"] == source and manifest["database"]["verified"] is True
    scratch = f"ceres_test_restore_{uuid.uuid4().hex[:8]}"
    try:
        completed, restored = run_role(
            tmp_path,
            "restore",
            {"ceres_backup_target": s3_target(own_prefix), "restore_database": scratch, "restore_secrets": False},
        )
        assert completed.returncode == 0, completed.stdout + completed.stderr
        assert restored["id"] == result["id"]
        assert table_fingerprints(scratch) == table_fingerprints("ceres_db")
    finally:
        drop_database(scratch)


@pytest.mark.parametrize(
    "extra, message",
    [
        (
            {"backup_format": "directory"},
            "backup_format directory cannot be used: pg_dump would write the directory inside",
        ),
        ({"backup_database_password": "not-sent"}, "backup_database_password must be empty"),
        (
            {"ceres_database": {"name": "ceres_db", "kube_namespace": "ceres-system"}},
            "ceres_database.kube_deployment (or backup_database.kube_deployment) is not set",
        ),
    ],
    ids=["directory", "password", "no-deployment"],
)
def test_pod_mode_refuses_what_cannot_work_before_dumping(
    tmp_path, s3, sandbox_vault_password, own_prefix, extra, message
):
    completed, result = run_role(
        tmp_path, "backup", {"ceres_backup_target": s3_target(own_prefix), "backup_dump_in_pod": True, **extra}
    )
    output = " ".join(completed.stdout.split())
    assert completed.returncode != 0 and result is None
    assert "backup_dump_in_pod is true but" in output and message in output
    assert "Dump and verify the database" not in output
    assert "not-sent" not in completed.stdout + completed.stderr
    assert list_keys(s3, own_prefix) == []


# --------------------------------------------------------------------------- check mode and validation

AZURE_TARGET = {
    "kind": "azure",
    "storage_account": "ceresbackups",
    "container": "backups",
    "resource_group": "ceres-rg",
    "prefix": "ceres/",
    "keep": 5,
}
GCS_TARGET = {"kind": "gcs", "bucket": "ceres-backups", "project": "ceres-prod", "prefix": "ceres/", "keep": 5}


@pytest.mark.parametrize(
    "target, location",
    [
        (AZURE_TARGET, f"https://ceresbackups.blob.core.windows.net/backups/ceres/{CLUSTER}/"),
        (GCS_TARGET, f"gs://ceres-backups/ceres/{CLUSTER}/"),
    ],
    ids=["azure", "gcs"],
)
def test_azure_and_gcs_targets_run_in_check_mode(tmp_path, sandbox_vault_password, target, location):
    # the demo's three Secrets of ceres-system, not those an end-to-end test owns there meanwhile (test_e2e_deployer)
    variables = {"ceres_backup_target": target, "backup_check_target": False}
    variables["backup_secrets_label_selector"] = "!ceres.io/e2e-world"
    completed, result = run_role(tmp_path, "backup", variables, "--check")
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert result["kind"] == target["kind"] and result["complete"] is False
    assert result["location"] == f"{location}{result['id']}/"
    assert result["secrets"]["count"] == 3


def test_s3_check_mode_reads_the_bucket_and_uploads_nothing(tmp_path, s3, sandbox_vault_password, own_prefix):
    completed, result = run_role(tmp_path, "backup", {"ceres_backup_target": s3_target(own_prefix)}, "--check")
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert result["complete"] is False
    assert list_keys(s3, own_prefix) == []


@pytest.mark.parametrize(
    "target, message",
    [
        ({**AZURE_TARGET, "resource_group": ""}, "ceres_backup_target of kind azure needs resource_group"),
        ({key: value for key, value in GCS_TARGET.items() if key != "project"}, "of kind gcs needs project"),
        ({**GCS_TARGET, "auth_kind": "serviceaccount"}, "of kind gcs needs service_account_file"),
        ({"kind": "s3", "prefix": "ceres/"}, "of kind s3 needs bucket"),
        ({**AZURE_TARGET, "kind": "ftp"}, "value of kind must be one of: s3, azure, gcs"),
        ({**GCS_TARGET, "prefix": "/ceres"}, "the backup prefix must be empty or end with '/'"),
    ],
    ids=["azure-resource-group", "gcs-project", "gcs-service-account-file", "s3-bucket", "unknown-kind", "prefix"],
)
def test_an_incomplete_target_fails_with_a_clear_message(tmp_path, sandbox_vault_password, target, message):
    completed, result = run_role(tmp_path, "backup", {"ceres_backup_target": target}, "--check")
    assert completed.returncode != 0
    assert message in " ".join(completed.stdout.split())
    assert result is None


def test_a_missing_vault_password_file_fails_clearly(tmp_path, own_prefix):
    missing = tmp_path / "no-vault-password"
    completed, _result = run_role(
        tmp_path,
        "backup",
        {"ceres_backup_target": s3_target(own_prefix), "ceres_vault_password_file": str(missing)},
        "--check",
    )
    assert completed.returncode != 0
    assert f"the vault password file {missing} that encrypts the exported Secrets does not exist" in " ".join(
        completed.stdout.split()
    )


def test_the_local_inventory_reads_the_sandbox_vault_password_file():
    inventory = (ROOT / "inventories" / "local" / "group_vars" / "all" / "backup.yml").read_text()
    assert "ceres_vault_password_file:" in inventory and "vault-password" in inventory
