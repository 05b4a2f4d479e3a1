# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Verification of a finished dump against the snapshot it was taken in (pg_backup's verify).

verify=list reads the dump's table of contents (`pg_restore --list`; for a plain dump its
COPY blocks) and requires a data entry for every table of the snapshot, matched by oid and
name. verify=restore does that too, then restores the dump into a scratch database with
--exit-on-error, compares every table's row count and content hash with the snapshot's, and
drops the scratch database whatever happens.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from ansible_collections.ceres.rollout.plugins.module_utils.common.processes import run_captured
from ansible_collections.ceres.rollout.plugins.module_utils.postgres.catalog import (
    ServerInfo,
    compare_table_stats,
    read_database_table_stats,
)
from ansible_collections.ceres.rollout.plugins.module_utils.postgres.connection import (
    ConnectionParams,
    connect_maintenance,
)
from ansible_collections.ceres.rollout.plugins.module_utils.postgres.databases import (
    create_database,
    drop_database,
    login_role_can_create_databases,
)
from ansible_collections.ceres.rollout.plugins.module_utils.postgres.errors import (
    InsufficientPrivilege,
    PostgresBackupError,
    VerificationFailed,
)
from ansible_collections.ceres.rollout.plugins.module_utils.postgres.load import open_sql_dump, restore_into
from ansible_collections.ceres.rollout.plugins.module_utils.postgres.tools import find_client_tool

SCRATCH_DATABASE_PREFIX = "ceres_verify_"
TOC_TABLE_DATA_PATTERN = re.compile(r"^\d+; 0 (\d+) TABLE DATA (.*)$")

# Server encodings -> Python codecs. Object names in a dump (in `pg_restore --list` output
# and in a plain dump's COPY lines) are in the database's encoding, not UTF-8.
PYTHON_CODECS = {
    "UTF8": "utf-8",
    "LATIN1": "latin-1",
    "LATIN2": "iso8859-2",
    "LATIN3": "iso8859-3",
    "LATIN4": "iso8859-4",
    "LATIN5": "iso8859-9",
    "LATIN6": "iso8859-10",
    "LATIN7": "iso8859-13",
    "LATIN8": "iso8859-14",
    "LATIN9": "iso8859-15",
    "LATIN10": "iso8859-16",
    "ISO_8859_5": "iso8859-5",
    "ISO_8859_6": "iso8859-6",
    "ISO_8859_7": "iso8859-7",
    "ISO_8859_8": "iso8859-8",
    "WIN866": "cp866",
    "WIN874": "cp874",
    "WIN1250": "cp1250",
    "WIN1251": "cp1251",
    "WIN1252": "cp1252",
    "WIN1253": "cp1253",
    "WIN1254": "cp1254",
    "WIN1255": "cp1255",
    "WIN1256": "cp1256",
    "WIN1257": "cp1257",
    "WIN1258": "cp1258",
    "KOI8R": "koi8-r",
    "KOI8U": "koi8-u",
    "EUC_JP": "euc-jp",
    "EUC_JIS_2004": "euc-jis-2004",
    "EUC_KR": "euc-kr",
    "EUC_CN": "gb2312",
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


def pg_restore_list_argv(tool_path, archive_path, backup_format):
    return [tool_path, "--list", "--format=%s" % backup_format, archive_path]


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
            targets.add(_leading_qualified_name(line[len(b"COPY ") :]).decode(encoding, "replace"))
    return targets


def _leading_qualified_name(text):
    """The possibly quoted schema.table at the start of text: up to the first unquoted space."""
    in_quotes = False
    for index in range(len(text)):
        character = text[index : index + 1]
        if character == b'"':
            in_quotes = not in_quotes
        elif character == b" " and not in_quotes:
            return text[:index]
    return text


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


def check_can_create_scratch_database(cursor):
    """verify=restore creates a scratch database: the login role must be allowed to."""
    role, can_create = login_role_can_create_databases(cursor)
    if not can_create:
        raise InsufficientPrivilege(
            'verify=restore restores the dump into a scratch database, but the login role "%s" may not create'
            " databases (it has neither CREATEDB nor SUPERUSER); grant it CREATEDB or use verify=list" % role
        )


def scratch_database_name():
    return SCRATCH_DATABASE_PREFIX + uuid.uuid4().hex[:16]


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
            listing = run_captured(
                pg_restore_list_argv(pg_restore.path, path, self.backup_format),
                self.params.libpq_environment(),
                self.params.secrets(),
                VerificationFailed,
                "pg_restore --list",
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
        create_database(
            maintenance, scratch, self.server.encoding, self.server.lc_collate, self.server.lc_ctype, self.params
        )
        scratch_params = self.params.with_database(scratch)
        restore_into(
            path,
            self.backup_format,
            scratch_params,
            self.server.major,
            self.jobs,
            no_owner=True,
            error_class=VerificationFailed,
            what_prefix="restore into scratch database %s: " % scratch,
        )
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
