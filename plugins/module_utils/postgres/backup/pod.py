# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A backup with pg_dump running in the database's pod (pod mode, BackupRequest.pod).

pg_dump runs in the pod through the Kubernetes exec API (k8s/exec.py) and its stdout
streams, chunk by chunk, into the staged file local mode uses (PodDumpStream). Consistency is
local mode's: psql in the same pod, driven through its stdin (PodSqlSession), opens a
read-only REPEATABLE READ transaction and exports its snapshot; pg_dump imports it
(--snapshot) and the same transaction lists and counts the tables with the same statements
(PodCursor), so the counts describe exactly the rows in the dump. The transaction stays open
until pg_dump has finished. Verification and publication run here, on the downloaded file,
as in local mode (pg_backup_common).
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
import typing as t
import uuid
from dataclasses import dataclass, field

from ansible_collections.ceres.rollout.plugins.module_utils.common.processes import STOP_GRACE_SECONDS, tail
from ansible_collections.ceres.rollout.plugins.module_utils.common.redaction import redact
from ansible_collections.ceres.rollout.plugins.module_utils.k8s.client import (
    K8sClient,
)
from ansible_collections.ceres.rollout.plugins.module_utils.k8s.errors import (
    K8sError,
)
from ansible_collections.ceres.rollout.plugins.module_utils.k8s.exec import (
    ChannelDemux,
    ExecSession,
    StderrTail,
    capture_command,
    resolve_exec_target,
    run_command,
)
from ansible_collections.ceres.rollout.plugins.module_utils.postgres.args import POD_SOURCE_ARGUMENT_SPEC
from ansible_collections.ceres.rollout.plugins.module_utils.postgres.backup.common import (
    BackupRun,
    count_tables_while_dumping,
    pg_dump_argv,
    planned_backup_result,
)
from ansible_collections.ceres.rollout.plugins.module_utils.postgres.catalog import quote_literal, read_server_info
from ansible_collections.ceres.rollout.plugins.module_utils.postgres.connection import (
    SESSION_SETTINGS,
    conninfo_for_database,
)
from ansible_collections.ceres.rollout.plugins.module_utils.postgres.destination import StagedBackup, check_destination
from ansible_collections.ceres.rollout.plugins.module_utils.postgres.errors import (
    ClientToolError,
    ConnectionFailed,
    DumpFailed,
    InvalidRequest,
    PostgresBackupError,
)
from ansible_collections.ceres.rollout.plugins.module_utils.postgres.tools import parse_tool_major
from ansible_collections.ceres.rollout.plugins.module_utils.postgres.verify import find_verification_tools

POD_FORMATS = ("custom", "tar", "plain")


class PodUnavailable(PostgresBackupError):
    """The pod is missing or not Running and Ready, or the Kubernetes API refused or failed."""


@dataclass(frozen=True)
class PodSource:
    """Where pg_dump runs in pod mode, and how to reach the Kubernetes API (auth_options())."""

    namespace: str
    deployment: str | None = None
    pod: str | None = None
    container: str | None = None
    pg_dump_path: str = "pg_dump"
    psql_path: str = "psql"
    auth: dict = field(default_factory=dict, repr=False)
    # The module run's warn(): told when the API server's certificate is not verified.
    warn: t.Callable[[str], None] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_module_params(cls, pod_options, auth, warn=None):
        return cls(auth=dict(auth), warn=warn, **{name: pod_options.get(name) for name in POD_SOURCE_ARGUMENT_SPEC})

    def secrets(self):
        proxy_headers = self.auth.get("proxy_headers") or {}
        values = (
            self.auth.get("api_key"),
            self.auth.get("password"),
            proxy_headers.get("proxy_basic_auth"),
            proxy_headers.get("basic_auth"),
        )
        return [value for value in values if isinstance(value, str) and value]


@dataclass(frozen=True)
class PodTool:
    """pg_dump in the pod: its path there and its --version output."""

    path: str
    version: str


def password_given_for_pod(connection):
    """Whether the task itself gives a password. One that is this host's PGPASSWORD (the
    env fallback of login_password) is this host's, for verify=restore; it is never sent."""
    return connection.password is not None and connection.password != os.environ.get("PGPASSWORD")


