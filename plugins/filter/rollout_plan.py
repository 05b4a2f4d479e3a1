# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: rollout_plan
short_description: Decide from the rollout journal whether a phase is done, resumed or started afresh
version_added: 0.3.0
author:
  - CERES platform team (@ceres)
description:
  - Reads what M(ceres.rollout.rollout_journal) returned with O(ceres.rollout.rollout_journal#module:state=read) and
    says what a run of O(phase) should do.
  - The run that wrote last decides. When it ran O(phase) and recorded C(<phase>/done) as V(completed), the phase is
    done (RV(_value.completed)); a run started again changes nothing.
  - When it ran O(phase) and ended neither V(completed) nor V(failed), V(rolled_back) or V(aborted) (it was killed,
    or lost its host), its run id is reused (RV(_value.resume)); the steps it recorded as V(passed) are not run again
    and the step it was in is run again from the start, gate included. A gate that did not finish is never counted.
  - Anything else (no journal, another phase last, a failed or rolled-back run, a rollback since) starts a new run.
options:
  _input:
    description: The registered result of M(ceres.rollout.rollout_journal) with O(ceres.rollout.rollout_journal#module:state=read).
    type: dict
    required: true
  phase:
    description: The phase about to run (V(pilot), V(wave1), V(cutover)...).
    type: str
    required: true
  new_run_id:
    description: The id to use when a new run starts.
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Where this run stands
  ansible.builtin.set_fact:
    plan: "{{ journal | ceres.rollout.rollout_plan(phase='pilot', new_run_id='pilot-20260131T093000Z') }}"
"""

RETURN = r"""
_value:
  description: What the run should do.
  type: dict
  contains:
    run_id:
      description: The run id to use (the resumed run's, or O(new_run_id)).
      type: str
    completed:
      description: The phase was completed by the run that wrote last; there is nothing to do.
      type: bool
    resume:
      description: The run id is a killed or lost run's, resumed.
      type: bool
    passed_steps:
      description: The step ids the resumed run recorded as V(passed) (empty for a new run).
      type: list
      elements: str
    backup_id:
      description: The backup the resumed (or completed) run recorded in a V(passed) C(<phase>/backup) step, or null.
      type: str
    last_run:
      description: The run that wrote last (its summary from the journal), or null.
      type: dict
    fingerprint:
      description:
        - What the resumed run recorded it was rolling out (C(data.fingerprint) of its C(<phase>/fingerprint) step), or
          null; the drift check compares the live objects with it.
      type: dict
    completed_phases:
      description:
        - The phases completed (C(<phase>/done) recorded as V(completed)) since the last completed rollback, in the order
          they were completed; a wave uses it to refuse to start before the phase before it.
      type: list
      elements: str
"""

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

FINISHED = ("completed", "failed", "rolled_back", "aborted")


def rollout_plan(journal, phase=None, new_run_id=None):
    """Return what a run of ``phase`` should do given the journal read back."""
    if not isinstance(journal, Mapping) or not isinstance(journal.get("records"), list):
        raise AnsibleFilterError("rollout_plan: expected the result of rollout_journal state=read, got %r" % (journal,))
    for field, value in (("phase", phase), ("new_run_id", new_run_id)):
        if not isinstance(value, str) or not value:
            raise AnsibleFilterError("rollout_plan: %s must be a non-empty string, got %r" % (field, value))
    records = [record for record in journal["records"] if isinstance(record, Mapping)]
    last_run_id = _last_writer(records)
    plan = {
        "run_id": new_run_id,
        "completed": False,
        "resume": False,
        "passed_steps": [],
        "backup_id": None,
        "fingerprint": None,
    }
    plan["completed_phases"] = _completed_phases(records)
    plan["last_run"] = next((run for run in journal.get("runs") or [] if run.get("run_id") == last_run_id), None)
    if last_run_id is None:
        return plan
    run_records = sorted((r for r in records if r.get("run_id") == last_run_id), key=lambda r: r.get("seq") or 0)
    if not any(record.get("phase") == phase for record in run_records):
        return plan
    steps = {record.get("step_id"): record for record in run_records}
    done = steps.get("%s/done" % phase)
    backup = steps.get("%s/backup" % phase)
    backup_id = backup.get("backup_id") if backup and backup.get("outcome") == "passed" else None
    if done and done.get("outcome") == "completed":
        return dict(plan, run_id=last_run_id, completed=True, backup_id=backup_id)
    if any(record.get("outcome") in FINISHED for record in run_records):
        return plan
    passed = [
        record["step_id"]
        for record in run_records
        if record.get("outcome") == "passed" and str(record.get("step_id") or "").startswith(phase + "/")
    ]
    fingerprint = ((steps.get("%s/fingerprint" % phase) or {}).get("data") or {}).get("fingerprint")
    return dict(
        plan, run_id=last_run_id, resume=True, passed_steps=passed, backup_id=backup_id, fingerprint=fingerprint
    )


def _completed_phases(records):
    """The phases completed since the last completed rollback, in the order completed."""
    completed = []
    for record in sorted(records, key=_moment):
        step_id = str(record.get("step_id") or "")
        if record.get("outcome") != "completed" or not step_id.endswith("/done"):
            continue
        phase = step_id[: -len("/done")]
        if phase == "rollback":
            completed = []
        elif phase not in completed:
            completed.append(phase)
    return completed


def _moment(record):
    return record.get("updated_at") or record.get("recorded_at") or ""


def _last_writer(records):
    """The run id of the record written last (its updated_at or recorded_at)."""
    latest, latest_at = None, ""
    for record in records:
        moment = _moment(record)
        if moment >= latest_at:
            latest, latest_at = record.get("run_id"), moment
    return latest


class FilterModule:
    def filters(self):
        return {"rollout_plan": rollout_plan}
