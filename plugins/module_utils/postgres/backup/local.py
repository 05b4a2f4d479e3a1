# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A backup with pg_dump running on this host (run_backup; the steps are pg_backup_common's).

psycopg2 holds the snapshot transaction (SnapshotSession) and counts the tables in it while
pg_dump, started in a process group of its own (DumpProcess), dumps the same snapshot:
stopping it on a failure, a timeout or an interruption stops the workers of pg_dump --jobs
too. Secrets: the password reaches pg_dump only through PGPASSWORD in an environment that
extends os.environ, never argv; every message is passed through redact().
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time

from ansible_collections.ceres.rollout.plugins.module_utils.common.processes import (
    describe_exit,
    start_in_own_group,
    stop_process,
    tail,
)
from ansible_collections.ceres.rollout.plugins.module_utils.common.redaction import redact
from ansible_collections.ceres.rollout.plugins.module_utils.postgres.backup.common import (
    BackupRun,
    count_tables_while_dumping,
    pg_dump_argv,
    planned_backup_result,
)
from ansible_collections.ceres.rollout.plugins.module_utils.postgres.catalog import major_version, read_server_info
from ansible_collections.ceres.rollout.plugins.module_utils.postgres.connection import (
    DatabaseError,
    connect,
    database_errors_as,
    set_read_only_snapshot,
)
from ansible_collections.ceres.rollout.plugins.module_utils.postgres.destination import StagedBackup, check_destination
from ansible_collections.ceres.rollout.plugins.module_utils.postgres.errors import (
    ConnectionFailed,
    DumpFailed,
    InvalidRequest,
)
from ansible_collections.ceres.rollout.plugins.module_utils.postgres.manifest import LOCAL_SOURCE
from ansible_collections.ceres.rollout.plugins.module_utils.postgres.tools import (
    find_client_tool,
    prefetch_tool_version,
)
from ansible_collections.ceres.rollout.plugins.module_utils.postgres.verify import (
    check_can_create_scratch_database,
    find_verification_tools,
)


class SnapshotSession:
    """A read-only REPEATABLE READ transaction whose snapshot pg_dump imports. It stays open
    (and usable for counting) until the with-block ends, i.e. until pg_dump has finished."""

    def __init__(self, params, application_name):
        self.params = params
        self.application_name = application_name
        self.connection = None
        self.cursor = None
        self.snapshot_id = None
        self.database = None
        self.server_major = None

    def __enter__(self):
        self.connection = connect(self.params, self.application_name)
        try:
            set_read_only_snapshot(self.connection)
            self.cursor = self.connection.cursor()
            self.cursor.execute("SELECT pg_catalog.pg_export_snapshot()")
            self.snapshot_id = self.cursor.fetchone()[0]
            # Known from the connection itself, so pg_dump can start without another query.
            self.database = self.connection.info.dbname
            self.server_major = major_version(self.connection.server_version)
        except DatabaseError as error:
            self.connection.close()
            raise ConnectionFailed(
                redact(
                    "could not start the snapshot transaction on %s: %s" % (self.params.describe(), str(error).strip()),
                    self.params.secrets(),
                )
            )
        return self

    def __exit__(self, *exc_info):
        try:
            self.connection.rollback()
        except DatabaseError:
            pass
        self.connection.close()
        return False


class DumpProcess:
    """pg_dump running in the background, writing to a staged path."""

    def __init__(self, argv, environment, secrets):
        self.secrets = secrets
        self.stderr_file = tempfile.TemporaryFile()
        # pg_dump inherits the umask: its files are created 0600 (directories 0700), so the
        # data is never readable by others, not even before a chmod.
        previous_umask = os.umask(0o077)
        try:
            # In a process group of its own: with --jobs, its workers are stopped with it.
            self.process = start_in_own_group(
                argv,
                env=environment,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=self.stderr_file,
            )
        finally:
            os.umask(previous_umask)

    def failure_if_exited(self):
        """A DumpFailed when pg_dump has already exited with an error, else None."""
        if self.process.poll() is None or self.process.returncode == 0:
            return None
        failure = self._failure()
        stop_process(self.process)  # the workers of a failed or killed leader
        return failure

    def wait(self):
        self.process.wait()
        try:
            if self.process.returncode != 0:
                failure = self._failure()
                stop_process(self.process)  # the workers of a failed or killed leader
                raise failure
        finally:
            self.stderr_file.close()

    def stop(self):
        """Stop pg_dump and its workers (idempotent; also after wait())."""
        stop_process(self.process)
        self.stderr_file.close()

    def _failure(self):
        self.stderr_file.seek(0)
        detail = tail(self.stderr_file.read().decode("utf-8", "replace"))
        message = describe_exit("pg_dump", self.process.returncode)
        if detail:
            message += ": " + detail
        return DumpFailed(redact(message + "; nothing was written to dest", self.secrets))