def check_pod_request(request):
    """Refuse option combinations pod mode cannot honour."""
    if request.backup_format not in POD_FORMATS:
        raise InvalidRequest(
            "format=%s cannot be used with pod: pg_dump in the pod would write the directory into the pod's own"
            " filesystem; use format custom, tar or plain, which stream out" % request.backup_format
        )
    if password_given_for_pod(request.connection):
        raise InvalidRequest(
            "login_password cannot be used with pod: pg_dump in the pod would need it as an argument or environment"
            " variable of the exec request, which the Kubernetes API server logs; the pod's own environment or its"
            " server's local authentication logs pg_dump in (login_user is passed as --username)"
        )
    if request.verify == "restore" and not request.connection.effective_host:
        raise InvalidRequest(
            "verify=restore with pod restores the dump into a scratch database on a server this host reaches: set"
            " login_host (or PGHOST) and the login options for that server, or use verify=list"
        )


@contextlib.contextmanager
def kubernetes_errors_as(error_class, secrets):
    """Turn an error of the Kubernetes client raised inside the block into error_class."""
    try:
        yield
    except K8sError as error:
        raise error_class(redact(str(error), secrets))


def pod_psql_argv(psql_path, database, username):
    argv = [
        psql_path,
        "--no-psqlrc",
        "--quiet",
        "--no-align",
        "--tuples-only",
        "--no-password",
        "--set=ON_ERROR_STOP=1",
    ]
    if database:
        argv.append("--dbname=%s" % conninfo_for_database(database))
    if username:
        argv.append("--username=%s" % username)
    return argv


def session_settings_sql():
    """SESSION_SETTINGS as SET statements (psql in a pod cannot be given PGOPTIONS), with a
    UTF-8 client encoding for the JSON results."""
    settings = SESSION_SETTINGS + (("client_encoding", "UTF8"),)
    return "".join("SET %s TO %s;\n" % (name, quote_literal(value)) for name, value in settings)


def _row_values(pairs):
    """json object_pairs_hook: a json_agg row as the list of its column values, in column
    order (names may repeat, e.g. two current_setting() columns)."""
    return [value for _name, value in pairs]


class PodCursor:
    """The cursor interface read_server_info(), list_user_tables() and read_table_stats()
    use, over a PodSqlSession: local mode's statements run unchanged in the pod."""

    def __init__(self, session):
        self.session = session
        self.rows = []

    def execute(self, statement):
        self.rows = self.session.query(statement)

    def fetchone(self):
        return tuple(self.rows[0]) if self.rows else None

    def fetchall(self):
        return [tuple(row) for row in self.rows]


