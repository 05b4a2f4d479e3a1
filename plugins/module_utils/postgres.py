# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Verified logical backups and restores of PostgreSQL databases.

Everything ceres.rollout.pg_backup and ceres.rollout.pg_restore do lives here; the modules
only translate their options into a BackupRequest / RestoreRequest and the result (or a
PostgresBackupError) into module output.

How a backup runs (run_backup):
  1. the destination is checked: absent, or (force) a previous backup of the same kind (a
     regular file; for format=directory a pg_dump directory archive with its manifest), never
     any other directory; parent directory writable. The tools verification needs and, for
     verify=restore, the privilege to create a database are checked too;
  2. a read-only REPEATABLE READ transaction exports its snapshot (pg_export_snapshot());
  3. pg_dump --snapshot=<id> writes to a temporary sibling of dest while the same
     transaction counts every table's rows (and, for verify=restore, hashes their
     content), so the counts describe exactly the rows in the dump;
  4. the output is fsynced and hashed (sha256 per file), then verified (none | list | restore)
     while still under its temporary name;
  5. the manifest is written, fsynced, to a temporary sibling of <dest>.manifest.json; then an
     old backup and its manifest are moved aside, the output is renamed to dest and the
     manifest into place, last (StagedOutput.commit), and what was moved aside is removed.
A failure at any step removes the temporary output and manifest: dest (and its manifest) are
either complete and new or as they were.

Client tools run in a process group of their own (start_client_tool): stopping one on a
failure, a timeout or an interruption stops the workers of pg_dump / pg_restore --jobs too.

Pod mode (run_pod_backup, BackupRequest.pod): steps 2 and 3 run in the database's pod through
the Kubernetes exec API (k8s_exec.py). psql in the pod, fed through stdin, holds the snapshot
transaction and runs the same listing and counting statements (PodCursor); pg_dump there
imports the snapshot and its stdout streams into the temporary file. Steps 1, 4 and 5 are
local mode's.

Secrets: the password reaches client tools only through PGPASSWORD in an environment that
extends os.environ, never argv; every message built here is passed through redact().
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import datetime
import gzip
import hashlib
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field

from ansible.module_utils.basic import env_fallback

try:
    import psycopg2
    from psycopg2 import sql
    from psycopg2.extensions import ISOLATION_LEVEL_REPEATABLE_READ
except ImportError:
    HAS_PSYCOPG2 = False
else:
    HAS_PSYCOPG2 = True


BACKUP_FORMATS = ("custom", "directory", "tar", "plain")
VERIFY_MODES = ("none", "list", "restore")
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")

MANIFEST_SUFFIX = ".manifest.json"
MANIFEST_VERSION = 1
SCRATCH_DATABASE_PREFIX = "ceres_verify_"
PARTIAL_MARKER = ".partial-"

# Per row: hashtextextended(row::text, 0) and (.., 1), each summed modulo 2**64, as 32 hex
# digits. A sum is order independent, needs no sort (json columns have no ordering) and
# streams in constant memory; the fixed session settings below make row::text identical on
# the source, a scratch copy and another server.
CONTENT_HASH_ALGORITHM = "sum-hashtextextended-rowtext-v1"
SESSION_SETTINGS = (
    ("TimeZone", "UTC"),
    ("DateStyle", "ISO,YMD"),
    ("IntervalStyle", "postgres"),
    ("extra_float_digits", "1"),
    ("bytea_output", "hex"),
    ("lc_monetary", "C"),
    ("statement_timeout", "0"),
    ("idle_in_transaction_session_timeout", "0"),
)
SESSION_OPTIONS = " ".join("-c %s=%s" % setting for setting in SESSION_SETTINGS)
MAINTENANCE_DATABASES = ("postgres", "template1")
ERROR_TAIL_CHARS = 2000
READ_CHUNK_BYTES = 1024 * 1024
STOP_GRACE_SECONDS = 10

# One dict per option block, paired with doc_fragments/postgres_login.py. The env_fallback
# lets AWX credential types (and a sourced .sandbox/env) supply the connection.
LOGIN_ARGUMENT_SPEC = dict(
    login_host=dict(type="str", fallback=(env_fallback, ["PGHOST"])),
    login_port=dict(type="int", fallback=(env_fallback, ["PGPORT"])),
    login_user=dict(type="str", fallback=(env_fallback, ["PGUSER"])),
    login_password=dict(type="str", no_log=True, fallback=(env_fallback, ["PGPASSWORD"])),
    login_unix_socket=dict(type="path"),
    ssl_mode=dict(type="str", choices=list(SSL_MODES), fallback=(env_fallback, ["PGSSLMODE"])),
)


# ---------------------------------------------------------------------------------------
# Errors: raised here, turned into fail_json only by the modules' main().


class PostgresBackupError(Exception):
    """Base of every error a person can act on; messages never contain secrets."""


class ConnectionFailed(PostgresBackupError):
    """The server could not be reached, refused the login, or the database is missing."""


class ClientToolError(PostgresBackupError):
    """pg_dump / pg_restore / psql is missing or too old for the server."""


class DestinationError(PostgresBackupError):
    """dest exists without force, or its directory is missing or not writable."""


class DumpFailed(PostgresBackupError):
    """pg_dump exited non-zero, was killed, or the disk filled up."""


class VerificationFailed(PostgresBackupError):
    """A finished dump does not hold what the snapshot held."""


class ManifestError(PostgresBackupError):
    """A backup's manifest is missing, unreadable, or its checksums do not match."""


class RestoreFailed(PostgresBackupError):
    """pg_restore / psql failed, or the restored tables differ from the manifest."""


class InsufficientPrivilege(PostgresBackupError):
    """The login role may not do what the task needs (CREATE DATABASE for a scratch restore)."""


class Interrupted(PostgresBackupError):
    """The process received SIGTERM; clean-up ran before this was raised further."""


def redact(text, secrets):
    """Return text with every secret replaced by ********."""
    text = str(text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, "********")
    return text


def _tail(text, limit=ERROR_TAIL_CHARS):
    text = text.strip()
    return text if len(text) <= limit else "..." + text[-limit:]


class terminate_raises:
    """Context manager: SIGTERM raises Interrupted so finally blocks clean up (temp output,
    child processes, scratch databases) before the process exits."""

    def __enter__(self):
        self._previous = signal.getsignal(signal.SIGTERM)
        signal.signal(signal.SIGTERM, self._raise)
        return self

    @staticmethod
    def _raise(signum, frame):
        raise Interrupted("interrupted by SIGTERM; temporary output and scratch databases were removed")

    def __exit__(self, *exc_info):
        signal.signal(signal.SIGTERM, self._previous)
        return False


# ---------------------------------------------------------------------------------------
# Connection parameters


@dataclass(frozen=True)
class ConnectionParams:
    """Where and as whom to connect. None means: let libpq decide (its PG* environment
    variables, then its defaults)."""

    database: str | None = None
    host: str | None = None
    port: int | None = None
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    unix_socket: str | None = None
    ssl_mode: str | None = None

    @classmethod
    def from_module_params(cls, params, database):
        return cls(
            database=database,
            host=params.get("login_host"),
            port=params.get("login_port"),
            user=params.get("login_user"),
            password=params.get("login_password"),
            unix_socket=params.get("login_unix_socket"),
            ssl_mode=params.get("ssl_mode"),
        )

    @property
    def effective_host(self):
        """A Unix socket directory, when given, wins over login_host (which may come from PGHOST)."""
        return self.unix_socket or self.host

    def with_database(self, database):
        return ConnectionParams(
            database=database, host=self.host, port=self.port, user=self.user,
            password=self.password, unix_socket=self.unix_socket, ssl_mode=self.ssl_mode,
        )

    def secrets(self):
        return [self.password] if self.password else []

    def libpq_environment(self, base_environment=None):
        """The environment for pg_dump / pg_restore / psql: a copy of os.environ (so PATH,
        locale, PGPASSFILE, PGSSLROOTCERT ... still apply) with the given options set."""
        environment = dict(os.environ if base_environment is None else base_environment)
        values = {
            "PGHOST": self.effective_host,
            "PGPORT": None if self.port is None else str(self.port),
            "PGUSER": self.user,
            "PGPASSWORD": self.password,
            "PGDATABASE": self.database,
            "PGSSLMODE": self.ssl_mode,
        }
        for name, value in values.items():
            if value is not None:
                environment[name] = value
        return environment

    def psycopg2_arguments(self):
        values = {
            "dbname": self.database,
            "host": self.effective_host,
            "port": self.port,
            "user": self.user,
            "password": self.password,
            "sslmode": self.ssl_mode,
        }
        return {name: value for name, value in values.items() if value is not None}

    def describe(self):
        """Where we connect, for messages (never the password)."""
        where = self.effective_host or os.environ.get("PGHOST") or "the default socket"
        port = self.port or os.environ.get("PGPORT")
        user = self.user or os.environ.get("PGUSER") or "the default user"
        database = self.database or os.environ.get("PGDATABASE") or "the default database"
        return 'database "%s" on %s%s as %s' % (database, where, ":%s" % port if port else "", user)


def conninfo_for_database(database):
    """A libpq connection string naming only the database. Used for --dbname so a database
    name containing '=' is never read as a connection string; the rest comes from the
    environment."""
    escaped = database.replace("\\", "\\\\").replace("'", "\\'")
    return "dbname='%s'" % escaped


def connect(params, application_name):
    """A psycopg2 connection with the deterministic session settings; ConnectionFailed on error."""
    if not HAS_PSYCOPG2:
        raise ConnectionFailed("the psycopg2 Python library is required")
    try:
        return psycopg2.connect(
            application_name=application_name, options=SESSION_OPTIONS, **params.psycopg2_arguments()
        )
    except psycopg2.Error as error:
        reason = " ".join(str(error).split())
        raise ConnectionFailed(redact("could not connect to %s: %s" % (params.describe(), reason), params.secrets()))


