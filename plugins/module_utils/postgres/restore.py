# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Restoring a backup taken by pg_backup (ceres.rollout.pg_restore).

check_restore() checks everything before the target is touched: the options, the manifest,
every checksum, the connection, the target's existence (and the privilege to create it),
that an existing target holds no tables unless clean, and the client tool. A target that
already holds exactly the backup's tables, with the manifest's row counts and content hashes,
is up to date: nothing is restored and the result says changed=false. Otherwise run_restore()
loads the dump (pg_load) and compares every table with the manifest; a database it created
is dropped again when anything fails.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from ansible_collections.ceres.rollout.plugins.module_utils.postgres.catalog import (
    compare_table_stats,
    count_user_tables,
    major_version,
    read_database_table_stats,
)
from ansible_collections.ceres.rollout.plugins.module_utils.postgres.connection import (
    ConnectionParams,
    connect_maintenance,
    database_errors_as,
)
from ansible_collections.ceres.rollout.plugins.module_utils.postgres.databases import (
    create_database,
    database_exists,
    drop_database,
    login_role_can_create_databases,
)
from ansible_collections.ceres.rollout.plugins.module_utils.postgres.errors import (
    InsufficientPrivilege,
    InvalidRequest,
    PostgresBackupError,
    RestoreFailed,
)
from ansible_collections.ceres.rollout.plugins.module_utils.postgres.load import PLAIN_CLEAN_UNSUPPORTED, restore_into
from ansible_collections.ceres.rollout.plugins.module_utils.postgres.manifest import (
    load_manifest,
    manifest_path_for,
    verify_backup_integrity,
)
from ansible_collections.ceres.rollout.plugins.module_utils.postgres.tools import check_jobs, find_client_tool


@dataclass(frozen=True)
class RestoreRequest:
    connection: ConnectionParams  # its database is the target
    src: str
    create: bool = True
    clean: bool = False
    jobs: int = 1

    def __post_init__(self):
        check_jobs(self.jobs)
        if self.clean and self.jobs > 1:
            raise InvalidRequest(
                "clean=true with jobs=%d is refused: pg_restore runs parallel jobs outside a single transaction, so a"
                " failure after it dropped the old objects would leave the database without them; use jobs=1 (one"
                " transaction: a failure leaves the database as it was), or restore into a new database with parallel"
                " jobs (nothing was changed)" % self.jobs
            )


@dataclass
class RestorePlan:
    manifest: dict
    server_version_num: int
    server_major: int
    target_exists: bool
    up_to_date_tables: dict | None = None  # the target's TableStats when it already matches the manifest

    @property
    def up_to_date(self):
        return self.up_to_date_tables is not None


def can_prove_a_match(manifest):
    """Whether a target can be shown to hold the backup's data without restoring it: only
    when the manifest has a content hash for every table (a backup taken with verify=restore).
    Equal row counts alone would pass a table whose rows were changed in place."""
    tables = manifest["tables"]
    return bool(tables) and all(stats.get("content_hash") for stats in tables.values())


def tables_if_up_to_date(params, manifest):
    """The target's {schema.table: TableStats} when it holds exactly the manifest's tables
    with their row counts and content hashes, else None."""
    if not can_prove_a_match(manifest):
        return None
    current = read_database_table_stats(params, True, "ceres.rollout.pg_restore check")
    if compare_table_stats(manifest["tables"], current):
        return None
    return current