class PodSqlSession:
    """psql in the pod, driven through its stdin: pod mode's SnapshotSession.

    Each statement is followed by an \\echo of a random marker, and its rows come back as one
    json_agg document, so the output is parsed without depending on psql's formatting. The
    session ends with COMMIT and \\q: not every container runtime passes the end of stdin on,
    so psql must never need it to exit."""

    def __init__(self, client, target, psql_path, database, username, secrets):
        self.client = client
        self.target = target
        self.argv = pod_psql_argv(psql_path, database, username)
        self.secrets = secrets
        self.what = "psql in %s" % target.describe()
        self.cursor = PodCursor(self)
        self.error_class = ConnectionFailed
        self.doing = "starting the snapshot transaction"
        self.snapshot_id = None
        self.exec_session = None
        self.finished = False
        self.stdout = bytearray()
        self.stderr = StderrTail()
        self.demux = ChannelDemux(self.stdout.extend, self.stderr.append)

    def __enter__(self):
        try:
            self.exec_session = ExecSession.open(self.client, self.target, self.argv, stdin=True, what=self.what)
        except K8sError as error:
            raise PodUnavailable(redact(str(error), self.secrets))
        try:
            self._send(session_settings_sql() + "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;\n")
            self.snapshot_id = self.query("SELECT pg_catalog.pg_export_snapshot()")[0][0]
        except BaseException:
            self._abandon()
            raise
        # From here on, a failing statement means the dump's snapshot could not be counted.
        self.error_class = DumpFailed
        self.doing = "counting rows in the dump's snapshot"
        return self

    def __exit__(self, *exc_info):
        if not self.finished:
            self._abandon()
        return False

    def query(self, statement):
        """The rows of one statement, each a list of column values."""
        output = self._send("SELECT coalesce(json_agg(q), '[]') FROM (%s) AS q;\n" % statement.strip().rstrip(";"))
        try:
            return json.loads(output, object_pairs_hook=_row_values)
        except ValueError:
            raise self._error("%s printed %r, not the JSON rows expected" % (self.what, output[:200]))

    def finish(self):
        """COMMIT, quit psql and require its exit status 0."""
        self.doing = "ending the snapshot transaction"
        self._write(b"COMMIT;\n\\q\n")
        while self._receive():
            pass
        status = self._status()
        self.finished = True
        self.exec_session.close()
        if not status.success:
            raise self._failure(status)

    def _send(self, text):
        """Send statements and an \\echo of a marker; return what psql printed before the marker."""
        terminator = ("ceres-end-of-output-%s\n" % uuid.uuid4().hex).encode("ascii")
        self._write(text.encode("utf-8") + b"\\echo " + terminator)
        while True:
            index = self.stdout.find(terminator)
            if index >= 0:
                output = bytes(self.stdout[:index])
                del self.stdout[: index + len(terminator)]
                return output.decode("utf-8", "replace")
            if not self._receive():
                raise self._failure(self._status())

    def _write(self, data):
        try:
            self.exec_session.write_stdin(data)
        except K8sError as error:
            raise self._error(str(error))

    def _receive(self):
        """Feed the next message to the demultiplexer; False when psql's stream ended."""
        try:
            message = self.exec_session.receive()
        except K8sError as error:
            raise self._error(str(error))
        if message is None:
            return False
        self.demux.feed(message)
        return True

    def _status(self):
        try:
            return self.demux.status()
        except K8sError as error:
            detail = self.stderr.text()
            raise self._error("%s: %s%s" % (self.what, error, ": " + detail if detail else ""))

    def _failure(self, status):
        detail = self.stderr.text()
        return self._error("%s %s%s" % (self.what, status.describe(), ": " + detail if detail else ""))

    def _error(self, message):
        return self.error_class(redact("%s failed: %s" % (self.doing, message), self.secrets))

    def _abandon(self):
        """Roll back and quit psql, best effort, and drop the stream (a psql the runtime kept
        waiting on stdin would hold the snapshot open otherwise)."""
        self.finished = True
        if self.exec_session is None:
            return
        try:
            self.exec_session.write_stdin(b"ROLLBACK;\n\\q\n")
        except K8sError:
            pass
        self.exec_session.close_stdin()
        self.exec_session.close()


class PodDumpStream:
    """pg_dump running in the pod; a thread streams its stdout into the staged output."""

    def __init__(self, client, target, argv, output_path, secrets):
        self.output_path = output_path
        self.secrets = secrets
        self.what = "pg_dump in %s" % target.describe()
        try:
            self.exec_session = ExecSession.open(client, target, argv, what=self.what)
        except K8sError as error:
            raise DumpFailed(
                redact("%s could not start: %s; nothing was written to dest" % (self.what, error), secrets)
            )
        self.result = None
        self.error = None
        self.thread = threading.Thread(target=self._stream, name="ceres pg_dump stream", daemon=True)
        self.thread.start()

    def _stream(self):
        try:
            # 0600 from the start, like pg_dump's own files in local mode.
            descriptor = os.open(self.output_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "wb") as handle:
                self.result = run_command(self.exec_session, handle.write)
        except BaseException as error:  # pylint: disable=broad-except  # handed to the main thread
            self.error = error
        finally:
            self.exec_session.close()

    def failure_if_exited(self):
        """A DumpFailed when the stream has already ended badly, else None."""
        if self.thread.is_alive():
            return None
        return self._failure()

    def wait(self):
        self.thread.join()
        failure = self._failure()
        if failure is not None:
            raise failure

    def stop(self):
        self.exec_session.abort()
        self.thread.join(STOP_GRACE_SECONDS)

    def _failure(self):
        if self.error is not None:
            if isinstance(self.error, OSError):
                reason = "writing the dump to %s failed: %s" % (self.output_path, self.error.strerror or self.error)
            else:
                reason = "%s failed: %s" % (self.what, self.error)
        elif not self.result.status.success:
            reason = "%s %s" % (self.what, self.result.status.describe())
            if self.result.stderr:
                reason += ": " + tail(self.result.stderr)
        elif self.result.stdout_bytes == 0:
            reason = "%s exited with status 0 but wrote nothing" % self.what
        else:
            return None
        return DumpFailed(redact(reason + "; nothing was written to dest", self.secrets))


