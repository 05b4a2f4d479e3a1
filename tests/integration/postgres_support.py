"""Helpers the PostgreSQL integration tests share: admin connections to the sandbox server
(libpq environment from .sandbox/env), statements, databases, manifests and table stats."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import psycopg2

REPOSITORY = Path(__file__).resolve().parents[2]
# The repository is the collection; .collections/ansible_collections/ceres/rollout links to it.
if str(REPOSITORY / ".collections") not in sys.path:
    sys.path.insert(0, str(REPOSITORY / ".collections"))

from ansible_collections.ceres.rollout.plugins.module_utils.postgres import catalog as pg_catalog  # noqa: E402
from ansible_collections.ceres.rollout.plugins.module_utils.postgres import connection as pg_connection  # noqa: E402


def admin_connection(database="postgres"):
    connection = psycopg2.connect(dbname=database)
    connection.autocommit = True
    return connection


def execute(database, *statements):
    connection = admin_connection(database)
    try:
        with connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
    finally:
        connection.close()


def database_names():
    connection = admin_connection()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT datname FROM pg_database")
            return {row[0] for row in cursor.fetchall()}
    finally:
        connection.close()


def drop_database(name):
    execute("postgres", 'DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name)


def live_table_stats(database, with_content_hash=False):
    """Every table's row count (and content hash) as the manifest records them, read live."""
    stats = pg_catalog.read_database_table_stats(
        pg_connection.ConnectionParams(database=database), with_content_hash, "ceres integration test"
    )
    return {key: value.to_manifest() for key, value in stats.items()}


def load_manifest(path):
    with open(str(path) + ".manifest.json", encoding="utf-8") as handle:
        return json.load(handle)


def create_login_role(name, password, *options):
    """A login role of the test's own (roles are cluster-wide: drop it with drop_role)."""
    execute("postgres", "CREATE ROLE \"%s\" LOGIN PASSWORD '%s' %s" % (name, password, " ".join(options)))


def drop_role(name):
    execute("postgres", 'DROP ROLE IF EXISTS "%s"' % name)


def pg_dump_process_tree(path_prefix):
    """{pid: ppid} of the running (not zombie) pg_dump processes whose command line names a
    path under path_prefix: a leader and, with --jobs, the workers it forked (same command line)."""
    processes = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % entry, "rb") as handle:
                argv = handle.read().split(b"\0")
            with open("/proc/%s/stat" % entry, "rb") as handle:
                fields = handle.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] in (b"Z", b"X") or not argv or os.path.basename(argv[0]) != b"pg_dump":
            continue
        if any(path_prefix.encode() in part for part in argv):
            processes[int(entry)] = int(fields[1])
    return processes
