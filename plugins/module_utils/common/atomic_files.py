# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Files that appear whole or not at all.

Output is written under a temporary name beside its final path (same directory, so the
final rename is atomic), fsynced, and renamed into place; a failure leaves the final path as
it was and no temporary file behind. StagedOutput does this for an output (a file or a
directory tree) together with the JSON manifest describing it, the manifest moved into place
last so it never describes anything but a complete output.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid

PARTIAL_MARKER = ".partial-"
RETIRED_MARKER = ".retired-"


def remove_path(path):
    """Remove a file or directory tree; a missing path is fine."""
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)
    except FileNotFoundError:
        pass


def fsync_path(path):
    """fsync a file or a directory (a directory, so the renames in it are durable)."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_json(descriptor, document):
    """Write document as indented, key-sorted JSON to an open descriptor, fsync and close it."""
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(document, handle, indent=2, sort_keys=True, ensure_ascii=False)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())


def write_json_atomically(path, document):
    """Write JSON to a temporary sibling (mode 0600), fsync, rename over path, fsync the directory."""
    directory = os.path.dirname(os.path.abspath(path))
    descriptor, temp_path = tempfile.mkstemp(prefix=".%s%s" % (os.path.basename(path), PARTIAL_MARKER), dir=directory)
    try:
        write_json(descriptor, document)
        os.chmod(temp_path, 0o600)
        os.replace(temp_path, path)
    except BaseException:
        remove_path(temp_path)
        raise
    fsync_path(directory)


def restrict_to_owner(path):
    """Make a file 0600, or a directory tree 0700 / 0600. Only what differs is changed, as a
    metadata change would make every later fsync a journal commit."""
    _chmod_if_different(path, 0o700 if os.path.isdir(path) else 0o600)
    if os.path.isdir(path):
        for root, dirs, files in os.walk(path):
            for name in dirs:
                _chmod_if_different(os.path.join(root, name), 0o700)
            for name in files:
                _chmod_if_different(os.path.join(root, name), 0o600)


def _chmod_if_different(path, mode):
    if os.stat(path).st_mode & 0o7777 != mode:
        os.chmod(path, mode)


class CommitFailed(Exception):
    """StagedOutput.commit() could not rename something into place. Every rename that could
    be undone was; left_aside lists the previous files that could not be moved back."""

    def __init__(self, dest, cause, left_aside, had_previous):
        super().__init__("could not move %s into place: %s" % (dest, cause.strerror or cause))
        self.dest = dest
        self.cause = cause
        self.left_aside = left_aside
        self.had_previous = had_previous


class StagedOutput:
    """A temporary sibling of dest (temp_path, for the caller to write) and, once
    stage_manifest() wrote it, of manifest_path; they become dest and manifest_path only
    through commit(). Leaving the with-block without commit removes both."""

    def __init__(self, dest, manifest_path):
        self.dest = os.path.abspath(dest)
        self.directory = os.path.dirname(self.dest)
        self.manifest_path = manifest_path
        self.temp_path = self._sibling(self.dest, PARTIAL_MARKER)
        self.manifest_temp_path = None
        self.committed = False

    def _sibling(self, path, marker):
        return os.path.join(self.directory, ".%s%s%s" % (os.path.basename(path), marker, uuid.uuid4().hex[:12]))

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        if not self.committed:
            remove_path(self.temp_path)
            if self.manifest_temp_path is not None:
                remove_path(self.manifest_temp_path)
        return False

    def stage_manifest(self, document):
        """Write the manifest to a temporary sibling of its final path, fsynced, mode 0600."""
        descriptor, self.manifest_temp_path = tempfile.mkstemp(
            prefix=".%s%s" % (os.path.basename(self.manifest_path), PARTIAL_MARKER), dir=self.directory
        )
        write_json(descriptor, document)

    def commit(self):
        """Move the output to dest and then the staged manifest (if any) into place, manifest
        last. An old dest and an old manifest are first moved aside, so an old manifest never
        describes the new output, and removed only when everything is in place; when a rename
        fails, what was done is undone (CommitFailed)."""
        done = []  # (from, to) of every rename, undone in reverse order on failure
        retired = []
        previous = [path for path in (self.manifest_path, self.dest) if os.path.lexists(path)]
        try:
            for path in previous:
                aside = self._sibling(path, RETIRED_MARKER)
                os.rename(path, aside)
                done.append((path, aside))
                retired.append(aside)
            os.rename(self.temp_path, self.dest)
            done.append((self.temp_path, self.dest))
            if self.manifest_temp_path is not None:
                os.rename(self.manifest_temp_path, self.manifest_path)
                done.append((self.manifest_temp_path, self.manifest_path))
        except BaseException as error:
            left_aside = self._undo(done)
            if isinstance(error, OSError):
                raise CommitFailed(self.dest, error, left_aside, bool(previous))
            raise
        self.committed = True
        fsync_path(self.directory)
        for aside in retired:
            try:
                remove_path(aside)
            except OSError:
                pass  # a .<name>.retired-<random> left behind is safe to remove

    @staticmethod
    def _undo(done):
        """Reverse the renames in done; the paths that could not be moved back."""
        left = []
        for source, target in reversed(done):
            try:
                os.rename(target, source)
            except OSError:
                left.append(target)
        return left
