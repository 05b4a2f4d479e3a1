"""postgres/backup/pod.py (pod mode): option checks, the psql session driven through an exec stream,
and pg_dump's stream into the staged output. The exec stream is faked (a scripted psql);
tests/integration/test_pg_backup_pod.py runs the real thing."""

from __future__ import annotations

import json
import os

import pytest
import websocket

from ansible_collections.ceres.rollout.plugins.module_utils.k8s.exec import V5_PROTOCOL, ExecSession, ExecTarget
from ansible_collections.ceres.rollout.plugins.module_utils.postgres import catalog as pg_catalog
from ansible_collections.ceres.rollout.plugins.module_utils.postgres.backup import common as pg_backup_common
from ansible_collections.ceres.rollout.plugins.module_utils.postgres.backup import pod as pg_backup_pod
from ansible_collections.ceres.rollout.plugins.module_utils.postgres.backup.common import BackupRequest
from ansible_collections.ceres.rollout.plugins.module_utils.postgres.backup.pod import (
    PodDumpStream,
    PodSource,
    PodSqlSession,
)
from ansible_collections.ceres.rollout.plugins.module_utils.postgres.catalog import TableRef
from ansible_collections.ceres.rollout.plugins.module_utils.postgres.connection import ConnectionParams
from ansible_collections.ceres.rollout.plugins.module_utils.postgres.destination import StagedBackup
from ansible_collections.ceres.rollout.plugins.module_utils.postgres.errors import (
    ConnectionFailed,
    DumpFailed,
    InvalidRequest,
)

TARGET = ExecTarget(namespace="ceres-system", pod="postgres-main-0", container="postgres")
SUCCESS = b'{"metadata":{},"status":"Success"}'
SECRET = "k8s-t0ken-value"


def failure(exit_code):
    return json.dumps(
        {
            "status": "Failure",
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": str(exit_code)}]},
        }
    ).encode()


# --------------------------------------------------------------------------- option checks


def request(**overrides):
    values = dict(
        connection=ConnectionParams(database="ceres_db"),
        dest="/tmp/x.dump",
        pod=PodSource(namespace="ceres-system", deployment="postgres-main"),
    )
    values.update(overrides)
    return BackupRequest(**values)


def test_the_directory_format_is_refused_naming_the_options():
    with pytest.raises(InvalidRequest, match="format=directory cannot be used with pod"):
        pg_backup_pod.check_pod_request(request(backup_format="directory"))


def test_a_password_given_to_the_task_is_refused(monkeypatch):
    monkeypatch.delenv("PGPASSWORD", raising=False)
    with pytest.raises(InvalidRequest, match="login_password cannot be used with pod") as raised:
        pg_backup_pod.check_pod_request(request(connection=ConnectionParams(database="d", password="hunter2")))
    assert "hunter2" not in str(raised.value)


def test_this_hosts_pgpassword_is_not_refused_and_not_sent(monkeypatch):
    monkeypatch.setenv("PGPASSWORD", "hunter2")
    connection = ConnectionParams(database="d", user="postgres", password="hunter2")
    pg_backup_pod.check_pod_request(request(connection=connection))
    psql_argv = pg_backup_pod.pod_psql_argv("psql", "d", "postgres")
    pg_dump_argv = pg_backup_common.pg_dump_argv("pg_dump", None, "custom", "1-2", "d", username="postgres")
    argv = psql_argv + pg_dump_argv
    assert not any("hunter2" in argument for argument in argv)
    assert "--username=postgres" in argv and not any(argument.startswith("--file") for argument in argv)


def test_verify_restore_needs_a_server_this_host_reaches(monkeypatch):
    with pytest.raises(InvalidRequest, match="verify=restore with pod .* set login_host"):
        pg_backup_pod.check_pod_request(request(verify="restore"))
    pg_backup_pod.check_pod_request(
        request(verify="restore", connection=ConnectionParams(database="d", host="127.0.0.1"))
    )


