# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""sha256 digests of files and of sets of files, read in chunks (constant memory)."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

READ_CHUNK_BYTES = 1024 * 1024


@dataclass(frozen=True)
class FileDigest:
    size_bytes: int
    sha256: str


def digest_field(digest, key):
    """size_bytes or sha256 of a FileDigest or of its dict form ({"size_bytes", "sha256"})."""
    return getattr(digest, key) if isinstance(digest, FileDigest) else digest[key]


def digest_file(path, sync=False):
    """sha256 and size of a file; optionally fsync it in the same pass."""
    sha256 = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while True:
            chunk = handle.read(READ_CHUNK_BYTES)
            if not chunk:
                break
            sha256.update(chunk)
            size += len(chunk)
        if sync:
            os.fsync(handle.fileno())
    return FileDigest(size_bytes=size, sha256=sha256.hexdigest())


def files_under(directory):
    """{path relative to directory: absolute path} of every file in the tree."""
    names = {}
    for root, _dirs, files in os.walk(directory):
        for file_name in files:
            full = os.path.join(root, file_name)
            names[os.path.relpath(full, directory)] = full
    return names


def listing_sha256(files):
    """The sha256 of the lines "<sha256>  <name>\\n" of {name: digest}, sorted by name: what
    `sha256sum` prints over the files in C-locale order, hashed."""
    listing = "".join("%s  %s\n" % (digest_field(files[name], "sha256"), name) for name in sorted(files))
    return hashlib.sha256(listing.encode("utf-8")).hexdigest()
