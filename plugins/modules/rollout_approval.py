#!/usr/bin/python
# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: rollout_approval
short_description: A person's decision between two phases of the rollout - give it, or wait for it
version_added: 0.6.0
description:
  - The plan's "Decision - proceed or roll back?" between phases, kept on the rollout's journal (the ConfigMap beside
    the lock's Lease, see M(ceres.rollout.rollout_journal)).
  - A run that needs a decision first records C(<phase>/approval) in the journal (outcome C(started),
    C(data.approval=waiting)) as the holder of the lock; the wave and cutover roles do so when the inventory sets
    C(ceres_approvals=true).
  - O(state=decided) gives the decision (C(playbooks/approve.yml) runs it, from any terminal or AWX). The journal's
    last record must be a run waiting for a decision, and its phase O(phase) when given; anything else is refused,
    naming what the journal shows (nothing waits, or another phase does). The decision - O(decision), O(by), the
    time, O(reason), bound to the waiting run and phase - is written as the annotation
    C(rollout.ceres.io/approval) of the journal ConfigMap (a record is not possible - the journal takes records only
    from the run holding the lock). Giving the same decision again changes nothing; a different one for the same
    wait is refused.
  - O(state=waited) is the waiting run's side - it looks for a decision on its own O(run_id) and O(phase) every
    O(interval) seconds until one is there or O(wait_timeout) has passed, and returns it (RV(decision) is
    V(timeout) without one; it never fails for a rejection or a timeout - the role decides). With O(renew_lock) it
    keeps the run's lock alive while it waits and stops at once, failing with RV(lock_lost), when another run (a
    rollback) took it.
  - Runs on the controller through an action plugin, whatever the host's connection.
author:
  - CERES platform team (@ceres)
extends_documentation_fragment:
  - ceres.rollout.k8s_auth
  - ceres.rollout.k8s_auth.timeout
  - ceres.rollout.renew_lock
  - ceres.rollout.renew_lock.wait
  - ceres.rollout.attributes
  - ceres.rollout.attributes.k8s_action_group
  - ceres.rollout.attributes.controller_action
  - ansible.builtin.action_common_attributes.flow
attributes:
  check_mode:
    support: full
    details: O(state=decided) reports the decision it would write and writes nothing; O(state=waited) only reads.
  diff_mode:
    support: none
  idempotent:
    support: full
    details: The same decision given twice changes nothing.
options:
  state:
    description: V(decided) gives a decision; V(waited) waits for one.
    type: str
    required: true
    choices: [decided, waited]
  namespace:
    description: The namespace of the rollout's lock and journal.
    type: str
    default: ceres-system
  name:
    description: The name of the lock; the journal is C(<name>-journal).
    type: str
    default: ceres-rollout
  phase:
    description:
      - O(state=decided) - the phase the decision is for; refused when another phase is waiting. Left out, the decision
        is for whatever is waiting.
      - O(state=waited) - the phase waiting (required).
    type: str
  run_id:
    description: O(state=waited) - the run waiting (required).
    type: str
  decision:
    description: O(state=decided) - proceed (V(approve)) or roll back (V(reject)) (required).
    type: str
    choices: [approve, reject]
  reason:
    description: O(state=decided) - why, one line (at most 500 characters); kept with the decision and in the journal.
    type: str
    default: ""
  by:
    description:
      - O(state=decided) - who decides, as the journal shows it (C(playbooks/approve.yml) passes the AWX user when run
        from AWX). Default C(user@host) of the controller.
    type: str
  wait_timeout:
    description:
      - O(state=waited) - how long to wait for a decision, in seconds (required; at most O(timeout)). No decision by
        then is RV(decision=timeout).
    type: float
  interval:
    description: O(state=waited) - seconds between two looks at the journal.
    type: float
    default: 2.0
seealso:
  - module: ceres.rollout.rollout_journal
"""

EXAMPLES = r"""
- name: Proceed with the wave that waits (from another terminal, or AWX)
  ceres.rollout.rollout_approval:
    state: decided
    decision: approve
    phase: wave1
    reason: gates of the pilot clean, change ticket CHG-1234

- name: Wait up to an hour for a decision on this run's wave1
  ceres.rollout.rollout_approval:
    state: waited
    phase: wave1
    run_id: "{{ rollout_run_id }}"
    wait_timeout: 3600
    timeout: 3660
  register: approval
"""

RETURN = r"""
decision:
  description:
    - O(state=decided) - the decision written (or already there) - C(run_id), C(phase), C(decision), C(by), C(at),
      C(reason).
    - O(state=waited) - V(approve), V(reject), or V(timeout) when none came within O(wait_timeout).
  returned: success
  type: raw
  sample: approve
waiting:
  description: O(state=decided) - what was waiting - C(run_id), C(phase), C(step_id), C(since).
  returned: success and state is decided
  type: dict
by:
  description: O(state=waited) - who decided (none on a timeout).
  returned: success and state is waited
  type: str
at:
  description: O(state=waited) - when the decision was given (UTC, ISO 8601; none on a timeout).
  returned: success and state is waited
  type: str
reason:
  description: O(state=waited) - the decision's reason (on a timeout, that none came).
  returned: success and state is waited
  type: str
waited_seconds:
  description: O(state=waited) - how long the module waited.
  returned: success and state is waited
  type: float
looks:
  description: O(state=waited) - how many times it read the journal.
  returned: success and state is waited
  type: int
lock_lost:
  description: O(renew_lock) - the wait stopped because this run no longer holds the lock.
  returned: when the lock was lost
  type: bool
lock_renewals:
  description: O(renew_lock) - how many times the lock was renewed while waiting.
  returned: with renew_lock
  type: int
lock:
  description: O(renew_lock) - the lock as last seen.
  returned: with renew_lock
  type: dict
"""

from ansible_collections.ceres.rollout.plugins.module_utils.common.module import CeresModule
from ansible_collections.ceres.rollout.plugins.module_utils.lock.approval import ROLLOUT_APPROVAL

# The module's options, where tools and tests look for them.
argument_spec = ROLLOUT_APPROVAL.argument_spec


def main() -> None:
    CeresModule(ROLLOUT_APPROVAL).run()


if __name__ == "__main__":
    main()