@contextlib.contextmanager
def database_errors_as(error_class, params, doing):
    """Turn a psycopg2 error raised inside the block into error_class, naming what failed."""
    try:
        yield
    except psycopg2.Error as error:
        reason = " ".join(str(error).split())
        raise error_class(redact("%s on %s failed: %s" % (doing, params.describe(), reason), params.secrets()))


def connect_maintenance(params, application_name):
    """An autocommit connection to the 'postgres' (else 'template1') database, for CREATE /
    DROP DATABASE."""
    last_error = None
    for database in MAINTENANCE_DATABASES:
        try:
            connection = connect(params.with_database(database), application_name)
        except ConnectionFailed as error:
            last_error = error
            if "does not exist" not in str(error):
                raise
            continue
        connection.autocommit = True
        return connection
    raise last_error


# ---------------------------------------------------------------------------------------
# Server facts and tables


@dataclass(frozen=True)
class ServerInfo:
    database: str
    version: str
    version_num: int
    encoding: str
    lc_collate: str
    lc_ctype: str

    @property
    def major(self):
        return major_version(self.version_num)


def major_version(server_version_num):
    """15 for 150018 (and 9 for a 9.x server)."""
    return server_version_num // 10000


SERVER_INFO_QUERY = (
    "SELECT current_database(), current_setting('server_version'),"
    " current_setting('server_version_num')::int, pg_encoding_to_char(encoding),"
    " datcollate, datctype FROM pg_database WHERE datname = current_database()"
)


def read_server_info(cursor):
    cursor.execute(SERVER_INFO_QUERY)
    database, version, version_num, encoding, lc_collate, lc_ctype = cursor.fetchone()
    return ServerInfo(database, version, version_num, encoding, lc_collate, lc_ctype)


@dataclass(frozen=True)
class TableRef:
    """A table whose rows pg_dump writes as a TABLE DATA entry."""

    oid: int
    schema: str
    name: str
    quoted_name: str = ""  # schema.table quoted as pg_dump writes it in a plain dump

    @property
    def key(self):
        return "%s.%s" % (self.schema, self.name)


@dataclass(frozen=True)
class TableStats:
    rows: int
    content_hash: str | None = None

    def to_manifest(self):
        return {"rows": self.rows, "content_hash": self.content_hash}


# Ordinary and unlogged tables outside the system schemas, not owned by an extension:
# exactly the tables whose data pg_dump dumps by default. Partitioned parents hold no rows
# (their leaves are listed), foreign tables and materialized views have no TABLE DATA.
USER_TABLES_QUERY = """
SELECT c.oid, n.nspname, c.relname, quote_ident(n.nspname) || '.' || quote_ident(c.relname)
FROM pg_catalog.pg_class AS c
JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
WHERE c.relkind = 'r'
  AND c.relpersistence <> 't'
  AND n.nspname <> 'information_schema'
  AND n.nspname NOT LIKE 'pg\\_%'
  AND NOT EXISTS (
    SELECT 1 FROM pg_catalog.pg_depend AS d
    WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
ORDER BY n.nspname, c.relname
"""


def list_user_tables(cursor):
    cursor.execute(USER_TABLES_QUERY)
    return [TableRef(int(oid), schema, name, quoted) for oid, schema, name, quoted in cursor.fetchall()]


def content_hash_from_sums(sum_seed0, sum_seed1):
    return "%016x%016x" % (int(sum_seed0) % 2 ** 64, int(sum_seed1) % 2 ** 64)


def quote_identifier(name):
    """name as an SQL identifier, always double-quoted (what libpq's PQescapeIdentifier and
    psycopg2's sql.Identifier write)."""
    return '"%s"' % name.replace('"', '""')


def quote_literal(text):
    """text as an SQL string literal (standard_conforming_strings, on since PostgreSQL 9.1)."""
    return "'%s'" % text.replace("'", "''")


def table_stats_query(table, with_content_hash):
    """The statement counting (and hashing) one table's rows: plain SQL text, run through
    psycopg2 in local mode and through psql in the pod in pod mode."""
    relation = "ONLY %s.%s" % (quote_identifier(table.schema), quote_identifier(table.name))
    if with_content_hash:
        # ROW(t.*) is the whole row even when a column happens to be called t.
        return ("SELECT count(*), coalesce(sum(hashtextextended(ROW(t.*)::text, 0)), 0),"
                " coalesce(sum(hashtextextended(ROW(t.*)::text, 1)), 0) FROM %s AS t" % relation)
    return "SELECT count(*) FROM %s" % relation


def read_table_stats(cursor, table, with_content_hash):
    """Exact row count (and content hash) of one table, in the cursor's transaction."""
    cursor.execute(table_stats_query(table, with_content_hash))
    row = cursor.fetchone()
    content_hash = content_hash_from_sums(row[1], row[2]) if with_content_hash else None
    return TableStats(rows=int(row[0]), content_hash=content_hash)


def read_database_table_stats(params, with_content_hash, application_name, only_keys=None):
    """{schema.table: TableStats} of a whole database, read in one REPEATABLE READ transaction."""
    connection = connect(params, application_name)
    try:
        with database_errors_as(RestoreFailed, params, "counting the rows of the tables"):
            connection.set_session(isolation_level=ISOLATION_LEVEL_REPEATABLE_READ, readonly=True)
            with connection.cursor() as cursor:
                tables = list_user_tables(cursor)
                if only_keys is not None:
                    tables = [table for table in tables if table.key in only_keys]
                return {table.key: read_table_stats(cursor, table, with_content_hash) for table in tables}
    finally:
        connection.close()


def count_user_tables(params):
    """How many tables (those list_user_tables() lists) the database of params holds."""
    connection = connect(params, "ceres.rollout.pg_restore check")
    try:
        with database_errors_as(RestoreFailed, params, "listing the tables of the target database"):
            with connection.cursor() as cursor:
                return len(list_user_tables(cursor))
    finally:
        connection.close()


def compare_table_stats(expected, actual, allow_extra_tables=False):
    """Differences between two {schema.table: {rows, content_hash}} maps, as sentences.

    A content hash is compared only when both sides have one. Tables only in `actual` are
    differences unless allow_extra_tables (restoring into a database that had other tables).
    """
    differences = []
    for key in sorted(expected):
        want = _stats_dict(expected[key])
        if key not in actual:
            differences.append("table %s is missing (expected %d rows)" % (key, want["rows"]))
            continue
        got = _stats_dict(actual[key])
        if want["rows"] != got["rows"]:
            differences.append("table %s has %d rows, expected %d" % (key, got["rows"], want["rows"]))
        elif want.get("content_hash") and got.get("content_hash") and want["content_hash"] != got["content_hash"]:
            differences.append("table %s has the expected %d rows but different content" % (key, got["rows"]))
    if not allow_extra_tables:
        for key in sorted(set(actual) - set(expected)):
            differences.append("table %s is not in the backup's manifest" % key)
    return differences


def _stats_dict(stats):
    return stats.to_manifest() if isinstance(stats, TableStats) else stats


# ---------------------------------------------------------------------------------------
# Client tools (pg_dump, pg_restore, psql)


class ClientTool:
    """A PostgreSQL client program and its major version. The full version text is read
    only when asked for (see prefetch_tool_version)."""

    def __init__(self, path, major):
        self.path = path
        self.major = major

    @property
    def version(self):
        return tool_version(self.path)

    def __repr__(self):
        return "ClientTool(%r, major=%r)" % (self.path, self.major)


TOOL_VERSION_PATTERN = re.compile(r"\(PostgreSQL\)\s+(\d+)")
VERSIONED_BIN_DIRECTORY_PATTERNS = (
    re.compile(r"^/usr/lib/postgresql/(\d+)/bin/[^/]+$"),  # Debian, Ubuntu
    re.compile(r"^/usr/pgsql-(\d+)/bin/[^/]+$"),  # PGDG RPMs
)

# path -> `--version` output, or the still running `path --version` process
_tool_versions = {}


def parse_tool_major(version_text):
    match = TOOL_VERSION_PATTERN.search(version_text)
    return int(match.group(1)) if match else None


def major_from_path(path):
    """The major version a packaged binary's directory names, else None."""
    for pattern in VERSIONED_BIN_DIRECTORY_PATTERNS:
        match = pattern.match(path)
        if match:
            return int(match.group(1))
    return None


