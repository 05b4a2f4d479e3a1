"""Helpers the PostgreSQL integration tests share: admin connections to the sandbox server
(libpq environment from .sandbox/env), statements, databases, manifests and table stats."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import psycopg2

REPOSITORY = Path(__file__).resolve().parents[2]
# The repository is the collection; .collections/ansible_collections/ceres/rollout links to it.
if str(REPOSITORY / ".collections") not in sys.path:
    sys.path.insert(0, str(REPOSITORY / ".collections"))

from ansible_collections.ceres.rollout.plugins.module_utils import postgres  # noqa: E402


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
    stats = postgres.read_database_table_stats(postgres.ConnectionParams(database=database), with_content_hash,
                                               "ceres integration test")
    return {key: value.to_manifest() for key, value in stats.items()}


def load_manifest(path):
    with open(str(path) + ".manifest.json", encoding="utf-8") as handle:
        return json.load(handle)
