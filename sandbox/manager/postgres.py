# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""PostgreSQL of the sandbox: initdb once, the server on 127.0.0.1, ``ceres_db`` seeded once.

As root the server runs as the postgres user, in ``config.postgres_root`` (see
:func:`manager.config.postgres_root_for`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from .config import SandboxConfig, SandboxError
from .process import Component, Context, log_tail


def postgres_bin(tool: str) -> str:
    candidates = sorted(
        Path("/usr/lib/postgresql").glob(f"*/bin/{tool}"), key=lambda path: int(path.parent.parent.name), reverse=True
    )
    if candidates:
        return str(candidates[0])
    found = shutil.which(tool)
    if not found:
        raise SandboxError(f"postgres: {tool} not found; run `make apt` (Debian package postgresql)")
    return found


def postgres_env(config: SandboxConfig, ctx: Context) -> dict:
    """The libpq environment of the superuser (also given to `kubectl exec` into postgres-main)."""
    return {
        "PGHOST": "127.0.0.1",
        "PGPORT": str(config.ports["postgres"]),
        "PGUSER": "postgres",
        "PGPASSWORD": ctx.secrets["postgres_password"],
        "PGDATABASE": "postgres",
    }


def _data_dir(config: SandboxConfig) -> Path:
    return config.postgres_root / "data"


def _socket_dir(config: SandboxConfig) -> Path:
    return config.postgres_root / "socket"


def _init(config: SandboxConfig, ctx: Context) -> None:
    pg_root, pg_data, pg_socket = config.postgres_root, _data_dir(config), _socket_dir(config)
    if (pg_data / "PG_VERSION").exists():
        return
    pg_root.mkdir(mode=0o700, parents=True, exist_ok=True)
    pg_socket.mkdir(parents=True, exist_ok=True)
    password_file = pg_root / "initdb.pw"
    fd = os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(ctx.secrets["postgres_password"] + "\n")
    kwargs = {}
    if os.geteuid() == 0:
        shutil.chown(pg_root, "postgres", "postgres")
        shutil.chown(pg_socket, "postgres", "postgres")
        shutil.chown(password_file, "postgres", "postgres")
        kwargs = {"user": "postgres", "group": "postgres", "extra_groups": []}
    with open(config.log_file("postgres"), "ab") as log_file:
        result = subprocess.run(  # noqa: S603
            [
                postgres_bin("initdb"),
                "-D",
                str(pg_data),
                "-U",
                "postgres",
                f"--pwfile={password_file}",
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
            ],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            check=False,
            **kwargs,
        )
    password_file.unlink(missing_ok=True)
    if result.returncode != 0:
        raise SandboxError(
            f"postgres: initdb failed; see {config.log_file('postgres')}:\n{log_tail(config, 'postgres')}"
        )


def _command(config: SandboxConfig, ctx: Context) -> list[str]:
    _init(config, ctx)
    return [
        postgres_bin("postgres"),
        "-D",
        str(_data_dir(config)),
        "-c",
        "listen_addresses=127.0.0.1",
        "-c",
        f"port={config.ports['postgres']}",
        "-c",
        f"unix_socket_directories={_socket_dir(config)}",
        "-c",
        "fsync=off",
        "-c",
        "synchronous_commit=off",
        "-c",
        "full_page_writes=off",
        "-c",
        "max_connections=100",
        "-c",
        "logging_collector=off",
    ]


def _ready(config: SandboxConfig, ctx: Context) -> bool:
    result = subprocess.run(  # noqa: S603
        [postgres_bin("pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(config.ports["postgres"])],
        check=False,
        env={**os.environ, **postgres_env(config, ctx)},
    )
    return result.returncode == 0


def _seed(config: SandboxConfig, ctx: Context) -> None:
    env = {**os.environ, **postgres_env(config, ctx)}
    exists = subprocess.run(  # noqa: S603
        [postgres_bin("psql"), "-tAc", "SELECT 1 FROM pg_database WHERE datname = 'ceres_db'"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if exists.stdout.strip() == "1":
        return
    seed_log = config.log_file("postgres-seed")
    with open(seed_log, "ab") as log_file:
        for argv in (
            [postgres_bin("createdb"), "ceres_db"],
            [postgres_bin("psql"), "-q", "-d", "ceres_db", "-f", str(config.manifests / "ceres_db.sql")],
        ):
            result = subprocess.run(
                argv,
                env=env,
                stdout=log_file,  # noqa: S603
                stderr=subprocess.STDOUT,
                check=False,
            )
            if result.returncode != 0:
                raise SandboxError(f"postgres: seeding ceres_db failed; see {seed_log}")


def component(config: SandboxConfig) -> Component:
    return Component(
        config,
        "postgres",
        ["postgres"],
        lambda ctx: _command(config, ctx),
        lambda ctx: _ready(config, ctx),
        as_postgres_user=True,
        after_start=lambda ctx: _seed(config, ctx),
    )
