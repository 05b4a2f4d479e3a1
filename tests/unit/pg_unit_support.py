"""What the unit tests of the PostgreSQL module utils share: connection parameters with a
password that must never leak, fake client tools, a backup on disk with its manifest, a fake
psycopg2 connection answering canned rows, and helpers for watching child processes."""

from __future__ import annotations

import os
import signal
import sys
import textwrap
import time

from ansible_collections.ceres.rollout.plugins.module_utils.common import atomic_files
from ansible_collections.ceres.rollout.plugins.module_utils.postgres import catalog as pg_catalog
from ansible_collections.ceres.rollout.plugins.module_utils.postgres import connection as pg_connection
from ansible_collections.ceres.rollout.plugins.module_utils.postgres import manifest as pg_manifest
from ansible_collections.ceres.rollout.plugins.module_utils.postgres import tools as pg_tools
from ansible_collections.ceres.rollout.plugins.module_utils.postgres.backup import local as pg_backup_local
from ansible_collections.ceres.rollout.plugins.module_utils.postgres.catalog import ServerInfo, TableStats
from ansible_collections.ceres.rollout.plugins.module_utils.postgres.connection import ConnectionParams

PASSWORD = "s3cr3t-'quote\" $(rm -rf)-pw"


def params(**overrides):
    values = dict(database="ceres_db", host="db.example", port=6543, user="backup", password=PASSWORD)
    values.update(overrides)
    return ConnectionParams(**values)


def write_script(path, body):
    """An executable Python script (used as a fake pg_dump / pg_restore)."""
    path.write_text("#!%s\n%s" % (sys.executable, textwrap.dedent(body)))
    path.chmod(0o755)
    return str(path)


SERVER = ServerInfo(
    database="ceres_db", version="15.18", version_num=150018, encoding="UTF8", lc_collate="C.UTF-8", lc_ctype="C.UTF-8"
)


class FakeTool:
    version = "pg_dump (PostgreSQL) 15.18"


def make_backup(tmp_path, backup_format="custom", tables=None):
    """A backup on disk with a manifest as run_backup writes it (tables: {key: TableStats})."""
    if backup_format == "directory":
        path = tmp_path / "ceres.d"
        path.mkdir()
        (path / "toc.dat").write_bytes(b"table of contents")
        (path / "3000.dat.gz").write_bytes(b"\x1f\x8b compressed rows")
    else:
        path = tmp_path / "ceres.dump"
        path.write_bytes(b"PGDMP" + bytes(range(256)) * 40)
    files = pg_manifest.digest_backup(str(path), backup_format)
    if tables is None:
        tables = {
            "public.orders": TableStats(rows=120000, content_hash="0f" * 16),
            "billing.Ünïcode": TableStats(rows=3),
        }
    manifest = pg_manifest.build_manifest(
        SERVER,
        FakeTool(),
        backup_format,
        None,
        "00000003-1B-1",
        files,
        tables,
        "list",
        "2026-01-01T00:00:00.000Z",
        "2026-01-01T00:00:01.000Z",
    )
    atomic_files.write_json_atomically(pg_manifest.manifest_path_for(str(path)), manifest)
    return str(path), manifest


def process_gone(pid):
    """True when pid has exited (a zombie nobody reaps counts as gone)."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as handle:
            return handle.read().rsplit(b")", 1)[1].split()[0] in (b"Z", b"X")
    except FileNotFoundError:
        return True


def wait_for(predicate, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def kill_if_running(pids):
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


FORKING_TOOL = """
    import os, signal, sys, time
    pid_file = sys.argv[1]
    worker = os.fork()
    if worker == 0:
        signal.signal(signal.SIGTERM, signal.SIG_IGN if "stubborn" in sys.argv else signal.SIG_DFL)
        # the worker names itself once its signal handling is set (a test that stops it must not race it)
        with open(pid_file + ".tmp", "w") as handle:
            handle.write(str(os.getpid()))
        os.rename(pid_file + ".tmp", pid_file)
        time.sleep(120)
        os._exit(0)
    {leader}
"""


def worker_pid(pid_file):
    assert wait_for(lambda: os.path.exists(pid_file)), "the fake tool did not fork"
    return int(open(pid_file).read())


class FakeCursor:
    def __init__(self, answers):
        self.answers = answers
        self.statement = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        return False

    def execute(self, statement, arguments=None):
        self.statement = statement

    def fetchone(self):
        for marker, rows in self.answers.items():
            if marker in self.statement:
                return rows[0] if rows else None
        raise AssertionError("unexpected statement %s" % self.statement)

    def fetchall(self):
        for marker, rows in self.answers.items():
            if marker in self.statement:
                return rows
        raise AssertionError("unexpected statement %s" % self.statement)


class FakeConnection:
    server_version = 150018
    autocommit = False

    def __init__(self, answers):
        self.answers = answers

    def cursor(self):
        return FakeCursor(self.answers)

    def set_session(self, **settings):
        pass

    def close(self):
        pass


def fake_tools(tmp_path, monkeypatch, **versions):
    """Only the named client tools exist, each printing its version."""
    paths = {}
    for name, version in versions.items():
        directory = tmp_path / ("bin-%s" % name)
        directory.mkdir()
        paths[name] = write_script(directory / name, 'print("%s (PostgreSQL) %s")' % (name, version))
    monkeypatch.setattr(pg_tools, "tool_candidates", lambda name, major: [paths[name]] if name in paths else [])


def fake_connections(monkeypatch, answers):
    """Every psycopg2 connection opened by the code under test is a FakeConnection(answers)."""

    def connect(connection, application_name):
        return FakeConnection(answers)

    # connect() is imported by name where it is called: replace it in each of those modules.
    for module in (pg_connection, pg_catalog, pg_backup_local):
        monkeypatch.setattr(module, "connect", connect)


FOREIGN_DIRECTORY = (
    "is an existing directory that is not a previous directory-format backup; give the backup's own path"
)
