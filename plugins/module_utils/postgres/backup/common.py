# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What every backup does, wherever pg_dump runs (pg_backup_local on this host,
pg_backup_pod in the database's pod):

  1. dest is checked (pg_destination.check_destination) before anything is dumped;
  2. a read-only REPEATABLE READ transaction exports its snapshot and pg_dump --snapshot=<id>
     writes to a temporary sibling of dest (pg_destination.StagedBackup) while the same
     transaction counts every table's rows (and, for verify=restore, hashes their content):
     count_tables_while_dumping, so the counts describe exactly the rows in the dump;
  3. the output is fsynced and hashed (sha256 per file) and, side by side, verified (none |
     list | restore, pg_verify) while still under its temporary name: verify_staged;
  4. the manifest is written, fsynced, to a temporary sibling of <dest>.manifest.json; then an
     old backup and its manifest are moved aside, the output is renamed to dest and the
     manifest into place, last, and what was moved aside is removed: publish.
Steps 3 and 4 are BackupRun.finish, the same wherever pg_dump ran.
A failure at any step removes the temporary output and manifest: dest (and its manifest) are
either complete and new or as they were.
"""

from __future__ import annotations

import concurrent.futures
import os
import time
import typing as t
from dataclasses import dataclass

from ansible_collections.ceres.rollout.plugins.module_utils.common.atomic_files import restrict_to_owner
from ansible_collections.ceres.rollout.plugins.module_utils.common.timestamps import utc_timestamp
from ansible_collections.ceres.rollout.plugins.module_utils.postgres.catalog import list_user_tables, read_table_stats
from ansible_collections.ceres.rollout.plugins.module_utils.postgres.connection import (
    ConnectionParams,
    conninfo_for_database,
)
from ansible_collections.ceres.rollout.plugins.module_utils.postgres.destination import check_replaceable
from ansible_collections.ceres.rollout.plugins.module_utils.postgres.errors import DestinationError
from ansible_collections.ceres.rollout.plugins.module_utils.postgres.manifest import (
    build_manifest,
    digest_backup,
    manifest_path_for,
)
from ansible_collections.ceres.rollout.plugins.module_utils.postgres.tools import check_jobs
from ansible_collections.ceres.rollout.plugins.module_utils.postgres.verify import BackupVerifier

if t.TYPE_CHECKING:
    from ansible_collections.ceres.rollout.plugins.module_utils.postgres.backup.pod import PodSource

VERIFY_MODES = ("none", "list", "restore")


@dataclass(frozen=True)
class BackupRequest:
    connection: ConnectionParams
    dest: str
    backup_format: str = "custom"
    jobs: int = 1
    compress: str | None = None
    verify: str = "list"
    force: bool = False
    pod: PodSource | None = None  # pg_dump runs in this pod (pg_backup_pod), else on this host (pg_backup_local)

    def __post_init__(self):
        check_jobs(self.jobs)


@dataclass(frozen=True)
class BackupResult:
    path: str
    manifest_path: str
    manifest: dict
    duration_s: float

    def module_result(self):
        return {
            "changed": True,
            "path": self.path,
            "manifest": self.manifest_path,
            "size_bytes": self.manifest["size_bytes"],
            "sha256": self.manifest["sha256"],
            "duration_s": self.duration_s,
            "tables": {key: stats["rows"] for key, stats in self.manifest["tables"].items()},
            "verified": self.manifest["verified"] != "none",
            "verify": self.manifest["verified"],
            "database": self.manifest["database"],
            "format": self.manifest["format"],
            "source": self.manifest["source"],
        }


def pg_dump_argv(tool_path, output_path, backup_format, snapshot_id, database, jobs=1, compress=None, username=None):
    """pg_dump importing snapshot_id; output_path None writes the dump to stdout (pod mode)."""
    argv = [tool_path, "--no-password", "--format=%s" % backup_format]
    if output_path is not None:
        argv.append("--file=%s" % output_path)
    argv += ["--snapshot=%s" % snapshot_id, "--dbname=%s" % conninfo_for_database(database)]
    if username is not None:
        argv.append("--username=%s" % username)
    if backup_format == "directory" and jobs > 1:
        argv.append("--jobs=%d" % jobs)
    if compress is not None:
        argv.append("--compress=%s" % compress)
    return argv


def count_tables_while_dumping(cursor, dump, with_content_hash):
    """List and count every table in the snapshot the running dump reads, stopping at once
    if the dump fails; then wait for the dump. Returns (tables, stats by table key).
    dump is a DumpProcess (local) or a PodDumpStream (pod): failure_if_exited() and wait()."""
    tables = list_user_tables(cursor)
    table_stats = {}
    for table in tables:
        failure = dump.failure_if_exited()
        if failure is not None:
            raise failure
        table_stats[table.key] = read_table_stats(cursor, table, with_content_hash)
    dump.wait()
    return tables, table_stats


def planned_backup_result(request, database, source, clock):
    """The check-mode result: what a real run would write, and that it would change things."""
    dest = os.path.abspath(request.dest)
    return {
        "changed": True,
        "path": dest,
        "manifest": manifest_path_for(dest),
        "database": database,
        "format": request.backup_format,
        "verify": request.verify,
        "verified": False,
        "duration_s": round(time.monotonic() - clock, 3),
        "source": source,
    }


def verify_staged(staged, request, server, tables, table_stats, on_scratch_restored):
    """Verify the finished dump under its temporary name; returns its {name: FileDigest}."""
    # Backups hold the database's data: 0600 files, 0700 directories (pg_dump already
    # created them so, through the umask; only what differs is changed).
    restrict_to_owner(staged.temp_path)
    verifier = BackupVerifier(
        params=request.connection,
        server=server,
        backup_format=request.backup_format,
        tables=tables,
        table_stats=table_stats,
        jobs=request.jobs,
        on_scratch_restored=on_scratch_restored,
    )
    # Hashing (and fsyncing) the files and verifying them read the same output: run
    # them side by side. Leaving this block waits for both, before any clean-up.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as executor:
        digesting = executor.submit(
            digest_backup, staged.temp_path, request.backup_format, True, os.path.basename(staged.dest)
        )
        verifier.verify(staged.temp_path, request.verify)
        files = digesting.result()
    return files


def publish(staged, request, manifest, clock):
    """Write the manifest beside the verified output, both under temporary names, then move
    the output and the manifest (last) into place (StagedBackup.commit). Until then an old
    backup at dest and its manifest are untouched; a failure leaves them as they were and
    removes the temporary files (when the with-block of staged ends)."""
    # dest was checked before the dump; what is there now is what the renames replace.
    check_replaceable(staged.dest, request.force, request.backup_format)
    try:
        staged.stage_manifest(manifest)
    except OSError as error:
        kept = "; the backup already at dest was left as it was" if os.path.lexists(staged.dest) else ""
        raise DestinationError(
            "could not write the manifest %s (%s); nothing was written to dest%s"
            % (staged.manifest_path, error.strerror or error, kept)
        )
    staged.commit()
    return BackupResult(
        path=staged.dest,
        manifest_path=staged.manifest_path,
        manifest=manifest,
        duration_s=round(time.monotonic() - clock, 3),
    )


class BackupRun:
    """One backup being taken: its request, when it started (wall clock for the manifest,
    monotonic for duration_s) and the verify=restore test hook (see run_backup). finish() is
    steps 3 and 4, the same wherever pg_dump ran."""

    def __init__(self, request, on_scratch_restored=None):
        self.request = request
        self.on_scratch_restored = on_scratch_restored
        self.started_at = utc_timestamp()
        self.clock = time.monotonic()

    def finish(self, staged, server, pg_dump, snapshot_id, tables, table_stats, source=None):
        """Once the dump is complete under its temporary name: verify it, build its manifest
        (source: where pg_dump ran, default local) and publish both. Returns the BackupResult."""
        request = self.request
        files = verify_staged(staged, request, server, tables, table_stats, self.on_scratch_restored)
        manifest = build_manifest(
            server,
            pg_dump,
            request.backup_format,
            request.compress,
            snapshot_id,
            files,
            table_stats,
            request.verify,
            self.started_at,
            utc_timestamp(),
            source=source,
        )
        return publish(staged, request, manifest, self.clock)
