"""ceres.rollout.pg_backup in pod mode against the sandbox's real API server and PostgreSQL.

`kubectl exec` into a pod of ceres-system runs the command on this machine with the
sandbox's libpq environment (kwok's exec), as if inside the database container, so pg_dump
and psql really run through the Kubernetes exec API: websocket, channels, status.

The modules run through `ansible` (argument spec, env fallbacks, no_log, AnsiballZ). The
sandbox's PG* and KUBECONFIG variables are in the environment, as `.sandbox/env` sets them.
Tests never write to ceres_db: the one that writes creates a database of its own.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path

import pytest
from integration_support import ROOT, SANDBOX_ENV, run_ansible, wait_for

REPOSITORY = Path(__file__).resolve().parents[2]
if str(REPOSITORY / ".collections") not in sys.path:
    sys.path.insert(0, str(REPOSITORY / ".collections"))

psycopg2 = pytest.importorskip("psycopg2")

from postgres_support import admin_connection, database_names, drop_database, execute, live_table_stats, load_manifest  # noqa: E402

from ansible_collections.ceres.rollout.plugins.module_utils.postgres import catalog as pg_catalog  # noqa: E402
from ansible_collections.ceres.rollout.plugins.module_utils.postgres import manifest as pg_manifest  # noqa: E402
from ansible_collections.ceres.rollout.plugins.module_utils.postgres import tools as pg_tools  # noqa: E402
from ansible_collections.ceres.rollout.plugins.module_utils.postgres import verify as pg_verify  # noqa: E402

NAMESPACE = "ceres-system"
DEPLOYMENT = "postgres-main"
DATABASE = "ceres_db"
PASSWORD = SANDBOX_ENV.get("PGPASSWORD", "")
POD_OPTIONS = {"namespace": NAMESPACE, "deployment": DEPLOYMENT}

pytestmark = [
    # It asserts that no scratch database is left on the shared server, which a verify=restore of
    # another test file running in parallel would break: run it alone, after the parallel files.
    pytest.mark.serial,
    pytest.mark.skipif(
        not PASSWORD or not SANDBOX_ENV.get("KUBECONFIG"), reason="needs the sandbox (source .sandbox/env)"
    ),
]


# --- helpers ---------------------------------------------------------------------------------


def run_module(module, arguments, check_mode=False, verbosity=0):
    """The task result of one ad-hoc module run (json callback); no output may hold the password."""
    args = [
        "ansible",
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
        args.append("--check")
    if verbosity:
        args.append("-" + "v" * verbosity)
    completed = run_ansible(
        args, check=False, env={"ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json", "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1"}
    )
    assert PASSWORD not in completed.stdout + completed.stderr, "the password leaked into ansible's output"
    document = (
        completed.stdout if completed.stdout.startswith("{") else completed.stdout[completed.stdout.index("\n{") + 1 :]
    )
    return json.loads(document)["plays"][0]["tasks"][0]["hosts"]["localhost"]


def live_tables(database):
    connection = admin_connection(database)
    try:
        with connection.cursor() as cursor:
            return pg_catalog.list_user_tables(cursor)
    finally:
        connection.close()


def toc_listing(path):
    pg_restore = pg_tools.find_client_tool("pg_restore", 15)
    return subprocess.run([pg_restore.path, "--list", str(path)], capture_output=True, text=True, check=True).stdout


def ready_pod():
    """The Running and Ready pod of postgres-main (as the module will choose it)."""
    from kubernetes import client, config

    core = client.CoreV1Api(config.new_client_from_config(config_file=SANDBOX_ENV["KUBECONFIG"]))
    pods = core.list_namespaced_pod(NAMESPACE, label_selector="app=postgres-main").items
    ready = [
        pod
        for pod in pods
        if pod.status.phase == "Running"
        and not pod.metadata.deletion_timestamp
        and any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])
    ]
    if not ready:
        pytest.fail(
            "sandbox: deployment/postgres-main has no Running and Ready pod (%s); kwok does not make a pod"
            " Ready again after its node was NotReady: delete the pod so the Deployment recreates it"
            % ", ".join("%s %s" % (pod.metadata.name, pod.status.phase) for pod in pods)
        )
    return ready[0]


def pod_processes(database):
    """{pid: argv} of the pg_dump and psql processes kwok runs for the pod against database
    (kwok's exec runs them on this machine)."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % entry, "rb") as handle:
                argv = [part.decode("utf-8", "replace") for part in handle.read().split(b"\0") if part]
        except OSError:
            continue
        if argv and os.path.basename(argv[0]) in ("pg_dump", "psql") and "--dbname=dbname='%s'" % database in argv:
            found[int(entry)] = argv
    return found


def partial_files(directory):
    return [name for name in os.listdir(directory) if ".partial-" in name]


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture()
def locked_database():
    """A database of our own whose table billing.invoices is locked ACCESS EXCLUSIVE by the
    returned connection: pg_dump (and the count of that table) wait for it, which holds a
    pod-mode backup at a known point. Roll the connection back to let them go on."""
    name = "ceres_it_pod_locked_%s" % uuid.uuid4().hex[:8]
    execute("postgres", "CREATE DATABASE \"%s\" TEMPLATE template0 ENCODING 'UTF8'" % name)
    execute(
        name,
        "CREATE SCHEMA billing",
        "CREATE TABLE billing.invoices AS SELECT g AS id, md5(g::text) AS note FROM generate_series(1, 50000) AS g",
        "CREATE TABLE public.customers AS SELECT g AS id FROM generate_series(1, 1000) AS g",
    )
    locker = psycopg2.connect(dbname=name)
    with locker.cursor() as cursor:
        cursor.execute("LOCK TABLE billing.invoices IN ACCESS EXCLUSIVE MODE")
    try:
        yield name, locker
    finally:
        locker.close()
        drop_database(name)


@pytest.fixture(scope="module")
def pod_backup(tmp_path_factory):
    """One pod-mode backup of ceres_db through deployment/postgres-main (custom format)."""
    pod = ready_pod()
    dest = tmp_path_factory.mktemp("pod") / "ceres_db.dump"
    result = run_module("pg_backup", {"database": DATABASE, "dest": str(dest), "pod": POD_OPTIONS})
    assert result.get("failed") is not True, result.get("msg")
    return dest, result, pod


@pytest.fixture()
def restore_target():
    name = "ceres_it_pod_restore_%s" % uuid.uuid4().hex[:8]
    yield name
    drop_database(name)


# --- the backup ------------------------------------------------------------------------------


def test_pod_backup_is_a_complete_dump_recorded_as_coming_from_the_pod(pod_backup):
    dest, result, pod = pod_backup
    source = {"mode": "pod", "namespace": NAMESPACE, "pod": pod.metadata.name, "container": pod.spec.containers[0].name}

    assert result["changed"] is True and result["verified"] is True and result["verify"] == "list"
    assert result["source"] == source
    manifest = load_manifest(dest)
    assert manifest["source"] == source
    assert manifest["database"] == DATABASE and manifest["format"] == "custom"
    assert manifest["pg_dump_version"].startswith("pg_dump (PostgreSQL) ")
    assert sorted(os.listdir(dest.parent)) == ["ceres_db.dump", "ceres_db.dump.manifest.json"]
    assert os.stat(dest).st_mode & 0o777 == 0o600
    pg_manifest.verify_backup_integrity(str(dest), manifest)

    listing = toc_listing(dest)
    tables = live_tables(DATABASE)
    assert len(tables) >= 5
    assert pg_verify.tables_missing_from_toc(listing, tables) == []


def test_pod_backup_counts_equal_the_live_counts(pod_backup):
    dest, result, _pod = pod_backup
    live = {key: stats["rows"] for key, stats in live_table_stats(DATABASE).items()}
    assert result["tables"] == live
    assert {key: stats["rows"] for key, stats in load_manifest(dest)["tables"].items()} == live
    assert sum(live.values()) >= 200000


def test_pod_backup_round_trips_through_pg_restore(pod_backup, restore_target):
    dest, result, _pod = pod_backup
    restored = run_module("pg_restore", {"src": str(dest), "database": restore_target})

    assert restored.get("failed") is not True, restored.get("msg")
    assert restored["created"] is True and restored["tables"] == result["tables"]
    assert live_table_stats(restore_target, True) == live_table_stats(DATABASE, True)


@pytest.mark.parametrize("backup_format, verify", [("tar", "restore"), ("plain", "list")])
def test_other_streamable_formats(tmp_path, backup_format, verify):
    scratch_before = {name for name in database_names() if name.startswith(pg_verify.SCRATCH_DATABASE_PREFIX)}
    dest = tmp_path / ("ceres_db." + backup_format)
    result = run_module(
        "pg_backup",
        {"database": DATABASE, "dest": str(dest), "format": backup_format, "verify": verify, "pod": POD_OPTIONS},
    )

    assert result.get("failed") is not True, result.get("msg")
    assert result["verified"] is True and result["verify"] == verify
    manifest = load_manifest(dest)
    assert manifest["format"] == backup_format and manifest["source"]["mode"] == "pod"
    if verify == "restore":
        # content hashes taken by psql in the pod equal those of the scratch copy restored here
        assert manifest["tables"] == live_table_stats(DATABASE, True)
    assert {name for name in database_names() if name.startswith(pg_verify.SCRATCH_DATABASE_PREFIX)} == scratch_before


def test_a_pod_named_directly_with_its_container(tmp_path):
    pod = ready_pod()
    container = pod.spec.containers[0].name
    result = run_module(
        "pg_backup",
        {
            "database": DATABASE,
            "dest": str(tmp_path / "named.dump"),
            "verify": "none",
            "pod": {"namespace": NAMESPACE, "pod": pod.metadata.name, "container": container},
        },
    )
    assert result.get("failed") is not True, result.get("msg")
    assert result["source"] == {"mode": "pod", "namespace": NAMESPACE, "pod": pod.metadata.name, "container": container}


def test_counts_are_those_of_the_dump_snapshot_while_rows_are_being_written(tmp_path):
    database = "ceres_it_pod_busy_%s" % uuid.uuid4().hex[:8]
    execute("postgres", "CREATE DATABASE \"%s\" TEMPLATE template0 ENCODING 'UTF8'" % database)
    try:
        execute(
            database,
            "CREATE TABLE public.events (id bigserial PRIMARY KEY, note text, payload jsonb)",
            "INSERT INTO public.events (note, payload) SELECT 'Ereignis ' || g || ' Łódź 東京',"
            " jsonb_build_object('n', g) FROM generate_series(1, 60000) AS g",
            # names psql must pass through intact: quotes, spaces, a colon, non-ASCII
            'CREATE SCHEMA "Łódź: ops"',
            'CREATE TABLE "Łódź: ops"."Odd ""Name"" 東京" (t text, b bytea, f float8)',
            'INSERT INTO "Łódź: ops"."Odd ""Name"" 東京" VALUES (\'a\nb\', \'\\x00ff\', 0.1), (NULL, NULL, 1e300)',
        )
        stop_writing = threading.Event()
        rows_written = []

        def keep_inserting():
            connection = admin_connection(database)
            with connection.cursor() as cursor:
                while not stop_writing.is_set():
                    cursor.execute("INSERT INTO public.events (note) VALUES ('written during the dump')")
                    rows_written.append(1)
            connection.close()

        writer = threading.Thread(target=keep_inserting)
        writer.start()
        try:
            # verify=restore restores the dump here and compares every table's count and
            # content hash with those psql took in the pod: equal only if they saw one snapshot.
            result = run_module(
                "pg_backup",
                {"database": database, "dest": str(tmp_path / "busy.dump"), "verify": "restore", "pod": POD_OPTIONS},
            )
        finally:
            stop_writing.set()
            writer.join()

        assert result.get("failed") is not True, result.get("msg")
        assert result["verified"] is True
        assert len(rows_written) > 10, "the writer did not overlap the backup"
        assert 60000 <= result["tables"]["public.events"] < 60000 + len(rows_written)
        assert result["tables"]['Łódź: ops.Odd "Name" 東京'] == 2
    finally:
        drop_database(database)


# --- check mode and failures -----------------------------------------------------------------


def test_pg_dump_killed_in_the_pod_mid_run_leaves_nothing(tmp_path, locked_database):
    database, locker = locked_database
    dest = tmp_path / "killed.dump"
    args = [
        "ansible",
        "localhost",
        "-i",
        "localhost,",
        "-c",
        "local",
        "-e",
        "ansible_python_interpreter=%s" % sys.executable,
        "-m",
        "ceres.rollout.pg_backup",
        "-a",
        json.dumps({"database": database, "dest": str(dest), "pod": POD_OPTIONS}),
    ]
    environment = dict(
        os.environ,
        ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
        ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
    )
    ansible = subprocess.Popen(
        [str(Path(sys.executable).parent / args[0])] + args[1:],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        pg_dump = wait_for(
            lambda: [pid for pid, argv in pod_processes(database).items() if os.path.basename(argv[0]) == "pg_dump"],
            60,
            message="pg_dump in the pod",
        )[0]
        wait_for(lambda: partial_files(tmp_path), 30, message="the temporary output")
        assert any(argument.startswith("--snapshot=") for argument in pod_processes(database)[pg_dump])
        os.kill(pg_dump, signal.SIGKILL)
        locker.rollback()
        stdout, _stderr = ansible.communicate(timeout=120)
    finally:
        if ansible.poll() is None:
            ansible.kill()
            ansible.communicate()

    result = json.loads(stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]
    assert result["failed"] is True
    assert result["msg"].startswith('pg_dump in pod "') and result["msg"].endswith("nothing was written to dest")
    assert "killed" in result["msg"]
    assert os.listdir(tmp_path) == [], "something was left at dest or in its directory"
    wait_for(lambda: not pod_processes(database), 30, message="psql in the pod to quit")


def test_sigterm_mid_run_removes_the_temporary_output_and_ends_the_pod_sessions(tmp_path, locked_database):
    """The module's process is interrupted while psql counts and pg_dump waits on the lock."""
    database, locker = locked_database
    script = textwrap.dedent("""
        import sys
        sys.path.insert(0, %r)
        from ansible_collections.ceres.rollout.plugins.module_utils.postgres.backup import common as pg_backup_common
        from ansible_collections.ceres.rollout.plugins.module_utils.postgres.backup import pod as pg_backup_pod
        from ansible_collections.ceres.rollout.plugins.module_utils.postgres import connection as pg_connection
        from ansible_collections.ceres.rollout.plugins.module_utils.postgres import errors as pg_errors
        from ansible_collections.ceres.rollout.plugins.module_utils.k8s.client import auth_options
        request = pg_backup_common.BackupRequest(pg_connection.ConnectionParams(database=%r), %r,
                                                 pod=pg_backup_pod.PodSource(namespace=%r, deployment=%r, auth=auth_options({})))
        try:
            with pg_errors.terminate_raises():
                pg_backup_pod.run_pod_backup(request)
        except pg_errors.Interrupted as error:
            print("interrupted:", error)
    """) % (str(REPOSITORY / ".collections"), database, str(tmp_path / "term.dump"), NAMESPACE, DEPLOYMENT)
    backup = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        wait_for(lambda: len(pod_processes(database)) == 2, 60, message="psql and pg_dump in the pod")
        wait_for(lambda: partial_files(tmp_path), 30, message="the temporary output")
        time.sleep(0.2)  # psql is now counting the locked table
        backup.send_signal(signal.SIGTERM)
        output, _ignored = backup.communicate(timeout=60)
    finally:
        if backup.poll() is None:
            backup.kill()
            backup.communicate()
        locker.rollback()

    assert "interrupted: interrupted by SIGTERM" in output, output
    assert os.listdir(tmp_path) == []
    # psql read ROLLBACK and \q once the lock went; pg_dump's stream is gone.
    wait_for(lambda: not pod_processes(database), 30, message="psql and pg_dump in the pod to end")


def test_check_mode_writes_nothing(tmp_path):
    pod = ready_pod()
    result = run_module(
        "pg_backup", {"database": DATABASE, "dest": str(tmp_path / "check.dump"), "pod": POD_OPTIONS}, check_mode=True
    )
    assert result.get("failed") is not True, result.get("msg")
    assert result["changed"] is True and result["verified"] is False
    assert result["source"]["pod"] == pod.metadata.name
    assert os.listdir(tmp_path) == []


def test_a_database_that_does_not_exist_fails_leaving_nothing(tmp_path):
    missing = "ceres_it_missing_%s" % uuid.uuid4().hex[:8]
    result = run_module(
        "pg_backup", {"database": missing, "dest": str(tmp_path / "missing.dump"), "pod": POD_OPTIONS}, verbosity=3
    )
    assert result["failed"] is True
    assert 'database "%s" does not exist' % missing in result["msg"]
    assert "psql in pod" in result["msg"]
    assert os.listdir(tmp_path) == []


def test_pg_dump_failing_in_the_pod_fails_leaving_nothing(tmp_path):
    # psql has exported the snapshot; pg_dump itself then exits non-zero at once.
    result = run_module(
        "pg_backup", {"database": DATABASE, "dest": str(tmp_path / "bad.dump"), "compress": "bogus", "pod": POD_OPTIONS}
    )
    assert result["failed"] is True
    assert result["msg"].startswith('pg_dump in pod "')
    assert "compress" in result["msg"] and result["msg"].endswith("nothing was written to dest")
    assert os.listdir(tmp_path) == []


def test_a_missing_deployment_is_a_clear_error(tmp_path):
    result = run_module(
        "pg_backup",
        {
            "database": DATABASE,
            "dest": str(tmp_path / "x.dump"),
            "pod": {"namespace": NAMESPACE, "deployment": "no-such-database"},
        },
    )
    assert result["failed"] is True
    assert result["msg"] == 'deployment "no-such-database" was not found in namespace "%s"' % NAMESPACE
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    "options, expected",
    [
        ({"format": "directory"}, "format=directory cannot be used with pod"),
        ({"login_password": "given-to-the-task"}, "login_password cannot be used with pod"),
    ],
)
def test_options_pod_mode_cannot_honour_are_refused(tmp_path, options, expected):
    result = run_module(
        "pg_backup", dict({"database": DATABASE, "dest": str(tmp_path / "x.dump"), "pod": POD_OPTIONS}, **options)
    )
    assert result["failed"] is True and expected in result["msg"]
    assert "given-to-the-task" not in json.dumps(result)
    assert os.listdir(tmp_path) == []