def prefetch_tool_version(path):
    """Start `path --version` in the background; tool_version(path) collects it."""
    if path not in _tool_versions:
        _tool_versions[path] = subprocess.Popen(
            [path, "--version"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )


def tool_version(path):
    prefetch_tool_version(path)
    entry = _tool_versions[path]
    if isinstance(entry, subprocess.Popen):
        output, _ignored = entry.communicate(timeout=60)
        entry = _tool_versions[path] = output.decode("utf-8", "replace").strip()
    return entry


def tool_candidates(name, server_major):
    """Where to look, best first: the binaries of the server's major version (Debian,
    PGDG RPM layouts), then PATH, then any other installed version, newest first."""
    candidates = [
        "/usr/lib/postgresql/%s/bin/%s" % (server_major, name),
        "/usr/pgsql-%s/bin/%s" % (server_major, name),
    ]
    on_path = shutil.which(name)
    if on_path:
        candidates.append(on_path)
    installed = []
    if os.path.isdir("/usr/lib/postgresql"):
        for version in os.listdir("/usr/lib/postgresql"):
            if version.isdigit():
                installed.append((int(version), "/usr/lib/postgresql/%s/bin/%s" % (version, name)))
    candidates.extend(path for version, path in sorted(installed, reverse=True))
    unique = []
    for path in candidates:
        if path not in unique:
            unique.append(path)
    return unique


def find_client_tool(name, server_major, must_not_be_older=False):
    """The client tool to use with a server of server_major. pg_dump (must_not_be_older)
    refuses servers newer than itself, so an older one is an error naming what was found."""
    too_old = []
    for path in tool_candidates(name, server_major):
        if not os.access(path, os.X_OK):
            continue
        major = major_from_path(path)
        if major is None:
            major = parse_tool_major(tool_version(path))
            if major is None:
                continue
        if not must_not_be_older or major >= server_major:
            return ClientTool(path, major)
        too_old.append("%s (%s)" % (path, major))
    if too_old:
        raise ClientToolError(
            "%s %s or newer is needed for a PostgreSQL %s server; found only: %s"
            % (name, server_major, server_major, ", ".join(too_old))
        )
    raise ClientToolError(
        "%s was not found (looked in /usr/lib/postgresql/%s/bin, /usr/pgsql-%s/bin and PATH); install the"
        " PostgreSQL %s client tools" % (name, server_major, server_major, server_major)
    )


def pg_dump_argv(tool_path, output_path, backup_format, snapshot_id, database, jobs=1, compress=None, username=None):
    """pg_dump importing snapshot_id; output_path None writes the dump to stdout (pod mode)."""
    argv = [tool_path, "--no-password", "--format=%s" % backup_format]
    if output_path is not None:
        argv.append("--file=%s" % output_path)
    argv += ["--snapshot=%s" % snapshot_id, "--dbname=%s" % conninfo_for_database(database)]
    if username is not None:
        argv.append("--username=%s" % username)
    if backup_format == "directory" and jobs > 1:
        argv.append("--jobs=%d" % jobs)
    if compress is not None:
        argv.append("--compress=%s" % compress)
    return argv


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


def pg_restore_list_argv(tool_path, archive_path, backup_format):
    return [tool_path, "--list", "--format=%s" % backup_format, archive_path]


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


def describe_exit(what, returncode):
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = "signal %d" % -returncode
        return "%s was killed by %s" % (what, name)
    return "%s exited with status %d" % (what, returncode)


def run_client_tool(argv, environment, secrets, error_class, what, stdin_chunks=None, output_encoding="utf-8"):
    """Run a client tool without a shell; return its stdout (decoded with output_encoding).
    stdout and stderr go to temporary files (no pipe to fill up, and none that workers of a
    dead leader could hold open) and stderr, redacted, into the error raised on failure."""
    with tempfile.TemporaryFile() as stdout_file, tempfile.TemporaryFile() as stderr_file:
        process = start_client_tool(
            argv, env=environment, stdout=stdout_file if stdin_chunks is None else subprocess.DEVNULL,
            stderr=stderr_file, stdin=subprocess.PIPE if stdin_chunks is not None else subprocess.DEVNULL,
        )
        try:
            if stdin_chunks is not None:
                _feed_stdin(process, stdin_chunks)
            process.wait()
        except BaseException:
            stop_process(process)  # with its workers (pg_restore --jobs), also on Ctrl-C and SIGTERM
            raise
        if process.returncode != 0:
            stop_process(process)  # workers a failed leader left behind
            stderr_file.seek(0)
            detail = _tail(stderr_file.read().decode("utf-8", "replace"))
            raise error_class(redact("%s: %s" % (describe_exit(what, process.returncode), detail), secrets))
        stdout_file.seek(0)
        return stdout_file.read().decode(output_encoding, "replace")


def _feed_stdin(process, chunks):
    try:
        for chunk in chunks:
            process.stdin.write(chunk)
    except BrokenPipeError:
        pass  # the tool exited early; its exit status and stderr say why
    finally:
        try:
            process.stdin.close()
        except BrokenPipeError:
            pass


def start_client_tool(argv, **popen_arguments):
    """Popen a client tool as the leader of a process group of its own (a new session), so
    the workers it forks (pg_dump / pg_restore --jobs) can be stopped with it: stop_process()."""
    return subprocess.Popen(argv, start_new_session=True, **popen_arguments)


def stop_process(process):
    """Stop a client tool started by start_client_tool() and every process of its group (the
    workers of a parallel pg_dump or pg_restore, which outlive a killed leader otherwise):
    SIGTERM (and SIGCONT, for stopped ones) to the group, SIGKILL to what is left after
    STOP_GRACE_SECONDS. The tool itself is reaped; the wait for its workers is bounded."""
    group = process.pid
    if process.poll() is not None and not process_group_alive(group):
        return
    _signal_group(group, signal.SIGTERM)
    _signal_group(group, signal.SIGCONT)
    if _wait_for_group(process, group, STOP_GRACE_SECONDS):
        return
    _signal_group(group, signal.SIGKILL)
    process.wait()
    _wait_for_group(process, group, STOP_GRACE_SECONDS)


def _signal_group(group, signum):
    try:
        os.killpg(group, signum)
    except (ProcessLookupError, PermissionError):
        pass


def _wait_for_group(process, group, timeout):
    """Wait up to timeout for the leader to exit (it is reaped) and its group to be empty."""
    deadline = time.monotonic() + timeout
    pause = 0.005
    while True:
        if process.poll() is not None and not process_group_alive(group):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(pause)
        pause = min(pause * 2, 0.1)


def process_group_alive(group):
    """Whether a process of the group is still running. Zombies do not count: the workers of
    a dead leader are reparented to init, which in a container may never reap them."""
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if not os.path.isdir("/proc/self"):
        return True
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry, "rb") as handle:
                fields = handle.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        # after the command: state, ppid, pgrp
        if len(fields) > 2 and int(fields[2]) == group and fields[0] not in (b"Z", b"X"):
            return True
    return False


# ---------------------------------------------------------------------------------------
# Files: staging, fsync, checksums


def manifest_path_for(backup_path):
    """The manifest sits next to the backup: <backup path>.manifest.json."""
    return backup_path.rstrip(os.sep) + MANIFEST_SUFFIX


def remove_path(path):
    """Remove a file or directory tree; a missing path is fine."""
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)
    except FileNotFoundError:
        pass


def fsync_path(path):
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def probe_directory_writable(directory):
    """Create and remove a file: os.access() says yes to root on most mounts, this does not lie."""
    try:
        descriptor, probe = tempfile.mkstemp(prefix=".ceres-write-probe-", dir=directory)
    except OSError as error:
        raise DestinationError("directory %s is not writable: %s" % (directory, error.strerror))
    os.close(descriptor)
    os.unlink(probe)


DIRECTORY_BACKUP_TOC = "toc.dat"


def replacement_problem(dest, backup_format):
    """Why what is at dest (or at its manifest path) may not be replaced by a backup of
    backup_format, as a sentence; None when nothing is there or it is a previous backup of the
    same kind: a regular file for a file format; for format=directory, a pg_dump directory
    archive (toc.dat) with its manifest, holding only files that manifest lists."""
    manifest_path = manifest_path_for(dest)
    if os.path.lexists(manifest_path) and not stat.S_ISREG(os.lstat(manifest_path).st_mode):
        return ("the manifest path of dest, %s, exists and is not a regular file; remove it or give another dest"
                % manifest_path)
    if not os.path.lexists(dest):
        return None
    mode = os.lstat(dest).st_mode
    if stat.S_ISDIR(mode):
        reason = _not_a_directory_backup(dest)
        if reason is not None:
            return ("dest %s is an existing directory that is not a previous directory-format backup; give the"
                    " backup's own path (%s; nothing was changed)" % (dest, reason))
        if backup_format != "directory":
            return ("dest %s is a previous directory-format backup; a %s-format backup cannot replace it (a"
                    " file-format backup replaces only a file); give another dest" % (dest, backup_format))
        return None
    if stat.S_ISLNK(mode):
        return "dest %s is a symbolic link; give the backup's own path" % dest
    if not stat.S_ISREG(mode):
        return "dest %s exists and is not a regular file; give the backup's own path" % dest
    if backup_format == "directory":
        return ("dest %s is an existing file; a directory-format backup cannot replace it (it replaces only a"
                " previous directory-format backup); give another dest" % dest)
    return None


def _not_a_directory_backup(path):
    """Why the directory at path is not a directory-format backup written by pg_backup, else None."""
    if not os.path.isfile(os.path.join(path, DIRECTORY_BACKUP_TOC)):
        return "it holds no %s, so it is no pg_dump directory archive" % DIRECTORY_BACKUP_TOC
    manifest_path = manifest_path_for(path)
    if not os.path.lexists(manifest_path):
        return "it has no manifest %s" % manifest_path
    try:
        manifest = load_manifest(manifest_path)
    except ManifestError as error:
        return str(error)
    if manifest["format"] != "directory":
        return "its manifest %s describes a %s-format backup" % (manifest_path, manifest["format"])
    if not isinstance(manifest["files"], dict):
        return "its manifest %s has no list of files" % manifest_path
    # pg_dump writes only files, side by side; anything else would be deleted with the old backup.
    unlisted = []
    for name in sorted(os.listdir(path)):
        mode = os.lstat(os.path.join(path, name)).st_mode
        if stat.S_ISDIR(mode):
            unlisted.append(name + "/")
        elif name not in manifest["files"] or not stat.S_ISREG(mode):
            unlisted.append(name)
    if unlisted:
        return "it also holds %s, which its manifest does not list and a replacement would delete" % ", ".join(
            sorted(unlisted))
    return None


def check_destination(dest, force, backup_format="custom"):
    """dest may be written: its directory exists and is writable, and dest (and its manifest)
    do not exist, unless force and they are a previous backup of the same kind
    (replacement_problem). Nothing is changed."""
    dest = os.path.abspath(dest)
    parent = os.path.dirname(dest)
    if not os.path.isdir(parent):
        raise DestinationError("the directory of dest, %s, does not exist" % parent)
    check_replaceable(dest, force, backup_format)
    probe_directory_writable(parent)


def check_replaceable(dest, force, backup_format):
    """What is at dest and its manifest path may be replaced (see check_destination)."""
    problem = replacement_problem(dest, backup_format)
    if problem is not None:
        raise DestinationError(problem)
    if not force:
        for existing in (dest, manifest_path_for(dest)):
            if os.path.lexists(existing):
                raise DestinationError("%s already exists; set force=true to replace it (it was left untouched)" % existing)


RETIRED_MARKER = ".retired-"


