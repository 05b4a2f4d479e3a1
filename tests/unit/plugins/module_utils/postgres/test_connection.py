"""postgres/connection.py: the login options, the libpq environment of the client tools and the
password kept out of everything but PGPASSWORD.
"""

from __future__ import annotations

import os

import pytest
from pg_unit_support import PASSWORD, params

from ansible_collections.ceres.rollout.plugins.module_utils.common.redaction import redact
from ansible_collections.ceres.rollout.plugins.module_utils.postgres import args as pg_args
from ansible_collections.ceres.rollout.plugins.module_utils.postgres import connection as pg_connection
from ansible_collections.ceres.rollout.plugins.module_utils.postgres.connection import ConnectionParams

# --- connection parameters and the environment of the client tools ---------------------


def test_libpq_environment_extends_os_environ_without_changing_it(monkeypatch):
    monkeypatch.setenv("CERES_UNIT_MARKER", "kept")
    monkeypatch.setenv("PGSSLROOTCERT", "/etc/ssl/ca.pem")
    monkeypatch.delenv("PGPASSWORD", raising=False)

    environment = params().libpq_environment()

    assert environment["CERES_UNIT_MARKER"] == "kept"
    assert environment["PATH"] == os.environ["PATH"]
    assert environment["PGSSLROOTCERT"] == "/etc/ssl/ca.pem"
    assert environment["PGPASSWORD"] == PASSWORD
    assert environment["PGHOST"] == "db.example"
    assert environment["PGPORT"] == "6543"
    assert environment["PGUSER"] == "backup"
    assert environment["PGDATABASE"] == "ceres_db"
    assert "PGPASSWORD" not in os.environ


def test_omitted_options_leave_the_libpq_environment_variables_alone(monkeypatch):
    monkeypatch.setenv("PGHOST", "from-env")
    monkeypatch.setenv("PGPASSWORD", "env-password")

    environment = ConnectionParams().libpq_environment()

    assert environment["PGHOST"] == "from-env"
    assert environment["PGPASSWORD"] == "env-password"
    assert ConnectionParams().psycopg2_arguments() == {}


def test_unix_socket_wins_over_host():
    connection = params(unix_socket="/run/postgresql")
    assert connection.libpq_environment({})["PGHOST"] == "/run/postgresql"
    assert connection.psycopg2_arguments()["host"] == "/run/postgresql"


def test_password_is_in_no_repr_or_description():
    connection = params()
    assert PASSWORD not in repr(connection)
    assert PASSWORD not in connection.describe()
    assert connection.secrets() == [PASSWORD]
    assert ConnectionParams().secrets() == []


def test_from_module_params_maps_the_login_options():
    module_params = dict(
        login_host="h", login_port=1, login_user="u", login_password="p", login_unix_socket=None, ssl_mode="require"
    )
    connection = ConnectionParams.from_module_params(module_params, "db")
    assert connection.psycopg2_arguments() == dict(
        dbname="db", host="h", port=1, user="u", password="p", sslmode="require"
    )
    assert set(pg_args.LOGIN_ARGUMENT_SPEC) == {
        "login_host",
        "login_port",
        "login_user",
        "login_password",
        "login_unix_socket",
        "ssl_mode",
    }
    assert pg_args.LOGIN_ARGUMENT_SPEC["login_password"]["no_log"] is True


@pytest.mark.parametrize(
    "name, expected",
    [
        ("ceres_db", "dbname='ceres_db'"),
        ("host=evil port=1", "dbname='host=evil port=1'"),
        ("it's", "dbname='it\\'s'"),
        ("back\\slash", "dbname='back\\\\slash'"),
    ],
)
def test_database_names_are_passed_as_a_quoted_conninfo(name, expected):
    assert pg_connection.conninfo_for_database(name) == expected


def test_redact_replaces_every_secret():
    assert redact("a %s b %s" % (PASSWORD, PASSWORD), [PASSWORD]) == "a ******** b ********"
    assert redact("nothing", [None, ""]) == "nothing"
