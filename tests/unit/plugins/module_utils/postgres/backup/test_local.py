"""postgres/backup/local.py: pg_dump on this host; failures leave nothing at dest, its workers
never outlive it, and check mode checks what the real run needs.

The behaviour against a real server is covered by tests/integration/test_pg_backup.py.
"""

from __future__ import annotations

import json
import os
import signal
import time

import pytest
from pg_unit_support import (
    FOREIGN_DIRECTORY,
    FORKING_TOOL,
    PASSWORD,
    fake_connections,
    fake_tools,
    kill_if_running,
    make_backup,
    params,
    process_gone,
    worker_pid,
    write_script,
)

from ansible_collections.ceres.rollout.plugins.module_utils.common import processes
from ansible_collections.ceres.rollout.plugins.module_utils.postgres.backup import common as pg_backup_common
from ansible_collections.ceres.rollout.plugins.module_utils.postgres.backup import local as pg_backup_local
from ansible_collections.ceres.rollout.plugins.module_utils.postgres.destination import StagedBackup
from ansible_collections.ceres.rollout.plugins.module_utils.postgres.errors import (
    ClientToolError,
    DestinationError,
    DumpFailed,
    InsufficientPrivilege,
    InvalidRequest,
)

# --- pg_dump failures: nothing at dest, no temporary output, no secret in the message -----


@pytest.mark.parametrize(
    "exit_how, message",
    [
        ("sys.exit(1)", r"pg_dump exited with status 1: pg_dump: error: could not write.*No space left on device"),
        ("os.kill(os.getpid(), signal.SIGKILL)", r"pg_dump was killed by SIGKILL"),
    ],
)
def test_a_failed_dump_leaves_nothing_behind(tmp_path, exit_how, message):
    fake_pg_dump = write_script(
        tmp_path / "pg_dump",
        """
        import os, signal, sys
        output = sys.argv[1]
        with open(output, "wb") as handle:
            handle.write(b"PGDMP half a dump")
        sys.stderr.write("pg_dump: error: could not write to output file: No space left on device (password %s)\\n"
                         % os.environ["PGPASSWORD"])
        sys.stderr.flush()
        {exit_how}
    """.replace("{exit_how}", exit_how),
    )
    backups = tmp_path / "backups"
    backups.mkdir()
    dest = backups / "ceres.dump"
    connection = params()

    with pytest.raises(DumpFailed, match=message) as raised:
        with StagedBackup(str(dest)) as staged:
            dump = pg_backup_local.DumpProcess(
                [fake_pg_dump, staged.temp_path], connection.libpq_environment(), connection.secrets()
            )
            dump.wait()

    assert PASSWORD not in str(raised.value)
    assert "********" in str(raised.value)
    assert "nothing was written to dest" in str(raised.value)
    assert os.listdir(backups) == []


def test_module_results_report_row_counts_per_table(tmp_path):
    path, manifest = make_backup(tmp_path)
    result = pg_backup_common.BackupResult(
        path=path, manifest_path=path + ".manifest.json", manifest=manifest, duration_s=1.5
    ).module_result()
    assert result["tables"] == {"public.orders": 120000, "billing.Ünïcode": 3}
    assert result["verified"] is True and result["verify"] == "list"
    assert result["sha256"] == manifest["sha256"] and result["size_bytes"] == os.path.getsize(path)
    assert json.dumps(result)


@pytest.mark.parametrize("leader", ["os.kill(os.getpid(), signal.SIGKILL)", "sys.exit(1)"])
def test_the_workers_of_a_failed_pg_dump_are_stopped_with_it(tmp_path, leader):
    fake_pg_dump = write_script(tmp_path / "pg_dump", FORKING_TOOL.replace("{leader}", leader))
    pid_file = str(tmp_path / "worker.pid")
    connection = params()
    dump = pg_backup_local.DumpProcess([fake_pg_dump, pid_file], connection.libpq_environment(), connection.secrets())
    worker = worker_pid(pid_file)
    try:
        with pytest.raises(DumpFailed):
            dump.wait()
        assert process_gone(worker), "the worker outlived its failed leader"
    finally:
        kill_if_running([worker])


