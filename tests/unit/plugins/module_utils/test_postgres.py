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
import time

import pytest

from ansible_collections.ceres.rollout.plugins.module_utils import postgres
from ansible_collections.ceres.rollout.plugins.module_utils.postgres import (
    ClientToolError,
    ConnectionParams,
    DestinationError,
    DumpFailed,
    FileDigest,
    InsufficientPrivilege,
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


def tree(directory):
    """{relative path: bytes, or None for a directory} of everything under directory."""
    listing = {}
    for root, dirs, files in os.walk(directory):
        for name in dirs:
            listing[os.path.relpath(os.path.join(root, name), directory) + "/"] = None
        for name in files:
            path = os.path.join(root, name)
            listing[os.path.relpath(path, directory)] = open(path, "rb").read()
    return listing


FOREIGN_DIRECTORY = "is an existing directory that is not a previous directory-format backup; give the backup's own path"


@pytest.mark.parametrize("backup_format", ["custom", "directory", "tar", "plain"])
@pytest.mark.parametrize("force", [True, False])
def test_check_destination_never_accepts_a_directory_that_is_not_a_previous_backup(tmp_path, backup_format, force):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "other.dump").write_text("precious")
    before = tree(tmp_path)
    with pytest.raises(DestinationError, match="dest %s %s" % (victim, FOREIGN_DIRECTORY)):
        postgres.check_destination(str(victim) + "/", force=force, backup_format=backup_format)
    assert tree(tmp_path) == before


@pytest.mark.parametrize("setup, reason", [
    ("toc only", "it has no manifest"),
    ("manifest only", "it holds no toc.dat"),
    ("unlisted file", "it also holds notes.txt, which its manifest does not list"),
    ("unlisted directory", "it also holds keep/, which its manifest does not list"),
    ("broken manifest", "cannot be read"),
])
def test_a_directory_backup_is_replaced_only_when_it_is_one_of_ours(tmp_path, setup, reason):
    path, manifest = make_backup(tmp_path, "directory")
    postgres.check_destination(path, force=True, backup_format="directory")
    if setup == "toc only":
        os.unlink(path + ".manifest.json")
    elif setup == "manifest only":
        os.unlink(os.path.join(path, "toc.dat"))
    elif setup == "unlisted file":
        open(os.path.join(path, "notes.txt"), "w").write("mine")
    elif setup == "unlisted directory":
        os.mkdir(os.path.join(path, "keep"))
        open(os.path.join(path, "keep", "x"), "w").write("mine")
    else:
        open(path + ".manifest.json", "w").write("{")
    with pytest.raises(DestinationError, match=FOREIGN_DIRECTORY) as raised:
        postgres.check_destination(path, force=True, backup_format="directory")
    assert reason in str(raised.value)


def test_a_backup_of_one_kind_never_replaces_one_of_another(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "f").mkdir()
    directory_backup, _manifest = make_backup(tmp_path / "d", "directory")
    file_backup, _manifest = make_backup(tmp_path / "f", "custom")
    before = tree(tmp_path)
    for backup_format in ("custom", "tar", "plain"):
        with pytest.raises(DestinationError, match="is a previous directory-format backup; a %s-format backup cannot"
                                                   " replace it" % backup_format):
            postgres.check_destination(directory_backup, force=True, backup_format=backup_format)
    with pytest.raises(DestinationError, match="is an existing file; a directory-format backup cannot replace it"):
        postgres.check_destination(file_backup, force=True, backup_format="directory")
    postgres.check_destination(file_backup, force=True, backup_format="tar")
    postgres.check_destination(directory_backup, force=True, backup_format="directory")
    assert tree(tmp_path) == before


