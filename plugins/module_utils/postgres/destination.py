# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Where pg_backup writes: what may be at dest (nothing, or with force a previous backup of
the same kind, never anything else), and the staged output that becomes dest and its
manifest only when the backup is complete (StagedBackup)."""

from __future__ import annotations

import os
import stat
import tempfile

from ansible_collections.ceres.rollout.plugins.module_utils.common.atomic_files import CommitFailed, StagedOutput
from ansible_collections.ceres.rollout.plugins.module_utils.postgres.errors import DestinationError, ManifestError
from ansible_collections.ceres.rollout.plugins.module_utils.postgres.manifest import load_manifest, manifest_path_for

DIRECTORY_BACKUP_TOC = "toc.dat"


def probe_directory_writable(directory):
    """Create and remove a file: os.access() says yes to root on most mounts, this does not lie."""
    try:
        descriptor, probe = tempfile.mkstemp(prefix=".ceres-write-probe-", dir=directory)
    except OSError as error:
        raise DestinationError("directory %s is not writable: %s" % (directory, error.strerror))
    os.close(descriptor)
    os.unlink(probe)


def replacement_problem(dest, backup_format):
    """Why what is at dest (or at its manifest path) may not be replaced by a backup of
    backup_format, as a sentence; None when nothing is there or it is a previous backup of the
    same kind: a regular file for a file format; for format=directory, a pg_dump directory
    archive (toc.dat) with its manifest, holding only files that manifest lists."""
    manifest_path = manifest_path_for(dest)
    if os.path.lexists(manifest_path) and not stat.S_ISREG(os.lstat(manifest_path).st_mode):
        return (
            "the manifest path of dest, %s, exists and is not a regular file; remove it or give another dest"
            % manifest_path
        )
    if not os.path.lexists(dest):
        return None
    mode = os.lstat(dest).st_mode
    if stat.S_ISDIR(mode):
        reason = _not_a_directory_backup(dest)
        if reason is not None:
            return (
                "dest %s is an existing directory that is not a previous directory-format backup; give the"
                " backup's own path (%s; nothing was changed)" % (dest, reason)
            )
        if backup_format != "directory":
            return (
                "dest %s is a previous directory-format backup; a %s-format backup cannot replace it (a"
                " file-format backup replaces only a file); give another dest" % (dest, backup_format)
            )
        return None
    if stat.S_ISLNK(mode):
        return "dest %s is a symbolic link; give the backup's own path" % dest
    if not stat.S_ISREG(mode):
        return "dest %s exists and is not a regular file; give the backup's own path" % dest
    if backup_format == "directory":
        return (
            "dest %s is an existing file; a directory-format backup cannot replace it (it replaces only a"
            " previous directory-format backup); give another dest" % dest
        )
    return None


def _not_a_directory_backup(path):
    """Why the directory at path is not a directory-format backup written by pg_backup, else None."""
    if not os.path.isfile(os.path.join(path, DIRECTORY_BACKUP_TOC)):
        return "it holds no %s, so it is no pg_dump directory archive" % DIRECTORY_BACKUP_TOC
    manifest_path = manifest_path_for(path)
    if not os.path.lexists(manifest_path):
        return "it has no manifest %s" % manifest_path
    try:
        manifest = load_manifest(manifest_path)
    except ManifestError as error:
        return str(error)
    if manifest["format"] != "directory":
        return "its manifest %s describes a %s-format backup" % (manifest_path, manifest["format"])
    if not isinstance(manifest["files"], dict):
        return "its manifest %s has no list of files" % manifest_path
    # pg_dump writes only files, side by side; anything else would be deleted with the old backup.
    unlisted = []
    for name in sorted(os.listdir(path)):
        mode = os.lstat(os.path.join(path, name)).st_mode
        if stat.S_ISDIR(mode):
            unlisted.append(name + "/")
        elif name not in manifest["files"] or not stat.S_ISREG(mode):
            unlisted.append(name)
    if unlisted:
        return "it also holds %s, which its manifest does not list and a replacement would delete" % ", ".join(
            sorted(unlisted)
        )
    return None


def check_destination(dest, force, backup_format="custom"):
    """dest may be written: its directory exists and is writable, and dest (and its manifest)
    do not exist, unless force and they are a previous backup of the same kind
    (replacement_problem). Nothing is changed."""
    dest = os.path.abspath(dest)
    parent = os.path.dirname(dest)
    if not os.path.isdir(parent):
        raise DestinationError("the directory of dest, %s, does not exist" % parent)
    check_replaceable(dest, force, backup_format)
    probe_directory_writable(parent)


def check_replaceable(dest, force, backup_format):
    """What is at dest and its manifest path may be replaced (see check_destination)."""
    problem = replacement_problem(dest, backup_format)
    if problem is not None:
        raise DestinationError(problem)
    if not force:
        for existing in (dest, manifest_path_for(dest)):
            if os.path.lexists(existing):
                raise DestinationError(
                    "%s already exists; set force=true to replace it (it was left untouched)" % existing
                )


class StagedBackup(StagedOutput):
    """The backup's StagedOutput: a temporary sibling of dest and of <dest>.manifest.json,
    which commit() moves into place (manifest last), or the with-block removes. A failed
    commit is a DestinationError saying whether the previous backup is as it was."""

    def __init__(self, dest):
        super().__init__(dest, manifest_path_for(os.path.abspath(dest)))

    def commit(self):
        try:
            super().commit()
        except CommitFailed as failure:
            message = "could not move the new backup to %s: %s" % (self.dest, failure.cause.strerror or failure.cause)
            if failure.left_aside:
                message += "; the previous backup could not be moved back from %s" % ", ".join(failure.left_aside)
            elif failure.had_previous:
                message += "; the previous backup was left as it was"
            raise DestinationError(message)