def test_stopping_pg_dump_stops_its_workers_and_kills_what_ignores_sigterm(tmp_path, monkeypatch):
    monkeypatch.setattr(processes, "STOP_GRACE_SECONDS", 0.5)
    fake_pg_dump = write_script(tmp_path / "pg_dump", FORKING_TOOL.replace("{leader}", "time.sleep(120)"))
    pid_file = str(tmp_path / "worker.pid")
    connection = params()
    dump = pg_backup_local.DumpProcess(
        [fake_pg_dump, pid_file, "stubborn"], connection.libpq_environment(), connection.secrets()
    )
    worker = worker_pid(pid_file)
    # what stop() does, in order: the signals sent to pg_dump's process group, and its naps after each
    signals, naps = [], []
    real_killpg, real_sleep = os.killpg, time.sleep

    def killpg(group, signum):
        if signum != 0 and group == dump.process.pid:
            signals.append(signum)
        real_killpg(group, signum)

    def sleep(seconds):
        naps.append((len(signals), seconds))
        real_sleep(seconds)

    try:
        assert dump.failure_if_exited() is None
        monkeypatch.setattr(processes.os, "killpg", killpg)
        monkeypatch.setattr(processes.time, "sleep", sleep)
        dump.stop()
        assert signals == [signal.SIGTERM, signal.SIGCONT, signal.SIGKILL]
        # SIGKILL came once the grace was over, not later: the naps between SIGTERM and SIGKILL add up to
        # STOP_GRACE_SECONDS at most, plus the one nap (at most 0.1 s) that ended past it
        assert sum(seconds for sent, seconds in naps if sent == 2) <= 0.5 + 0.1
        assert dump.process.returncode == -signal.SIGTERM
        assert process_gone(worker), "a worker ignoring SIGTERM was not killed"
    finally:
        kill_if_running([dump.process.pid, worker])


# --- check mode checks what the real run needs ------------------------------------------------


def fake_server(monkeypatch, can_create_databases=True, answers=None):
    everything = {
        "current_setting('server_version')": [("ceres_db", "15.18", 150018, "UTF8", "C.UTF-8", "C.UTF-8")],
        "rolcreatedb": [("backup", can_create_databases)],
    }
    everything.update(answers or {})
    fake_connections(monkeypatch, everything)


def backup_request(tmp_path, **options):
    return pg_backup_common.BackupRequest(params(), str(tmp_path / "ceres.dump"), **options)


@pytest.mark.parametrize(
    "backup_format, verify, tools, message",
    [
        ("custom", "list", {}, r"pg_restore was not found"),
        ("directory", "restore", {"pg_restore": "14.9"}, r"pg_restore 15 or newer is needed.*\(14\)"),
        ("tar", "list", {"pg_restore": "14.9"}, r"pg_restore 15 or newer is needed"),
        ("plain", "restore", {}, r"psql was not found"),
    ],
)
def test_check_mode_fails_without_the_tools_verification_needs(
    tmp_path, monkeypatch, backup_format, verify, tools, message
):
    fake_server(monkeypatch)
    fake_tools(tmp_path, monkeypatch, pg_dump="15.18", **tools)
    with pytest.raises(ClientToolError, match=message):
        pg_backup_local.check_backup(backup_request(tmp_path, backup_format=backup_format, verify=verify))


@pytest.mark.parametrize(
    "backup_format, verify, tools",
    [
        ("custom", "none", {}),
        ("plain", "list", {}),
        ("custom", "list", {"pg_restore": "16.1"}),
        ("plain", "restore", {"psql": "15.18"}),
    ],
)
def test_check_mode_passes_with_the_tools_verification_needs(tmp_path, monkeypatch, backup_format, verify, tools):
    fake_server(monkeypatch)
    fake_tools(tmp_path, monkeypatch, pg_dump="15.18", **tools)
    server = pg_backup_local.check_backup(backup_request(tmp_path, backup_format=backup_format, verify=verify))
    assert server.major == 15


def test_check_mode_of_verify_restore_needs_a_role_that_may_create_databases(tmp_path, monkeypatch):
    fake_tools(tmp_path, monkeypatch, pg_dump="15.18", pg_restore="15.18")
    fake_server(monkeypatch, can_create_databases=False)
    pg_backup_local.check_backup(backup_request(tmp_path, verify="list"))
    with pytest.raises(InsufficientPrivilege, match='login role "backup" may not create databases .*CREATEDB'):
        pg_backup_local.check_backup(backup_request(tmp_path, verify="restore"))
    fake_server(monkeypatch, can_create_databases=True)
    pg_backup_local.check_backup(backup_request(tmp_path, verify="restore"))


def test_check_mode_refuses_a_foreign_directory_at_dest_with_force(tmp_path, monkeypatch):
    fake_server(monkeypatch)
    fake_tools(tmp_path, monkeypatch, pg_dump="15.18", pg_restore="15.18")
    (tmp_path / "ceres.dump").mkdir()
    (tmp_path / "ceres.dump" / "other.dump").write_text("precious")
    with pytest.raises(DestinationError, match=FOREIGN_DIRECTORY):
        pg_backup_local.check_backup(backup_request(tmp_path, force=True))
    assert (tmp_path / "ceres.dump" / "other.dump").read_text() == "precious"


def test_a_backup_request_with_jobs_below_one_is_refused(tmp_path):
    with pytest.raises(InvalidRequest, match="^jobs must be 1 or more$"):
        backup_request(tmp_path, jobs=0)


def test_a_pod_request_is_not_run_on_this_host(tmp_path):
    request = backup_request(tmp_path, pod=object())
    with pytest.raises(InvalidRequest, match="runs through pg_backup_pod"):
        pg_backup_local.run_backup(request)
    with pytest.raises(InvalidRequest, match="runs through pg_backup_pod"):
        pg_backup_local.check_mode_backup_result(request)
    assert os.listdir(tmp_path) == []
