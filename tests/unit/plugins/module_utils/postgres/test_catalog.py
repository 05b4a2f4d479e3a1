"""postgres/catalog.py: row counts and content hashes of tables, and their comparison."""

from __future__ import annotations

from ansible_collections.ceres.rollout.plugins.module_utils.postgres import catalog as pg_catalog
from ansible_collections.ceres.rollout.plugins.module_utils.postgres.catalog import TableStats

# --- table comparison (the content-hash check of verify=restore and pg_restore) -----------

EXPECTED = {
    "public.orders": {"rows": 120000, "content_hash": "aa" * 16},
    "public.customers": {"rows": 60000, "content_hash": "bb" * 16},
    "public.empty": {"rows": 0, "content_hash": "00" * 16},
}


def test_identical_tables_compare_equal():
    actual = {key: TableStats(value["rows"], value["content_hash"]) for key, value in EXPECTED.items()}
    assert pg_catalog.compare_table_stats(EXPECTED, actual) == []


def test_injected_differences_are_each_named():
    actual = {
        "public.orders": {"rows": 119999, "content_hash": "aa" * 16},  # a row deleted
        "public.customers": {"rows": 60000, "content_hash": "cc" * 16},  # a value altered
        "public.extra": {"rows": 1, "content_hash": "dd" * 16},  # a table that was not dumped
    }  # public.empty is missing
    assert pg_catalog.compare_table_stats(EXPECTED, actual) == [
        "table public.customers has the expected 60000 rows but different content",
        "table public.empty is missing (expected 0 rows)",
        "table public.orders has 119999 rows, expected 120000",
        "table public.extra is not in the backup's manifest",
    ]
    assert "public.extra" not in " ".join(pg_catalog.compare_table_stats(EXPECTED, actual, allow_extra_tables=True))


def test_content_hashes_are_compared_only_when_both_sides_have_one():
    expected = {"public.orders": {"rows": 5, "content_hash": None}}
    assert pg_catalog.compare_table_stats(expected, {"public.orders": TableStats(5, "ff" * 16)}) == []
    assert pg_catalog.compare_table_stats(expected, {"public.orders": TableStats(6, None)}) == [
        "table public.orders has 6 rows, expected 5"
    ]


def test_content_hash_is_the_two_sums_modulo_2_to_the_64():
    assert pg_catalog.content_hash_from_sums(0, 0) == "0" * 32
    assert pg_catalog.content_hash_from_sums(-1, 2**64 + 5) == "f" * 16 + "%016x" % 5
    assert len(pg_catalog.content_hash_from_sums(-(2**70), 12345678901234567890123)) == 32
