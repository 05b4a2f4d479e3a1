"""ceres.rollout.pg_backup and ceres.rollout.pg_restore against a real PostgreSQL server.

The connection comes from PGHOST, PGPORT, PGUSER, PGPASSWORD and PGDATABASE (the sandbox's
`.sandbox/env` sets them, with PGDATABASE=ceres_db). The modules run through `ansible`, so the
real module path (argument spec, env fallbacks, no_log, AnsiballZ) is exercised; a few tests
call module_utils directly where they need to reach inside a run (altering the scratch copy).

Tests never write to PGDATABASE: the ones that need to change data or hold locks create
databases of their own (named ceres_it_*) and drop them afterwards.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[2]
# The repository is the collection; .collections/ansible_collections/ceres/rollout links to it.
if str(REPOSITORY / ".collections") not in sys.path:
    sys.path.insert(0, str(REPOSITORY / ".collections"))

psycopg2 = pytest.importorskip("psycopg2")

from integration_support import wait_for  # noqa: E402
from postgres_support import (  # noqa: E402
    admin_connection,
    create_login_role,
    database_names,
    drop_database,
    drop_role,
    execute,
    live_table_stats,
    load_manifest,
    pg_dump_process_tree,
)

from ansible_collections.ceres.rollout.plugins.module_utils.common import atomic_files  # noqa: E402
from ansible_collections.ceres.rollout.plugins.module_utils.postgres import connection as pg_connection  # noqa: E402
from ansible_collections.ceres.rollout.plugins.module_utils.postgres import errors as pg_errors  # noqa: E402
from ansible_collections.ceres.rollout.plugins.module_utils.postgres import manifest as pg_manifest  # noqa: E402
from ansible_collections.ceres.rollout.plugins.module_utils.postgres import verify as pg_verify  # noqa: E402
from ansible_collections.ceres.rollout.plugins.module_utils.postgres.backup import common as pg_backup_common  # noqa: E402
from ansible_collections.ceres.rollout.plugins.module_utils.postgres.backup import local as pg_backup_local  # noqa: E402

PG_ENVIRONMENT = ("PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE")

pytestmark = pytest.mark.skipif(
    not all(os.environ.get(name) for name in PG_ENVIRONMENT),
    reason="needs a PostgreSQL server in PGHOST/PGPORT/PGUSER/PGPASSWORD/PGDATABASE (source .sandbox/env)",
)

PASSWORD = os.environ.get("PGPASSWORD", "")
SOURCE_DATABASE = os.environ.get("PGDATABASE", "")
ENVIRONMENT_MARKER = "CERES_IT_ENVIRONMENT_MARKER"


# --- helpers ---------------------------------------------------------------------------------


def ansible_command(module, arguments, check_mode=False, verbosity=0):
    command = [
        str(Path(sys.executable).parent / "ansible"),
        "localhost",
        "-i",
        "localhost,",
        "-c",
        "local",
        "-e",
        "ansible_python_interpreter=%s" % sys.executable,
        "-m",
        "ceres.rollout.%s" % module,
        "-a",
        json.dumps(arguments),
    ]
    if check_mode:
        command.append("--check")
    if verbosity:
        command.append("-" + "v" * verbosity)
    return command


def ansible_environment(structured=True):
    environment = dict(os.environ, ANSIBLE_CONFIG=str(REPOSITORY / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    environment[ENVIRONMENT_MARKER] = "inherited"
    if structured:
        environment.update(ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_LOAD_CALLBACK_PLUGINS="1")
    return environment


@contextlib.contextmanager
def ansible_in_background(module, arguments):
    process = subprocess.Popen(
        ansible_command(module, arguments),
        cwd=REPOSITORY,
        env=ansible_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def task_result(stdout, stderr):
    """The one host result of an ad-hoc run with the json callback; no output may hold the password."""
    assert PASSWORD not in stdout and PASSWORD not in stderr, "the password leaked into ansible's output"
    document = json.loads(stdout)
    return document["plays"][0]["tasks"][0]["hosts"]["localhost"]


def run_module(module, arguments, check_mode=False):
    completed = subprocess.run(
        ansible_command(module, arguments, check_mode),
        cwd=REPOSITORY,
        env=ansible_environment(),
        capture_output=True,
        text=True,
        check=False,
    )
    return task_result(completed.stdout, completed.stderr)


def connection_params(database=None):
    return pg_connection.ConnectionParams(database=database or SOURCE_DATABASE)


def scratch_databases():
    return {name for name in database_names() if name.startswith(pg_verify.SCRATCH_DATABASE_PREFIX)}


def assert_no_new_scratch_database_stays(before, timeout=60):
    """No scratch database this test's backup could have created is left. Other test files verify
    backups at the same time (their scratch databases come and go within seconds), so only names that
    were not there before count, and only once they outlast every other verification."""
    wait_for(
        lambda: not (scratch_databases() - before),
        timeout,
        message="verify=restore to drop its scratch database (new ones: %s)" % sorted(scratch_databases() - before),
    )


def databases_owned_by(role):
    connection = admin_connection()
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT datname FROM pg_database JOIN pg_roles ON pg_roles.oid = datdba WHERE rolname = %s", (role,)
            )
            return {row[0] for row in cursor.fetchall()}
    finally:
        connection.close()


def backup_now(dest, **options):
    """A backup of PGDATABASE through module_utils (for tests about the finished backup)."""
    request = pg_backup_common.BackupRequest(connection_params(options.pop("database", None)), str(dest), **options)
    return pg_backup_local.run_backup(request)


@contextlib.contextmanager
def mounted_tmpfs(directory, options):
    """A tmpfs at directory, or a skip when this host does not allow mounting."""
    directory.mkdir(exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(directory)], capture_output=True, text=True, check=False
    )
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (%s)" % (mounted.stderr.strip() or "not root"))
    try:
        yield directory
    finally:
        subprocess.run(["umount", str(directory)], check=False)


def pg_dump_processes_writing(path_prefix):
    """pids of the running pg_dump processes whose command line names a file under path_prefix."""
    return sorted(pg_dump_process_tree(path_prefix))


def wait_until(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    pytest.fail("timed out after %ss waiting for %s" % (timeout, what))


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fixture_database():
    """A database of our own: non-ASCII text, jsonb, bytea, odd names, an empty table."""
    name = "ceres_it_src_%s" % uuid.uuid4().hex[:8]
    execute("postgres", "CREATE DATABASE \"%s\" TEMPLATE template0 ENCODING 'UTF8'" % name)
    execute(
        name,
        "CREATE SCHEMA billing",
        "CREATE TABLE public.customers (id bigserial PRIMARY KEY, name text NOT NULL, city text, doc jsonb)",
        "INSERT INTO public.customers (name, city, doc) SELECT 'Kunde ' || g || ' Müller-Łódź-東京',"
        " (ARRAY['Zürich','São Paulo','Kraków','Αθήνα'])[1 + g % 4], jsonb_build_object('n', g, 'émoji', '🙂')"
        " FROM generate_series(1, 30000) AS g",
        "CREATE TABLE billing.invoices (id int PRIMARY KEY, amount numeric(12,2), issued timestamptz, raw bytea)",
        "INSERT INTO billing.invoices SELECT g, g / 7.0, timestamptz '2026-01-01 00:00+02' + g * interval '1 minute',"
        " decode(md5(g::text), 'hex') FROM generate_series(1, 20000) AS g",
        'CREATE TABLE public."Odd Name" (t text, "B col" float8)',
        "INSERT INTO public.\"Odd Name\" VALUES ('x', 0.1), ('y', 1e300), (NULL, NULL)",
        "CREATE TABLE public.empty_table (x int)",
    )
    yield name
    drop_database(name)


@pytest.fixture()
def restore_target():
    name = "ceres_it_restore_%s" % uuid.uuid4().hex[:8]
    yield name
    drop_database(name)


@pytest.fixture(scope="module")
def finished_backups(tmp_path_factory):
    """A custom and a directory backup of PGDATABASE; tests corrupt copies of them."""
    directory = tmp_path_factory.mktemp("finished")
    backup_now(directory / "source.dump", backup_format="custom")
    backup_now(directory / "source.d", backup_format="directory", jobs=2)
    return directory


def copy_backup(finished_backups, name, destination_directory):
    source = finished_backups / name
    target = destination_directory / name
    if source.is_dir():
        shutil.copytree(source, target)
    else:
        shutil.copy2(source, target)
    shutil.copy2(str(source) + ".manifest.json", str(target) + ".manifest.json")
    return target


# --- round trips -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "backup_format, jobs, compress",
    [
        ("custom", 1, None),
        ("directory", 2, "1"),
        ("tar", 1, None),
        ("plain", 1, None),
        ("plain", 1, "5"),
    ],
)
def test_round_trip_restores_identical_tables(tmp_path, restore_target, backup_format, jobs, compress):
    scratch_before = scratch_databases()
    dest = tmp_path / ("ceres_db." + backup_format)

    backup = run_module(
        "pg_backup",
        {"dest": str(dest), "format": backup_format, "jobs": jobs, "compress": compress, "verify": "restore"},
    )

    assert backup.get("failed") is not True, backup.get("msg")
    assert backup["changed"] is True and backup["verified"] is True and backup["verify"] == "restore"
    assert backup["path"] == str(dest) and backup["manifest"] == str(dest) + ".manifest.json"
    manifest = load_manifest(dest)
    assert manifest["database"] == SOURCE_DATABASE and manifest["format"] == backup_format
    assert manifest["compress"] == compress
    assert backup["tables"] == {key: stats["rows"] for key, stats in manifest["tables"].items()}
    assert sum(backup["tables"].values()) > 0
    assert backup["sha256"] == manifest["sha256"] and backup["size_bytes"] == manifest["size_bytes"]
    assert_no_new_scratch_database_stays(scratch_before)

    checked = run_module("pg_restore", {"src": str(dest), "database": restore_target}, check_mode=True)
    assert checked["changed"] is True and checked["created"] is True, checked.get("msg")
    assert restore_target not in database_names(), "check mode created the target"

    restored = run_module("pg_restore", {"src": str(dest), "database": restore_target, "jobs": jobs})

    assert restored.get("failed") is not True, restored.get("msg")
    assert restored["changed"] is True and restored["created"] is True
    assert restored["tables"] == backup["tables"]
    # the restored tables, counted and hashed independently, equal the dump's snapshot
    assert live_table_stats(restore_target, with_content_hash=True) == manifest["tables"]


def test_counts_are_those_of_the_dump_snapshot_while_rows_are_being_written(tmp_path, fixture_database):
    stop_writing = threading.Event()
    rows_written = []

    def keep_inserting():
        connection = admin_connection(fixture_database)
        with connection.cursor() as cursor:
            while not stop_writing.is_set():
                cursor.execute("INSERT INTO public.customers (name) VALUES ('written during the dump')")
                rows_written.append(1)
        connection.close()

    writer = threading.Thread(target=keep_inserting)
    writer.start()
    try:
        result = run_module(
            "pg_backup", {"database": fixture_database, "dest": str(tmp_path / "busy.dump"), "verify": "restore"}
        )
    finally:
        stop_writing.set()
        writer.join()

    assert result.get("failed") is not True, result.get("msg")
    assert result["verified"] is True
    assert len(rows_written) > 10, "the writer did not overlap the backup"
    assert 30000 <= result["tables"]["public.customers"] < 30000 + len(rows_written)


def test_check_mode_dumps_nothing(tmp_path):
    dest = tmp_path / "check.dump"
    result = run_module("pg_backup", {"dest": str(dest)}, check_mode=True)
    assert result["changed"] is True and result["database"] == SOURCE_DATABASE, result.get("msg")
    assert os.listdir(tmp_path) == []


def test_force_replaces_an_existing_backup(tmp_path):
    dest = tmp_path / "forced.dump"
    first = run_module("pg_backup", {"dest": str(dest), "verify": "none"})
    second = run_module("pg_backup", {"dest": str(dest), "force": True})
    assert first["changed"] is True and second["changed"] is True, second.get("msg")
    assert load_manifest(dest)["verified"] == "list"
    assert sorted(os.listdir(tmp_path)) == ["forced.dump", "forced.dump.manifest.json"]


def directory_listing(directory):
    """{relative path: bytes} of every file under directory (and its own name), to prove it untouched."""
    listing = {}
    for root, dirs, files in os.walk(directory):
        for name in dirs:
            listing[os.path.relpath(os.path.join(root, name), directory) + "/"] = None
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as handle:
                listing[os.path.relpath(path, directory)] = handle.read()
    return listing


@pytest.mark.parametrize("backup_format", ["custom", "directory"])
@pytest.mark.parametrize("check_mode", [False, True])
def test_force_never_replaces_a_directory_that_is_not_a_previous_backup(tmp_path, backup_format, check_mode):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "other.dump").write_text("precious\n")
    (victim / "nested").mkdir()
    (victim / "nested" / "toc.dat").write_bytes(b"not a backup of ours")
    before = directory_listing(tmp_path)

    result = run_module(
        "pg_backup", {"dest": str(victim), "format": backup_format, "force": True}, check_mode=check_mode
    )

    assert result["failed"] is True, result
    assert (
        "dest %s is an existing directory that is not a previous directory-format backup; give the backup's own"
        " path" % victim
    ) in result["msg"]
    assert directory_listing(tmp_path) == before, "the directory at dest (or its parent) was changed"


def test_force_replaces_a_previous_directory_backup_but_nothing_of_another_kind(tmp_path, restore_target):
    dest = tmp_path / "ceres.d"
    first = run_module("pg_backup", {"dest": str(dest), "format": "directory", "jobs": 2, "verify": "none"})
    assert first["changed"] is True, first.get("msg")
    old_snapshot = load_manifest(dest)["snapshot"]

    # a file format must not replace a directory backup, nor a directory backup a file
    before = directory_listing(tmp_path)
    as_file = run_module("pg_backup", {"dest": str(dest), "format": "custom", "force": True})
    assert as_file["failed"] is True and "is a previous directory-format backup" in as_file["msg"], as_file
    (tmp_path / "single.dump").write_bytes(b"PGDMP an old custom backup")
    before_file = directory_listing(tmp_path)
    onto_file = run_module("pg_backup", {"dest": str(tmp_path / "single.dump"), "format": "directory", "force": True})
    assert onto_file["failed"] is True and "is an existing file" in onto_file["msg"], onto_file
    assert directory_listing(tmp_path) == before_file
    os.unlink(tmp_path / "single.dump")
    assert directory_listing(tmp_path) == before

    second = run_module("pg_backup", {"dest": str(dest), "format": "directory", "jobs": 2, "force": True})

    assert second["changed"] is True and second["verified"] is True, second.get("msg")
    manifest = load_manifest(dest)
    assert manifest["snapshot"] != old_snapshot
    assert sorted(os.listdir(tmp_path)) == ["ceres.d", "ceres.d.manifest.json"]
    assert sorted(os.listdir(dest)) == sorted(manifest["files"])
    checked = run_module("pg_restore", {"src": str(dest), "database": restore_target}, check_mode=True)
    assert checked["changed"] is True, checked.get("msg")


@pytest.mark.parametrize("force", [False, True])
def test_a_directory_created_at_dest_during_the_dump_is_not_replaced(tmp_path, fixture_database, force):
    """dest is checked again just before the renames: the dump may have taken hours."""
    dest = tmp_path / "late.dump"

    def someone_creates_a_directory_at_dest(scratch_params):
        dest.mkdir()
        (dest / "other.dump").write_text("precious\n")

    request = pg_backup_common.BackupRequest(
        connection_params(fixture_database), str(dest), verify="restore", force=force
    )
    with pytest.raises(pg_errors.DestinationError, match="is an existing directory that is not a previous"):
        pg_backup_local.run_backup(request, on_scratch_restored=someone_creates_a_directory_at_dest)

    assert directory_listing(tmp_path) == {"late.dump/": None, "late.dump/other.dump": b"precious\n"}


@pytest.mark.parametrize("backup_format", ["custom", "directory"])
def test_force_keeps_the_old_backup_when_the_new_manifest_cannot_be_written(tmp_path, monkeypatch, backup_format):
    dest = tmp_path / ("old.d" if backup_format == "directory" else "old.dump")
    backup_now(dest, backup_format=backup_format, verify="none")
    before = directory_listing(tmp_path)
    written = []

    def disk_full_half_way(document, handle, **options):
        handle.write('{"manifest_version": 1, "dat')
        handle.flush()
        written.append(document)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic_files.json, "dump", disk_full_half_way)
    with pytest.raises(pg_errors.DestinationError) as raised:
        backup_now(dest, backup_format=backup_format, force=True)

    assert written, "the new manifest was never written"
    assert directory_listing(tmp_path) == before, "the old backup or its manifest changed, or temporary files remain"
    assert "could not write the manifest %s.manifest.json (No space left on device)" % dest in str(raised.value)
    assert "left as it was" in str(raised.value)
    pg_manifest.verify_backup_integrity(str(dest), pg_manifest.load_manifest(str(dest) + ".manifest.json"))


# --- failures --------------------------------------------------------------------------------


def test_wrong_password_fails_without_revealing_it_even_at_vvv(tmp_path):
    wrong_password = "wrong-%s-pw" % uuid.uuid4().hex
    dest = tmp_path / "never.dump"
    command = ansible_command("pg_backup", {"dest": str(dest), "login_password": wrong_password}, verbosity=3)
    completed = subprocess.run(
        command, cwd=REPOSITORY, env=ansible_environment(structured=False), capture_output=True, text=True, check=False
    )
    output = completed.stdout + completed.stderr

    assert completed.returncode != 0
    assert "password authentication failed" in output
    assert wrong_password not in output
    assert PASSWORD not in output
    assert os.listdir(tmp_path) == []


def test_a_successful_run_at_vvv_never_shows_the_password(tmp_path):
    command = ansible_command("pg_backup", {"dest": str(tmp_path / "ok.dump"), "login_password": PASSWORD}, verbosity=3)
    completed = subprocess.run(
        command, cwd=REPOSITORY, env=ansible_environment(structured=False), capture_output=True, text=True, check=False
    )
    assert completed.returncode == 0, completed.stdout[-2000:]
    assert PASSWORD not in completed.stdout + completed.stderr


def test_missing_database(tmp_path):
    missing = "ceres_it_missing_%s" % uuid.uuid4().hex[:8]
    result = run_module("pg_backup", {"database": missing, "dest": str(tmp_path / "missing.dump")})
    assert result["failed"] is True
    assert 'database "%s" does not exist' % missing in result["msg"]
    assert os.listdir(tmp_path) == []


def test_destination_directory_missing(tmp_path):
    result = run_module("pg_backup", {"dest": str(tmp_path / "no" / "such" / "dir.dump")})
    assert result["failed"] is True and "does not exist" in result["msg"]


def test_destination_not_writable(tmp_path):
    read_only = tmp_path / "read-only"
    if os.geteuid() == 0:
        context = mounted_tmpfs(read_only, "ro,size=1m")
    else:
        read_only.mkdir()
        read_only.chmod(0o500)
        context = contextlib.nullcontext(read_only)
    with context:
        result = run_module("pg_backup", {"dest": str(read_only / "ceres.dump")})
        assert result["failed"] is True
        assert "is not writable" in result["msg"], result["msg"]
        assert os.listdir(read_only) == []


def test_existing_destination_without_force_is_left_untouched(tmp_path):
    dest = tmp_path / "precious.dump"
    original = os.urandom(4096)
    dest.write_bytes(original)
    before = os.stat(dest)

    result = run_module("pg_backup", {"dest": str(dest)})

    assert result["failed"] is True and "already exists" in result["msg"]
    assert dest.read_bytes() == original
    assert os.stat(dest).st_mtime_ns == before.st_mtime_ns
    assert os.listdir(tmp_path) == ["precious.dump"]


def test_pg_dump_killed_mid_run_leaves_nothing(tmp_path, fixture_database):
    """A lock held on one table makes pg_dump wait after it has created its output, so the
    test can look at the running pg_dump and kill it at a known point."""
    locker = admin_connection(fixture_database)
    locker.autocommit = False
    with locker.cursor() as cursor:
        cursor.execute("LOCK TABLE billing.invoices IN ACCESS EXCLUSIVE MODE")
    dest = tmp_path / "killed.dump"
    try:
        with ansible_in_background("pg_backup", {"database": fixture_database, "dest": str(dest)}) as ansible:
            temp_prefix = str(tmp_path / ".killed.dump.partial-")
            pid = wait_until(lambda: pg_dump_processes_writing(temp_prefix), 60, "pg_dump to start")[0]
            wait_until(
                lambda: any(name.startswith(".killed.dump.partial-") for name in os.listdir(tmp_path)),
                30,
                "the temporary output",
            )
            with open("/proc/%d/cmdline" % pid, "rb") as handle:
                command_line = handle.read().decode("utf-8", "replace")
            with open("/proc/%d/environ" % pid, "rb") as handle:
                environment = dict(item.split("=", 1) for item in handle.read().decode().split("\0") if "=" in item)
            os.kill(pid, signal.SIGKILL)
            locker.rollback()
            stdout, stderr = ansible.communicate(timeout=120)
    finally:
        locker.close()

    assert PASSWORD not in command_line, "the password is on pg_dump's command line"
    assert "--snapshot=" in command_line
    assert environment.get("PGPASSWORD") == PASSWORD
    assert environment.get(ENVIRONMENT_MARKER) == "inherited", "pg_dump's environment replaced os.environ"
    result = task_result(stdout, stderr)
    assert result["failed"] is True
    assert "pg_dump was killed by SIGKILL" in result["msg"]
    assert os.listdir(tmp_path) == [], "something was left at dest or in its directory"


def test_disk_full_during_the_dump_leaves_nothing(tmp_path):
    tiny = tmp_path / "tiny"
    with mounted_tmpfs(tiny, "size=256k"):
        result = run_module("pg_backup", {"dest": str(tiny / "full.dump")})
        assert result["failed"] is True
        assert "No space left on device" in result["msg"], result["msg"]
        assert os.listdir(tiny) == []


def test_a_flipped_byte_is_refused_before_the_database_is_touched(tmp_path, finished_backups, restore_target):
    backup = copy_backup(finished_backups, "source.dump", tmp_path)
    size = backup.stat().st_size
    with open(backup, "r+b") as handle:
        handle.seek(size // 2)
        byte = handle.read(1)
        handle.seek(size // 2)
        handle.write(bytes([byte[0] ^ 0xFF]))

    result = run_module("pg_restore", {"src": str(backup), "database": restore_target})

    assert result["failed"] is True
    assert "refusing the backup" in result["msg"] and "sha256" in result["msg"]
    assert restore_target not in database_names()


def test_a_removed_file_is_refused_before_the_database_is_touched(tmp_path, finished_backups, restore_target):
    backup = copy_backup(finished_backups, "source.d", tmp_path)
    data_file = sorted(name for name in os.listdir(backup) if name.endswith(".dat.gz"))[0]
    os.unlink(backup / data_file)

    result = run_module("pg_restore", {"src": str(backup), "database": restore_target})

    assert result["failed"] is True
    assert "file %s is missing" % data_file in result["msg"]
    assert restore_target not in database_names()


def test_a_backup_without_its_manifest_is_refused(tmp_path, finished_backups, restore_target):
    backup = copy_backup(finished_backups, "source.dump", tmp_path)
    os.unlink(str(backup) + ".manifest.json")
    result = run_module("pg_restore", {"src": str(backup), "database": restore_target}, check_mode=True)
    assert result["failed"] is True and "manifest" in result["msg"] and "is missing" in result["msg"]


@pytest.mark.parametrize(
    "alteration, expected",
    [
        ("UPDATE public.customers SET city = 'Altered' WHERE id = 17", "table public.customers has the expected"),
        ("DELETE FROM billing.invoices WHERE id = 5", "table billing.invoices has 19999 rows, expected 20000"),
        ('DROP TABLE public."Odd Name"', "table public.Odd Name is missing"),
    ],
)
def test_a_table_altered_in_the_scratch_copy_fails_verification(tmp_path, fixture_database, alteration, expected):
    altered = []

    def alter_scratch_copy(scratch_params):
        altered.append(scratch_params.database)
        execute(scratch_params.database, alteration)

    request = pg_backup_common.BackupRequest(
        connection_params(fixture_database), str(tmp_path / "altered.dump"), verify="restore"
    )
    with pytest.raises(pg_errors.VerificationFailed) as raised:
        pg_backup_local.run_backup(request, on_scratch_restored=alter_scratch_copy)

    assert expected in str(raised.value)
    assert altered and altered[0].startswith(pg_verify.SCRATCH_DATABASE_PREFIX)
    assert altered[0] not in database_names(), "the scratch database was not dropped"
    assert os.listdir(tmp_path) == []


def test_restore_into_an_existing_database_with_clean(tmp_path, fixture_database, restore_target):
    dest = tmp_path / "fixture.d"
    backup = run_module(
        "pg_backup", {"database": fixture_database, "dest": str(dest), "format": "directory", "jobs": 2}
    )
    first = run_module("pg_restore", {"src": str(dest), "database": restore_target, "jobs": 2})
    execute(restore_target, "DELETE FROM public.customers WHERE id < 100")
    again = run_module("pg_restore", {"src": str(dest), "database": restore_target, "create": False, "clean": True})

    assert first["created"] is True and again["created"] is False, again.get("msg")
    assert again["tables"] == backup["tables"]
    assert live_table_stats(restore_target, with_content_hash=True) == live_table_stats(
        fixture_database, with_content_hash=True
    )


def test_a_second_identical_restore_changes_nothing(tmp_path, fixture_database, restore_target):
    """A target that already holds the backup's tables, row counts and content hashes is left
    alone (changed=false); one altered value makes it differ again, with the same row counts."""
    dest = tmp_path / "fixture.dump"
    backup = run_module("pg_backup", {"database": fixture_database, "dest": str(dest), "verify": "restore"})
    assert backup.get("failed") is not True, backup.get("msg")
    first = run_module("pg_restore", {"src": str(dest), "database": restore_target})
    assert first.get("failed") is not True and first["changed"] is True and first["created"] is True, first.get("msg")

    checked = run_module("pg_restore", {"src": str(dest), "database": restore_target}, check_mode=True)
    again = run_module("pg_restore", {"src": str(dest), "database": restore_target})
    cleaned = run_module("pg_restore", {"src": str(dest), "database": restore_target, "create": False, "clean": True})

    for result in (checked, again, cleaned):
        assert result.get("failed") is not True, result.get("msg")
        assert result["changed"] is False and result["created"] is False
        assert result["tables"] == backup["tables"]
    assert live_table_stats(restore_target, with_content_hash=True) == load_manifest(dest)["tables"]

    execute(restore_target, "UPDATE public.customers SET city = 'Bern' WHERE id = 1")
    refused = run_module("pg_restore", {"src": str(dest), "database": restore_target})
    restored = run_module("pg_restore", {"src": str(dest), "database": restore_target, "create": False, "clean": True})

    assert refused["failed"] is True and 'database "%s" already exists and has' % restore_target in refused["msg"]
    assert restored.get("failed") is not True and restored["changed"] is True, restored.get("msg")
    assert live_table_stats(restore_target, with_content_hash=True) == load_manifest(dest)["tables"]


def test_clean_with_parallel_jobs_is_refused_before_the_target_is_touched(tmp_path, finished_backups, restore_target):
    backup = copy_backup(finished_backups, "source.d", tmp_path)
    first = run_module("pg_restore", {"src": str(backup), "database": restore_target, "jobs": 2})
    assert first.get("failed") is not True, first.get("msg")
    before = live_table_stats(restore_target, with_content_hash=True)

    for check_mode in (True, False):
        refused = run_module(
            "pg_restore",
            {"src": str(backup), "database": restore_target, "create": False, "clean": True, "jobs": 2},
            check_mode=check_mode,
        )
        assert refused["failed"] is True
        assert refused["msg"].startswith(
            "clean=true with jobs=2 is refused: pg_restore runs parallel jobs outside a single transaction"
        ), refused["msg"]
    assert live_table_stats(restore_target, with_content_hash=True) == before


def test_restore_without_create_into_a_missing_database_fails(tmp_path, finished_backups, restore_target):
    backup = copy_backup(finished_backups, "source.dump", tmp_path)
    result = run_module("pg_restore", {"src": str(backup), "database": restore_target, "create": False})
    assert result["failed"] is True and "does not exist and create is false" in result["msg"]
    assert restore_target not in database_names()


@pytest.fixture(scope="module")
def large_database():
    """A database whose parallel dump takes a few seconds (workers can be caught running)."""
    name = "ceres_it_large_%s" % uuid.uuid4().hex[:8]
    execute("postgres", 'CREATE DATABASE "%s" TEMPLATE template0' % name)
    statements = [
        "CREATE TABLE public.wide_a AS SELECT g AS id, md5(g::text) || repeat('x', 200) AS t"
        " FROM generate_series(1, 150000) AS g"
    ]
    statements += ["CREATE TABLE public.wide_%s AS SELECT * FROM public.wide_a" % suffix for suffix in "bcd"]
    execute(name, *statements)
    yield name
    drop_database(name)


def test_a_killed_pg_dump_leader_leaves_no_workers_behind(tmp_path, large_database):
    """pg_dump --jobs forks workers; killed, the leader cannot stop them. The workers are
    stopped (SIGSTOP) first so they would live on for ever if the module did not stop the
    whole process group; then the leader is killed."""
    dest = tmp_path / "parallel.d"
    temp_prefix = str(tmp_path / ".parallel.d.partial-")
    stopped = []
    try:
        with ansible_in_background(
            "pg_backup",
            {"database": large_database, "dest": str(dest), "format": "directory", "jobs": 2, "verify": "none"},
        ) as ansible:

            def leader_and_workers():
                tree = pg_dump_process_tree(temp_prefix)
                workers = [pid for pid, parent in tree.items() if parent in tree]
                return tree if workers else None

            tree = wait_until(leader_and_workers, 60, "pg_dump to fork its workers")
            workers = [pid for pid, parent in tree.items() if parent in tree]
            (leader,) = [pid for pid in tree if pid not in workers]
            for pid in workers:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGSTOP)
                    stopped.append(pid)
            assert stopped, "no worker to stop"
            os.kill(leader, signal.SIGKILL)
            stdout, stderr = ansible.communicate(timeout=120)

        result = task_result(stdout, stderr)
        assert result["failed"] is True
        assert "pg_dump was killed by SIGKILL" in result["msg"], result["msg"]
        # The module has returned: its stop of the group is over. Allow a moment for the exits.
        deadline = time.monotonic() + 15
        while pg_dump_process_tree(temp_prefix) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert pg_dump_process_tree(temp_prefix) == {}, "pg_dump workers outlived their killed leader"
        assert os.listdir(tmp_path) == [], "something was left at dest or in its directory"
    finally:
        for pid in pg_dump_process_tree(temp_prefix):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_verify_restore_needs_a_role_that_can_create_databases_checked_before_dumping(tmp_path):
    role = "ceres_it_nocreatedb_%s" % uuid.uuid4().hex[:8]
    password = "pw-%s" % uuid.uuid4().hex
    create_login_role(role, password, "NOCREATEDB", "NOSUPERUSER")
    try:
        login = {"login_user": role, "login_password": password, "dest": str(tmp_path / "ceres.dump")}
        checked = run_module("pg_backup", dict(login, verify="restore"), check_mode=True)
        listed = run_module("pg_backup", dict(login, verify="list"), check_mode=True)
        real = run_module("pg_backup", dict(login, verify="restore"))
        created_by_the_role = databases_owned_by(role)  # what the backup could have created (it logs in as role)
    finally:
        drop_role(role)

    expected = 'the login role "%s" may not create databases (it has neither CREATEDB nor SUPERUSER)' % role
    assert checked["failed"] is True and expected in checked["msg"], checked
    assert listed.get("failed") is not True and listed["changed"] is True, listed.get("msg")
    assert real["failed"] is True and expected in real["msg"], real
    assert created_by_the_role == set()
    assert os.listdir(tmp_path) == []


def test_restore_into_an_existing_database_with_tables_needs_clean(tmp_path, finished_backups, restore_target):
    backup = copy_backup(finished_backups, "source.dump", tmp_path)
    first = run_module("pg_restore", {"src": str(backup), "database": restore_target})
    assert first.get("failed") is not True and first["created"] is True, first.get("msg")
    before = live_table_stats(restore_target, with_content_hash=True)
    expected = (
        'database "%s" already exists and has %d tables; set clean=true to replace its objects, or restore into'
        " a new database" % (restore_target, len(before))
    )

    checked = run_module("pg_restore", {"src": str(backup), "database": restore_target}, check_mode=True)
    again = run_module("pg_restore", {"src": str(backup), "database": restore_target})

    assert checked["failed"] is True and expected in checked["msg"], checked
    assert again["failed"] is True and expected in again["msg"], again
    assert live_table_stats(restore_target, with_content_hash=True) == before
    assert restore_target in database_names()


def test_restore_into_an_existing_empty_database_needs_no_clean(tmp_path, finished_backups, restore_target):
    backup = copy_backup(finished_backups, "source.dump", tmp_path)
    execute("postgres", "CREATE DATABASE \"%s\" TEMPLATE template0 ENCODING 'UTF8'" % restore_target)

    checked = run_module(
        "pg_restore", {"src": str(backup), "database": restore_target, "create": False}, check_mode=True
    )
    restored = run_module("pg_restore", {"src": str(backup), "database": restore_target, "create": False})

    assert checked["changed"] is True and checked["created"] is False, checked.get("msg")
    assert restored.get("failed") is not True and restored["created"] is False, restored.get("msg")
    assert restored["tables"] == {key: stats["rows"] for key, stats in load_manifest(backup)["tables"].items()}


@pytest.mark.parametrize("backup_format, verify", [("custom", "list"), ("plain", "list"), ("custom", "restore")])
def test_a_latin1_database_with_non_ascii_names_verifies(tmp_path, backup_format, verify):
    """Names in a dump are in the database's encoding: a LATIN1 database with a table "café"
    in a schema "données" is verified (the TOC / COPY names decoded as LATIN1, not UTF-8)."""
    name = "ceres_it_latin1_%s" % uuid.uuid4().hex[:8]
    execute(
        "postgres", "CREATE DATABASE \"%s\" TEMPLATE template0 ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C'" % name
    )
    try:
        execute(
            name,
            'CREATE SCHEMA "données"',
            'CREATE TABLE "données"."café" (id int, note text)',
            'INSERT INTO "données"."café" SELECT g, \'crème brûlée \' || g FROM generate_series(1, 500) AS g',
        )
        dest = tmp_path / ("latin1.sql" if backup_format == "plain" else "latin1.dump")
        result = run_module(
            "pg_backup", {"database": name, "dest": str(dest), "format": backup_format, "verify": verify}
        )
        assert not result.get("failed"), result.get("msg")
        assert result["verified"] is True
        assert result["tables"] == {"données.café": 500}
    finally:
        drop_database(name)