def check_restore(request):
    """Everything a restore needs, checked before the database is touched (see the module
    docstring). Returns the RestorePlan."""
    target = request.connection.database
    if not target:
        raise RestoreFailed("the target database must be named")
    src = os.path.abspath(request.src)
    manifest = load_manifest(manifest_path_for(src))
    verify_backup_integrity(src, manifest)
    if request.clean and manifest["format"] == "plain":
        raise RestoreFailed(PLAIN_CLEAN_UNSUPPORTED)
    maintenance = connect_maintenance(request.connection, "ceres.rollout.pg_restore check")
    try:
        version_num = maintenance.server_version
        with database_errors_as(RestoreFailed, request.connection, "looking up the target database"):
            target_exists = database_exists(maintenance, target)
            if not target_exists and request.create:
                with maintenance.cursor() as cursor:
                    role, can_create = login_role_can_create_databases(cursor)
                if not can_create:
                    raise InsufficientPrivilege(
                        'database "%s" does not exist and the login role "%s" may not create it (it has neither'
                        " CREATEDB nor SUPERUSER); create the database first, or grant the role CREATEDB"
                        % (target, role)
                    )
    finally:
        maintenance.close()
    if not target_exists and not request.create:
        raise RestoreFailed('database "%s" does not exist and create is false' % target)
    plan = RestorePlan(
        manifest=manifest,
        server_version_num=version_num,
        server_major=major_version(version_num),
        target_exists=target_exists,
    )
    if target_exists:
        plan.up_to_date_tables = tables_if_up_to_date(request.connection, manifest)
        if plan.up_to_date:
            return plan
    if target_exists and not request.clean:
        table_count = count_user_tables(request.connection)
        if table_count:
            # pg_restore would stop at the first object that exists ("schema ... already exists").
            raise RestoreFailed(
                'database "%s" already exists and has %d table%s; set clean=true to replace its objects, or restore'
                " into a new database (nothing was restored)" % (target, table_count, "" if table_count == 1 else "s")
            )
    find_client_tool("psql" if manifest["format"] == "plain" else "pg_restore", plan.server_major)
    return plan


@dataclass(frozen=True)
class RestoreResult:
    database: str
    tables: dict
    created: bool
    duration_s: float
    changed: bool = True

    def module_result(self):
        return {
            "changed": self.changed,
            "database": self.database,
            "tables": {key: stats.rows for key, stats in sorted(self.tables.items())},
            "created": self.created,
            "duration_s": self.duration_s,
        }


def run_restore(request):
    """Check, then restore, then compare every table with the manifest. A database this
    call created is dropped again when anything fails. A target already up to date is left
    alone (changed=false)."""
    clock = time.monotonic()
    plan = check_restore(request)
    params = request.connection
    target = params.database
    if plan.up_to_date:
        return RestoreResult(
            database=target,
            tables=plan.up_to_date_tables,
            created=False,
            duration_s=round(time.monotonic() - clock, 3),
            changed=False,
        )
    manifest = plan.manifest
    src = os.path.abspath(request.src)
    maintenance = connect_maintenance(params, "ceres.rollout.pg_restore")
    created = False
    try:
        if not plan.target_exists:
            create_database(
                maintenance,
                target,
                manifest.get("encoding"),
                manifest.get("lc_collate"),
                manifest.get("lc_ctype"),
                params,
            )
            created = True
        restore_into(
            src,
            manifest["format"],
            params,
            plan.server_major,
            request.jobs,
            no_owner=False,
            error_class=RestoreFailed,
            clean=request.clean,
        )
        with_content_hash = any(stats.get("content_hash") for stats in manifest["tables"].values())
        restored = read_database_table_stats(
            params, with_content_hash, "ceres.rollout.pg_restore", only_keys=set(manifest["tables"])
        )
        differences = compare_table_stats(manifest["tables"], restored, allow_extra_tables=True)
        if differences:
            raise RestoreFailed(
                'database "%s" differs from the backup after the restore: %s' % (target, "; ".join(differences))
            )
    except PostgresBackupError as error:
        if created:
            try:
                drop_database(maintenance, target, plan.server_version_num, params)
            except PostgresBackupError as drop_error:
                raise RestoreFailed("%s; also %s" % (error, drop_error))
        raise
    except BaseException:
        if created:
            drop_database(maintenance, target, plan.server_version_num, params)
        raise
    finally:
        maintenance.close()
    return RestoreResult(
        database=target, tables=restored, created=created, duration_s=round(time.monotonic() - clock, 3)
    )


def check_mode_restore_result(request):
    """What pg_restore reports in check mode, after check_restore() found nothing wrong:
    the manifest's tables (the target's, when it is up to date); nothing is restored."""
    clock = time.monotonic()
    plan = check_restore(request)
    if plan.up_to_date:
        tables = {key: stats.rows for key, stats in sorted(plan.up_to_date_tables.items())}
    else:
        tables = {key: stats["rows"] for key, stats in sorted(plan.manifest["tables"].items())}
    return {
        "changed": not plan.up_to_date,
        "database": request.connection.database,
        "tables": tables,
        "created": not plan.target_exists,
        "duration_s": round(time.monotonic() - clock, 3),
    }
