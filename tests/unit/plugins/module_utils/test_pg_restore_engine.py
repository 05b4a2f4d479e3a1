"""pg_restore_engine.py: what is checked before a restore touches the target.

The behaviour against a real server is covered by tests/integration/test_pg_backup.py.
"""

from __future__ import annotations

import pytest

from ansible_collections.ceres.rollout.plugins.module_utils import pg_errors, pg_restore_engine
from ansible_collections.ceres.rollout.plugins.module_utils.pg_errors import InsufficientPrivilege, InvalidRequest
from pg_unit_support import fake_connections, fake_tools, make_backup, params


def restore_request(path, **options):
    return pg_restore_engine.RestoreRequest(params(database="target"), path, **options)


def fake_restore_server(monkeypatch, target_exists, tables, can_create_databases=True):
    answers = {
        "pg_database WHERE datname": [(1,)] if target_exists else [],
        "rolcreatedb": [("restorer", can_create_databases)],
        "FROM pg_catalog.pg_class": [(16384 + index, "public", "t%d" % index, "public.t%d" % index)
                                     for index in range(tables)],
    }
    fake_connections(monkeypatch, answers)


@pytest.mark.parametrize("tables, message", [
    (1, 'database "target" already exists and has 1 table; set clean=true to replace its objects, or restore into'
        " a new database"),
    (3, 'database "target" already exists and has 3 tables; set clean=true'),
])
def test_restore_into_an_existing_database_with_tables_needs_clean(tmp_path, monkeypatch, tables, message):
    path, _manifest = make_backup(tmp_path)
    fake_tools(tmp_path, monkeypatch, pg_restore="15.18")
    fake_restore_server(monkeypatch, target_exists=True, tables=tables)
    with pytest.raises(pg_errors.RestoreFailed, match=message):
        pg_restore_engine.check_restore(restore_request(path))
    with pytest.raises(pg_errors.RestoreFailed, match=message):
        pg_restore_engine.check_mode_restore_result(restore_request(path))
    assert pg_restore_engine.check_restore(restore_request(path, clean=True)).target_exists is True


def test_restore_into_an_existing_empty_database_or_a_new_one(tmp_path, monkeypatch):
    path, _manifest = make_backup(tmp_path)
    fake_tools(tmp_path, monkeypatch, pg_restore="15.18")
    fake_restore_server(monkeypatch, target_exists=True, tables=0)
    assert pg_restore_engine.check_restore(restore_request(path, create=False)).target_exists is True
    fake_restore_server(monkeypatch, target_exists=False, tables=0)
    assert pg_restore_engine.check_restore(restore_request(path)).target_exists is False
    fake_restore_server(monkeypatch, target_exists=False, tables=0, can_create_databases=False)
    with pytest.raises(InsufficientPrivilege, match='database "target" does not exist and the login role "restorer"'
                                                    " may not create it"):
        pg_restore_engine.check_restore(restore_request(path))


@pytest.mark.parametrize("jobs", [0, -1])
def test_jobs_below_one_are_refused(jobs):
    with pytest.raises(InvalidRequest, match="^jobs must be 1 or more$"):
        restore_request("/nonexistent.dump", jobs=jobs)
