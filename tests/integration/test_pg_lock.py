"""pg_backup and pg_restore keep the rollout lock alive (renew_lock) against the sandbox's real kube-apiserver and
PostgreSQL (issue 16: the lock renewed during a backup and a database restore).

A table lock held by the test makes pg_dump (or pg_restore --clean) wait inside the server, so the work lasts as long
as the test wants:

* a dump three times longer than its lease keeps the lock: another run is refused all along, and the Lease's
  renewTime advances;
* a rollback taking the lock with force during a restore stops it at once: the module fails naming the rollback,
  ``lock_lost`` is true, and no pg_restore is left running.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import uuid

import pytest
from integration_support import JSON_CALLBACK, ROOT, SANDBOX_ENV, module_command, module_result, wait_for
from kubernetes import client

psycopg2 = pytest.importorskip("psycopg2")

from postgres_support import admin_connection, drop_database, execute  # noqa: E402

sys.path.insert(0, str(ROOT / ".collections"))
from ansible_collections.ceres.rollout.plugins.module_utils.k8s.client import K8sClient  # noqa: E402
from ansible_collections.ceres.rollout.plugins.module_utils.lock.lease import apply_lock  # noqa: E402
from ansible_collections.ceres.rollout.plugins.module_utils.lock.lease_state import LockRefused, LockRequest  # noqa: E402

pytestmark = pytest.mark.skipif(
    not all(os.environ.get(name) for name in ("PGHOST", "PGPORT", "PGUSER", "PGPASSWORD")),
    reason="needs the sandbox's PostgreSQL (source .sandbox/env)",
)

LOCK = "ceres-rollout-pg"


def lock_request(namespace: str, run_id: str, lease_duration: int, **options) -> LockRequest:
    return LockRequest(namespace, LOCK, run_id, run_id + "@ci", lease_duration=lease_duration, **options)


def take(namespace: str, run_id: str, lease_duration: int, force: bool = False) -> None:
    api = K8sClient.from_auth({"kubeconfig": SANDBOX_ENV["KUBECONFIG"], "timeout": 30})
    try:
        apply_lock(api, lock_request(namespace, run_id, lease_duration, force=force), "acquired")
    finally:
        api.close()


def refused(namespace: str, run_id: str) -> str:
    """Another run acquiring the lock now: its refusal, or the test fails when it got the lock."""
    try:
        take(namespace, run_id, 60)
    except LockRefused as refusal:
        return str(refusal)
    pytest.fail("run %s acquired the lock the module should have kept" % run_id)


def renew_lock(namespace: str, run_id: str, lease_duration: int) -> dict:
    return {
        "namespace": namespace,
        "name": LOCK,
        "run_id": run_id,
        "holder": run_id + "@ci",
        "phase": "pilot",
        "lease_duration": lease_duration,
        "kubeconfig": SANDBOX_ENV["KUBECONFIG"],
    }


@contextlib.contextmanager
def module_in_background(module: str, arguments: dict):
    """``ansible localhost -m ceres.rollout.<module>`` as a user runs it, with the json callback."""
    command = module_command(module, arguments)
    environment = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), **JSON_CALLBACK)
    process = subprocess.Popen(
        command, cwd=ROOT, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def result_of(process: subprocess.Popen, timeout: float = 180) -> dict:
    stdout, stderr = process.communicate(timeout=timeout)
    assert os.environ["PGPASSWORD"] not in stdout + stderr
    return module_result(stdout, stderr)


def processes_named(name: str, argument: str) -> list[int]:
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as handle:
                argv = handle.read().split(b"\0")
        except OSError:
            continue
        if argv and os.path.basename(argv[0].decode()) == name and any(argument.encode() in item for item in argv):
            found.append(int(pid))
    return found


@pytest.fixture()
def database():
    """A database of this test's own, with one table."""
    name = "ceres_it_lock_%s" % uuid.uuid4().hex[:8]
    execute("postgres", 'CREATE DATABASE "%s"' % name)
    execute(
        name,
        "CREATE TABLE orders (id int PRIMARY KEY, note text)",
        "INSERT INTO orders SELECT g, 'n' || g FROM generate_series(1, 500) g",
    )
    yield name
    drop_database(name)


