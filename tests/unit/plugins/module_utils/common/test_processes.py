"""processes.py: child processes run in a process group of their own, stopped with their
workers; failures reported without secrets; SIGTERM raised so clean-up runs.
"""

from __future__ import annotations

import os
import signal

import pytest
from pg_unit_support import FORKING_TOOL, kill_if_running, params, process_gone, worker_pid, write_script

from ansible_collections.ceres.rollout.plugins.module_utils.common import processes
from ansible_collections.ceres.rollout.plugins.module_utils.postgres import errors as pg_errors


def test_a_client_tool_failure_is_reported_without_the_password(tmp_path):
    failing = write_script(
        tmp_path / "pg_restore",
        """
        import os, sys
        data = sys.stdin.buffer.read()
        sys.stderr.write("pg_restore: error: bad input (%d bytes) for %s\\n" % (len(data), os.environ["PGPASSWORD"]))
        sys.exit(3)
    """,
    )
    connection = params()
    with pytest.raises(pg_errors.RestoreFailed) as raised:
        processes.run_captured(
            [failing],
            connection.libpq_environment(),
            connection.secrets(),
            pg_errors.RestoreFailed,
            "pg_restore",
            stdin_chunks=iter([b"abc", b"de"]),
        )
    assert str(raised.value) == "pg_restore exited with status 3: pg_restore: error: bad input (5 bytes) for ********"


def test_sigterm_raises_so_clean_up_runs():
    previous = signal.getsignal(signal.SIGTERM)
    with pytest.raises(pg_errors.Interrupted):
        with pg_errors.terminate_raises():
            os.kill(os.getpid(), signal.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) == previous


# --- process groups: the workers of a client tool never outlive it ------------------------


def test_an_interrupted_client_tool_is_stopped_with_its_workers(tmp_path):
    fake_pg_restore = write_script(
        tmp_path / "pg_restore", FORKING_TOOL.replace("{leader}", "sys.stdin.buffer.read(); time.sleep(120)")
    )
    pid_file = str(tmp_path / "worker.pid")
    workers = []

    def chunks():
        workers.append(worker_pid(pid_file))
        yield b"first chunk"
        raise KeyboardInterrupt()  # Ctrl-C while feeding the tool

    connection = params()
    try:
        with pytest.raises(KeyboardInterrupt):
            processes.run_captured(
                [fake_pg_restore, pid_file],
                connection.libpq_environment(),
                connection.secrets(),
                pg_errors.RestoreFailed,
                "pg_restore",
                stdin_chunks=chunks(),
            )
        assert workers and process_gone(workers[0]), "the tool's worker outlived the interruption"
    finally:
        kill_if_running(workers)


def test_the_workers_of_a_failed_client_tool_are_stopped_with_it(tmp_path):
    fake_pg_restore = write_script(tmp_path / "pg_restore", FORKING_TOOL.replace("{leader}", "sys.exit(1)"))
    pid_file = str(tmp_path / "worker.pid")
    try:
        with pytest.raises(pg_errors.VerificationFailed, match="pg_restore exited with status 1"):
            processes.run_captured(
                [fake_pg_restore, pid_file], dict(os.environ), [], pg_errors.VerificationFailed, "pg_restore"
            )
        assert process_gone(worker_pid(pid_file)), "the worker outlived its failed leader"
    finally:
        if os.path.exists(pid_file):
            kill_if_running([worker_pid(pid_file)])


def test_client_tools_run_in_a_process_group_of_their_own(tmp_path):
    tool = write_script(tmp_path / "psql", "import os\nprint(os.getpgid(0), os.getsid(0))\n")
    output = processes.run_captured([tool], dict(os.environ), [], pg_errors.RestoreFailed, "psql")
    group, session = (int(value) for value in output.split())
    assert group != os.getpgid(0) and session != os.getsid(0)


def test_raise_on_sigterm_raises_what_it_is_given_and_restores_the_handler():
    previous = signal.getsignal(signal.SIGTERM)

    class Stop(Exception):
        pass

    with pytest.raises(Stop):
        with processes.raise_on_sigterm(Stop):
            os.kill(os.getpid(), signal.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) == previous


def test_tail_keeps_the_end_of_long_output():
    assert processes.tail("  short \n") == "short"
    assert processes.tail("x" * 10 + "END", limit=5) == "...xxEND"
