# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The S3 server of the sandbox: moto from the venv, with the backup bucket created once."""

from __future__ import annotations

from pathlib import Path

from .config import SandboxConfig
from .process import Component, Context, http_get


def _ready(config: SandboxConfig) -> bool:
    return http_get(f"http://127.0.0.1:{config.ports['s3']}/moto-api/", timeout=1)[0] == 200


def _bucket(config: SandboxConfig, ctx: Context) -> None:
    import boto3  # noqa: PLC0415 - only the sandbox venv has it

    client = boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{config.ports['s3']}",
        region_name="us-east-1",
        aws_access_key_id=ctx.secrets["aws_access_key_id"],
        aws_secret_access_key=ctx.secrets["aws_secret_access_key"],
    )
    if config.backup_bucket not in [b["Name"] for b in client.list_buckets().get("Buckets", [])]:
        client.create_bucket(Bucket=config.backup_bucket)


def component(config: SandboxConfig) -> Component:
    return Component(
        config,
        "s3",
        ["s3"],
        lambda ctx: [str(Path(ctx.python).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(config.ports["s3"])],
        lambda ctx: _ready(config),
        env=lambda ctx: {"MOTO_ALLOW_NONEXISTENT_REGION": "true"},
        after_start=lambda ctx: _bucket(config, ctx),
    )
