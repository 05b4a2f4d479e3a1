# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Where and as whom pg_backup and pg_restore connect, and the connections themselves.

The login options (pg_args.LOGIN_ARGUMENT_SPEC, paired with doc_fragments/postgres_login.py)
become a ConnectionParams, which gives the client tools their libpq environment (the password
only ever in PGPASSWORD, never on a command line) and psycopg2 its arguments. Every session
runs with SESSION_SETTINGS, which make row text, and so the tables' content hashes, the same
on every server.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field

from ansible_collections.ceres.rollout.plugins.module_utils.common.redaction import redact
from ansible_collections.ceres.rollout.plugins.module_utils.postgres.errors import ConnectionFailed

try:
    import psycopg2
    from psycopg2.extensions import ISOLATION_LEVEL_REPEATABLE_READ
except ImportError:
    HAS_PSYCOPG2 = False

    class DatabaseError(Exception):
        """Stands in for psycopg2.Error, which nothing raises without psycopg2."""
else:
    HAS_PSYCOPG2 = True
    DatabaseError = psycopg2.Error

# The fixed session settings that make row::text identical on the source, a scratch copy
# and another server (see pg_catalog.CONTENT_HASH_ALGORITHM).
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
            database=database,
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            unix_socket=self.unix_socket,
            ssl_mode=self.ssl_mode,
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


def set_read_only_snapshot(connection):
    """Make the connection's transactions read-only REPEATABLE READ: one snapshot for all
    their statements."""
    connection.set_session(isolation_level=ISOLATION_LEVEL_REPEATABLE_READ, readonly=True)


@contextlib.contextmanager
def database_errors_as(error_class, params, doing):
    """Turn a psycopg2 error raised inside the block into error_class, naming what failed."""
    try:
        yield
    except DatabaseError as error:
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