class StagedOutput:
    """A temporary sibling of dest (same directory, so the final renames are atomic) and,
    once stage_manifest() wrote it, of its manifest; they become dest and <dest>.manifest.json
    only through commit(). Leaving the with-block without commit removes both."""

    def __init__(self, dest):
        self.dest = os.path.abspath(dest)
        self.directory = os.path.dirname(self.dest)
        self.manifest_path = manifest_path_for(self.dest)
        self.temp_path = self._sibling(self.dest, PARTIAL_MARKER)
        self.manifest_temp_path = None
        self.committed = False

    def _sibling(self, path, marker):
        return os.path.join(self.directory, ".%s%s%s" % (os.path.basename(path), marker, uuid.uuid4().hex[:12]))

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        if not self.committed:
            remove_path(self.temp_path)
            if self.manifest_temp_path is not None:
                remove_path(self.manifest_temp_path)
        return False

    def stage_manifest(self, document):
        """Write the manifest to a temporary sibling of its final path, fsynced, mode 0600."""
        descriptor, self.manifest_temp_path = tempfile.mkstemp(
            prefix=".%s%s" % (os.path.basename(self.manifest_path), PARTIAL_MARKER), dir=self.directory)
        _write_json(descriptor, document)

    def commit(self):
        """Move the output to dest and then the staged manifest (if any) into place, manifest
        last. An old dest and an old manifest are first moved aside, so an old manifest never
        describes the new output, and removed only when everything is in place; when a rename
        fails, what was done is undone and the old backup is as it was."""
        done = []  # (from, to) of every rename, undone in reverse order on failure
        retired = []
        previous = [path for path in (self.manifest_path, self.dest) if os.path.lexists(path)]
        try:
            for path in previous:
                aside = self._sibling(path, RETIRED_MARKER)
                os.rename(path, aside)
                done.append((path, aside))
                retired.append(aside)
            os.rename(self.temp_path, self.dest)
            done.append((self.temp_path, self.dest))
            if self.manifest_temp_path is not None:
                os.rename(self.manifest_temp_path, self.manifest_path)
                done.append((self.manifest_temp_path, self.manifest_path))
        except BaseException as error:
            left_aside = self._undo(done)
            if isinstance(error, OSError):
                message = "could not move the new backup to %s: %s" % (self.dest, error.strerror or error)
                if left_aside:
                    message += "; the previous backup could not be moved back from %s" % ", ".join(left_aside)
                elif previous:
                    message += "; the previous backup was left as it was"
                raise DestinationError(message)
            raise
        self.committed = True
        fsync_path(self.directory)
        for aside in retired:
            try:
                remove_path(aside)
            except OSError:
                pass  # a .<name>.retired-<random> left behind is safe to remove

    @staticmethod
    def _undo(done):
        """Reverse the renames in done; the paths that could not be moved back."""
        left = []
        for source, target in reversed(done):
            try:
                os.rename(target, source)
            except OSError:
                left.append(target)
        return left


def _write_json(descriptor, document):
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(document, handle, indent=2, sort_keys=True, ensure_ascii=False)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())


def write_json_atomically(path, document):
    """Write JSON to a temporary sibling, fsync, rename over path, fsync the directory."""
    directory = os.path.dirname(os.path.abspath(path))
    descriptor, temp_path = tempfile.mkstemp(prefix=".%s%s" % (os.path.basename(path), PARTIAL_MARKER), dir=directory)
    try:
        _write_json(descriptor, document)
        os.chmod(temp_path, 0o600)
        os.replace(temp_path, path)
    except BaseException:
        remove_path(temp_path)
        raise
    fsync_path(directory)


@dataclass(frozen=True)
class FileDigest:
    size_bytes: int
    sha256: str


def backup_file_names(path, backup_format):
    """{name: absolute path} of the files making up a backup. A single-file backup has one
    entry named after the file; a directory backup lists its files by relative name."""
    if backup_format != "directory":
        return {os.path.basename(path.rstrip(os.sep)): path}
    names = {}
    for root, _dirs, files in os.walk(path):
        for file_name in files:
            full = os.path.join(root, file_name)
            names[os.path.relpath(full, path)] = full
    return names


def digest_file(path, sync=False):
    """sha256 and size of a file, read in chunks; optionally fsync it in the same pass."""
    sha256 = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while True:
            chunk = handle.read(READ_CHUNK_BYTES)
            if not chunk:
                break
            sha256.update(chunk)
            size += len(chunk)
        if sync:
            os.fsync(handle.fileno())
    return FileDigest(size_bytes=size, sha256=sha256.hexdigest())


def digest_backup(path, backup_format, sync=False, single_file_name=None):
    """{name: FileDigest} of every file of a backup (fsynced when sync, with the directory).
    single_file_name names the one file of a non-directory backup (default: its basename)."""
    names = backup_file_names(path, backup_format)
    if single_file_name is not None and backup_format != "directory":
        names = {single_file_name: path}
    digests = {name: digest_file(full, sync=sync) for name, full in sorted(names.items())}
    if sync and backup_format == "directory":
        fsync_path(path)
    return digests


def backup_sha256(files, backup_format):
    """The backup's single sha256: the file's own for a single-file backup; for a directory,
    the sha256 of the lines "<sha256>  <name>\\n" sorted by name (the output of
    `sha256sum` run inside the directory over its files in C-locale order)."""
    if backup_format != "directory":
        (digest,) = files.values()
        return _digest_value(digest, "sha256")
    listing = "".join("%s  %s\n" % (_digest_value(files[name], "sha256"), name) for name in sorted(files))
    return hashlib.sha256(listing.encode("utf-8")).hexdigest()


def _digest_value(digest, key):
    return getattr(digest, key) if isinstance(digest, FileDigest) else digest[key]


# ---------------------------------------------------------------------------------------
# Manifest


def utc_timestamp():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


LOCAL_SOURCE = {"mode": "local"}


def build_manifest(server, pg_dump, backup_format, compress, snapshot_id, files, tables, verified, started_at, finished_at,
                   source=None):
    """The manifest document; source says where pg_dump ran ({"mode": "local"}, or for pod mode
    {"mode": "pod", "namespace", "pod", "container"})."""
    return {
        "source": dict(source or LOCAL_SOURCE),
        "manifest_version": MANIFEST_VERSION,
        "created_by": "ceres.rollout.pg_backup",
        "database": server.database,
        "server_version": server.version,
        "server_version_num": server.version_num,
        "encoding": server.encoding,
        "lc_collate": server.lc_collate,
        "lc_ctype": server.lc_ctype,
        "pg_dump_version": pg_dump.version,
        "format": backup_format,
        "compress": compress,
        "snapshot": snapshot_id,
        "started_at": started_at,
        "finished_at": finished_at,
        "verified": verified,
        "sha256": backup_sha256(files, backup_format),
        "size_bytes": sum(_digest_value(digest, "size_bytes") for digest in files.values()),
        "files": {
            name: {"size_bytes": _digest_value(digest, "size_bytes"), "sha256": _digest_value(digest, "sha256")}
            for name, digest in sorted(files.items())
        },
        "content_hash_algorithm": CONTENT_HASH_ALGORITHM,
        "tables": {key: _stats_dict(stats) for key, stats in sorted(tables.items())},
    }


MANIFEST_REQUIRED_KEYS = ("manifest_version", "database", "format", "sha256", "files", "tables")


def load_manifest(path):
    try:
        with open(path, "r", encoding="utf-8") as handle:
            manifest = json.load(handle)
    except FileNotFoundError:
        raise ManifestError("the manifest %s is missing; a backup without a manifest is incomplete" % path)
    except (OSError, ValueError) as error:
        raise ManifestError("the manifest %s cannot be read: %s" % (path, error))
    if not isinstance(manifest, dict):
        raise ManifestError("the manifest %s is not a JSON object" % path)
    missing = [key for key in MANIFEST_REQUIRED_KEYS if key not in manifest]
    if missing:
        raise ManifestError("the manifest %s lacks %s" % (path, ", ".join(missing)))
    if manifest["manifest_version"] != MANIFEST_VERSION:
        raise ManifestError("the manifest %s has version %r; this collection reads version %d"
                            % (path, manifest["manifest_version"], MANIFEST_VERSION))
    if manifest["format"] not in BACKUP_FORMATS:
        raise ManifestError("the manifest %s names an unknown format %r" % (path, manifest["format"]))
    return manifest


def backup_integrity_problems(path, manifest):
    """Everything wrong with the backup at path compared with its manifest: missing,
    unexpected, resized or altered files, and the overall sha256."""
    backup_format = manifest["format"]
    is_directory = os.path.isdir(path)
    if not os.path.lexists(path):
        return ["the backup %s does not exist" % path]
    if is_directory != (backup_format == "directory"):
        return ["the manifest says format %s but %s is %s" % (backup_format, path, "a directory" if is_directory else "a file")]
    expected = manifest["files"]
    if backup_format == "directory":
        actual_names = backup_file_names(path, backup_format)
    elif len(expected) != 1:
        return ["the manifest lists %d files for a single-file backup" % len(expected)]
    else:
        # The file is checked under the manifest's name: it may have been renamed with its manifest.
        actual_names = {next(iter(expected)): path}
    problems = []
    for name in sorted(set(expected) - set(actual_names)):
        problems.append("file %s is missing" % name)
    for name in sorted(set(actual_names) - set(expected)):
        problems.append("file %s is not in the manifest" % name)
    digests = {}
    for name in sorted(set(expected) & set(actual_names)):
        digest = digest_file(actual_names[name])
        digests[name] = digest
        if digest.size_bytes != expected[name]["size_bytes"]:
            problems.append("file %s has %d bytes, the manifest says %d" % (name, digest.size_bytes, expected[name]["size_bytes"]))
        elif digest.sha256 != expected[name]["sha256"]:
            problems.append("file %s has sha256 %s, the manifest says %s" % (name, digest.sha256, expected[name]["sha256"]))
    if not problems and backup_sha256(digests, backup_format) != manifest["sha256"]:
        problems.append("the backup's sha256 does not match the manifest")
    return problems


