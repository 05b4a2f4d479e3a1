# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: recorded_backup
short_description: The backup the rollout's last run recorded in the journal, for a complete rollback
version_added: 0.4.0
author:
  - CERES platform team (@ceres)
description:
  - From the journal's records (M(ceres.rollout.rollout_journal) O(ceres.rollout.rollout_journal#module:state=read),
    RV(ceres.rollout.rollout_journal#module:records)), the backup a phase's run took before it moved anything,
    the last C(<phase>/backup) record with C(outcome=passed) and a C(backup_id), of any phase but a rollback.
  - That is the backup a complete rollback restores by default, rather than the latest one in the bucket, which
    may have been taken mid-rollout (with data the new version wrote) or hold rotated credentials.
  - Returns null when no run recorded a backup; the caller then needs an explicitly named one.
  - With O(run_id), the backup that run recorded (a resumed run checks it is still there, complete and unchanged).
options:
  _input:
    description: The journal's records, in the order the journal returns them (runs in the order they started).
    type: list
    elements: dict
    required: true
  run_id:
    description: Only the records of this run.
    type: str
"""

EXAMPLES = r"""
- name: The backup a complete rollback restores
  ansible.builtin.set_fact:
    backup_to_restore: "{{ (journal.records | ceres.rollout.recorded_backup).backup_id }}"

- name: The backup a resumed run recorded, with the digest of its manifest
  ansible.builtin.set_fact:
    recorded: "{{ journal.records | ceres.rollout.recorded_backup(run_id='pilot-20261201T093000Z-a1b2c3') }}"
"""

RETURN = r"""
_value:
  description:
    - C(backup_id), C(run_id), C(phase) and C(step_id) of that record, or null when there is none.
    - C(manifest_sha256), the sha256 of the backup's C(manifest.json) the run recorded (C(data.manifest_sha256)), or
      null when it recorded none (a run from before manifests were signed); a restore given it refuses any other
      manifest.
  type: dict
"""

import re
from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

ROLLBACK_PHASE = "rollback"
SHA256 = re.compile("^[0-9a-f]{64}$")


def recorded_backup(records, run_id=None):
    """The last passed ``<phase>/backup`` record with a backup id (not a rollback's; of ``run_id`` when
    given), as a small dict with the manifest's recorded digest, or None."""
    if not isinstance(records, list) or not all(isinstance(record, Mapping) for record in records):
        raise AnsibleFilterError("recorded_backup: the journal's records must be a list of dicts")
    found = None
    for record in records:
        if run_id is not None and record.get("run_id") != run_id:
            continue
        step_id = record.get("step_id")
        phase = record.get("phase") or (step_id.split("/", 1)[0] if isinstance(step_id, str) else None)
        if (
            isinstance(step_id, str)
            and step_id.endswith("/backup")
            and record.get("outcome") == "passed"
            and record.get("backup_id")
            and phase != ROLLBACK_PHASE
        ):
            found = {
                "backup_id": record["backup_id"],
                "run_id": record.get("run_id"),
                "phase": phase,
                "step_id": step_id,
                "manifest_sha256": _recorded_digest(record),
            }
    return found


def _recorded_digest(record):
    data = record.get("data")
    digest = data.get("manifest_sha256") if isinstance(data, Mapping) else None
    return digest if isinstance(digest, str) and SHA256.match(digest) else None


class FilterModule:
    def filters(self):
        return {"recorded_backup": recorded_backup}
