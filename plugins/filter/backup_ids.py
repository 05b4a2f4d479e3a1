# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# The layout of the backups in object storage, in one place for the backup and restore roles:
# a backup is every object under <prefix><backup id>/, its id is YYYYMMDDTHHMMSSZ-xxxxxx (UTC
# time then six hex digits, so ids sort by time), and it is complete once its manifest.json is
# there (uploaded last). Each filter is documented in the YAML file of its name beside this one.

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from ansible.errors import AnsibleFilterError

BACKUP_ID_PATTERN = "[0-9]{8}T[0-9]{6}Z-[0-9a-f]{6}"
MANIFEST = "manifest.json"
# The step a completed cutover records last: the rollout it ends is finished.
COMPLETED_CUTOVER_STEP = "cutover/done"
STATES = ("all", "complete", "incomplete")


def backup_ids(keys, prefix=None, state="all"):
    """Return the ids of the backups under ``prefix`` found in listed object ``keys``, oldest first."""
    _check_keys("backup_ids", keys)
    _check_prefix("backup_ids", prefix)
    if state not in STATES:
        raise AnsibleFilterError("backup_ids: state must be one of %s, got %r" % (", ".join(STATES), state))
    any_object = re.compile(re.escape(prefix) + "(" + BACKUP_ID_PATTERN + ")/")
    manifest = re.compile(re.escape(prefix) + "(" + BACKUP_ID_PATTERN + ")/manifest[.]json$")
    found = {match.group(1) for match in map(any_object.match, keys) if match}
    complete = {match.group(1) for match in map(manifest.match, keys) if match}
    chosen = {"all": found, "complete": complete, "incomplete": found - complete}[state]
    return sorted(chosen)


def backup_id_valid(value):
    """Return whether ``value`` is a backup id (YYYYMMDDTHHMMSSZ-xxxxxx)."""
    return isinstance(value, str) and re.match("^" + BACKUP_ID_PATTERN + "$", value) is not None


def backup_retention(ids, keep=None, current=None, protected=None):
    """Split the complete backups ``ids`` (and ``current``) into the ``keep`` newest and the expired rest;
    ``current`` and the ``protected`` ids are never expired."""
    ids = _backup_id_list("backup_retention", ids)
    if isinstance(keep, bool) or not isinstance(keep, int) or keep < 0:
        raise AnsibleFilterError("backup_retention: keep must be a whole number, 0 or more, got %r" % (keep,))
    if current is not None:
        _backup_id_list("backup_retention", [current])
    never_expired = set(_backup_id_list("backup_retention", protected if protected is not None else []))
    never_expired |= {current} if current is not None else set()
    pool = sorted(set(ids) | ({current} if current is not None else set()))
    expired = sorted(set(pool[:-keep] if keep else []) - never_expired)
    return {"kept": sorted(set(pool) - set(expired)), "expired": expired}


def backup_protected_ids(records):
    """The backup ids the journal's ``records`` name since the last completed cutover, in order, once each."""
    if not isinstance(records, list) or not all(isinstance(record, Mapping) for record in records):
        raise AnsibleFilterError("backup_protected_ids: the journal's records must be a list of dicts")
    protected = []
    for record in records:
        if record.get("step_id") == COMPLETED_CUTOVER_STEP and record.get("outcome") == "completed":
            protected = []  # that rollout is finished: its backups are pruned by count again
        elif backup_id_valid(record.get("backup_id")) and record["backup_id"] not in protected:
            protected.append(record["backup_id"])
    return protected


def backup_manifest_keys(ids, prefix=""):
    """Return the object key of the manifest of each backup of ``ids``, in their order."""
    ids = _backup_id_list("backup_manifest_keys", ids)
    _check_prefix("backup_manifest_keys", prefix)
    return ["%s%s/%s" % (prefix, backup_id, MANIFEST) for backup_id in ids]


def backup_file_keys(keys, prefix=None, ids=None):
    """Return the listed ``keys`` of the backups ``ids`` under ``prefix``, their manifests left out."""
    _check_keys("backup_file_keys", keys)
    _check_prefix("backup_file_keys", prefix)
    ids = _backup_id_list("backup_file_keys", ids)
    if not ids:
        return []
    of_the_backups = re.compile(re.escape(prefix) + "(" + "|".join(ids) + ")/")
    manifest = re.compile(".*/manifest[.]json$")
    return [key for key in keys if of_the_backups.match(key) and not manifest.match(key)]


def _check_keys(name, keys):
    if not isinstance(keys, list) or not all(isinstance(key, str) for key in keys):
        raise AnsibleFilterError("%s: expected the listed object keys (a list of strings), got %r" % (name, keys))


def _check_prefix(name, prefix):
    if not isinstance(prefix, str) or not re.match("^([^/].*/)?$", prefix):
        raise AnsibleFilterError(
            "%s: prefix must be empty or end with '/' and not start with one, got %r" % (name, prefix)
        )


def _backup_id_list(name, ids):
    # any sequence of ids: a list, or what Jinja's reverse returns
    if isinstance(ids, (str, bytes, Mapping)) or not isinstance(ids, Iterable):
        raise AnsibleFilterError("%s: expected a list of backup ids, got %r" % (name, ids))
    ids = list(ids)
    bad = [backup_id for backup_id in ids if not backup_id_valid(backup_id)]
    if bad:
        raise AnsibleFilterError(
            "%s: %r are not backup ids (YYYYMMDDTHHMMSSZ-xxxxxx, e.g. 20260131T093000Z-a1b2c3)" % (name, bad)
        )
    return ids


class FilterModule:
    def filters(self):
        return {
            "backup_ids": backup_ids,
            "backup_id_valid": backup_id_valid,
            "backup_retention": backup_retention,
            "backup_manifest_keys": backup_manifest_keys,
            "backup_file_keys": backup_file_keys,
            "backup_protected_ids": backup_protected_ids,
        }
