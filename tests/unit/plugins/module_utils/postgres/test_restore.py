"""postgres/restore.py: what is checked before a restore touches the target, the refusal of
clean with parallel jobs, and a target that already matches the manifest left alone.

The behaviour against a real server is covered by tests/integration/test_pg_backup.py.
"""

from __future__ import annotations

import pytest
from pg_unit_support import fake_connections, fake_tools, make_backup, params

from ansible_collections.ceres.rollout.plugins.module_utils.postgres import errors as pg_errors
from ansible_collections.ceres.rollout.plugins.module_utils.postgres import restore as pg_restore_engine
from ansible_collections.ceres.rollout.plugins.module_utils.postgres.catalog import TableStats, content_hash_from_sums
from ansible_collections.ceres.rollout.plugins.module_utils.postgres.errors import InsufficientPrivilege, InvalidRequest


def restore_request(path, **options):
    return pg_restore_engine.RestoreRequest(params(database="target"), path, **options)


def fake_restore_server(monkeypatch, target_exists, tables, can_create_databases=True):
    answers = {
        "pg_database WHERE datname": [(1,)] if target_exists else [],
        "rolcreatedb": [("restorer", can_create_databases)],
        "FROM pg_catalog.pg_class": [
            (16384 + index, "public", "t%d" % index, "public.t%d" % index) for index in range(tables)
        ],
    }
    fake_connections(monkeypatch, answers)


@pytest.mark.parametrize(
    "tables, message",
    [
        (
            1,
            'database "target" already exists and has 1 table; set clean=true to replace its objects, or restore into'
            " a new database",
        ),
        (3, 'database "target" already exists and has 3 tables; set clean=true'),
    ],
)
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
    with pytest.raises(
        InsufficientPrivilege, match='database "target" does not exist and the login role "restorer" may not create it'
    ):
        pg_restore_engine.check_restore(restore_request(path))


# --- options refused before anything is read or changed -------------------------------------


def test_clean_with_parallel_jobs_is_refused_naming_both_options(monkeypatch):
    def no_connection(*args, **kwargs):
        raise AssertionError("nothing may be touched")

    fake_connections(monkeypatch, {})
    monkeypatch.setattr(pg_restore_engine, "connect_maintenance", no_connection)
    with pytest.raises(
        InvalidRequest,
        match=r"clean=true with jobs=2 is refused: pg_restore runs parallel jobs outside"
        r" a single transaction.*use jobs=1.*nothing was changed",
    ):
        restore_request("/nonexistent.dump", clean=True, jobs=2)
    assert restore_request("/nonexistent.dump", clean=True, jobs=1).jobs == 1
    assert restore_request("/nonexistent.dump", clean=False, jobs=4).jobs == 4


@pytest.mark.parametrize("jobs", [0, -1])
def test_jobs_below_one_are_refused(jobs):
    with pytest.raises(InvalidRequest, match="^jobs must be 1 or more$"):
        restore_request("/nonexistent.dump", jobs=jobs)


# --- a target that already matches the manifest is left alone -------------------------------


HASHED_TABLES = {
    "public.customers": TableStats(rows=3, content_hash=content_hash_from_sums(3, 4)),
    "public.orders": TableStats(rows=5, content_hash=content_hash_from_sums(1, 2)),
}


def fake_target(monkeypatch, tables):
    """An existing target holding tables {name in public: (rows, sum0, sum1)}."""
    answers = {
        "pg_database WHERE datname": [(1,)],
        "rolcreatedb": [("restorer", True)],
        "FROM pg_catalog.pg_class": [
            (16384 + index, "public", name, "public.%s" % name) for index, name in enumerate(sorted(tables))
        ],
    }
    for name, row in tables.items():
        answers['FROM ONLY "public"."%s"' % name] = [row]
    fake_connections(monkeypatch, answers)


def no_restore(*args, **kwargs):
    raise AssertionError("a target that matches the manifest was restored again")


@pytest.mark.parametrize("clean", [False, True])
def test_a_target_that_matches_the_manifest_is_not_restored_again(tmp_path, monkeypatch, clean):
    path, _manifest = make_backup(tmp_path, tables=HASHED_TABLES)
    fake_tools(tmp_path, monkeypatch)  # no client tool at all: none is needed
    fake_target(monkeypatch, {"orders": (5, 1, 2), "customers": (3, 3, 4)})
    monkeypatch.setattr(pg_restore_engine, "restore_into", no_restore)

    checked = pg_restore_engine.check_mode_restore_result(restore_request(path, create=False, clean=clean))
    result = pg_restore_engine.run_restore(restore_request(path, create=False, clean=clean)).module_result()

    for outcome in (checked, result):
        assert outcome["changed"] is False and outcome["created"] is False
        assert outcome["tables"] == {"public.customers": 3, "public.orders": 5}
        assert outcome["database"] == "target"


@pytest.mark.parametrize(
    "target, why",
    [
        ({"orders": (5, 1, 2), "customers": (3, 3, 5)}, "a table's content differs"),
        ({"orders": (4, 1, 2), "customers": (3, 3, 4)}, "a row count differs"),
        ({"orders": (5, 1, 2)}, "a table is missing"),
        ({"orders": (5, 1, 2), "customers": (3, 3, 4), "extra": (1, 0, 0)}, "the target has another table"),
    ],
)
def test_a_target_that_differs_from_the_manifest_is_restored_or_refused(tmp_path, monkeypatch, target, why):
    path, _manifest = make_backup(tmp_path, tables=HASHED_TABLES)
    fake_tools(tmp_path, monkeypatch, pg_restore="15.18")
    fake_target(monkeypatch, target)

    assert pg_restore_engine.check_restore(restore_request(path, create=False, clean=True)).up_to_date is False, why
    with pytest.raises(
        pg_errors.RestoreFailed, match='database "target" already exists and has %d table' % len(target)
    ):
        pg_restore_engine.check_restore(restore_request(path, create=False))
    assert (
        pg_restore_engine.check_mode_restore_result(restore_request(path, create=False, clean=True))["changed"] is True
    )


def test_equal_row_counts_without_content_hashes_never_count_as_a_match(tmp_path, monkeypatch):
    unhashed = {key: TableStats(rows=stats.rows) for key, stats in HASHED_TABLES.items()}
    path, _manifest = make_backup(tmp_path, tables=unhashed)
    fake_tools(tmp_path, monkeypatch, pg_restore="15.18")
    fake_target(monkeypatch, {"orders": (5, 1, 2), "customers": (3, 3, 4)})

    assert pg_restore_engine.check_restore(restore_request(path, create=False, clean=True)).up_to_date is False
    with pytest.raises(pg_errors.RestoreFailed, match='database "target" already exists and has 2 tables'):
        pg_restore_engine.check_restore(restore_request(path, create=False))
