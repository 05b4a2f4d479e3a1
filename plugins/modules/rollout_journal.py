#!/usr/bin/python
# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: rollout_journal
short_description: The rollout's lock and journal on the cluster (a Lease and a ConfigMap)
version_added: 0.2.0
description:
  - The run's memory on the cluster, needing only the Kubernetes API (no Prometheus, no object storage), so a rollback
    can use it while they are down.
  - "B(The lock) is a C(coordination.k8s.io/v1) C(Lease) named O(name) in O(namespace). A run holds it when its
    C(spec.holderIdentity) is the run's O(holder) and its annotation C(rollout.ceres.io/run-id) the run's O(run_id),
    and keeps it by renewing it (C(spec.renewTime)) more often than every O(lease_duration) seconds."
  - O(state=acquired) takes a free lock, renews a lock this run holds, and takes over a lock whose holder stopped
    renewing it for longer than its C(leaseDurationSeconds) (RV(lock.taken_over_from) says from whom). A lock another
    run holds and renews is refused, naming that run, its holder, phase, since when and its last renewal, unless
    O(force=true), which takes it from a live holder (what a rollback does; rollback always wins).
  - The same O(run_id) with another O(holder) (a run resumed by a new process, or a second process started with the
    same run id) is another holder - refused while the lock's holder renews it, taking it over once it has expired.
  - A run killed on this controller (Ctrl-C twice, a closed terminal, a cancelled job) need not wait for its lease.
    The action plugin records on the Lease (annotation C(rollout.ceres.io/holder-process)) the ansible-playbook
    process holding the lock - host, boot id, pid namespace, pid and the process's start time - and a later
    O(state=acquired) from the same machine, boot and pid namespace takes the lock over at once when that process
    is no longer running (its pid gone, a zombie, or reused by a process started at another time). Anything it
    cannot read or compare counts as alive, so from another machine the lease must still expire (or a rollback
    takes the lock with O(force=true)).
  - A run that lost the lock (taken with force, or taken over once it had expired) is remembered on the Lease
    (annotation C(rollout.ceres.io/lost-runs), the last 20), and its next O(state=renewed) or O(state=acquired) fails
    with a message such as "lock taken by run X (rollback) at T, by force", so a rollout that a rollback interrupted
    stops at its next step. A new run (a new O(run_id)) may start once the lock is free.
  - O(state=renewed) renews the lock only when this run holds it, and fails, saying who has it, otherwise. A renewal
    that changes nothing but the renew time reports RV(ignore:changed=false).
  - O(state=released) frees the lock when this run holds it. Releasing a free lock, or one another run holds, writes
    nothing, steals nothing and says what happened in RV(lock_outcome) (with a warning for another run's lock).
  - Every write carries the object's C(resourceVersion); when another run wrote in between (HTTP 409), the Lease is read
    again and the decision made again, at most O(max_conflict_retries) times, so two runs acquiring at once never both
    succeed. Every write is read back.
  - Expiry is judged with this machine's clock against the holder's C(renewTime), so keep the clocks of the machines
    running rollouts in sync (NTP), well within O(lease_duration).
  - "B(The journal) is a C(ConfigMap) beside the Lease, named O(name) followed by C(-journal). O(state=recorded) appends
    O(record) to the run's records; they are kept as JSON lines (one compact JSON object per line) under one key per
    run, C(run.<run_id>). Each record gets C(seq) (its position in its run) and C(recorded_at) (UTC, RFC 3339), and
    C(updated_at) when it is updated."
  - "B(Fencing.) Every new holding of the lock (acquired, taken over, forced, taken back) also raises the journal's
    fence, the annotation C(rollout.ceres.io/fence) on its ConfigMap (a token one higher than the last, naming the run
    and holder), before the module returns. O(state=recorded) writes only for the run that holds the lock - its
    O(run_id) and O(holder) on the Lease, and the fence naming them - and is refused otherwise (failed, with
    RV(lock_lost)), by the journal itself: a run a rollback took the lock from cannot record C(completed) after it,
    even when its write raced the rollback's (the fence is written with the ConfigMap's C(resourceVersion))."
  - A renewal that finds the lock free (its Lease deleted, or released by someone else) takes it back when the fence
    still names this run and holder (nobody held the lock since) - RV(lock_outcome=taken_back), with a warning - and
    fails with RV(lock_lost) otherwise.
  - Recording a C(step_id) again with the same content reports RV(ignore:changed=false); with other content it replaces
    that step's record in place (keeping C(seq) and C(recorded_at)). A record without C(step_id) gets a generated one
    and is always appended.
  - O(state=read) returns the records (RV(records), RV(last)), a summary per run (RV(runs)) and the lock (RV(lock)),
    and never writes.
  - "Size: a ConfigMap holds at most 1 MiB. The journal refuses, before writing anything, a record that would take it
    past 1,000,000 bytes (keys and values) or a record of more than 64 KiB. Keep records compact: gate values as the
    summaries a verdict was made on, not raw series. A warning says when the journal passes 80% of its limit."
  - "Drift and resume: a record's C(data) is the place for what is being rolled out, so a resumed run and the drift
    check can compare it with the live objects, for example C(data.canary_pod_template_hash),
    C(data.virtual_service_resource_version), C(data.destination_rule_resource_version) or a digest of their specs.
    This module stores and returns them; comparing is the caller's job."
  - Records are user data and are returned as recorded; keep secrets out of them. The connection options and
    credentials are never written to the cluster or shown.
  - Every read, write, retry and conflict re-read of one task fits in O(timeout).
  - Runs on the controller through an action plugin, whatever the host's connection, so the Kubernetes API is
    reached from the controller, O(holder) defaults to C(user@host) of the controller, and the journal tasks of a
    rollout step start no module process each. The C(K8S_AUTH_*) fallbacks (and C(KUBECONFIG)) are read from the
    task's C(environment), then from the controller's environment.
