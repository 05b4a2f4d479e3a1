# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What a database holds, as pg_backup and pg_restore compare it: the server's facts, the
tables whose rows pg_dump dumps, and per table an exact row count and a content hash.

The statements are plain SQL text read through a DB-API cursor, so they run unchanged over
psycopg2 (local mode) and over psql in a pod (pg_backup_pod.PodCursor).
"""

from __future__ import annotations

from dataclasses import dataclass

from ansible_collections.ceres.rollout.plugins.module_utils.postgres.connection import (
    connect,
    database_errors_as,
    set_read_only_snapshot,
)
from ansible_collections.ceres.rollout.plugins.module_utils.postgres.errors import RestoreFailed

# Per row: hashtextextended(row::text, 0) and (.., 1), each summed modulo 2**64, as 32 hex
# digits. A sum is order independent, needs no sort (json columns have no ordering) and
# streams in constant memory; the fixed session settings (pg_connection.SESSION_SETTINGS)
# make row::text identical on the source, a scratch copy and another server.
CONTENT_HASH_ALGORITHM = "sum-hashtextextended-rowtext-v1"


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


def stats_dict(stats):
    """A TableStats, or its manifest form, as the manifest form {rows, content_hash}."""
    return stats.to_manifest() if isinstance(stats, TableStats) else stats


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
    return "%016x%016x" % (int(sum_seed0) % 2**64, int(sum_seed1) % 2**64)


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
        return (
            "SELECT count(*), coalesce(sum(hashtextextended(ROW(t.*)::text, 0)), 0),"
            " coalesce(sum(hashtextextended(ROW(t.*)::text, 1)), 0) FROM %s AS t" % relation
        )
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
            set_read_only_snapshot(connection)
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
        want = stats_dict(expected[key])
        if key not in actual:
            differences.append("table %s is missing (expected %d rows)" % (key, want["rows"]))
            continue
        got = stats_dict(actual[key])
        if want["rows"] != got["rows"]:
            differences.append("table %s has %d rows, expected %d" % (key, got["rows"], want["rows"]))
        elif want.get("content_hash") and got.get("content_hash") and want["content_hash"] != got["content_hash"]:
            differences.append("table %s has the expected %d rows but different content" % (key, got["rows"]))
    if not allow_extra_tables:
        for key in sorted(set(actual) - set(expected)):
            differences.append("table %s is not in the backup's manifest" % key)
    return differences
