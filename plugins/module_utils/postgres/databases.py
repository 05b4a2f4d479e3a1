# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Databases as whole objects: whether one exists, whether the login role may create one,
CREATE DATABASE and DROP DATABASE, over a maintenance connection (pg_connection)."""

from __future__ import annotations

from ansible_collections.ceres.rollout.plugins.module_utils.common.redaction import redact
from ansible_collections.ceres.rollout.plugins.module_utils.postgres.connection import DatabaseError
from ansible_collections.ceres.rollout.plugins.module_utils.postgres.errors import PostgresBackupError, RestoreFailed

try:
    from psycopg2 import sql
except ImportError:
    sql = None  # pg_connection.HAS_PSYCOPG2 is False; connect() fails before anything here runs

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


def database_exists(maintenance, name):
    with maintenance.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_catalog.pg_database WHERE datname = %s", (name,))
        return cursor.fetchone() is not None


def create_database(maintenance, name, encoding, lc_collate, lc_ctype, params):
    """CREATE DATABASE from template0, with the given encoding and locale when known."""
    statement = sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name))
    if encoding:
        statement += sql.SQL(" ENCODING {}").format(sql.Literal(encoding))
    if lc_collate and lc_ctype:
        statement += sql.SQL(" LC_COLLATE {} LC_CTYPE {}").format(sql.Literal(lc_collate), sql.Literal(lc_ctype))
    try:
        with maintenance.cursor() as cursor:
            cursor.execute(statement)
    except DatabaseError as error:
        raise RestoreFailed(redact('could not create database "%s": %s' % (name, str(error).strip()), params.secrets()))


def drop_database(maintenance, name, server_version_num, params):
    """DROP DATABASE IF EXISTS, ending other sessions on it (PostgreSQL 13+)."""
    statement = sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name))
    if server_version_num >= 130000:
        statement += sql.SQL(" WITH (FORCE)")
    try:
        with maintenance.cursor() as cursor:
            cursor.execute(statement)
    except DatabaseError as error:
        raise PostgresBackupError(
            redact('could not drop database "%s"; drop it by hand: %s' % (name, str(error).strip()), params.secrets())
        )