def verify_backup_integrity(path, manifest):
    problems = backup_integrity_problems(path, manifest)
    if problems:
        raise ManifestError("refusing the backup %s: %s" % (path, "; ".join(problems)))


# ---------------------------------------------------------------------------------------
# Verification of a finished dump


TOC_TABLE_DATA_PATTERN = re.compile(r"^\d+; 0 (\d+) TABLE DATA (.*)$")

# Server encodings -> Python codecs. Object names in a dump (in `pg_restore --list` output
# and in a plain dump's COPY lines) are in the database's encoding, not UTF-8.
PYTHON_CODECS = {
    "UTF8": "utf-8", "LATIN1": "latin-1", "LATIN2": "iso8859-2", "LATIN3": "iso8859-3", "LATIN4": "iso8859-4",
    "LATIN5": "iso8859-9", "LATIN6": "iso8859-10", "LATIN7": "iso8859-13", "LATIN8": "iso8859-14",
    "LATIN9": "iso8859-15", "LATIN10": "iso8859-16", "ISO_8859_5": "iso8859-5", "ISO_8859_6": "iso8859-6",
    "ISO_8859_7": "iso8859-7", "ISO_8859_8": "iso8859-8", "WIN866": "cp866", "WIN874": "cp874",
    "WIN1250": "cp1250", "WIN1251": "cp1251", "WIN1252": "cp1252", "WIN1253": "cp1253", "WIN1254": "cp1254",
    "WIN1255": "cp1255", "WIN1256": "cp1256", "WIN1257": "cp1257", "WIN1258": "cp1258", "KOI8R": "koi8-r",
    "KOI8U": "koi8-u", "EUC_JP": "euc-jp", "EUC_JIS_2004": "euc-jis-2004", "EUC_KR": "euc-kr", "EUC_CN": "gb2312",
}


def _encoding_key(name):
    """An encoding name as PostgreSQL compares them: case and non-alphanumerics ignored."""
    return re.sub(r"[^A-Za-z0-9]", "", name or "").upper()


_PYTHON_CODECS_BY_KEY = {_encoding_key(name): codec for name, codec in PYTHON_CODECS.items()}


def python_codec(encoding_name):
    """The Python codec of a PostgreSQL encoding name (spelled as PostgreSQL accepts it: any
    case, with or without '-' / '_', e.g. 'utf-8', 'Latin1'), or None when there is none
    (SQL_ASCII, EUC_TW, MULE_INTERNAL): names in the dump then cannot be compared as text."""
    return _PYTHON_CODECS_BY_KEY.get(_encoding_key(encoding_name))


def table_data_entries(toc_listing):
    """{table oid: "schema name owner"} of the TABLE DATA entries in `pg_restore --list`
    output (a TABLE DATA entry carries its table's pg_class oid)."""
    entries = {}
    for line in toc_listing.splitlines():
        match = TOC_TABLE_DATA_PATTERN.match(line)
        if match:
            entries[int(match.group(1))] = match.group(2)
    return entries


def tables_missing_from_toc(toc_listing, tables, check_names=True):
    """The tables without a TABLE DATA entry, found by oid and, with check_names, also
    carrying the table's schema and name (off when the listing's names cannot be decoded)."""
    entries = table_data_entries(toc_listing)
    missing = []
    for table in tables:
        entry = entries.get(table.oid)
        if entry is None or (check_names and not entry.startswith("%s %s " % (table.schema, table.name))):
            missing.append(table.key)
    return missing


def open_sql_dump(path):
    """A binary reader of a plain dump, decompressing gzip."""
    with open(path, "rb") as handle:
        magic = handle.read(4)
    if magic[:2] == b"\x1f\x8b":
        return gzip.open(path, "rb")
    if magic in (b"\x04\x22\x4d\x18", b"\x28\xb5\x2f\xfd"):
        raise VerificationFailed("%s is lz4/zstd-compressed SQL, which cannot be checked here; use format custom or directory" % path)
    return open(path, "rb")


def copy_targets_in_sql_dump(lines, encoding="utf-8"):
    """The quoted 'schema.table' of every COPY ... FROM stdin; block of a plain dump, decoded
    with the dump's encoding (data lines inside a block are skipped, so row text cannot look
    like a COPY)."""
    targets = set()
    in_copy_data = False
    for raw_line in lines:
        line = raw_line.rstrip(b"\r\n")
        if in_copy_data:
            if line == b"\\.":
                in_copy_data = False
            continue
        if line.startswith(b"COPY ") and line.endswith(b" FROM stdin;"):
            in_copy_data = True
            targets.add(_leading_qualified_name(line[len(b"COPY "):]).decode(encoding, "replace"))
    return targets


def _leading_qualified_name(text):
    """The possibly quoted schema.table at the start of text: up to the first unquoted space."""
    in_quotes = False
    for index in range(len(text)):
        character = text[index:index + 1]
        if character == b'"':
            in_quotes = not in_quotes
        elif character == b" " and not in_quotes:
            return text[:index]
    return text


@dataclass
class BackupVerifier:
    """Checks a finished dump (still under its temporary name) against the snapshot."""

    params: ConnectionParams
    server: ServerInfo
    backup_format: str
    tables: list
    table_stats: dict
    jobs: int = 1
    on_scratch_restored: object = None

    def verify(self, path, mode):
        if mode == "list":
            self.verify_listing(path)
        elif mode == "restore":
            self.verify_listing(path)
            self.verify_by_restore(path)

    def verify_listing(self, path):
        # pg_dump writes names in the database's encoding, or in PGCLIENTENCODING when that is
        # set. (In pod mode a PGCLIENTENCODING of the container's own is not seen here; names
        # then fail to match and verification fails, never passes wrongly.)
        dump_encoding = self.params.libpq_environment().get("PGCLIENTENCODING") or self.server.encoding
        codec = python_codec(dump_encoding)
        if self.backup_format == "plain":
            with open_sql_dump(path) as handle:
                targets = copy_targets_in_sql_dump(handle, codec or "utf-8")
            missing = [table.key for table in self.tables if table.quoted_name not in targets]
        else:
            pg_restore = find_client_tool("pg_restore", self.server.major, must_not_be_older=True)
            listing = run_client_tool(
                pg_restore_list_argv(pg_restore.path, path, self.backup_format),
                self.params.libpq_environment(), self.params.secrets(), VerificationFailed, "pg_restore --list",
                output_encoding=codec or "utf-8",
            )
            missing = tables_missing_from_toc(listing, self.tables, check_names=codec is not None)
        if missing:
            raise VerificationFailed("the dump has no data for %d table(s): %s" % (len(missing), ", ".join(missing)))

    def verify_by_restore(self, path):
        """Restore into a scratch database, compare every table with the snapshot's stats,
        and drop the scratch database whatever happens."""
        scratch = scratch_database_name()
        maintenance = connect_maintenance(self.params, "ceres.rollout.pg_backup verify")
        try:
            self._restore_and_compare(maintenance, scratch, path)
        except PostgresBackupError as error:
            drop_problem = self._drop_scratch(maintenance, scratch)
            if drop_problem:
                raise VerificationFailed("%s; also %s" % (error, drop_problem))
            raise
        except BaseException:
            self._drop_scratch(maintenance, scratch)
            raise
        else:
            drop_problem = self._drop_scratch(maintenance, scratch)
            if drop_problem:
                raise VerificationFailed(drop_problem)
        finally:
            maintenance.close()

    def _restore_and_compare(self, maintenance, scratch, path):
        create_database(maintenance, scratch, self.server.encoding, self.server.lc_collate, self.server.lc_ctype, self.params)
        scratch_params = self.params.with_database(scratch)
        restore_into(path, self.backup_format, scratch_params, self.server.major, self.jobs, no_owner=True,
                     error_class=VerificationFailed, what_prefix="restore into scratch database %s: " % scratch)
        if self.on_scratch_restored is not None:
            self.on_scratch_restored(scratch_params)
        restored = read_database_table_stats(scratch_params, True, "ceres.rollout.pg_backup verify")
        differences = compare_table_stats(self.table_stats, restored)
        if differences:
            raise VerificationFailed("the restored copy differs from the snapshot: %s" % "; ".join(differences))

    def _drop_scratch(self, maintenance, scratch):
        """Drop the scratch database; the problem as text when that fails, else None."""
        try:
            drop_database(maintenance, scratch, self.server.version_num, self.params)
        except PostgresBackupError as error:
            return str(error)
        return None


def scratch_database_name():
    return SCRATCH_DATABASE_PREFIX + uuid.uuid4().hex[:16]


def database_exists(maintenance, name):
    with maintenance.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_catalog.pg_database WHERE datname = %s", (name,))
        return cursor.fetchone() is not None


def create_database(maintenance, name, encoding, lc_collate, lc_ctype, params):
    statement = sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name))
    if encoding:
        statement += sql.SQL(" ENCODING {}").format(sql.Literal(encoding))
    if lc_collate and lc_ctype:
        statement += sql.SQL(" LC_COLLATE {} LC_CTYPE {}").format(sql.Literal(lc_collate), sql.Literal(lc_ctype))
    try:
        with maintenance.cursor() as cursor:
            cursor.execute(statement)
    except psycopg2.Error as error:
        raise RestoreFailed(redact('could not create database "%s": %s' % (name, str(error).strip()), params.secrets()))


def drop_database(maintenance, name, server_version_num, params):
    """DROP DATABASE IF EXISTS, ending other sessions on it (PostgreSQL 13+)."""
    statement = sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name))
    if server_version_num >= 130000:
        statement += sql.SQL(" WITH (FORCE)")
    try:
        with maintenance.cursor() as cursor:
            cursor.execute(statement)
    except psycopg2.Error as error:
        raise PostgresBackupError(redact('could not drop database "%s"; drop it by hand: %s' % (name, str(error).strip()), params.secrets()))


