# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Loading a dump into a database: pg_restore for custom, directory and tar archives, psql
for plain SQL (decompressed on the fly when gzipped). Both stop at the first error; with one
job the load is a single transaction, so a failure leaves the database as it was. Used by
pg_restore and by pg_backup's verify=restore (into a scratch database)."""

from __future__ import annotations

import gzip

from ansible_collections.ceres.rollout.plugins.module_utils.common.digests import READ_CHUNK_BYTES
from ansible_collections.ceres.rollout.plugins.module_utils.common.processes import run_captured
from ansible_collections.ceres.rollout.plugins.module_utils.postgres.connection import conninfo_for_database
from ansible_collections.ceres.rollout.plugins.module_utils.postgres.errors import RestoreFailed, VerificationFailed
from ansible_collections.ceres.rollout.plugins.module_utils.postgres.tools import find_client_tool

PLAIN_CLEAN_UNSUPPORTED = "clean is not supported for plain-format backups (their SQL has no DROP statements)"


def pg_restore_argv(tool_path, archive_path, backup_format, database, jobs=1, clean=False, no_owner=False):
    """Restore into `database`, stopping at the first error. With one job the restore runs
    in a single transaction, so a failure leaves the database as it was."""
    argv = [
        tool_path,
        "--no-password",
        "--exit-on-error",
        "--format=%s" % backup_format,
        "--dbname=%s" % conninfo_for_database(database),
    ]
    if jobs > 1 and backup_format in ("custom", "directory"):
        argv.append("--jobs=%d" % jobs)
    else:
        argv.append("--single-transaction")
    if clean:
        argv.extend(["--clean", "--if-exists"])
    if no_owner:
        argv.append("--no-owner")
    argv.append(archive_path)
    return argv


def psql_restore_argv(tool_path, database, sql_path=None):
    """psql running a plain SQL dump in one transaction, stopping at the first error; the
    SQL comes from sql_path or, for compressed dumps, stdin."""
    argv = [
        tool_path,
        "--no-password",
        "--no-psqlrc",
        "--quiet",
        "--single-transaction",
        "--set=ON_ERROR_STOP=1",
        "--dbname=%s" % conninfo_for_database(database),
    ]
    if sql_path is not None:
        argv.append("--file=%s" % sql_path)
    return argv


def open_sql_dump(path):
    """A binary reader of a plain dump, decompressing gzip."""
    with open(path, "rb") as handle:
        magic = handle.read(4)
    if magic[:2] == b"\x1f\x8b":
        return gzip.open(path, "rb")
    if magic in (b"\x04\x22\x4d\x18", b"\x28\xb5\x2f\xfd"):
        raise VerificationFailed(
            "%s is lz4/zstd-compressed SQL, which cannot be checked here; use format custom or directory" % path
        )
    return open(path, "rb")


def restore_into(
    path, backup_format, target_params, server_major, jobs, no_owner, error_class, what_prefix="", clean=False
):
    """Run pg_restore (or psql for a plain dump) into target_params.database."""
    environment = target_params.libpq_environment()
    secrets = target_params.secrets()
    if backup_format == "plain":
        if clean:
            raise RestoreFailed(PLAIN_CLEAN_UNSUPPORTED)
        psql = find_client_tool("psql", server_major)
        with open_sql_dump(path) as handle:
            if isinstance(handle, gzip.GzipFile):  # psql reads the decompressed SQL from stdin
                argv = psql_restore_argv(psql.path, target_params.database)
                stdin_chunks = iter(lambda: handle.read(READ_CHUNK_BYTES), b"")
            else:
                argv = psql_restore_argv(psql.path, target_params.database, path)
                stdin_chunks = None
            run_captured(argv, environment, secrets, error_class, what_prefix + "psql", stdin_chunks=stdin_chunks)
        return
    pg_restore = find_client_tool("pg_restore", server_major)
    run_captured(
        pg_restore_argv(
            pg_restore.path, path, backup_format, target_params.database, jobs=jobs, clean=clean, no_owner=no_owner
        ),
        environment,
        secrets,
        error_class,
        what_prefix + "pg_restore",
    )
