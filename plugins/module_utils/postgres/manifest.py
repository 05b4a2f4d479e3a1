# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A backup's manifest, <backup path>.manifest.json: what pg_backup writes last and what
pg_restore checks first.

It records the database, the server and pg_dump versions, the format, the snapshot, the
start and end times, the size and sha256 of every file (and one sha256 of the whole backup),
and every table's row count (and content hash) taken in the dump's own snapshot.
"""

from __future__ import annotations

import json
import os

from ansible_collections.ceres.rollout.plugins.module_utils.common.atomic_files import fsync_path
from ansible_collections.ceres.rollout.plugins.module_utils.common.digests import (
    digest_field,
    digest_file,
    files_under,
    listing_sha256,
)
from ansible_collections.ceres.rollout.plugins.module_utils.postgres.catalog import CONTENT_HASH_ALGORITHM, stats_dict
from ansible_collections.ceres.rollout.plugins.module_utils.postgres.errors import ManifestError

BACKUP_FORMATS = ("custom", "directory", "tar", "plain")
MANIFEST_SUFFIX = ".manifest.json"
MANIFEST_VERSION = 1
MANIFEST_REQUIRED_KEYS = ("manifest_version", "database", "format", "sha256", "files", "tables")
LOCAL_SOURCE = {"mode": "local"}


def manifest_path_for(backup_path):
    """The manifest sits next to the backup: <backup path>.manifest.json."""
    return backup_path.rstrip(os.sep) + MANIFEST_SUFFIX


def backup_file_names(path, backup_format):
    """{name: absolute path} of the files making up a backup. A single-file backup has one
    entry named after the file; a directory backup lists its files by relative name."""
    if backup_format != "directory":
        return {os.path.basename(path.rstrip(os.sep)): path}
    return files_under(path)


def digest_backup(path, backup_format, sync=False, single_file_name=None):
    """{name: FileDigest} of every file of a backup (fsynced when sync, with the directory).
    single_file_name names the one file of a non-directory backup (default: its basename)."""
    names = backup_file_names(path, backup_format)
    if single_file_name is not None and backup_format != "directory":
        names = {single_file_name: path}
    digests = {name: digest_file(full, sync=sync) for name, full in sorted(names.items())}
    if sync and backup_format == "directory":
        fsync_path(path)
    return digests


def backup_sha256(files, backup_format):
    """The backup's single sha256: the file's own for a single-file backup; for a directory,
    the sha256 of the lines "<sha256>  <name>\\n" sorted by name (the output of
    `sha256sum` run inside the directory over its files in C-locale order)."""
    if backup_format != "directory":
        (digest,) = files.values()
        return digest_field(digest, "sha256")
    return listing_sha256(files)


def build_manifest(
    server, pg_dump, backup_format, compress, snapshot_id, files, tables, verified, started_at, finished_at, source=None
):
    """The manifest document; source says where pg_dump ran ({"mode": "local"}, or for pod mode
    {"mode": "pod", "namespace", "pod", "container"})."""
    return {
        "source": dict(source or LOCAL_SOURCE),
        "manifest_version": MANIFEST_VERSION,
        "created_by": "ceres.rollout.pg_backup",
        "database": server.database,
        "server_version": server.version,
        "server_version_num": server.version_num,
        "encoding": server.encoding,
        "lc_collate": server.lc_collate,
        "lc_ctype": server.lc_ctype,
        "pg_dump_version": pg_dump.version,
        "format": backup_format,
        "compress": compress,
        "snapshot": snapshot_id,
        "started_at": started_at,
        "finished_at": finished_at,
        "verified": verified,
        "sha256": backup_sha256(files, backup_format),
        "size_bytes": sum(digest_field(digest, "size_bytes") for digest in files.values()),
        "files": {
            name: {"size_bytes": digest_field(digest, "size_bytes"), "sha256": digest_field(digest, "sha256")}
            for name, digest in sorted(files.items())
        },
        "content_hash_algorithm": CONTENT_HASH_ALGORITHM,
        "tables": {key: stats_dict(stats) for key, stats in sorted(tables.items())},
    }


def load_manifest(path):
    try:
        with open(path, encoding="utf-8") as handle:
            manifest = json.load(handle)
    except FileNotFoundError:
        raise ManifestError("the manifest %s is missing; a backup without a manifest is incomplete" % path)
    except (OSError, ValueError) as error:
        raise ManifestError("the manifest %s cannot be read: %s" % (path, error))
    if not isinstance(manifest, dict):
        raise ManifestError("the manifest %s is not a JSON object" % path)
    missing = [key for key in MANIFEST_REQUIRED_KEYS if key not in manifest]
    if missing:
        raise ManifestError("the manifest %s lacks %s" % (path, ", ".join(missing)))
    if manifest["manifest_version"] != MANIFEST_VERSION:
        raise ManifestError(
            "the manifest %s has version %r; this collection reads version %d"
            % (path, manifest["manifest_version"], MANIFEST_VERSION)
        )
    if manifest["format"] not in BACKUP_FORMATS:
        raise ManifestError("the manifest %s names an unknown format %r" % (path, manifest["format"]))
    return manifest


def backup_integrity_problems(path, manifest):
    """Everything wrong with the backup at path compared with its manifest: missing,
    unexpected, resized or altered files, and the overall sha256."""
    backup_format = manifest["format"]
    is_directory = os.path.isdir(path)
    if not os.path.lexists(path):
        return ["the backup %s does not exist" % path]
    if is_directory != (backup_format == "directory"):
        return [
            "the manifest says format %s but %s is %s"
            % (backup_format, path, "a directory" if is_directory else "a file")
        ]
    expected = manifest["files"]
    if backup_format == "directory":
        actual_names = backup_file_names(path, backup_format)
    elif len(expected) != 1:
        return ["the manifest lists %d files for a single-file backup" % len(expected)]
    else:
        # The file is checked under the manifest's name: it may have been renamed with its manifest.
        actual_names = {next(iter(expected)): path}
    problems = []
    for name in sorted(set(expected) - set(actual_names)):
        problems.append("file %s is missing" % name)
    for name in sorted(set(actual_names) - set(expected)):
        problems.append("file %s is not in the manifest" % name)
    digests = {}
    for name in sorted(set(expected) & set(actual_names)):
        digest = digest_file(actual_names[name])
        digests[name] = digest
        if digest.size_bytes != expected[name]["size_bytes"]:
            problems.append(
                "file %s has %d bytes, the manifest says %d" % (name, digest.size_bytes, expected[name]["size_bytes"])
            )
        elif digest.sha256 != expected[name]["sha256"]:
            problems.append(
                "file %s has sha256 %s, the manifest says %s" % (name, digest.sha256, expected[name]["sha256"])
            )
    if not problems and backup_sha256(digests, backup_format) != manifest["sha256"]:
        problems.append("the backup's sha256 does not match the manifest")
    return problems


def verify_backup_integrity(path, manifest):
    problems = backup_integrity_problems(path, manifest)
    if problems:
        raise ManifestError("refusing the backup %s: %s" % (path, "; ".join(problems)))
