"""postgres/verify.py: what verify=list reads in a dump (its TOC, a plain dump's COPY blocks)."""

from __future__ import annotations

import pytest

from ansible_collections.ceres.rollout.plugins.module_utils.postgres import verify as pg_verify
from ansible_collections.ceres.rollout.plugins.module_utils.postgres.catalog import TableRef

# --- what verify=list reads ----------------------------------------------------------------

TOC_LISTING = """;
; Archive created at 2026-11-26 11:30:44 UTC
;     dbname: ceres_db
;
; Selected TOC Entries:
;
216; 1259 16390 TABLE public customers postgres
3372; 0 16390 TABLE DATA public customers postgres
3374; 0 16401 TABLE DATA public Weird Name postgres
3375; 0 16412 TABLE DATA billing invoices app owner
3380; 0 0 SEQUENCE SET public customers_id_seq postgres
"""


def test_toc_table_data_entries_are_matched_by_oid_and_name():
    tables = [
        TableRef(16390, "public", "customers"),
        TableRef(16401, "public", "Weird Name"),
        TableRef(16412, "billing", "invoices"),
        TableRef(16500, "public", "orders"),  # no data entry
        TableRef(16412, "public", "impostor"),  # oid reused by another name
    ]
    assert pg_verify.tables_missing_from_toc(TOC_LISTING, tables) == ["public.orders", "public.impostor"]


def test_copy_blocks_of_a_plain_dump_are_found_and_row_text_is_not_mistaken_for_one():
    script = [
        b"SET client_encoding = 'UTF8';\n",
        b"COPY public.customers (id, name) FROM stdin;\n",
        b"1\tCOPY public.orders (id) FROM stdin;\n",
        b"COPY public.ghost (id) FROM stdin;\n",  # row text inside the block
        b"\\.\n",
        b'COPY public."Weird Name" (a, "B col") FROM stdin;\n',
        b"\\.\n",
        b"COPY public.no_columns  FROM stdin;\n",
        b"\\.\n",
    ]
    assert pg_verify.copy_targets_in_sql_dump(script) == {
        "public.customers",
        'public."Weird Name"',
        "public.no_columns",
    }


def test_names_of_a_non_utf8_dump_are_read_in_its_encoding():
    latin1_script = ['COPY "donn\u00e9es"."caf\u00e9" (id) FROM stdin;\n'.encode("latin-1"), b"\\.\n"]
    assert pg_verify.copy_targets_in_sql_dump(latin1_script, "latin-1") == {'"donn\u00e9es"."caf\u00e9"'}
    assert pg_verify.copy_targets_in_sql_dump(latin1_script) != {'"donn\u00e9es"."caf\u00e9"'}  # not as UTF-8


@pytest.mark.parametrize(
    "encoding_name, codec",
    [
        ("UTF8", "utf-8"),
        ("utf-8", "utf-8"),
        ("LATIN1", "latin-1"),
        ("latin1", "latin-1"),
        ("ISO_8859_5", "iso8859-5"),
        ("iso-8859-5", "iso8859-5"),
        ("WIN1252", "cp1252"),
        ("EUC_JP", "euc-jp"),
        ("SQL_ASCII", None),
        ("MULE_INTERNAL", None),
        ("", None),
    ],
)
def test_python_codec_of_postgresql_encoding_names(encoding_name, codec):
    assert pg_verify.python_codec(encoding_name) == codec


def test_toc_entries_without_decodable_names_are_matched_by_oid_alone():
    tables = [TableRef(16390, "public", "caf\u00e9"), TableRef(16500, "public", "orders")]
    assert pg_verify.tables_missing_from_toc(TOC_LISTING, tables, check_names=False) == ["public.orders"]
    assert pg_verify.tables_missing_from_toc(TOC_LISTING, tables) == ["public.caf\u00e9", "public.orders"]