def test_kubernetes_secrets_are_collected_for_masking():
    auth = {"api_key": SECRET, "password": None, "proxy_headers": {"proxy_basic_auth": "u:pw"}}
    source = PodSource(namespace="n", pod="p", auth=auth)
    assert source.secrets() == [SECRET, "u:pw"]
    assert SECRET not in repr(source)


# --------------------------------------------------------------------------- a scripted psql


class Frame:
    def __init__(self, data):
        self.data = data


class ScriptedPsql:
    """psql -A -t behind an exec stream. Statements arrive on stdin; each \\echo MARKER line
    makes it answer what came before (rows as json_agg prints them, then the marker).
    `answers` maps a wrapped statement to rows of (column, value) pairs; `fail_when`
    makes psql print an error and exit 3 instead."""

    def __init__(self, answers, fail_when=None, exit_on_start=None):
        self.answers = answers
        self.fail_when = fail_when
        self.outgoing = []
        self.stdin = b""
        self.statements = []
        self.sock = None
        self.ended = False
        self.raw = []
        if exit_on_start is not None:
            stderr, status = exit_on_start
            self._exit(stderr, status)

    def getsubprotocol(self):
        return V5_PROTOCOL

    def send_binary(self, data):
        assert data[:1] in (b"\x00", b"\xff")
        self.raw.append(data)
        if data[:1] == b"\xff" or self.ended:
            return
        self.stdin += data[1:]
        while not self.ended:
            text = self.stdin.decode("utf-8")
            if "\\echo " in text and "\n" in text.split("\\echo ", 1)[1]:
                statements, rest = text.split("\\echo ", 1)
                marker, remainder = rest.split("\n", 1)
                self.stdin = remainder.encode("utf-8")
                self._answer(statements, marker)
            elif "\\q\n" in text:
                self.statements.append(text.split("\\q\n")[0])
                self._exit(b"", SUCCESS)
            else:
                return

    def _answer(self, statements, marker):
        self.statements.append(statements)
        if self.fail_when and self.fail_when in statements:
            self._exit(b"ERROR:  permission denied for table secrets (token %s)\n" % SECRET.encode(), failure(3))
            return
        output = b""
        if statements.startswith("SELECT coalesce(json_agg(q), '[]') FROM ("):
            rows = self.answers[statements]
            objects = [
                "{" + ", ".join('"%s":%s' % (name, json.dumps(value, ensure_ascii=False)) for name, value in row) + "}"
                for row in rows
            ]
            output = ("[" + ", \n ".join(objects) + "]\n").encode("utf-8")
        self.outgoing.append(b"\x01" + output + marker.encode("ascii") + b"\n")

    def _exit(self, stderr, status):
        if stderr:
            self.outgoing.append(b"\x02" + stderr)
        self.outgoing.append(b"\x03" + status)
        self.ended = True

    def recv_data_frame(self, control_frame=False):
        if self.outgoing:
            return websocket.ABNF.OPCODE_BINARY, Frame(self.outgoing.pop(0))
        assert self.ended, "psql would wait for input forever"
        return websocket.ABNF.OPCODE_CLOSE, Frame(b"\x03\xe8")

    def shutdown(self):
        pass


def wrapped(statement):
    return "SELECT coalesce(json_agg(q), '[]') FROM (%s) AS q;\n" % statement.strip()