def pod_pg_dump(client, target, pg_dump_path, secrets):
    """pg_dump in the pod and its version (`pg_dump --version` run there)."""
    what = "%s --version in %s" % (pg_dump_path, target.describe())
    try:
        output, result = capture_command(client, target, [pg_dump_path, "--version"], what=what)
        result.check(what)
    except K8sError as error:
        raise ClientToolError(redact("%s is not usable: %s" % (pg_dump_path, error), secrets))
    return PodTool(path=pg_dump_path, version=output.decode("utf-8", "replace").strip())


def check_pod_backup(request):
    """Everything pod mode checks before dumping (all of check mode): the options, dest, and
    a Running and Ready pod. Returns the ExecTarget."""
    check_pod_request(request)
    check_destination(request.dest, request.force, request.backup_format)
    source = request.pod
    with kubernetes_errors_as(PodUnavailable, request.connection.secrets() + source.secrets()):
        client = K8sClient.from_auth(source.auth, warn=source.warn)
        try:
            return resolve_exec_target(client, source.namespace, source.deployment, source.pod, source.container)
        finally:
            client.close()


def pod_source_record(target):
    return dict(mode="pod", **target.as_dict())


def check_mode_pod_backup_result(request):
    clock = time.monotonic()
    target = check_pod_backup(request)
    return planned_backup_result(request, request.connection.database, pod_source_record(target), clock)


def run_pod_backup(request, on_scratch_restored=None):
    """run_backup() with pg_dump (and the counting psql) running in request.pod."""
    run = BackupRun(request, on_scratch_restored)
    dest = os.path.abspath(request.dest)
    check_pod_request(request)
    check_destination(dest, request.force, request.backup_format)
    params, source = request.connection, request.pod
    secrets = params.secrets() + source.secrets()
    with_content_hash = request.verify == "restore"

    with kubernetes_errors_as(PodUnavailable, secrets):
        client = K8sClient.from_auth(source.auth, warn=source.warn)
    try:
        with kubernetes_errors_as(PodUnavailable, secrets):
            target = resolve_exec_target(client, source.namespace, source.deployment, source.pod, source.container)
        pg_dump = pod_pg_dump(client, target, source.pg_dump_path, secrets)
        with StagedBackup(dest) as staged:
            with PodSqlSession(client, target, source.psql_path, params.database, params.user, secrets) as session:
                server = read_server_info(session.cursor)
                tool_major = parse_tool_major(pg_dump.version)
                if tool_major is not None and tool_major < server.major:
                    raise ClientToolError(
                        "%s in %s is version %s; a PostgreSQL %s server needs pg_dump %s or newer"
                        % (pg_dump.path, target.describe(), tool_major, server.major, server.major)
                    )
                find_verification_tools(request.backup_format, request.verify, server.major)
                argv = pg_dump_argv(
                    pg_dump.path,
                    None,
                    request.backup_format,
                    session.snapshot_id,
                    server.database,
                    compress=request.compress,
                    username=params.user,
                )
                dump = PodDumpStream(client, target, argv, staged.temp_path, secrets)
                try:
                    # pg_dump is streaming; the tables are listed and counted meanwhile, in
                    # the very snapshot it dumps.
                    tables, table_stats = count_tables_while_dumping(session.cursor, dump, with_content_hash)
                except BaseException:
                    dump.stop()
                    raise
                session.finish()
            return run.finish(
                staged, server, pg_dump, session.snapshot_id, tables, table_stats, source=pod_source_record(target)
            )
    finally:
        client.close()