author:
  - CERES platform team (@ceres)
extends_documentation_fragment:
  - ceres.rollout.k8s_auth
  - ceres.rollout.k8s_auth.timeout
  - ceres.rollout.attributes
  - ceres.rollout.attributes.k8s_action_group
  - ceres.rollout.attributes.controller_action
  - ansible.builtin.action_common_attributes.flow
attributes:
  check_mode:
    support: full
    details:
      - Reads the Lease or the journal and reports what O(state=acquired), O(state=renewed), O(state=released) or
        O(state=recorded) would do (a refusal still fails) without writing. O(state=read) never writes.
  diff_mode:
    support: full
    details:
      - For the lock, the holder, run id, phase, lease duration and acquire time before and after.
      - For a record, the step's record before (empty when appended) and after.
  idempotent:
    support: full
    details:
      - Renewing a lock the run holds and recording a step again with the same content report no change.
options:
  state:
    description:
      - V(acquired) takes or renews the lock, V(renewed) renews a lock this run holds, V(released) frees it.
      - V(recorded) appends (or updates) a journal record; V(read) returns the journal and the lock.
    type: str
    required: true
    choices: [acquired, renewed, released, recorded, read]
  namespace:
    description:
      - The namespace of the Lease and of the journal ConfigMap. It must exist; this module never creates namespaces.
    type: str
    default: ceres-system
  name:
    description:
      - The name of the Lease; the journal ConfigMap is this name followed by C(-journal).
      - One lock per thing rolled out, for example V(ceres-rollout-checkout), or one for the whole rollout.
      - A lowercase DNS name of at most 240 characters.
    type: str
    default: ceres-rollout
  run_id:
    description:
      - The id of this run, the same for every task of the run (for example V(pilot-20250131T0930Z) or an AWX job id
        such as V(awx-4711)); a resumed run reuses it.
      - 1 to 128 letters, digits, V(.), V(_) or V(-), starting with a letter or a digit.
      - Required for every O(state) but V(read); with V(read) it limits RV(records) and RV(last) to that run.
    type: str
  holder:
    description:
      - Who runs it, written as the Lease's C(holderIdentity) and shown to the runs it refuses.
      - Defaults to C(user@host) of the controller, where the module runs (through its action plugin).
      - With O(state=recorded), the holder the write is fenced with (the run must hold the lock as this holder).
    type: str
  phase:
    description:
      - What the run is doing (V(pilot), V(wave1), V(cutover), V(rollback)...), shown to the runs the lock is refused
        to or taken from.
      - With O(state=recorded), the record's C(phase) when O(record) has none.
    type: str
  lease_duration:
    description:
      - Seconds after its last renewal that the lock may be taken over by another run. Renew more often than that; a
        task that runs longer than it without renewing needs a longer duration (M(ceres.rollout.metric_gate) renews it
        during a soak with its O(ceres.rollout.metric_gate#module:renew_lock) option).
    type: int
    default: 600
  force:
    description:
      - Take the lock even from a live holder, recording whom it was taken from (what the rollback role does). The run
        that lost it fails at its next renewal.
    type: bool
    default: false
  record:
    description:
      - With O(state=recorded), the record to append. Fields other than these are refused (put them in C(data)).
      - C(phase) (required, or the task's O(phase)), C(outcome) (required; V(started), V(passed), V(failed),
        V(inconclusive), V(rolled_back), V(completed), V(aborted) or V(skipped)).
      - C(step_id) (the step's identity within the run, for example V(pilot/weight-25/gate)), C(cluster),
        C(namespace), C(app) or C(apps) (a list), C(weight) (0-100), C(verdict) (V(pass), V(fail) or V(inconclusive)),
        C(gate) (a dict, for example the checks' values and thresholds), C(backup_id), C(approvals) (a list of dicts,
        for example C(by), C(decision), C(at)), C(message) and C(data) (a free-form dict).
      - C(run_id) may be given, and must then be O(run_id). C(seq), C(recorded_at) and C(updated_at) are set by the
        journal.
    type: dict
  max_conflict_retries:
    description:
      - How many times to read again and decide again after another writer changed the Lease or the journal (HTTP 409).
        V(0) fails on the first conflict. The re-reads also stop when O(timeout) runs out.
    type: int
    default: 5
notes:
  - The Role needed, in O(namespace), is C(get), C(create) and C(update) on C(leases) (coordination.k8s.io) and on
    C(configmaps).
seealso:
  - name: Kubernetes Leases
    description: The object the lock is.
    link: https://kubernetes.io/docs/concepts/architecture/leases/
"""

EXAMPLES = r"""
- name: Take the rollout lock for this run (refused, naming the holder, while another run holds it)
  ceres.rollout.rollout_journal:
    state: acquired
    name: ceres-rollout-checkout
    run_id: "pilot-{{ ansible_date_time.iso8601_basic_short }}"
    phase: pilot
    lease_duration: 900
  register: lock

- name: Record a gate's verdict, with what is being rolled out (for the drift check and a resumed run)
  ceres.rollout.rollout_journal:
    state: recorded
    name: ceres-rollout-checkout
    run_id: "{{ rollout_run_id }}"
    record:
      step_id: pilot/weight-25/gate
      phase: pilot
      cluster: eks-eu-west-1
      namespace: pilot-apps
      app: checkout
      weight: 25
      outcome: passed
      verdict: pass
      gate: {error-rate: {max: 0.001, values: [0.0, 0.0002]}, p95-ms: {max: 100, values: [41, 44]}}
      backup_id: "{{ backup_result.id }}"
      data:
        canary_pod_template_hash: 7c9f6d5b8
        virtual_service_resource_version: "48211"

- name: Renew the lock before the next step (fails if a rollback took it)
  ceres.rollout.rollout_journal:
    state: renewed
    name: ceres-rollout-checkout
    run_id: "{{ rollout_run_id }}"
    phase: pilot

- name: Rollback always wins, even over a running rollout
  ceres.rollout.rollout_journal:
    state: acquired
    name: ceres-rollout-checkout
    run_id: "rollback-{{ ansible_date_time.epoch }}"
    phase: rollback
    force: true

- name: Read the journal back (a report, or a resumed run deciding where to go on)
  ceres.rollout.rollout_journal:
    state: read
    name: ceres-rollout-checkout
    run_id: "{{ rollout_run_id }}"
  register: journal

- name: Release the lock at the end of the run (changes nothing if another run holds it)
  ceres.rollout.rollout_journal:
    state: released
    name: ceres-rollout-checkout
    run_id: "{{ rollout_run_id }}"
"""

RETURN = r"""
lock_lost:
  description:
    - V(true) when the task failed because this run does not hold the lock (any more) - another run took it (a
      rollback by force, or a run that took over the expired lease), it was released, or it was never acquired.
    - Such a run must stop without changing anything, as the lock's holder owns the rollout (the canary role's rescue
      then leaves the traffic and the journal to it).
  returned: when the task failed for that reason
  type: bool
  sample: true
lock:
  description:
    - The lock after the task (in check mode, as it would be). With O(state=recorded), not returned.
    - Also returned with a failure that names the holder (a refusal, a lost lock).
  returned: when state is not recorded
  type: dict
  contains:
    fence:
      description:
        - The journal's fence this holding raised (C(token), C(run_id), C(holder), C(phase), C(at)).
      type: dict
      returned: when the task began a holding (lock_outcome acquired, taken_over, forced or taken_back)
    namespace:
      description: The Lease's namespace.
      type: str
      returned: always
    name:
      description: The Lease's name.
      type: str
      returned: always
    exists:
      description: Whether the Lease exists.
      type: bool
      returned: always
    held:
      description: Whether a run holds the lock (expired or not).
      type: bool
      returned: always
    holder:
      description: The holder's identity (C(spec.holderIdentity)), or null when free.
      type: str
      returned: always
      sample: ansible@controller-1
    run_id:
      description: The holding run's id, or null when free (or held by something else than ceres.rollout).
      type: str
      returned: always
      sample: pilot-20250131T0930Z
    phase:
      description: The holding run's phase, when it gave one.
      type: str
      returned: always
      sample: pilot
    acquired_at:
      description: When the holding run acquired it (UTC, RFC 3339).
      type: str
      returned: always
      sample: "2025-01-31T09:30:00.123456Z"
    renewed_at:
      description: When the holding run last renewed it (UTC, RFC 3339).
      type: str
      returned: always
      sample: "2025-01-31T09:42:10.000000Z"
    lease_duration:
      description: Seconds after C(renewed_at) that the lock may be taken over.
      type: int
      returned: always
      sample: 600
    expires_at:
      description: C(renewed_at) plus C(lease_duration), or null when free.
      type: str
      returned: always
    expired:
      description: Whether the holder stopped renewing for longer than its lease duration.
      type: bool
      returned: always
    taken_over_from:
      description:
        - Whom the holding run took the lock from, or null when it was free.
        - C(run_id), C(holder), C(phase), C(acquired_at), C(renewed_at), C(lease_duration) of the previous holder,
          C(how) (V(expired), V(holder_gone) or V(forced)) and C(at).
      type: dict
      returned: always
    released:
      description: When the lock is free, who released it last (C(run_id), C(holder), C(phase), C(at)), if anyone.
      type: dict
      returned: always
    lease_transitions:
      description: How many times the Lease changed hands.
      type: int
      returned: always
lock_outcome:
  description:
    - What the task did to the lock. V(acquired) (it was free), V(renewed) (this run held it), V(taken_over) (its holder
      had stopped renewing it, or its process on this machine had ended), V(forced) (taken with O(force) from a live holder),
      V(taken_back) (a renewal found it free and nobody had held it since this run), V(released), V(already_free) or
      V(held_by_another_run) (a release that left another run's lock alone).
  returned: when state is acquired, renewed or released
  type: str
  sample: acquired
lock_note:
  description: What a release that changed nothing found (a free lock, or another run's, and how this run lost it).
  returned: when state is released and nothing was released
  type: str
  sample: ceres-system/ceres-rollout was already free; nothing released
record:
  description: The record as stored (in check mode, as it would be), with C(seq), C(step_id), C(recorded_at).
  returned: when state is recorded
  type: dict
  sample:
    seq: 3
    step_id: pilot/weight-25/gate
    run_id: pilot-20250131T0930Z
    phase: pilot
    outcome: passed
    weight: 25
    verdict: pass
    recorded_at: "2025-01-31T09:45:00.000Z"
step:
  description: What happened to the record, V(appended), V(updated) (same C(step_id), other content) or V(unchanged).
  returned: when state is recorded
  type: str
  sample: appended
records:
  description:
    - Every record of the journal (only O(run_id)'s when given), runs in the order they started, each run's records in
      order. Every record has C(run_id).
  returned: when state is read
  type: list
  elements: dict
last:
  description: The record recorded or updated last (of O(run_id) when given), or null when there is none.
  returned: when state is read
  type: dict
runs:
  description:
    - One summary per run of the journal (whatever O(run_id) is), in the order they started. C(run_id), C(records) (how
      many), C(phases), C(outcomes) (outcome to count), C(backup_ids), C(started_at), C(updated_at), C(last_step_id),
      C(last_phase), C(last_outcome).
  returned: when state is read
  type: list
  elements: dict
journal:
  description:
    - Where the journal is and how full. C(namespace), C(name), C(exists), C(runs) (how many), C(bytes) (keys and
      values), C(limit_bytes).
  returned: when state is recorded or read
  type: dict
  sample: {namespace: ceres-system, name: ceres-rollout-journal, exists: true, runs: 2, bytes: 5120,
           limit_bytes: 1000000}
diff:
  description: In diff mode, the lock (or the recorded step) before and after.
  returned: in diff mode, when state is not read
  type: dict
"""

from ansible_collections.ceres.rollout.plugins.module_utils.common.module import CeresModule
from ansible_collections.ceres.rollout.plugins.module_utils.lock.rollout_journal import ROLLOUT_JOURNAL

# The module's options, where tools and tests look for them.
argument_spec = ROLLOUT_JOURNAL.argument_spec


def main() -> None:
    CeresModule(ROLLOUT_JOURNAL).run()


if __name__ == "__main__":
    main()
