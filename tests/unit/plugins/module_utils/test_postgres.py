"""Unit tests of plugins/module_utils/postgres.py that need no PostgreSQL server.

The behaviour against a real server (round trips, failures of pg_dump, the modules through
ansible) is covered by tests/integration/test_pg_backup.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import stat
import subprocess
import sys
import textwrap

import pytest

from ansible_collections.ceres.rollout.plugins.module_utils import postgres
from ansible_collections.ceres.rollout.plugins.module_utils.postgres import (
    ClientToolError,
    ConnectionParams,
    DestinationError,
    DumpFailed,
    FileDigest,
    ManifestError,
    ServerInfo,
    StagedOutput,
    TableRef,
    TableStats,
)

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
    module_params = dict(login_host="h", login_port=1, login_user="u", login_password="p",
                         login_unix_socket=None, ssl_mode="require")
    connection = ConnectionParams.from_module_params(module_params, "db")
    assert connection.psycopg2_arguments() == dict(dbname="db", host="h", port=1, user="u", password="p", sslmode="require")
    assert set(postgres.LOGIN_ARGUMENT_SPEC) == {"login_host", "login_port", "login_user", "login_password",
                                                 "login_unix_socket", "ssl_mode"}
    assert postgres.LOGIN_ARGUMENT_SPEC["login_password"]["no_log"] is True


@pytest.mark.parametrize("name, expected", [
    ("ceres_db", "dbname='ceres_db'"),
    ("host=evil port=1", "dbname='host=evil port=1'"),
    ("it's", "dbname='it\\'s'"),
    ("back\\slash", "dbname='back\\\\slash'"),
])
def test_database_names_are_passed_as_a_quoted_conninfo(name, expected):
    assert postgres.conninfo_for_database(name) == expected


def test_no_command_line_contains_the_password():
    connection = params()
    command_lines = [
        postgres.pg_dump_argv("/bin/pg_dump", "/b/.x.partial-1", "directory", "0000-1", connection.database, jobs=2, compress="5"),
        postgres.pg_restore_argv("/bin/pg_restore", "/b/x", "custom", "scratch", jobs=2, clean=True, no_owner=True),
        postgres.pg_restore_list_argv("/bin/pg_restore", "/b/x", "tar"),
        postgres.psql_restore_argv("/bin/psql", "scratch", "/b/x.sql"),
    ]
    for argv in command_lines:
        assert all(PASSWORD not in argument for argument in argv), argv
        assert all("password" not in argument.lower() or argument == "--no-password" for argument in argv), argv


def test_pg_dump_argv_shares_the_snapshot_and_only_parallelises_directories():
    directory = postgres.pg_dump_argv("pg_dump", "/t", "directory", "00000003-1B-1", "db", jobs=3)
    custom = postgres.pg_dump_argv("pg_dump", "/t", "custom", "00000003-1B-1", "db", jobs=3)
    assert "--snapshot=00000003-1B-1" in directory
    assert "--jobs=3" in directory
    assert not any(argument.startswith("--jobs") for argument in custom)
    assert "--format=custom" in custom and "--file=/t" in custom and "--no-password" in custom
    assert not any(argument.startswith("--compress") for argument in custom)


def test_pg_restore_argv_is_atomic_with_one_job_and_parallel_otherwise():
    single = postgres.pg_restore_argv("pg_restore", "/b", "custom", "db")
    parallel = postgres.pg_restore_argv("pg_restore", "/b", "directory", "db", jobs=4, clean=True)
    tar = postgres.pg_restore_argv("pg_restore", "/b", "tar", "db", jobs=4)
    assert "--exit-on-error" in single and "--single-transaction" in single
    assert "--jobs=4" in parallel and "--single-transaction" not in parallel
    assert "--clean" in parallel and "--if-exists" in parallel
    assert "--single-transaction" in tar and not any(argument.startswith("--jobs") for argument in tar)
    assert single[-1] == "/b"


def test_redact_replaces_every_secret():
    assert postgres.redact("a %s b %s" % (PASSWORD, PASSWORD), [PASSWORD]) == "a ******** b ********"
    assert postgres.redact("nothing", [None, ""]) == "nothing"


# --- client tools -------------------------------------------------------------------------


def test_major_from_path_reads_packaged_layouts():
    assert postgres.major_from_path("/usr/lib/postgresql/15/bin/pg_dump") == 15
    assert postgres.major_from_path("/usr/pgsql-16/bin/pg_restore") == 16
    assert postgres.major_from_path("/usr/bin/pg_dump") is None
    assert postgres.parse_tool_major("pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)") == 15
    assert postgres.parse_tool_major("pg_dump (PostgreSQL) 17beta1") == 17
    assert postgres.parse_tool_major("garbage") is None


def test_find_client_tool_refuses_a_pg_dump_older_than_the_server(tmp_path, monkeypatch):
    old_dump = write_script(tmp_path / "pg_dump", 'print("pg_dump (PostgreSQL) 14.9")')
    monkeypatch.setattr(postgres, "tool_candidates", lambda name, major: [old_dump])

    with pytest.raises(ClientToolError, match=r"pg_dump 15 or newer.*\(14\)"):
        postgres.find_client_tool("pg_dump", 15, must_not_be_older=True)
    assert postgres.find_client_tool("pg_dump", 14, must_not_be_older=True).major == 14
    assert postgres.find_client_tool("pg_dump", 15).version == "pg_dump (PostgreSQL) 14.9"


def test_find_client_tool_names_where_it_looked(monkeypatch):
    monkeypatch.setattr(postgres, "tool_candidates", lambda name, major: ["/nonexistent/pg_restore"])
    with pytest.raises(ClientToolError, match=r"pg_restore was not found.*PostgreSQL 15 client tools"):
        postgres.find_client_tool("pg_restore", 15)


# --- files: staging, checksums, destination checks ---------------------------------------


def test_staged_output_removes_the_temporary_output_on_failure_and_leaves_dest_untouched(tmp_path):
    dest = tmp_path / "ceres.dump"
    dest.write_bytes(b"old backup")
    with pytest.raises(RuntimeError):
        with StagedOutput(str(dest)) as staged:
            assert os.path.dirname(staged.temp_path) == str(tmp_path)
            with open(staged.temp_path, "wb") as handle:
                handle.write(b"half a dump")
            raise RuntimeError("pg_dump died")
    assert dest.read_bytes() == b"old backup"
    assert sorted(os.listdir(tmp_path)) == ["ceres.dump"]


def test_staged_output_commit_replaces_a_file_and_its_old_manifest(tmp_path):
    dest = tmp_path / "ceres.dump"
    dest.write_bytes(b"old")
    (tmp_path / "ceres.dump.manifest.json").write_text("{}")
    with StagedOutput(str(dest)) as staged:
        with open(staged.temp_path, "wb") as handle:
            handle.write(b"new")
        staged.commit()
    assert dest.read_bytes() == b"new"
    assert sorted(os.listdir(tmp_path)) == ["ceres.dump"]


def test_staged_output_commit_replaces_a_directory(tmp_path):
    dest = tmp_path / "ceres.d"
    dest.mkdir()
    (dest / "old.dat.gz").write_bytes(b"old")
    with StagedOutput(str(dest)) as staged:
        os.mkdir(staged.temp_path)
        with open(os.path.join(staged.temp_path, "toc.dat"), "wb") as handle:
            handle.write(b"toc")
        staged.commit()
    assert sorted(os.listdir(dest)) == ["toc.dat"]
    assert sorted(os.listdir(tmp_path)) == ["ceres.d"]


def test_check_destination_refuses_an_existing_dest_without_force(tmp_path):
    dest = tmp_path / "ceres.dump"
    dest.write_bytes(b"precious")
    with pytest.raises(DestinationError, match="already exists; set force=true"):
        postgres.check_destination(str(dest), force=False)
    postgres.check_destination(str(dest), force=True)
    assert dest.read_bytes() == b"precious"


def test_check_destination_refuses_a_leftover_manifest_without_force(tmp_path):
    (tmp_path / "ceres.dump.manifest.json").write_text("{}")
    with pytest.raises(DestinationError, match="manifest.json already exists"):
        postgres.check_destination(str(tmp_path / "ceres.dump"), force=False)


def test_check_destination_needs_an_existing_writable_directory(tmp_path, monkeypatch):
    with pytest.raises(DestinationError, match="does not exist"):
        postgres.check_destination(str(tmp_path / "missing" / "ceres.dump"), force=False)

    def read_only(*args, **kwargs):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(postgres.tempfile, "mkstemp", read_only)
    with pytest.raises(DestinationError, match="not writable: Read-only file system"):
        postgres.check_destination(str(tmp_path / "ceres.dump"), force=False)


def test_directory_sha256_is_what_sha256sum_prints_for_the_sorted_files(tmp_path):
    backup = tmp_path / "ceres.d"
    backup.mkdir()
    for name, content in (("toc.dat", b"toc"), ("3001.dat.gz", b"rows"), ("3000.dat.gz", b"more rows")):
        (backup / name).write_bytes(content)
    files = postgres.digest_backup(str(backup), "directory")
    listing = subprocess.run(["sha256sum"] + sorted(files), cwd=backup, check=True, capture_output=True).stdout

    assert postgres.backup_sha256(files, "directory") == hashlib.sha256(listing).hexdigest()
    assert files["toc.dat"] == FileDigest(size_bytes=3, sha256=hashlib.sha256(b"toc").hexdigest())


def test_single_file_digest_is_named_after_the_final_file(tmp_path):
    staged = tmp_path / ".ceres.dump.partial-1234"
    staged.write_bytes(b"dump")
    files = postgres.digest_backup(str(staged), "custom", sync=True, single_file_name="ceres.dump")
    assert list(files) == ["ceres.dump"]
    assert postgres.backup_sha256(files, "custom") == hashlib.sha256(b"dump").hexdigest()


def test_write_json_atomically_leaves_no_temporary_file_when_writing_fails(tmp_path, monkeypatch):
    target = tmp_path / "x.manifest.json"

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(postgres.json, "dump", disk_full)
    with pytest.raises(OSError):
        postgres.write_json_atomically(str(target), {"a": 1})
    assert os.listdir(tmp_path) == []


# --- manifest -----------------------------------------------------------------------------

SERVER = ServerInfo(database="ceres_db", version="15.18", version_num=150018, encoding="UTF8",
                    lc_collate="C.UTF-8", lc_ctype="C.UTF-8")


class FakeTool:
    version = "pg_dump (PostgreSQL) 15.18"


def make_backup(tmp_path, backup_format="custom"):
    """A backup on disk with a manifest as run_backup writes it."""
    if backup_format == "directory":
        path = tmp_path / "ceres.d"
        path.mkdir()
        (path / "toc.dat").write_bytes(b"table of contents")
        (path / "3000.dat.gz").write_bytes(b"\x1f\x8b compressed rows")
    else:
        path = tmp_path / "ceres.dump"
        path.write_bytes(b"PGDMP" + bytes(range(256)) * 40)
    files = postgres.digest_backup(str(path), backup_format)
    tables = {"public.orders": TableStats(rows=120000, content_hash="0f" * 16), "billing.Ünïcode": TableStats(rows=3)}
    manifest = postgres.build_manifest(SERVER, FakeTool(), backup_format, None, "00000003-1B-1", files, tables,
                                       "list", "2026-01-01T00:00:00.000Z", "2026-01-01T00:00:01.000Z")
    postgres.write_json_atomically(postgres.manifest_path_for(str(path)), manifest)
    return str(path), manifest


def test_manifest_is_written_next_to_the_backup_and_reads_back(tmp_path):
    path, manifest = make_backup(tmp_path)
    manifest_path = path + ".manifest.json"

    assert postgres.manifest_path_for(path) == manifest_path
    assert postgres.manifest_path_for(path + "/") == manifest_path
    assert stat.S_IMODE(os.stat(manifest_path).st_mode) == 0o600
    loaded = postgres.load_manifest(manifest_path)
    assert loaded == manifest
    assert loaded["tables"]["public.orders"] == {"rows": 120000, "content_hash": "0f" * 16}
    assert loaded["tables"]["billing.Ünïcode"] == {"rows": 3, "content_hash": None}
    assert loaded["files"] == {"ceres.dump": {"size_bytes": os.path.getsize(path), "sha256": loaded["sha256"]}}
    for key in ("database", "server_version", "pg_dump_version", "format", "snapshot", "started_at", "finished_at",
                "content_hash_algorithm", "size_bytes"):
        assert loaded[key], key
    postgres.verify_backup_integrity(path, loaded)


@pytest.mark.parametrize("content, message", [
    ("not json", "cannot be read"),
    ("[1, 2]", "not a JSON object"),
    ('{"manifest_version": 1}', "lacks database, format, sha256, files, tables"),
    ('{"manifest_version": 99, "database": "d", "format": "custom", "sha256": "", "files": {}, "tables": {}}',
     "version 99"),
])
def test_load_manifest_rejects_what_it_cannot_trust(tmp_path, content, message):
    manifest_path = tmp_path / "x.manifest.json"
    manifest_path.write_text(content)
    with pytest.raises(ManifestError, match=message):
        postgres.load_manifest(str(manifest_path))


def test_a_missing_manifest_means_an_incomplete_backup(tmp_path):
    with pytest.raises(ManifestError, match="is missing; a backup without a manifest is incomplete"):
        postgres.load_manifest(str(tmp_path / "nothing.manifest.json"))


def test_a_flipped_byte_is_refused(tmp_path):
    path, manifest = make_backup(tmp_path)
    with open(path, "r+b") as handle:
        handle.seek(5000)
        byte = handle.read(1)
        handle.seek(5000)
        handle.write(bytes([byte[0] ^ 0x01]))
    problems = postgres.backup_integrity_problems(path, manifest)
    assert len(problems) == 1 and problems[0].startswith("file ceres.dump has sha256 ")
    with pytest.raises(ManifestError, match="refusing the backup"):
        postgres.verify_backup_integrity(path, manifest)


def test_a_truncated_file_is_refused(tmp_path):
    path, manifest = make_backup(tmp_path)
    with open(path, "r+b") as handle:
        handle.truncate(100)
    assert postgres.backup_integrity_problems(path, manifest) == [
        "file ceres.dump has 100 bytes, the manifest says %d" % manifest["size_bytes"]]


def test_a_renamed_backup_with_its_manifest_still_verifies(tmp_path):
    path, manifest = make_backup(tmp_path)
    os.rename(path, str(tmp_path / "renamed.dump"))
    assert postgres.backup_integrity_problems(str(tmp_path / "renamed.dump"), manifest) == []


def test_a_removed_or_added_file_in_a_directory_backup_is_refused(tmp_path):
    path, manifest = make_backup(tmp_path, "directory")
    assert postgres.backup_integrity_problems(path, manifest) == []
    os.unlink(os.path.join(path, "3000.dat.gz"))
    with open(os.path.join(path, "9999.dat.gz"), "wb") as handle:
        handle.write(b"stray")
    assert postgres.backup_integrity_problems(path, manifest) == [
        "file 3000.dat.gz is missing", "file 9999.dat.gz is not in the manifest"]


def test_a_backup_of_the_wrong_kind_is_refused(tmp_path):
    path, manifest = make_backup(tmp_path, "directory")
    assert "is a directory" in postgres.backup_integrity_problems(path, dict(manifest, format="custom"))[0]
    assert postgres.backup_integrity_problems(str(tmp_path / "gone"), manifest) == [
        "the backup %s does not exist" % (tmp_path / "gone")]


# --- table comparison (the content-hash check of verify=restore and pg_restore) -----------

EXPECTED = {
    "public.orders": {"rows": 120000, "content_hash": "aa" * 16},
    "public.customers": {"rows": 60000, "content_hash": "bb" * 16},
    "public.empty": {"rows": 0, "content_hash": "00" * 16},
}


def test_identical_tables_compare_equal():
    actual = {key: TableStats(value["rows"], value["content_hash"]) for key, value in EXPECTED.items()}
    assert postgres.compare_table_stats(EXPECTED, actual) == []


def test_injected_differences_are_each_named():
    actual = {
        "public.orders": {"rows": 119999, "content_hash": "aa" * 16},  # a row deleted
        "public.customers": {"rows": 60000, "content_hash": "cc" * 16},  # a value altered
        "public.extra": {"rows": 1, "content_hash": "dd" * 16},  # a table that was not dumped
    }  # public.empty is missing
    assert postgres.compare_table_stats(EXPECTED, actual) == [
        "table public.customers has the expected 60000 rows but different content",
        "table public.empty is missing (expected 0 rows)",
        "table public.orders has 119999 rows, expected 120000",
        "table public.extra is not in the backup's manifest",
    ]
    assert "public.extra" not in " ".join(postgres.compare_table_stats(EXPECTED, actual, allow_extra_tables=True))


def test_content_hashes_are_compared_only_when_both_sides_have_one():
    expected = {"public.orders": {"rows": 5, "content_hash": None}}
    assert postgres.compare_table_stats(expected, {"public.orders": TableStats(5, "ff" * 16)}) == []
    assert postgres.compare_table_stats(expected, {"public.orders": TableStats(6, None)}) == [
        "table public.orders has 6 rows, expected 5"]


def test_content_hash_is_the_two_sums_modulo_2_to_the_64():
    assert postgres.content_hash_from_sums(0, 0) == "0" * 32
    assert postgres.content_hash_from_sums(-1, 2 ** 64 + 5) == "f" * 16 + "%016x" % 5
    assert len(postgres.content_hash_from_sums(-(2 ** 70), 12345678901234567890123)) == 32


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
    assert postgres.tables_missing_from_toc(TOC_LISTING, tables) == ["public.orders", "public.impostor"]


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
    assert postgres.copy_targets_in_sql_dump(script) == {"public.customers", 'public."Weird Name"', "public.no_columns"}


# --- pg_dump failures: nothing at dest, no temporary output, no secret in the message -----


@pytest.mark.parametrize("exit_how, message", [
    ("sys.exit(1)", r"pg_dump exited with status 1: pg_dump: error: could not write.*No space left on device"),
    ("os.kill(os.getpid(), signal.SIGKILL)", r"pg_dump was killed by SIGKILL"),
])
def test_a_failed_dump_leaves_nothing_behind(tmp_path, exit_how, message):
    fake_pg_dump = write_script(tmp_path / "pg_dump", """
        import os, signal, sys
        output = sys.argv[1]
        with open(output, "wb") as handle:
            handle.write(b"PGDMP half a dump")
        sys.stderr.write("pg_dump: error: could not write to output file: No space left on device (password %s)\\n"
                         % os.environ["PGPASSWORD"])
        sys.stderr.flush()
        {exit_how}
    """.replace("{exit_how}", exit_how))
    backups = tmp_path / "backups"
    backups.mkdir()
    dest = backups / "ceres.dump"
    connection = params()

    with pytest.raises(DumpFailed, match=message) as raised:
        with StagedOutput(str(dest)) as staged:
            dump = postgres.DumpProcess([fake_pg_dump, staged.temp_path], connection.libpq_environment(),
                                        connection.secrets())
            dump.wait()

    assert PASSWORD not in str(raised.value)
    assert "********" in str(raised.value)
    assert "nothing was written to dest" in str(raised.value)
    assert os.listdir(backups) == []


def test_a_client_tool_failure_is_reported_without_the_password(tmp_path):
    failing = write_script(tmp_path / "pg_restore", """
        import os, sys
        data = sys.stdin.buffer.read()
        sys.stderr.write("pg_restore: error: bad input (%d bytes) for %s\\n" % (len(data), os.environ["PGPASSWORD"]))
        sys.exit(3)
    """)
    connection = params()
    with pytest.raises(postgres.RestoreFailed) as raised:
        postgres.run_client_tool([failing], connection.libpq_environment(), connection.secrets(), postgres.RestoreFailed,
                                 "pg_restore", stdin_chunks=iter([b"abc", b"de"]))
    assert str(raised.value) == "pg_restore exited with status 3: pg_restore: error: bad input (5 bytes) for ********"


def test_sigterm_raises_so_clean_up_runs():
    previous = signal.getsignal(signal.SIGTERM)
    with pytest.raises(postgres.Interrupted):
        with postgres.terminate_raises():
            os.kill(os.getpid(), signal.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) == previous


def test_module_results_report_row_counts_per_table(tmp_path):
    path, manifest = make_backup(tmp_path)
    result = postgres.BackupResult(path=path, manifest_path=path + ".manifest.json", manifest=manifest,
                                   duration_s=1.5).module_result()
    assert result["tables"] == {"public.orders": 120000, "billing.Ünïcode": 3}
    assert result["verified"] is True and result["verify"] == "list"
    assert result["sha256"] == manifest["sha256"] and result["size_bytes"] == os.path.getsize(path)
    assert json.dumps(result)
