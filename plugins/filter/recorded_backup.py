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
options:
  _input:
    description: The journal's records, in the order the journal returns them (runs in the order they started).
    type: list
    elements: dict
    required: true
"""

EXAMPLES = r"""
- name: The backup a complete rollback restores
  ansible.builtin.set_fact:
    backup_to_restore: "{{ (journal.records | ceres.rollout.recorded_backup).backup_id }}"
"""

RETURN = r"""
_value:
  description: C(backup_id), C(run_id), C(phase) and C(step_id) of that record, or null when there is none.
  type: dict
"""

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

ROLLBACK_PHASE = "rollback"


def recorded_backup(records):
    """The last passed ``<phase>/backup`` record with a backup id (not a rollback's), as a small dict, or None."""
    if not isinstance(records, list) or not all(isinstance(record, Mapping) for record in records):
        raise AnsibleFilterError("recorded_backup: the journal's records must be a list of dicts")
    found = None
    for record in records:
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
            }
    return found


class FilterModule:
    def filters(self):
        return {"recorded_backup": recorded_backup}