def restore_into(path, backup_format, target_params, server_major, jobs, no_owner, error_class, what_prefix="", clean=False):
    """Run pg_restore (or psql for a plain dump) into target_params.database."""
    environment = target_params.libpq_environment()
    secrets = target_params.secrets()
    if backup_format == "plain":
        if clean:
            raise RestoreFailed("clean is not supported for plain-format backups (their SQL has no DROP statements)")
        psql = find_client_tool("psql", server_major)
        with open_sql_dump(path) as handle:
            if isinstance(handle, gzip.GzipFile):  # psql reads the decompressed SQL from stdin
                argv = psql_restore_argv(psql.path, target_params.database)
                stdin_chunks = iter(lambda: handle.read(READ_CHUNK_BYTES), b"")
            else:
                argv = psql_restore_argv(psql.path, target_params.database, path)
                stdin_chunks = None
            run_client_tool(argv, environment, secrets, error_class, what_prefix + "psql", stdin_chunks=stdin_chunks)
        return
    pg_restore = find_client_tool("pg_restore", server_major)
    run_client_tool(
        pg_restore_argv(pg_restore.path, path, backup_format, target_params.database, jobs=jobs, clean=clean, no_owner=no_owner),
        environment, secrets, error_class, what_prefix + "pg_restore",
    )


# ---------------------------------------------------------------------------------------
# Backup


@dataclass(frozen=True)
class BackupRequest:
    connection: ConnectionParams
    dest: str
    backup_format: str = "custom"
    jobs: int = 1
    compress: str | None = None
    verify: str = "list"
    force: bool = False
    pod: PodSource | None = None  # pg_dump runs in this pod (pod mode), else on this host