def test_force_replaces_neither_a_symlink_nor_a_manifest_path_that_is_no_file(tmp_path):
    target = tmp_path / "elsewhere.dump"
    target.write_bytes(b"kept")
    os.symlink(str(target), str(tmp_path / "link.dump"))
    with pytest.raises(DestinationError, match="is a symbolic link"):
        postgres.check_destination(str(tmp_path / "link.dump"), force=True)
    (tmp_path / "ceres.dump.manifest.json").mkdir()
    with pytest.raises(DestinationError, match="manifest path of dest, .*, exists and is not a regular file"):
        postgres.check_destination(str(tmp_path / "ceres.dump"), force=True)


def stage(staged, backup_format, content):
    if backup_format == "directory":
        os.mkdir(staged.temp_path)
        with open(os.path.join(staged.temp_path, "toc.dat"), "wb") as handle:
            handle.write(content)
    else:
        with open(staged.temp_path, "wb") as handle:
            handle.write(content)


@pytest.mark.parametrize("backup_format", ["custom", "directory"])
def test_commit_moves_the_new_backup_and_then_its_manifest_into_place(tmp_path, backup_format):
    path, _old_manifest = make_backup(tmp_path, backup_format)
    with StagedOutput(path) as staged:
        stage(staged, backup_format, b"new")
        staged.stage_manifest({"new": True})
        assert json.load(open(path + ".manifest.json"))["database"] == "ceres_db", "the old manifest was touched early"
        staged.commit()
    assert json.load(open(path + ".manifest.json")) == {"new": True}
    assert stat.S_IMODE(os.stat(path + ".manifest.json").st_mode) == 0o600
    if backup_format == "directory":
        assert tree(path) == {"toc.dat": b"new"}
    else:
        assert open(path, "rb").read() == b"new"
    assert sorted(os.listdir(tmp_path)) == sorted([os.path.basename(path), os.path.basename(path) + ".manifest.json"])