TABLES = [
    TableRef(16384, "public", "orders", "public.orders"),
    TableRef(16390, "billing", 'Odd "Name"', 'billing."Odd ""Name"""'),
]
ANSWERS = {
    wrapped("SELECT pg_catalog.pg_export_snapshot()"): [[("pg_export_snapshot", "00000003-0000001B-1")]],
    wrapped(pg_catalog.SERVER_INFO_QUERY): [
        [
            ("current_database", "ceres_db"),
            ("current_setting", "15.18"),
            ("current_setting", 150018),
            ("pg_encoding_to_char", "UTF8"),
            ("datcollate", "C.UTF-8"),
            ("datctype", "C.UTF-8"),
        ]
    ],
    wrapped(pg_catalog.USER_TABLES_QUERY): [
        [("oid", table.oid), ("nspname", table.schema), ("relname", table.name), ("?column?", table.quoted_name)]
        for table in TABLES
    ],
    wrapped(pg_catalog.table_stats_query(TABLES[0], True)): [
        [("count", 120000), ("coalesce", -9223372036854775809123), ("coalesce", 42)]
    ],
    wrapped(pg_catalog.table_stats_query(TABLES[1], True)): [[("count", 0), ("coalesce", 0), ("coalesce", 0)]],
    wrapped(pg_catalog.table_stats_query(TABLES[0], False)): [[("count", 120000)]],
}


@pytest.fixture()
def exec_sessions(monkeypatch):
    """ExecSession.open hands out scripted connections, in order; records the argv."""
    connections, opened = [], []

    def fake_open(client, target, command, stdin=False, what=None, connect_timeout=None):
        opened.append(list(command))
        return ExecSession(connections.pop(0), target, what or command[0])

    monkeypatch.setattr(ExecSession, "open", staticmethod(fake_open))
    return connections, opened


def test_the_snapshot_session_runs_local_modes_statements_through_psql(exec_sessions):
    connections, opened = exec_sessions
    psql = ScriptedPsql(ANSWERS)
    connections.append(psql)

    with PodSqlSession(object(), TARGET, "psql", "ceres_db", "postgres", [SECRET]) as session:
        server = pg_catalog.read_server_info(session.cursor)
        tables = pg_catalog.list_user_tables(session.cursor)
        stats = {table.key: pg_catalog.read_table_stats(session.cursor, table, True) for table in tables}
        session.finish()

    assert session.snapshot_id == "00000003-0000001B-1"
    assert opened == [
        [
            "psql",
            "--no-psqlrc",
            "--quiet",
            "--no-align",
            "--tuples-only",
            "--no-password",
            "--set=ON_ERROR_STOP=1",
            "--dbname=dbname='ceres_db'",
            "--username=postgres",
        ]
    ]
    assert server == pg_catalog.ServerInfo("ceres_db", "15.18", 150018, "UTF8", "C.UTF-8", "C.UTF-8")
    assert tables == TABLES
    assert stats["public.orders"] == pg_catalog.TableStats(
        rows=120000, content_hash=pg_catalog.content_hash_from_sums(-9223372036854775809123, 42)
    )
    assert stats['billing.Odd "Name"'].rows == 0
    setup = psql.statements[0]
    assert "SET TimeZone TO 'UTC';" in setup and "SET client_encoding TO 'UTF8';" in setup
    assert setup.endswith("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;\n")
    assert psql.statements[-1] == "COMMIT;\n"


def test_a_failing_count_fails_the_dump_masks_secrets_and_rolls_back(exec_sessions):
    connections, _opened = exec_sessions
    psql = ScriptedPsql(ANSWERS, fail_when=pg_catalog.table_stats_query(TABLES[1], False))
    connections.append(psql)

    with pytest.raises(DumpFailed) as raised:
        with PodSqlSession(object(), TARGET, "psql", "ceres_db", None, [SECRET]) as session:
            for table in pg_catalog.list_user_tables(session.cursor):
                pg_catalog.read_table_stats(session.cursor, table, False)
    message = str(raised.value)
    assert message.startswith("counting rows in the dump's snapshot failed: psql in pod")
    assert "exited with status 3: ERROR:  permission denied for table secrets" in message
    assert SECRET not in message and "********" in message
    assert psql.raw[-2:] == [b"\x00ROLLBACK;\n\\q\n", b"\xff\x00"]  # quit, even if stdin's end is not passed on


