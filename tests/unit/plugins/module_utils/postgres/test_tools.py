"""postgres/tools.py: finding the client tools and their versions; the command lines built for them
(pg_backup_common, pg_load, pg_verify) never carry a password.
"""

from __future__ import annotations

import pytest
from pg_unit_support import PASSWORD, params, write_script

from ansible_collections.ceres.rollout.plugins.module_utils.postgres import load as pg_load
from ansible_collections.ceres.rollout.plugins.module_utils.postgres import tools as pg_tools
from ansible_collections.ceres.rollout.plugins.module_utils.postgres import verify as pg_verify
from ansible_collections.ceres.rollout.plugins.module_utils.postgres.backup import common as pg_backup_common
from ansible_collections.ceres.rollout.plugins.module_utils.postgres.errors import ClientToolError, InvalidRequest


def test_no_command_line_contains_the_password():
    connection = params()
    command_lines = [
        pg_backup_common.pg_dump_argv(
            "/bin/pg_dump", "/b/.x.partial-1", "directory", "0000-1", connection.database, jobs=2, compress="5"
        ),
        pg_load.pg_restore_argv("/bin/pg_restore", "/b/x", "custom", "scratch", jobs=2, clean=True, no_owner=True),
        pg_verify.pg_restore_list_argv("/bin/pg_restore", "/b/x", "tar"),
        pg_load.psql_restore_argv("/bin/psql", "scratch", "/b/x.sql"),
    ]
    for argv in command_lines:
        assert all(PASSWORD not in argument for argument in argv), argv
        assert all("password" not in argument.lower() or argument == "--no-password" for argument in argv), argv


def test_pg_dump_argv_shares_the_snapshot_and_only_parallelises_directories():
    directory = pg_backup_common.pg_dump_argv("pg_dump", "/t", "directory", "00000003-1B-1", "db", jobs=3)
    custom = pg_backup_common.pg_dump_argv("pg_dump", "/t", "custom", "00000003-1B-1", "db", jobs=3)
    assert "--snapshot=00000003-1B-1" in directory
    assert "--jobs=3" in directory
    assert not any(argument.startswith("--jobs") for argument in custom)
    assert "--format=custom" in custom and "--file=/t" in custom and "--no-password" in custom
    assert not any(argument.startswith("--compress") for argument in custom)


def test_pg_restore_argv_is_atomic_with_one_job_and_parallel_otherwise():
    single = pg_load.pg_restore_argv("pg_restore", "/b", "custom", "db")
    parallel = pg_load.pg_restore_argv("pg_restore", "/b", "directory", "db", jobs=4, clean=True)
    tar = pg_load.pg_restore_argv("pg_restore", "/b", "tar", "db", jobs=4)
    assert "--exit-on-error" in single and "--single-transaction" in single
    assert "--jobs=4" in parallel and "--single-transaction" not in parallel
    assert "--clean" in parallel and "--if-exists" in parallel
    assert "--single-transaction" in tar and not any(argument.startswith("--jobs") for argument in tar)
    assert single[-1] == "/b"


# --- client tools -------------------------------------------------------------------------


def test_major_from_path_reads_packaged_layouts():
    assert pg_tools.major_from_path("/usr/lib/postgresql/15/bin/pg_dump") == 15
    assert pg_tools.major_from_path("/usr/pgsql-16/bin/pg_restore") == 16
    assert pg_tools.major_from_path("/usr/bin/pg_dump") is None
    assert pg_tools.parse_tool_major("pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)") == 15
    assert pg_tools.parse_tool_major("pg_dump (PostgreSQL) 17beta1") == 17
    assert pg_tools.parse_tool_major("garbage") is None


def test_find_client_tool_refuses_a_pg_dump_older_than_the_server(tmp_path, monkeypatch):
    old_dump = write_script(tmp_path / "pg_dump", 'print("pg_dump (PostgreSQL) 14.9")')
    monkeypatch.setattr(pg_tools, "tool_candidates", lambda name, major: [old_dump])

    with pytest.raises(ClientToolError, match=r"pg_dump 15 or newer.*\(14\)"):
        pg_tools.find_client_tool("pg_dump", 15, must_not_be_older=True)
    assert pg_tools.find_client_tool("pg_dump", 14, must_not_be_older=True).major == 14
    assert pg_tools.find_client_tool("pg_dump", 15).version == "pg_dump (PostgreSQL) 14.9"


def test_find_client_tool_names_where_it_looked(monkeypatch):
    monkeypatch.setattr(pg_tools, "tool_candidates", lambda name, major: ["/nonexistent/pg_restore"])
    with pytest.raises(ClientToolError, match=r"pg_restore was not found.*PostgreSQL 15 client tools"):
        pg_tools.find_client_tool("pg_restore", 15)


@pytest.mark.parametrize("jobs, refused", [(1, False), (8, False), (0, True), (-3, True)])
def test_jobs_must_be_one_or_more(jobs, refused):
    if refused:
        with pytest.raises(InvalidRequest, match="^jobs must be 1 or more$"):
            pg_tools.check_jobs(jobs)
    else:
        pg_tools.check_jobs(jobs)
