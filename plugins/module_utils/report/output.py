# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Writing the report's files: each appears whole or not at all (a temporary sibling, fsynced, renamed
into place), and a file whose bytes are already there is not written again, so ``changed`` is true
only when a file is new or different."""

from __future__ import annotations

import json
import os
import tempfile

from ansible_collections.ceres.rollout.plugins.module_utils.common.atomic_files import (
    PARTIAL_MARKER,
    fsync_path,
    remove_path,
)

FILE_MODE = 0o644


def json_bytes(model: dict) -> bytes:
    return (json.dumps(model, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def differs(path: str, content: bytes) -> bool:
    try:
        with open(path, "rb") as handle:
            return handle.read() != content
    except FileNotFoundError:
        return True


def write_atomically(path: str, content: bytes) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    descriptor, temp_path = tempfile.mkstemp(prefix=".%s%s" % (os.path.basename(path), PARTIAL_MARKER), dir=directory)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp_path, FILE_MODE)
        os.replace(temp_path, path)
    except BaseException:
        remove_path(temp_path)
        raise
    fsync_path(directory)


def write_files(directory: str, contents: dict[str, bytes], check_mode: bool) -> list[str]:
    """Write ``contents`` (file name to bytes) under ``directory`` (made when missing); returns the names
    that are (or, in check mode, would be) new or changed. Check mode writes nothing."""
    changed = [name for name, content in contents.items() if differs(os.path.join(directory, name), content)]
    if check_mode or not changed:
        return changed
    os.makedirs(directory, exist_ok=True)
    for name in changed:
        write_atomically(os.path.join(directory, name), contents[name])
    return changed