@pytest.mark.parametrize("backup_format", ["custom", "directory"])
def test_a_manifest_that_cannot_be_written_leaves_the_old_backup_and_no_temporary_file(
        tmp_path, monkeypatch, backup_format):
    path, _manifest = make_backup(tmp_path, backup_format)
    before = tree(tmp_path)

    def disk_full(document, handle, **options):
        handle.write("{\"half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(postgres.json, "dump", disk_full)
    with pytest.raises(OSError):
        with StagedOutput(path) as staged:
            stage(staged, backup_format, b"new")
            staged.stage_manifest({"new": True})
            staged.commit()
    assert tree(tmp_path) == before


@pytest.mark.parametrize("backup_format", ["custom", "directory"])
@pytest.mark.parametrize("failing_rename", [1, 2, 3, 4])
def test_a_failed_rename_while_committing_puts_the_old_backup_back(tmp_path, monkeypatch, backup_format, failing_rename):
    """The renames: old manifest aside, old backup aside, new backup in, new manifest in."""
    path, _manifest = make_backup(tmp_path, backup_format)
    before = tree(tmp_path)
    real_rename = os.rename
    calls = []

    def rename(source, target):
        calls.append((source, target))
        if len(calls) == failing_rename:
            raise OSError(5, "Input/output error")
        real_rename(source, target)

    monkeypatch.setattr(postgres.os, "rename", rename)
    with pytest.raises(DestinationError, match="could not move the new backup to .*: Input/output error; the previous"
                                               " backup was left as it was"):
        with StagedOutput(path) as staged:
            stage(staged, backup_format, b"new")
            staged.stage_manifest({"new": True})
            staged.commit()
    monkeypatch.setattr(postgres.os, "rename", real_rename)
    assert tree(tmp_path) == before


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


def test_names_of_a_non_utf8_dump_are_read_in_its_encoding():
    latin1_script = ['COPY "donn\u00e9es"."caf\u00e9" (id) FROM stdin;\n'.encode("latin-1"), b"\\.\n"]
    assert postgres.copy_targets_in_sql_dump(latin1_script, "latin-1") == {'"donn\u00e9es"."caf\u00e9"'}
    assert postgres.copy_targets_in_sql_dump(latin1_script) != {'"donn\u00e9es"."caf\u00e9"'}  # not as UTF-8


@pytest.mark.parametrize("encoding_name, codec", [
    ("UTF8", "utf-8"), ("utf-8", "utf-8"), ("LATIN1", "latin-1"), ("latin1", "latin-1"), ("ISO_8859_5", "iso8859-5"),
    ("iso-8859-5", "iso8859-5"), ("WIN1252", "cp1252"), ("EUC_JP", "euc-jp"),
    ("SQL_ASCII", None), ("MULE_INTERNAL", None), ("", None),
])
def test_python_codec_of_postgresql_encoding_names(encoding_name, codec):
    assert postgres.python_codec(encoding_name) == codec


def test_toc_entries_without_decodable_names_are_matched_by_oid_alone():
    tables = [TableRef(16390, "public", "caf\u00e9"), TableRef(16500, "public", "orders")]
    assert postgres.tables_missing_from_toc(TOC_LISTING, tables, check_names=False) == ["public.orders"]
    assert postgres.tables_missing_from_toc(TOC_LISTING, tables) == ["public.caf\u00e9", "public.orders"]


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


# --- process groups: the workers of a client tool never outlive it ------------------------


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
        time.sleep(120)
        os._exit(0)
    with open(pid_file + ".tmp", "w") as handle:
        handle.write(str(worker))
    os.rename(pid_file + ".tmp", pid_file)
    {leader}
"""


def worker_pid(pid_file):
    assert wait_for(lambda: os.path.exists(pid_file)), "the fake tool did not fork"
    return int(open(pid_file).read())


@pytest.mark.parametrize("leader", ["os.kill(os.getpid(), signal.SIGKILL)", "sys.exit(1)"])
def test_the_workers_of_a_failed_pg_dump_are_stopped_with_it(tmp_path, leader):
    fake_pg_dump = write_script(tmp_path / "pg_dump", FORKING_TOOL.replace("{leader}", leader))
    pid_file = str(tmp_path / "worker.pid")
    connection = params()
    dump = postgres.DumpProcess([fake_pg_dump, pid_file], connection.libpq_environment(), connection.secrets())
    worker = worker_pid(pid_file)
    try:
        with pytest.raises(DumpFailed):
            dump.wait()
        assert process_gone(worker), "the worker outlived its failed leader"
    finally:
        kill_if_running([worker])


def test_stopping_pg_dump_stops_its_workers_and_kills_what_ignores_sigterm(tmp_path, monkeypatch):
    monkeypatch.setattr(postgres, "STOP_GRACE_SECONDS", 0.5)
    fake_pg_dump = write_script(tmp_path / "pg_dump", FORKING_TOOL.replace("{leader}", "time.sleep(120)"))
    pid_file = str(tmp_path / "worker.pid")
    connection = params()
    dump = postgres.DumpProcess([fake_pg_dump, pid_file, "stubborn"], connection.libpq_environment(),
                                connection.secrets())
    worker = worker_pid(pid_file)
    try:
        assert dump.failure_if_exited() is None
        started = time.monotonic()
        dump.stop()
        assert time.monotonic() - started < 5
        assert dump.process.returncode == -signal.SIGTERM
        assert process_gone(worker), "a worker ignoring SIGTERM was not killed"
    finally:
        kill_if_running([dump.process.pid, worker])


def test_an_interrupted_client_tool_is_stopped_with_its_workers(tmp_path):
    fake_pg_restore = write_script(tmp_path / "pg_restore",
                                   FORKING_TOOL.replace("{leader}", "sys.stdin.buffer.read(); time.sleep(120)"))
    pid_file = str(tmp_path / "worker.pid")
    workers = []

    def chunks():
        workers.append(worker_pid(pid_file))
        yield b"first chunk"
        raise KeyboardInterrupt()  # Ctrl-C while feeding the tool

    connection = params()
    try:
        with pytest.raises(KeyboardInterrupt):
            postgres.run_client_tool([fake_pg_restore, pid_file], connection.libpq_environment(), connection.secrets(),
                                     postgres.RestoreFailed, "pg_restore", stdin_chunks=chunks())
        assert workers and process_gone(workers[0]), "the tool's worker outlived the interruption"
    finally:
        kill_if_running(workers)


def test_the_workers_of_a_failed_client_tool_are_stopped_with_it(tmp_path):
    fake_pg_restore = write_script(tmp_path / "pg_restore", FORKING_TOOL.replace("{leader}", "sys.exit(1)"))
    pid_file = str(tmp_path / "worker.pid")
    try:
        with pytest.raises(postgres.VerificationFailed, match="pg_restore exited with status 1"):
            postgres.run_client_tool([fake_pg_restore, pid_file], dict(os.environ), [], postgres.VerificationFailed,
                                     "pg_restore")
        assert process_gone(worker_pid(pid_file)), "the worker outlived its failed leader"
    finally:
        if os.path.exists(pid_file):
            kill_if_running([worker_pid(pid_file)])


def test_client_tools_run_in_a_process_group_of_their_own(tmp_path):
    tool = write_script(tmp_path / "psql", "import os\nprint(os.getpgid(0), os.getsid(0))\n")
    output = postgres.run_client_tool([tool], dict(os.environ), [], postgres.RestoreFailed, "psql")
    group, session = (int(value) for value in output.split())
    assert group != os.getpgid(0) and session != os.getsid(0)


# --- check mode checks what the real run needs ------------------------------------------------


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

    def close(self):
        pass


def fake_server(monkeypatch, can_create_databases=True, answers=None):
    everything = {
        "current_setting('server_version')": [("ceres_db", "15.18", 150018, "UTF8", "C.UTF-8", "C.UTF-8")],
        "rolcreatedb": [("backup", can_create_databases)],
    }
    everything.update(answers or {})
    monkeypatch.setattr(postgres, "connect", lambda connection, application_name: FakeConnection(everything))


def fake_tools(tmp_path, monkeypatch, **versions):
    """Only the named client tools exist, each printing its version."""
    paths = {}
    for name, version in versions.items():
        directory = tmp_path / ("bin-%s" % name)
        directory.mkdir()
        paths[name] = write_script(directory / name, 'print("%s (PostgreSQL) %s")' % (name, version))
    monkeypatch.setattr(postgres, "tool_candidates", lambda name, major: [paths[name]] if name in paths else [])


def backup_request(tmp_path, **options):
    return postgres.BackupRequest(params(), str(tmp_path / "ceres.dump"), **options)


@pytest.mark.parametrize("backup_format, verify, tools, message", [
    ("custom", "list", {}, r"pg_restore was not found"),
    ("directory", "restore", {"pg_restore": "14.9"}, r"pg_restore 15 or newer is needed.*\(14\)"),
    ("tar", "list", {"pg_restore": "14.9"}, r"pg_restore 15 or newer is needed"),
    ("plain", "restore", {}, r"psql was not found"),
])
def test_check_mode_fails_without_the_tools_verification_needs(
        tmp_path, monkeypatch, backup_format, verify, tools, message):
    fake_server(monkeypatch)
    fake_tools(tmp_path, monkeypatch, pg_dump="15.18", **tools)
    with pytest.raises(ClientToolError, match=message):
        postgres.check_backup(backup_request(tmp_path, backup_format=backup_format, verify=verify))


@pytest.mark.parametrize("backup_format, verify, tools", [
    ("custom", "none", {}),
    ("plain", "list", {}),
    ("custom", "list", {"pg_restore": "16.1"}),
    ("plain", "restore", {"psql": "15.18"}),
])
def test_check_mode_passes_with_the_tools_verification_needs(tmp_path, monkeypatch, backup_format, verify, tools):
    fake_server(monkeypatch)
    fake_tools(tmp_path, monkeypatch, pg_dump="15.18", **tools)
    server = postgres.check_backup(backup_request(tmp_path, backup_format=backup_format, verify=verify))
    assert server.major == 15


def test_check_mode_of_verify_restore_needs_a_role_that_may_create_databases(tmp_path, monkeypatch):
    fake_tools(tmp_path, monkeypatch, pg_dump="15.18", pg_restore="15.18")
    fake_server(monkeypatch, can_create_databases=False)
    postgres.check_backup(backup_request(tmp_path, verify="list"))
    with pytest.raises(InsufficientPrivilege, match='login role "backup" may not create databases .*CREATEDB'):
        postgres.check_backup(backup_request(tmp_path, verify="restore"))
    fake_server(monkeypatch, can_create_databases=True)
    postgres.check_backup(backup_request(tmp_path, verify="restore"))


def test_check_mode_refuses_a_foreign_directory_at_dest_with_force(tmp_path, monkeypatch):
    fake_server(monkeypatch)
    fake_tools(tmp_path, monkeypatch, pg_dump="15.18", pg_restore="15.18")
    (tmp_path / "ceres.dump").mkdir()
    (tmp_path / "ceres.dump" / "other.dump").write_text("precious")
    with pytest.raises(DestinationError, match=FOREIGN_DIRECTORY):
        postgres.check_backup(backup_request(tmp_path, force=True))
    assert (tmp_path / "ceres.dump" / "other.dump").read_text() == "precious"


def restore_request(path, **options):
    return postgres.RestoreRequest(params(database="target"), path, **options)


def fake_restore_server(monkeypatch, target_exists, tables, can_create_databases=True):
    answers = {
        "pg_database WHERE datname": [(1,)] if target_exists else [],
        "rolcreatedb": [("restorer", can_create_databases)],
        "FROM pg_catalog.pg_class": [(16384 + index, "public", "t%d" % index, "public.t%d" % index)
                                     for index in range(tables)],
    }
    monkeypatch.setattr(postgres, "connect", lambda connection, application_name: FakeConnection(answers))


@pytest.mark.parametrize("tables, message", [
    (1, 'database "target" already exists and has 1 table; set clean=true to replace its objects, or restore into'
        " a new database"),
    (3, 'database "target" already exists and has 3 tables; set clean=true'),
])
def test_restore_into_an_existing_database_with_tables_needs_clean(tmp_path, monkeypatch, tables, message):
    path, _manifest = make_backup(tmp_path)
    fake_tools(tmp_path, monkeypatch, pg_restore="15.18")
    fake_restore_server(monkeypatch, target_exists=True, tables=tables)
    with pytest.raises(postgres.RestoreFailed, match=message):
        postgres.check_restore(restore_request(path))
    with pytest.raises(postgres.RestoreFailed, match=message):
        postgres.check_mode_restore_result(restore_request(path))
    assert postgres.check_restore(restore_request(path, clean=True)).target_exists is True


def test_restore_into_an_existing_empty_database_or_a_new_one(tmp_path, monkeypatch):
    path, _manifest = make_backup(tmp_path)
    fake_tools(tmp_path, monkeypatch, pg_restore="15.18")
    fake_restore_server(monkeypatch, target_exists=True, tables=0)
    assert postgres.check_restore(restore_request(path, create=False)).target_exists is True
    fake_restore_server(monkeypatch, target_exists=False, tables=0)
    assert postgres.check_restore(restore_request(path)).target_exists is False
    fake_restore_server(monkeypatch, target_exists=False, tables=0, can_create_databases=False)
    with pytest.raises(InsufficientPrivilege, match='database "target" does not exist and the login role "restorer"'
                                                    " may not create it"):
        postgres.check_restore(restore_request(path))
