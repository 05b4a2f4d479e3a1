# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: backup_manifest_problems
short_description: What makes a backup manifest unsafe or wrong to restore from
version_added: 0.4.0
author:
  - CERES platform team (@ceres)
description:
  - Checks a backup's C(manifest.json), as read from object storage, before the restore role downloads or creates
    anything it names. Anyone who can write to the bucket can write a manifest, so its file names are refused unless
    they stay inside the staging directory, and the dump and the Secrets bundle it points at must be among its
    files.
  - A file name is a relative path of plain names (the backup role writes V(ceres_db.dump), V(secrets.vault), or
    V(ceres_db.dir/toc.dat) for a directory-format dump). Refused are an empty name or component, an absolute path,
    V(.) or V(..) components, NUL, a backslash, and V(manifest.json) itself.
  - Returns every problem found, not only the first, each naming the value; an empty list means the manifest can
    be used.
options:
  _input:
    description: The manifest (the parsed C(manifest.json)).
    type: dict
    required: true
  backup_id:
    description: The id of the backup the manifest was downloaded for; the manifest must name the same.
    type: str
    required: true
"""

EXAMPLES = r"""
- name: The manifest is safe to restore from
  ansible.builtin.assert:
    that: restore_manifest | ceres.rollout.backup_manifest_problems(restore_id) | length == 0
"""

RETURN = r"""
_value:
  description: One sentence per problem, naming the field and the value; empty when there is none.
  type: list
  elements: str
"""

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

MANIFEST_VERSION = 1
MANIFEST_NAME = "manifest.json"


def backup_manifest_problems(manifest, backup_id=None):
    """Return what is wrong with ``manifest`` for backup ``backup_id``: a list of sentences, empty when nothing is."""
    if not isinstance(manifest, Mapping):
        raise AnsibleFilterError(
            "backup_manifest_problems: the manifest must be a mapping, got %s" % type(manifest).__name__
        )
    problems = []
    version = manifest.get("manifest_version")
    if version != MANIFEST_VERSION:
        problems.append("manifest_version is %s, not %d" % (version, MANIFEST_VERSION))
    if manifest.get("backup_id") != backup_id:
        problems.append("the manifest names backup %s, not %s" % (manifest.get("backup_id"), backup_id))
    files = manifest.get("files")
    if not isinstance(files, Mapping):
        problems.append("files is not a mapping of file names to their sha256 and size")
        files = {}
    for name in files:
        why = unsafe_name(name)
        if why:
            problems.append("file name %r is refused: %s" % (name, why))
    problems.extend(_pointer_problems(manifest, "database", files, required=True))
    problems.extend(_pointer_problems(manifest, "secrets", files, required=False))
    return problems


def unsafe_name(name):
    """Why ``name`` could leave the directory it is written under (or be confused with the manifest), or None."""
    if not isinstance(name, str) or not name:
        return "an empty name"
    if "\x00" in name:
        return "it contains NUL"
    if "\\" in name:
        return "it contains a backslash"
    if name.startswith("/"):
        return "an absolute path"
    for part in name.split("/"):
        if part == "":
            return "an empty path component"
        if part in (".", ".."):
            return "a '%s' path component" % part
    if name == MANIFEST_NAME:
        return "manifest.json is the manifest itself, not a file of the backup"
    return None


def _pointer_problems(manifest, field, files, required):
    """The dump (``database.path``) and the Secrets bundle (``secrets.path``) must be files of the backup, or the
    directory of a directory-format dump's files."""
    section = manifest.get(field)
    if section is None and not required:
        return []
    if not isinstance(section, Mapping):
        return ["%s is not a mapping with the path of its file" % field]
    path = section.get("path")
    if not isinstance(path, str) or not path:
        return ["%s.path is missing" % field]
    in_files = path in files or any(isinstance(name, str) and name.startswith(path + "/") for name in files)
    if unsafe_name(path) or not in_files:
        return ["%s.path %r is not one of the backup's files" % (field, path)]
    return []


class FilterModule:
    def filters(self):
        return {"backup_manifest_problems": backup_manifest_problems}
