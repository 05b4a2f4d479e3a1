"""The backup and restore roles against the sandbox, on one real backup taken once for the module: PostgreSQL, the API
server and the S3 server are real. Each test works under its own key prefix of the bucket and removes it after.
Retention, resume, other formats and targets, and clear failures: test_backup_retention.py."""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path

import pytest
from backup_support import (
    BUCKET,
    CLUSTER,
    SIGNATURE_CONTEXT,
    backup_step,
    copy_backup,
    database_exists,
    delete_prefix,
    drop_database,
    list_keys,
    manifest_signature,
    read_object,
    run_role,
    s3_target,
    signed_manifest,
    table_fingerprints,
    vault_password_of,
)
from integration_support import run_ansible

pytest_plugins = ["backup_support"]

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