@contextlib.contextmanager
def table_locked(database_name: str, table: str):
    """ACCESS EXCLUSIVE on the table until the block ends or ``release()`` is called: a dump or a DROP of it waits in
    the server meanwhile."""
    connection = admin_connection(database_name)
    connection.autocommit = False
    with connection.cursor() as cursor:
        cursor.execute("LOCK TABLE %s IN ACCESS EXCLUSIVE MODE" % table)

    def release():
        if not connection.closed:
            connection.rollback()
            connection.close()

    try:
        yield release
    finally:
        release()


def test_a_dump_three_times_longer_than_its_lease_keeps_the_lock(tmp_path, scratch_namespace, kube, database):
    lease_seconds = 6  # renewed every 2 s; the dump waits about 18 s
    take(scratch_namespace, "pilot-dump", lease_seconds)
    coordination = client.CoordinationV1Api(kube)
    dest = tmp_path / "orders.dump"
    arguments = {
        "database": database,
        "dest": str(dest),
        "renew_lock": renew_lock(scratch_namespace, "pilot-dump", lease_seconds),
    }
    refusals = []
    renew_times = set()
    with table_locked(database, "orders") as release_table:
        with module_in_background("pg_backup", arguments) as backup:
            wait_for(lambda: processes_named("pg_dump", database), 60, interval=0.1, message="pg_dump to start")
            started = time.monotonic()
            while time.monotonic() - started < 3 * lease_seconds:
                assert backup.poll() is None, "the backup ended while the table was locked"
                lease = coordination.read_namespaced_lease(LOCK, scratch_namespace)
                assert lease.spec.holder_identity == "pilot-dump@ci"
                renew_times.add(lease.spec.renew_time)
                if time.monotonic() - started > lease_seconds:  # without renewals the lease would have expired
                    refusals.append(refused(scratch_namespace, "pilot-second"))
                time.sleep(1)
            release_table()
            result = result_of(backup)

    assert result.get("failed") is not True, result
    assert result["lock_lost"] is False
    assert result["lock_renewals"] >= 6, result  # every third of the lease, for three leases
    assert len(renew_times) >= 5, sorted(renew_times)
    assert refusals and all("pilot-dump" in refusal for refusal in refusals), refusals
    assert dest.exists()


def test_a_rollback_taking_the_lock_stops_a_restore_at_once(tmp_path, scratch_namespace, database):
    dest = tmp_path / "orders.dump"
    with module_in_background("pg_backup", {"database": database, "dest": str(dest)}) as backup:
        backup_result = result_of(backup)
    assert backup_result.get("failed") is not True, backup_result
    take(scratch_namespace, "rollback-old", 30)
    arguments = {
        "src": str(dest),
        "database": database,
        "clean": True,
        "create": False,
        "renew_lock": dict(renew_lock(scratch_namespace, "rollback-old", 30), phase="rollback"),
    }
    with table_locked(database, "orders"):  # pg_restore --clean waits to drop it
        with module_in_background("pg_restore", arguments) as restore:
            wait_for(lambda: processes_named("pg_restore", database), 60, interval=0.1, message="pg_restore to start")
            time.sleep(1)
            assert restore.poll() is None, "the restore ended while the table was locked"
            take(scratch_namespace, "rollback-new", 30, force=True)
            taken_at = time.monotonic()
            result = result_of(restore, timeout=60)
            stopped_after = time.monotonic() - taken_at
            left = processes_named("pg_restore", database)

    assert result.get("failed") is True, result
    assert result["lock_lost"] is True
    assert result["lock"]["run_id"] == "rollback-new"
    assert (
        "the restore stopped: the rollout lock %s/%s was taken by run rollback-new" % (scratch_namespace, LOCK)
        in result["msg"]
    )
    assert stopped_after < 15, "the restore went on for %.1f s after the lock was taken" % stopped_after
    assert left == [], "pg_restore is still running: %s" % left