def check_backup(request):
    """Everything a backup needs except the dump itself (check mode): the destination, the
    connection, a pg_dump able to dump this server, the tools verification needs and, for
    verify=restore, the privilege to create the scratch database. Returns the ServerInfo."""
    check_destination(request.dest, request.force, request.backup_format)
    connection = connect(request.connection, "ceres.rollout.pg_backup check")
    try:
        with database_errors_as(ConnectionFailed, request.connection, "reading the server's version"):
            with connection.cursor() as cursor:
                server = read_server_info(cursor)
                if request.verify == "restore":
                    check_can_create_scratch_database(cursor)
    finally:
        connection.close()
    find_client_tool("pg_dump", server.major, must_not_be_older=True)
    find_verification_tools(request.backup_format, request.verify, server.major)
    return server


def check_mode_backup_result(request):
    """What pg_backup reports in check mode, after check_backup() found nothing wrong."""
    _refuse_pod_request(request)
    clock = time.monotonic()
    server = check_backup(request)
    return planned_backup_result(request, server.database, dict(LOCAL_SOURCE), clock)


def run_backup(request, on_scratch_restored=None):
    """Dump, verify and publish a backup at request.dest (see pg_backup_common).

    on_scratch_restored(params) is called, for verify=restore, after the scratch restore
    and before the comparison: tests use it to alter the copy."""
    _refuse_pod_request(request)
    run = BackupRun(request, on_scratch_restored)
    dest = os.path.abspath(request.dest)
    check_destination(dest, request.force, request.backup_format)
    params = request.connection
    with_content_hash = request.verify == "restore"

    with StagedBackup(dest) as staged:
        with SnapshotSession(params, "ceres.rollout.pg_backup") as session:
            pg_dump = find_client_tool("pg_dump", session.server_major, must_not_be_older=True)
            # What verification will need is checked before anything is dumped.
            find_verification_tools(request.backup_format, request.verify, session.server_major)
            if request.verify == "restore":
                with database_errors_as(ConnectionFailed, params, "reading the login role's privileges"):
                    check_can_create_scratch_database(session.cursor)
            argv = pg_dump_argv(
                pg_dump.path,
                staged.temp_path,
                request.backup_format,
                session.snapshot_id,
                session.database,
                jobs=request.jobs,
                compress=request.compress,
            )
            dump = DumpProcess(argv, params.libpq_environment(), params.secrets())
            try:
                prefetch_tool_version(pg_dump.path)  # for the manifest, read while pg_dump works
                # From here on pg_dump is working; the tables are listed and counted meanwhile,
                # in the very snapshot it dumps.
                server = read_server_info(session.cursor)
                tables, table_stats = count_tables_while_dumping(session.cursor, dump, with_content_hash)
            except DatabaseError as error:
                dump.stop()
                raise DumpFailed(
                    redact("counting rows in the dump's snapshot failed: %s" % str(error).strip(), params.secrets())
                )
            except BaseException:
                # Also when interrupted while waiting: pg_dump must not outlive its temporary output.
                dump.stop()
                raise

        return run.finish(staged, server, pg_dump, session.snapshot_id, tables, table_stats)


def _refuse_pod_request(request):
    if request.pod is not None:
        raise InvalidRequest("a backup with pod runs through pg_backup_pod (run_pod_backup), not on this host")