@dataclass(frozen=True)
class BackupResult:
    path: str
    manifest_path: str
    manifest: dict
    duration_s: float

    def module_result(self):
        return {
            "changed": True,
            "path": self.path,
            "manifest": self.manifest_path,
            "size_bytes": self.manifest["size_bytes"],
            "sha256": self.manifest["sha256"],
            "duration_s": self.duration_s,
            "tables": {key: stats["rows"] for key, stats in self.manifest["tables"].items()},
            "verified": self.manifest["verified"] != "none",
            "verify": self.manifest["verified"],
            "database": self.manifest["database"],
            "format": self.manifest["format"],
            "source": self.manifest["source"],
        }


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
            self.connection.set_session(isolation_level=ISOLATION_LEVEL_REPEATABLE_READ, readonly=True)
            self.cursor = self.connection.cursor()
            self.cursor.execute("SELECT pg_catalog.pg_export_snapshot()")
            self.snapshot_id = self.cursor.fetchone()[0]
            # Known from the connection itself, so pg_dump can start without another query.
            self.database = self.connection.info.dbname
            self.server_major = major_version(self.connection.server_version)
        except psycopg2.Error as error:
            self.connection.close()
            raise ConnectionFailed(redact("could not start the snapshot transaction on %s: %s"
                                          % (self.params.describe(), str(error).strip()), self.params.secrets()))
        return self

    def __exit__(self, *exc_info):
        try:
            self.connection.rollback()
        except psycopg2.Error:
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
            self.process = start_client_tool(
                argv, env=environment, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.stderr_file,
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
        detail = _tail(self.stderr_file.read().decode("utf-8", "replace"))
        message = describe_exit("pg_dump", self.process.returncode)
        if detail:
            message += ": " + detail
        return DumpFailed(redact(message + "; nothing was written to dest", self.secrets))


def find_verification_tools(backup_format, verify, server_major):
    """The client tools verification needs, found or a ClientToolError: pg_restore of the
    server's major version or newer for verify=list/restore (psql for a plain dump restored)."""
    if verify == "none":
        return
    if backup_format == "plain":
        if verify == "restore":
            find_client_tool("psql", server_major)
        return
    find_client_tool("pg_restore", server_major, must_not_be_older=True)


CAN_CREATE_DATABASES_QUERY = (
    "SELECT current_user, rolcreatedb OR rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user"
)


def login_role_can_create_databases(cursor):
    """(the login role's name, whether it may CREATE DATABASE: CREATEDB or SUPERUSER)."""
    cursor.execute(CAN_CREATE_DATABASES_QUERY)
    row = cursor.fetchone()
    if row is None:
        return None, False
    return row[0], bool(row[1])


def check_can_create_scratch_database(cursor):
    """verify=restore creates a scratch database: the login role must be allowed to."""
    role, can_create = login_role_can_create_databases(cursor)
    if not can_create:
        raise InsufficientPrivilege(
            'verify=restore restores the dump into a scratch database, but the login role "%s" may not create'
            " databases (it has neither CREATEDB nor SUPERUSER); grant it CREATEDB or use verify=list" % role)


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
    """What pg_backup reports in check mode, after check_backup() (check_pod_backup() in pod
    mode) found nothing wrong."""
    if request.pod is not None:
        return check_mode_pod_backup_result(request)
    clock = time.monotonic()
    server = check_backup(request)
    return planned_backup_result(request, server.database, dict(LOCAL_SOURCE), clock)


def count_tables_while_dumping(cursor, dump, with_content_hash):
    """List and count every table in the snapshot the running dump reads, stopping at once
    if the dump fails; then wait for the dump. Returns (tables, stats by table key)."""
    tables = list_user_tables(cursor)
    table_stats = {}
    for table in tables:
        failure = dump.failure_if_exited()
        if failure is not None:
            raise failure
        table_stats[table.key] = read_table_stats(cursor, table, with_content_hash)
    dump.wait()
    return tables, table_stats


def planned_backup_result(request, database, source, clock):
    """The check-mode result: what a real run would write, and that it would change things."""
    dest = os.path.abspath(request.dest)
    return {
        "changed": True,
        "path": dest,
        "manifest": manifest_path_for(dest),
        "database": database,
        "format": request.backup_format,
        "verify": request.verify,
        "verified": False,
        "duration_s": round(time.monotonic() - clock, 3),
        "source": source,
    }


def run_backup(request, on_scratch_restored=None):
    """Dump, verify and publish a backup at request.dest (see the module docstring); with
    request.pod, pg_dump runs in that pod (run_pod_backup).

    on_scratch_restored(params) is called, for verify=restore, after the scratch restore
    and before the comparison: tests use it to alter the copy."""
    if request.pod is not None:
        return run_pod_backup(request, on_scratch_restored)
    started_at = utc_timestamp()
    clock = time.monotonic()
    dest = os.path.abspath(request.dest)
    check_destination(dest, request.force, request.backup_format)
    params = request.connection
    with_content_hash = request.verify == "restore"

    with StagedOutput(dest) as staged:
        with SnapshotSession(params, "ceres.rollout.pg_backup") as session:
            pg_dump = find_client_tool("pg_dump", session.server_major, must_not_be_older=True)
            # What verification will need is checked before anything is dumped.
            find_verification_tools(request.backup_format, request.verify, session.server_major)
            if request.verify == "restore":
                with database_errors_as(ConnectionFailed, params, "reading the login role's privileges"):
                    check_can_create_scratch_database(session.cursor)
            argv = pg_dump_argv(pg_dump.path, staged.temp_path, request.backup_format, session.snapshot_id,
                                session.database, jobs=request.jobs, compress=request.compress)
            dump = DumpProcess(argv, params.libpq_environment(), params.secrets())
            try:
                prefetch_tool_version(pg_dump.path)  # for the manifest, read while pg_dump works
                # From here on pg_dump is working; the tables are listed and counted meanwhile,
                # in the very snapshot it dumps.
                server = read_server_info(session.cursor)
                tables, table_stats = count_tables_while_dumping(session.cursor, dump, with_content_hash)
            except psycopg2.Error as error:
                dump.stop()
                raise DumpFailed(redact("counting rows in the dump's snapshot failed: %s" % str(error).strip(), params.secrets()))
            except BaseException:
                # Also when interrupted while waiting: pg_dump must not outlive its temporary output.
                dump.stop()
                raise

        files = _verify_staged(staged, request, server, tables, table_stats, on_scratch_restored)
        manifest = build_manifest(
            server, pg_dump, request.backup_format, request.compress, session.snapshot_id, files, table_stats,
            request.verify, started_at, utc_timestamp(),
        )
        return _publish(staged, request, manifest, clock)


def _verify_staged(staged, request, server, tables, table_stats, on_scratch_restored):
    """Verify the finished dump under its temporary name; returns its {name: FileDigest}."""
    _restrict_permissions(staged.temp_path)
    verifier = BackupVerifier(
        params=request.connection, server=server, backup_format=request.backup_format, tables=tables,
        table_stats=table_stats, jobs=request.jobs, on_scratch_restored=on_scratch_restored,
    )
    # Hashing (and fsyncing) the files and verifying them read the same output: run
    # them side by side. Leaving this block waits for both, before any clean-up.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as executor:
        digesting = executor.submit(digest_backup, staged.temp_path, request.backup_format, True,
                                    os.path.basename(staged.dest))
        verifier.verify(staged.temp_path, request.verify)
        files = digesting.result()
    return files


def _publish(staged, request, manifest, clock):
    """Write the manifest beside the verified output, both under temporary names, then move
    the output and the manifest (last) into place (StagedOutput.commit). Until then an old
    backup at dest and its manifest are untouched; a failure leaves them as they were and
    removes the temporary files (when the with-block of staged ends)."""
    # dest was checked before the dump; what is there now is what the renames replace.
    check_replaceable(staged.dest, request.force, request.backup_format)
    try:
        staged.stage_manifest(manifest)
    except OSError as error:
        kept = "; the backup already at dest was left as it was" if os.path.lexists(staged.dest) else ""
        raise DestinationError("could not write the manifest %s (%s); nothing was written to dest%s"
                               % (staged.manifest_path, error.strerror or error, kept))
    staged.commit()
    return BackupResult(path=staged.dest, manifest_path=staged.manifest_path, manifest=manifest,
                        duration_s=round(time.monotonic() - clock, 3))


def _restrict_permissions(path):
    """Backups hold the database's data: 0600 files, 0700 directories. pg_dump already
    created them so (umask); chmod only what differs, as a metadata change would make every
    later fsync a journal commit."""
    _chmod_if_different(path, 0o700 if os.path.isdir(path) else 0o600)
    if os.path.isdir(path):
        for root, dirs, files in os.walk(path):
            for name in dirs:
                _chmod_if_different(os.path.join(root, name), 0o700)
            for name in files:
                _chmod_if_different(os.path.join(root, name), 0o600)


def _chmod_if_different(path, mode):
    if os.stat(path).st_mode & 0o7777 != mode:
        os.chmod(path, mode)


# ---------------------------------------------------------------------------------------
# Backup from a pod (pod mode)
#
# pg_dump runs in the database's pod through the Kubernetes exec API (k8s_exec.py) and its
# stdout streams, chunk by chunk, into the staged file local mode uses. Consistency is local
# mode's: psql in the same pod, driven through its stdin, opens a read-only REPEATABLE READ
# transaction and exports its snapshot; pg_dump imports it (--snapshot) and the same
# transaction lists and counts the tables with the same statements, so the counts describe
# exactly the rows in the dump. The transaction stays open until pg_dump has finished.
# Verification runs here, on the downloaded file, as in local mode.

POD_SOURCE_ARGUMENT_SPEC = dict(
    namespace=dict(type="str", required=True),
    deployment=dict(type="str"),
    pod=dict(type="str"),
    container=dict(type="str"),
    pg_dump_path=dict(type="str", default="pg_dump"),
    psql_path=dict(type="str", default="psql"),
)
POD_FORMATS = ("custom", "tar", "plain")


class InvalidRequest(PostgresBackupError):
    """Options that cannot work together."""


class PodUnavailable(PostgresBackupError):
    """The pod is missing or not Running and Ready, or the Kubernetes API refused or failed."""


@dataclass(frozen=True)
class PodSource:
    """Where pg_dump runs in pod mode, and how to reach the Kubernetes API (auth_options())."""

    namespace: str
    deployment: str | None = None
    pod: str | None = None
    container: str | None = None
    pg_dump_path: str = "pg_dump"
    psql_path: str = "psql"
    auth: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_module_params(cls, pod_options, auth):
        return cls(auth=dict(auth), **{name: pod_options.get(name) for name in POD_SOURCE_ARGUMENT_SPEC})

    def secrets(self):
        proxy_headers = self.auth.get("proxy_headers") or {}
        values = (self.auth.get("api_key"), self.auth.get("password"),
                  proxy_headers.get("proxy_basic_auth"), proxy_headers.get("basic_auth"))
        return [value for value in values if isinstance(value, str) and value]


@dataclass(frozen=True)
class PodTool:
    """pg_dump in the pod: its path there and its --version output."""

    path: str
    version: str


def password_given_for_pod(connection):
    """Whether the task itself gives a password. One that is this host's PGPASSWORD (the
    env fallback of login_password) is this host's, for verify=restore; it is never sent."""
    return connection.password is not None and connection.password != os.environ.get("PGPASSWORD")


def check_pod_request(request):
    """Refuse option combinations pod mode cannot honour."""
    if request.backup_format not in POD_FORMATS:
        raise InvalidRequest(
            "format=%s cannot be used with pod: pg_dump in the pod would write the directory into the pod's own"
            " filesystem; use format custom, tar or plain, which stream out" % request.backup_format)
    if password_given_for_pod(request.connection):
        raise InvalidRequest(
            "login_password cannot be used with pod: pg_dump in the pod would need it as an argument or environment"
            " variable of the exec request, which the Kubernetes API server logs; the pod's own environment or its"
            " server's local authentication logs pg_dump in (login_user is passed as --username)")
    if request.verify == "restore" and not request.connection.effective_host:
        raise InvalidRequest(
            "verify=restore with pod restores the dump into a scratch database on a server this host reaches: set"
            " login_host (or PGHOST) and the login options for that server, or use verify=list")


def kubernetes_api():
    """The k8s_client and k8s_exec module utils, imported on first use: they import the
    kubernetes package (about 0.3 s), which local backups and pg_restore never need."""
    from ansible_collections.ceres.rollout.plugins.module_utils import k8s_client, k8s_exec
    return k8s_client, k8s_exec


@contextlib.contextmanager
def kubernetes_errors_as(error_class, secrets):
    """Turn an error of the Kubernetes client raised inside the block into error_class."""
    k8s_client, _k8s_exec = kubernetes_api()
    try:
        yield
    except k8s_client.K8sError as error:
        raise error_class(redact(str(error), secrets))


def pod_psql_argv(psql_path, database, username):
    argv = [psql_path, "--no-psqlrc", "--quiet", "--no-align", "--tuples-only", "--no-password",
            "--set=ON_ERROR_STOP=1"]
    if database:
        argv.append("--dbname=%s" % conninfo_for_database(database))
    if username:
        argv.append("--username=%s" % username)
    return argv


def session_settings_sql():
    """SESSION_SETTINGS as SET statements (psql in a pod cannot be given PGOPTIONS), with a
    UTF-8 client encoding for the JSON results."""
    settings = SESSION_SETTINGS + (("client_encoding", "UTF8"),)
    return "".join("SET %s TO %s;\n" % (name, quote_literal(value)) for name, value in settings)


def _row_values(pairs):
    """json object_pairs_hook: a json_agg row as the list of its column values, in column
    order (names may repeat, e.g. two current_setting() columns)."""
    return [value for _name, value in pairs]


class PodCursor:
    """The cursor interface read_server_info(), list_user_tables() and read_table_stats()
    use, over a PodSqlSession: local mode's statements run unchanged in the pod."""

    def __init__(self, session):
        self.session = session
        self.rows = []

    def execute(self, statement):
        self.rows = self.session.query(statement)

    def fetchone(self):
        return tuple(self.rows[0]) if self.rows else None

    def fetchall(self):
        return [tuple(row) for row in self.rows]


class PodSqlSession:
    """psql in the pod, driven through its stdin: pod mode's SnapshotSession.

    Each statement is followed by an \\echo of a random marker, and its rows come back as one
    json_agg document, so the output is parsed without depending on psql's formatting. The
    session ends with COMMIT and \\q: not every container runtime passes the end of stdin on,
    so psql must never need it to exit."""

    def __init__(self, client, target, psql_path, database, username, secrets):
        k8s_client, self.k8s_exec = kubernetes_api()
        self.k8s_error = k8s_client.K8sError
        self.client = client
        self.target = target
        self.argv = pod_psql_argv(psql_path, database, username)
        self.secrets = secrets
        self.what = "psql in %s" % target.describe()
        self.cursor = PodCursor(self)
        self.error_class = ConnectionFailed
        self.doing = "starting the snapshot transaction"
        self.snapshot_id = None
        self.exec_session = None
        self.finished = False
        self.stdout = bytearray()
        self.stderr = self.k8s_exec.StderrTail()
        self.demux = self.k8s_exec.ChannelDemux(self.stdout.extend, self.stderr.append)

    def __enter__(self):
        try:
            self.exec_session = self.k8s_exec.ExecSession.open(
                self.client, self.target, self.argv, stdin=True, what=self.what)
        except self.k8s_error as error:
            raise PodUnavailable(redact(str(error), self.secrets))
        try:
            self._send(session_settings_sql() + "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;\n")
            self.snapshot_id = self.query("SELECT pg_catalog.pg_export_snapshot()")[0][0]
        except BaseException:
            self._abandon()
            raise
        # From here on, a failing statement means the dump's snapshot could not be counted.
        self.error_class = DumpFailed
        self.doing = "counting rows in the dump's snapshot"
        return self

    def __exit__(self, *exc_info):
        if not self.finished:
            self._abandon()
        return False

    def query(self, statement):
        """The rows of one statement, each a list of column values."""
        output = self._send("SELECT coalesce(json_agg(q), '[]') FROM (%s) AS q;\n" % statement.strip().rstrip(";"))
        try:
            return json.loads(output, object_pairs_hook=_row_values)
        except ValueError:
            raise self._error("%s printed %r, not the JSON rows expected" % (self.what, output[:200]))

    def finish(self):
        """COMMIT, quit psql and require its exit status 0."""
        self.doing = "ending the snapshot transaction"
        self._write(b"COMMIT;\n\\q\n")
        while self._receive():
            pass
        status = self._status()
        self.finished = True
        self.exec_session.close()
        if not status.success:
            raise self._failure(status)

    def _send(self, text):
        """Send statements and an \\echo of a marker; return what psql printed before the marker."""
        terminator = ("ceres-end-of-output-%s\n" % uuid.uuid4().hex).encode("ascii")
        self._write(text.encode("utf-8") + b"\\echo " + terminator)
        while True:
            index = self.stdout.find(terminator)
            if index >= 0:
                output = bytes(self.stdout[:index])
                del self.stdout[:index + len(terminator)]
                return output.decode("utf-8", "replace")
            if not self._receive():
                raise self._failure(self._status())

    def _write(self, data):
        try:
            self.exec_session.write_stdin(data)
        except self.k8s_error as error:
            raise self._error(str(error))

    def _receive(self):
        """Feed the next message to the demultiplexer; False when psql's stream ended."""
        try:
            message = self.exec_session.receive()
        except self.k8s_error as error:
            raise self._error(str(error))
        if message is None:
            return False
        self.demux.feed(message)
        return True

    def _status(self):
        try:
            return self.demux.status()
        except self.k8s_error as error:
            detail = self.stderr.text()
            raise self._error("%s: %s%s" % (self.what, error, ": " + detail if detail else ""))

    def _failure(self, status):
        detail = self.stderr.text()
        return self._error("%s %s%s" % (self.what, status.describe(), ": " + detail if detail else ""))

    def _error(self, message):
        return self.error_class(redact("%s failed: %s" % (self.doing, message), self.secrets))

    def _abandon(self):
        """Roll back and quit psql, best effort, and drop the stream (a psql the runtime kept
        waiting on stdin would hold the snapshot open otherwise)."""
        self.finished = True
        if self.exec_session is None:
            return
        try:
            self.exec_session.write_stdin(b"ROLLBACK;\n\\q\n")
        except self.k8s_error:
            pass
        self.exec_session.close_stdin()
        self.exec_session.close()


class PodDumpStream:
    """pg_dump running in the pod; a thread streams its stdout into the staged output."""

    def __init__(self, client, target, argv, output_path, secrets):
        k8s_client, self.k8s_exec = kubernetes_api()
        self.output_path = output_path
        self.secrets = secrets
        self.what = "pg_dump in %s" % target.describe()
        try:
            self.exec_session = self.k8s_exec.ExecSession.open(client, target, argv, what=self.what)
        except k8s_client.K8sError as error:
            raise DumpFailed(redact("%s could not start: %s; nothing was written to dest" % (self.what, error), secrets))
        self.result = None
        self.error = None
        self.thread = threading.Thread(target=self._stream, name="ceres pg_dump stream", daemon=True)
        self.thread.start()

    def _stream(self):
        try:
            # 0600 from the start, like pg_dump's own files in local mode.
            descriptor = os.open(self.output_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "wb") as handle:
                self.result = self.k8s_exec.run_command(self.exec_session, handle.write)
        except BaseException as error:  # pylint: disable=broad-except  # handed to the main thread
            self.error = error
        finally:
            self.exec_session.close()

    def failure_if_exited(self):
        """A DumpFailed when the stream has already ended badly, else None."""
        if self.thread.is_alive():
            return None
        return self._failure()

    def wait(self):
        self.thread.join()
        failure = self._failure()
        if failure is not None:
            raise failure

    def stop(self):
        self.exec_session.abort()
        self.thread.join(STOP_GRACE_SECONDS)

    def _failure(self):
        if self.error is not None:
            if isinstance(self.error, OSError):
                reason = "writing the dump to %s failed: %s" % (self.output_path, self.error.strerror or self.error)
            else:
                reason = "%s failed: %s" % (self.what, self.error)
        elif not self.result.status.success:
            reason = "%s %s" % (self.what, self.result.status.describe())
            if self.result.stderr:
                reason += ": " + _tail(self.result.stderr)
        elif self.result.stdout_bytes == 0:
            reason = "%s exited with status 0 but wrote nothing" % self.what
        else:
            return None
        return DumpFailed(redact(reason + "; nothing was written to dest", self.secrets))


def pod_pg_dump(client, target, pg_dump_path, secrets):
    """pg_dump in the pod and its version (`pg_dump --version` run there)."""
    k8s_client, k8s_exec = kubernetes_api()
    what = "%s --version in %s" % (pg_dump_path, target.describe())
    try:
        output, result = k8s_exec.capture_command(client, target, [pg_dump_path, "--version"], what=what)
        result.check(what)
    except k8s_client.K8sError as error:
        raise ClientToolError(redact("%s is not usable: %s" % (pg_dump_path, error), secrets))
    return PodTool(path=pg_dump_path, version=output.decode("utf-8", "replace").strip())


def check_pod_backup(request):
    """Everything pod mode checks before dumping (all of check mode): the options, dest, and
    a Running and Ready pod. Returns the ExecTarget."""
    check_pod_request(request)
    check_destination(request.dest, request.force, request.backup_format)
    source = request.pod
    k8s_client, k8s_exec = kubernetes_api()
    with kubernetes_errors_as(PodUnavailable, request.connection.secrets() + source.secrets()):
        client = k8s_client.K8sClient.from_auth(source.auth)
        try:
            return k8s_exec.resolve_exec_target(client, source.namespace, source.deployment, source.pod, source.container)
        finally:
            client.close()


def pod_source_record(target):
    return dict(mode="pod", **target.as_dict())


def check_mode_pod_backup_result(request):
    clock = time.monotonic()
    target = check_pod_backup(request)
    return planned_backup_result(request, request.connection.database, pod_source_record(target), clock)


def run_pod_backup(request, on_scratch_restored=None):
    """run_backup() with pg_dump (and the counting psql) running in request.pod."""
    started_at = utc_timestamp()
    clock = time.monotonic()
    dest = os.path.abspath(request.dest)
    check_pod_request(request)
    check_destination(dest, request.force, request.backup_format)
    params, source = request.connection, request.pod
    secrets = params.secrets() + source.secrets()
    with_content_hash = request.verify == "restore"
    k8s_client, k8s_exec = kubernetes_api()

    with kubernetes_errors_as(PodUnavailable, secrets):
        client = k8s_client.K8sClient.from_auth(source.auth)
    try:
        with kubernetes_errors_as(PodUnavailable, secrets):
            target = k8s_exec.resolve_exec_target(client, source.namespace, source.deployment, source.pod,
                                                  source.container)
        pg_dump = pod_pg_dump(client, target, source.pg_dump_path, secrets)
        with StagedOutput(dest) as staged:
            with PodSqlSession(client, target, source.psql_path, params.database, params.user, secrets) as session:
                server = read_server_info(session.cursor)
                tool_major = parse_tool_major(pg_dump.version)
                if tool_major is not None and tool_major < server.major:
                    raise ClientToolError("%s in %s is version %s; a PostgreSQL %s server needs pg_dump %s or newer"
                                          % (pg_dump.path, target.describe(), tool_major, server.major, server.major))
                find_verification_tools(request.backup_format, request.verify, server.major)
                argv = pg_dump_argv(pg_dump.path, None, request.backup_format, session.snapshot_id, server.database,
                                    compress=request.compress, username=params.user)
                dump = PodDumpStream(client, target, argv, staged.temp_path, secrets)
                try:
                    # pg_dump is streaming; the tables are listed and counted meanwhile, in
                    # the very snapshot it dumps.
                    tables, table_stats = count_tables_while_dumping(session.cursor, dump, with_content_hash)
                except BaseException:
                    dump.stop()
                    raise
                session.finish()
            files = _verify_staged(staged, request, server, tables, table_stats, on_scratch_restored)
            manifest = build_manifest(
                server, pg_dump, request.backup_format, request.compress, session.snapshot_id, files, table_stats,
                request.verify, started_at, utc_timestamp(), source=pod_source_record(target),
            )
            return _publish(staged, request, manifest, clock)
    finally:
        client.close()


# ---------------------------------------------------------------------------------------
# Restore


@dataclass(frozen=True)
class RestoreRequest:
    connection: ConnectionParams  # its database is the target
    src: str
    create: bool = True
    clean: bool = False
    jobs: int = 1


@dataclass
class RestorePlan:
    manifest: dict
    server_version_num: int
    server_major: int
    target_exists: bool


def check_restore(request):
    """Everything a restore needs, checked before the database is touched: the manifest,
    every checksum, the connection, the target's existence (and the privilege to create it),
    that an existing target holds no tables unless clean, and the client tool."""
    target = request.connection.database
    if not target:
        raise RestoreFailed("the target database must be named")
    src = os.path.abspath(request.src)
    manifest = load_manifest(manifest_path_for(src))
    verify_backup_integrity(src, manifest)
    if request.clean and manifest["format"] == "plain":
        raise RestoreFailed("clean is not supported for plain-format backups (their SQL has no DROP statements)")
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
                        % (target, role))
    finally:
        maintenance.close()
    if not target_exists and not request.create:
        raise RestoreFailed('database "%s" does not exist and create is false' % target)
    if target_exists and not request.clean:
        table_count = count_user_tables(request.connection)
        if table_count:
            # pg_restore would stop at the first object that exists ("schema ... already exists").
            raise RestoreFailed(
                'database "%s" already exists and has %d table%s; set clean=true to replace its objects, or restore'
                " into a new database (nothing was restored)" % (target, table_count, "" if table_count == 1 else "s"))
    plan = RestorePlan(manifest=manifest, server_version_num=version_num,
                       server_major=major_version(version_num), target_exists=target_exists)
    find_client_tool("psql" if manifest["format"] == "plain" else "pg_restore", plan.server_major)
    return plan


