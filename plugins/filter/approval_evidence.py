# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: approval_evidence
short_description: What a person deciding "proceed or roll back?" sees of the phase before
version_added: 0.6.0
author:
  - CERES platform team (@ceres)
description:
  - Reads the journal's records (O(_input), as C(ceres.rollout.rollout_journal) C(state=read) returns them) and
    says, one line each, what the last run of O(phase) did - each step's outcome and, for a gated step, every
    check's last values against its threshold - and the backup it recorded.
  - A phase with no run in the journal is said so, in one line; the person then decides knowing it.
options:
  _input:
    description: The journal's records.
    type: list
    elements: dict
    required: true
  phase:
    description: The phase before the one waiting (C(pilot) before C(wave1)).
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Show the evidence
  ansible.builtin.debug:
    msg: "{{ journal.records | ceres.rollout.approval_evidence('pilot') }}"
"""

RETURN = r"""
_value:
  description: One line per step of the phase's last run, then its backup.
  type: list
  elements: str
"""

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError


def _threshold(check):
    bounds = []
    if check.get("min") is not None:
        bounds.append("min %s" % check["min"])
    if check.get("max") is not None:
        bounds.append("max %s" % check["max"])
    return ", ".join(bounds) or "no bound"


def _gate_line(gate):
    checks = gate.get("checks") if isinstance(gate, Mapping) else None
    if not isinstance(checks, Mapping) or not checks:
        return ""
    parts = []
    for name in sorted(checks):
        check = checks[name] if isinstance(checks[name], Mapping) else {}
        values = check.get("values") or []
        parts.append("%s %s (%s; last %s)" % (name, check.get("status") or "?", _threshold(check), values[-3:]))
    return ": " + "; ".join(parts)


def approval_evidence(records, phase):
    """Return what the last run of ``phase`` did, one line per step, then its backup."""
    if not isinstance(records, list) or not all(isinstance(record, Mapping) for record in records):
        raise AnsibleFilterError("approval_evidence: the input must be the journal's records (a list of dicts)")
    if not isinstance(phase, str) or not phase:
        raise AnsibleFilterError("approval_evidence: phase must name a phase, got %r" % (phase,))
    runs = [record.get("run_id") for record in records if record.get("phase") == phase]
    if not runs:
        return ["%s: no run in the journal" % phase]
    run_id = runs[-1]
    mine = [record for record in records if record.get("run_id") == run_id]
    lines = []
    backups = []
    for record in mine:
        step = record.get("step_id") or "?"
        if record.get("backup_id"):
            backups.append(record["backup_id"])
        weight = " at %s%%" % record["weight"] if record.get("weight") is not None else ""
        lines.append(
            "%s run %s: %s %s%s%s"
            % (phase, run_id, step, record.get("outcome"), weight, _gate_line(record.get("gate")))
        )
    lines.append("%s run %s: backup %s" % (phase, run_id, ", ".join(dict.fromkeys(backups)) or "none recorded"))
    return lines


class FilterModule:
    def filters(self):
        return {"approval_evidence": approval_evidence}
