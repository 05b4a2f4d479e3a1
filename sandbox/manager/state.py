# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The files of ``.sandbox/`` that outlive one ``up``: the generated secrets, the vault
password and ``.sandbox/env`` (all mode 0600)."""

from __future__ import annotations

import json
import os
import secrets

from .config import SandboxConfig
from .process import Context
from .prometheus_config import SCRAPE_INTERVAL_ENV, scrape_interval_from_env


def ensure_vault_password(config: SandboxConfig) -> None:
    """The sandbox-only ansible-vault password the local inventory encrypts exported
    Secrets with (production inventories take it from CERES_VAULT_PASSWORD or AWX)."""
    path = config.state / "vault-password"
    if path.exists():
        return
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_urlsafe(30) + "\n")


def load_secrets(config: SandboxConfig) -> dict:
    if config.secrets_file.exists():
        return json.loads(config.secrets_file.read_text())
    values = {
        "postgres_password": secrets.token_urlsafe(18),
        "aws_access_key_id": "CERES" + secrets.token_hex(8).upper(),
        "aws_secret_access_key": secrets.token_urlsafe(30),
    }
    fd = os.open(config.secrets_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(values, handle)
    return values


def env_values(config: SandboxConfig, ctx: Context) -> dict[str, str]:
    """What `.sandbox/env` exports, in its order."""
    ports = config.ports
    kubeconfig = str(config.pki / "admin.kubeconfig")
    return {
        "KUBECONFIG": kubeconfig,
        "K8S_AUTH_KUBECONFIG": kubeconfig,
        "CERES_KUBE_API_URL": config.api_url,
        "CERES_PROMETHEUS_URL": f"http://127.0.0.1:{ports['prometheus']}",
        "CERES_SIMULATOR_URL": f"http://127.0.0.1:{ports['simulator']}",
        "PGHOST": "127.0.0.1",
        "PGPORT": str(ports["postgres"]),
        "PGUSER": "postgres",
        "PGPASSWORD": ctx.secrets["postgres_password"],
        "PGDATABASE": "ceres_db",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{ports['s3']}",
        "AWS_ACCESS_KEY_ID": ctx.secrets["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": ctx.secrets["aws_secret_access_key"],
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "CERES_BACKUP_BUCKET": config.backup_bucket,
        "CERES_SANDBOX_DIR": str(config.state),
        "CERES_AUDIT_LOG": str(config.logs / "audit.log"),
        "CERES_NETPOL_ENGINE": str(ctx.bin_dir / "ceres-netpol"),
        SCRAPE_INTERVAL_ENV: scrape_interval_from_env()[0],
    }


def write_env(config: SandboxConfig, ctx: Context) -> None:
    lines = ["# ceres.rollout sandbox; `source .sandbox/env` (written by sandbox/sandbox.py)"]
    lines += [f"export {key}='{value}'" for key, value in env_values(config, ctx).items()]
    tmp = config.state / "env.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    os.replace(tmp, config.env_file)