def test_psql_failing_to_connect_is_a_connection_failure(exec_sessions):
    connections, _opened = exec_sessions
    connections.append(
        ScriptedPsql(
            ANSWERS,
            exit_on_start=(
                b'psql: error: connection to server failed: FATAL:  database "nope" does not exist\n',
                failure(2),
            ),
        )
    )
    with pytest.raises(
        ConnectionFailed,
        match="starting the snapshot transaction failed: .* exited with status 2: "
        'psql: error: .*database "nope" does not exist',
    ):
        with PodSqlSession(object(), TARGET, "psql", "nope", None, []):
            pass


def test_a_psql_stream_ending_without_status_is_a_failure(exec_sessions):
    connections, _opened = exec_sessions
    psql = ScriptedPsql(ANSWERS)
    psql.ended = True  # closes at once, no status
    connections.append(psql)
    with pytest.raises(ConnectionFailed, match="without the command's exit status"):
        with PodSqlSession(object(), TARGET, "psql", "ceres_db", None, []):
            pass


# --------------------------------------------------------------------------- pg_dump's stream


class ScriptedStream:
    def __init__(self, script):
        self.script = list(script)
        self.sock = None

    def getsubprotocol(self):
        return V5_PROTOCOL

    def recv_data_frame(self, control_frame=False):
        if not self.script:
            return websocket.ABNF.OPCODE_CLOSE, Frame(b"\x03\xe8")
        item = self.script.pop(0)
        if isinstance(item, BaseException):
            raise item
        return websocket.ABNF.OPCODE_BINARY, Frame(item)

    def shutdown(self):
        pass


def test_a_successful_stream_lands_in_the_staged_file_with_mode_0600(tmp_path, exec_sessions):
    connections, _opened = exec_sessions
    chunks = [bytes(range(256)) * 10, b"\x00" * 5000, b"PGDMP\xff"]
    connections.append(ScriptedStream([b"\x01" + chunk for chunk in chunks] + [b"\x03" + SUCCESS]))
    dest = tmp_path / "ceres.dump"
    with StagedBackup(str(dest)) as staged:
        dump = PodDumpStream(object(), TARGET, ["pg_dump"], staged.temp_path, [SECRET])
        dump.wait()
        assert open(staged.temp_path, "rb").read() == b"".join(chunks)
        assert os.stat(staged.temp_path).st_mode & 0o777 == 0o600
        staged.commit()
    assert dest.read_bytes() == b"".join(chunks)


@pytest.mark.parametrize(
    "script, expected",
    [
        (
            [
                b"\x01PGDMP half",
                b"\x02pg_dump: error: query failed: token " + SECRET.encode() + b"\n",
                b"\x03" + failure(1),
            ],
            r"pg_dump in pod .* exited with status 1: pg_dump: error: query failed: token \*\*\*\*\*\*\*\*",
        ),
        (
            [b"\x01PGDMP half", websocket.WebSocketConnectionClosedException("Connection to remote host was lost.")],
            r"dropped: Connection to remote host was lost",
        ),
        ([b"\x01PGDMP half"], r"ended without the command's exit status"),
        ([b"\x03" + SUCCESS], r"exited with status 0 but wrote nothing"),
    ],
)
def test_a_failed_stream_leaves_nothing_behind(tmp_path, exec_sessions, script, expected):
    connections, _opened = exec_sessions
    connections.append(ScriptedStream(script))
    backups = tmp_path / "backups"
    backups.mkdir()
    with pytest.raises(DumpFailed, match=expected) as raised:
        with StagedBackup(str(backups / "ceres.dump")) as staged:
            PodDumpStream(object(), TARGET, ["pg_dump"], staged.temp_path, [SECRET]).wait()
    assert str(raised.value).endswith("; nothing was written to dest")
    assert SECRET not in str(raised.value)
    assert os.listdir(backups) == []
