"""End-to-end: a complete rollback restores the backup its run recorded only when the backup's manifest is the
one the run recorded (its sha256 in the journal), even when whoever replaced it could sign it."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import time
from pathlib import Path

import boto3
from integration_support import SANDBOX_ENV
from kubernetes import client
from rollout_world import BUCKET, Playbook

pytest_plugins = ["e2e_fixtures"]

CONTEXT = "ceres.rollout/backup-manifest/v1"


def s3_client():
    return boto3.client(
        "s3",
        endpoint_url=SANDBOX_ENV["AWS_ENDPOINT_URL"],
        region_name=SANDBOX_ENV.get("AWS_REGION", "us-east-1"),
        aws_access_key_id=SANDBOX_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=SANDBOX_ENV["AWS_SECRET_ACCESS_KEY"],
    )


def resign(manifest: dict, password: bytes) -> dict:
    """The manifest signed as the README documents (written out here independently of the collection)."""
    unsigned = {key: value for key, value in manifest.items() if key != "signature"}
    salt = os.urandom(16)
    key = hashlib.pbkdf2_hmac("sha256", password, CONTEXT.encode() + b":" + salt, 100000)
    canonical = json.dumps(unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    value = hmac.new(key, CONTEXT.encode() + b"\n" + canonical, hashlib.sha256).hexdigest()
    block = {
        "algorithm": "HMAC-SHA256",
        "key_derivation": "PBKDF2-HMAC-SHA256",
        "context": CONTEXT,
        "iterations": 100000,
        "salt": salt.hex(),
        "value": value,
    }
    return {**unsigned, "signature": block}


def backup_ids(world) -> list[str]:
    """The complete backups (their manifest.json is there) of the world's cluster, oldest first."""
    return sorted(
        {
            key.split("/")[-2]
            for key in world.backup_keys()
            if key.startswith(f"{world.backup_prefix}sandbox/") and key.endswith("/manifest.json")
        }
    )


def record_backup(world, backup_id: str, manifest_sha256: str) -> None:
    """What rollout_run's backup step writes for a pilot run: <phase>/backup, passed, id and manifest digest."""
    record = {
        "step_id": "pilot/backup",
        "outcome": "passed",
        "backup_id": backup_id,
        "data": {"complete": True, "manifest_sha256": manifest_sha256},
    }
    world.record_run("pilot-recorded", "pilot", [record])


def test_a_complete_rollback_refuses_the_recorded_backup_once_its_manifest_was_replaced(rollout_world, kube):
    """The run recorded backup R with its manifest's sha256. Later R's Secrets file is replaced by a later
    backup's (the rotated key) and R's manifest re-signed to match, by someone who has the vault password:
    the signature verifies, only the recorded digest tells. The rollback still moves the traffic, restores
    nothing, and fails naming both digests."""
    world = rollout_world
    namespace = world.namespace("signed", ["checkout"])
    core = client.CoreV1Api(kube)
    core.create_namespaced_secret(
        namespace, {"metadata": {"name": "checkout-api-key"}, "type": "Opaque", "stringData": {"key": "before"}}
    )
    variables = world.pilot_vars(namespace, backup_secrets_namespaces=[namespace])
    assert Playbook("backup", variables).wait() == 0
    (recorded,) = backup_ids(world)
    s3 = s3_client()
    recorded_prefix = f"{world.backup_prefix}sandbox/{recorded}/"
    manifest_body = s3.get_object(Bucket=BUCKET, Key=recorded_prefix + "manifest.json")["Body"].read()
    recorded_sha256 = hashlib.sha256(manifest_body).hexdigest()
    record_backup(world, recorded, recorded_sha256)

    core.patch_namespaced_secret("checkout-api-key", namespace, {"stringData": {"key": "rotated"}})
    time.sleep(1.1)  # backup ids name the second they were taken
    assert Playbook("backup", variables).wait() == 0
    (later,) = [backup_id for backup_id in backup_ids(world) if backup_id != recorded]
    later_prefix = f"{world.backup_prefix}sandbox/{later}/"
    rotated = s3.get_object(Bucket=BUCKET, Key=later_prefix + "secrets.vault")["Body"].read()
    manifest = json.loads(manifest_body)
    manifest["files"]["secrets.vault"] = {"sha256": hashlib.sha256(rotated).hexdigest(), "size_bytes": len(rotated)}
    manifest["secrets"]["sha256"] = manifest["files"]["secrets.vault"]["sha256"]
    password = (Path(SANDBOX_ENV["CERES_SANDBOX_DIR"]) / "vault-password").read_bytes().strip()
    s3.put_object(Bucket=BUCKET, Key=recorded_prefix + "secrets.vault", Body=rotated)
    s3.put_object(
        Bucket=BUCKET, Key=recorded_prefix + "manifest.json", Body=json.dumps(resign(manifest, password)).encode()
    )

    world.set_weight(namespace, "checkout", 50)
    core.delete_namespaced_secret("checkout-api-key", namespace)
    rollback = Playbook("rollback", variables, "-e", "rollback_mode=complete")
    assert rollback.wait() != 0, rollback.output
    output = " ".join(rollback.output.split())
    assert world.canary_weight(namespace, "checkout") == 0  # the traffic went back all the same
    assert f"the manifest of backup {recorded}" in output, output
    assert f"but {recorded_sha256} was recorded when the backup was taken" in output, output
    secrets = core.list_namespaced_secret(namespace).items
    assert "checkout-api-key" not in [secret.metadata.name for secret in secrets]  # the rotated key did not come back
