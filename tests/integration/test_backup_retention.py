"""The backup and restore roles against the sandbox: failures before the next phase, retention, a resumed run's
backup, the directory and pod formats, check mode and other targets, clear messages. Each test works under its own
key prefix of the bucket and removes it after. (The round trips of one real backup: test_backup_roles.py.)"""

from __future__ import annotations

import json
import uuid

import pytest
from backup_support import (
    BUCKET,
    CLUSTER,
    backup_step,
    closed_port,
    drop_database,
    list_keys,
    read_object,
    run_role,
    s3_target,
    table_fingerprints,
)
from integration_support import ROOT

pytest_plugins = ["backup_support"]

# --------------------------------------------------------------------------- failures and retention


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