@dataclass(frozen=True)
class RestoreResult:
    database: str
    tables: dict
    created: bool
    duration_s: float

    def module_result(self):
        return {
            "changed": True,
            "database": self.database,
            "tables": {key: stats.rows for key, stats in sorted(self.tables.items())},
            "created": self.created,
            "duration_s": self.duration_s,
        }


def run_restore(request):
    """Check, then restore, then compare every table with the manifest. A database this
    call created is dropped again when anything fails."""
    clock = time.monotonic()
    plan = check_restore(request)
    manifest = plan.manifest
    params = request.connection
    target = params.database
    src = os.path.abspath(request.src)
    maintenance = connect_maintenance(params, "ceres.rollout.pg_restore")
    created = False
    try:
        if not plan.target_exists:
            create_database(maintenance, target, manifest.get("encoding"), manifest.get("lc_collate"),
                            manifest.get("lc_ctype"), params)
            created = True
        restore_into(src, manifest["format"], params, plan.server_major, request.jobs, no_owner=False,
                     error_class=RestoreFailed, clean=request.clean)
        with_content_hash = any(stats.get("content_hash") for stats in manifest["tables"].values())
        restored = read_database_table_stats(params, with_content_hash, "ceres.rollout.pg_restore",
                                             only_keys=set(manifest["tables"]))
        differences = compare_table_stats(manifest["tables"], restored, allow_extra_tables=True)
        if differences:
            raise RestoreFailed('database "%s" differs from the backup after the restore: %s' % (target, "; ".join(differences)))
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
    return RestoreResult(database=target, tables=restored, created=created, duration_s=round(time.monotonic() - clock, 3))


def check_mode_restore_result(request):
    """What pg_restore reports in check mode, after check_restore() found nothing wrong:
    the manifest's tables; nothing is restored."""
    clock = time.monotonic()
    plan = check_restore(request)
    return {
        "changed": True,
        "database": request.connection.database,
        "tables": {key: stats["rows"] for key, stats in sorted(plan.manifest["tables"].items())},
        "created": not plan.target_exists,
        "duration_s": round(time.monotonic() - clock, 3),
    }
