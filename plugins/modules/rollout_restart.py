#!/usr/bin/python
# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: rollout_restart
short_description: Restart Deployments, StatefulSets and DaemonSets all at once and wait for all of them
version_added: 0.2.0
description:
  - Restarts every workload of the given O(namespaces) and/or label O(selector) (optionally only the O(names) given)
    the way C(kubectl rollout restart) does, then waits once for all of them together.
  - A restart sets the pod template annotation C(kubectl.kubernetes.io/restartedAt) (one UTC timestamp for the whole
    run) with a strategic-merge patch of only the template's annotations, never a replace; the controller then
    replaces the pods as for any template change. All the patches are sent at once (several in flight), not one task
    per workload.
  - The annotation C(rollout.ceres.io/restart-id) beside it records O(restart_id). A workload that already carries the
    run's O(restart_id) is not restarted again, so a second identical run reports RV(ignore:changed=false). Without
    O(restart_id) every run restarts every workload (and removes a restart id left by an earlier run).
  - Everything that refuses the run does so before the first patch, changing nothing - a namespace that does not
    exist, a name in O(names) that matches nothing, a selection that matches nothing (unless O(allow_empty)), a
    paused Deployment, and a StatefulSet or DaemonSet with the C(OnDelete) update strategy (a restart would not
    replace its pods).
  - With O(wait), the module then polls all the selected workloads (one list per namespace and kind) until each has
    rolled out - the controller observed the latest generation, every replica is updated and available, no replica
    of an older template is left (for a StatefulSet, its current revision is the update revision; for a DaemonSet,
    every scheduled node runs an updated, available pod). A Deployment past its progress deadline fails at once.
    Workloads not restarted by this run (same O(restart_id)) are waited for too, so a second run after a timeout
    waits again without restarting again.
  - The task fails naming each workload that did not become ready in time, and why.
  - The whole task - reads, patches, retries and the wait - fits in O(timeout).
author:
  - CERES platform team (@ceres)
extends_documentation_fragment:
  - ceres.rollout.k8s_auth
  - ceres.rollout.k8s_auth.timeout
  - ceres.rollout.renew_lock
  - ceres.rollout.renew_lock.wait
  - ceres.rollout.attributes
  - ceres.rollout.attributes.k8s_action_group
attributes:
  check_mode:
    support: full
    details:
      - Lists the workloads and reports which would be restarted (RV(workloads[].restarted)), without patching or
        waiting.
  diff_mode:
    support: full
    details:
      - The restart annotations of each restarted pod template, before and after.
  idempotent:
    support: partial
    details:
      - Only with O(restart_id). Without it every run restarts.
options:
  namespaces:
    description:
      - The namespaces whose workloads to restart. Each must exist.
      - When omitted, O(selector) is required and the workloads matching it in every namespace are restarted.
    type: list
    elements: str
  selector:
    description:
      - A label selector for the workloads (not their pods), as C(kubectl -l) takes it, for example
        V(app=checkout,version!=v2.9); the items of a list are joined with commas.
    type: list
    elements: str
  names:
    description:
      - Restart only the workloads with these names. Each name must match a workload in at least one of O(namespaces)
        (and O(selector), when given).
    type: list
    elements: str
  kinds:
    description:
      - The kinds of workload to restart.
    type: list
    elements: str
    choices: [Deployment, StatefulSet, DaemonSet]
    default: [Deployment]
  restart_id:
    description:
      - The run's restart token, typically the rollout's run id. It is recorded in the pod template annotation
        C(rollout.ceres.io/restart-id), and a workload already carrying it is not restarted again.
      - When omitted, every run restarts every selected workload; the module is then not idempotent.
    type: str
  allow_empty:
    description:
      - Succeed, changing nothing, when nothing matches. By default an empty selection is an error.
      - A namespace that does not exist is an error either way.
    type: bool
    default: false
  wait:
    description:
      - Wait for every selected workload to roll out.
    type: bool
    default: true
  wait_timeout:
    description:
      - How long to wait, in seconds, for the rollouts once the restarts are sent.
      - When omitted, the wait lasts until O(timeout), the budget of the whole task, runs out. A value longer than
        O(timeout) is refused; raise O(timeout) for long rollouts.
    type: float
  max_conflict_retries:
    description:
      - How many times to re-read and patch again after a workload's patch met a conflict (HTTP 409).
    type: int
    default: 5
notes:
  - The module needs C(get) on C(namespaces) (a 403 there is not fatal), C(list) and C(patch) on the selected kinds
    in the C(apps) API group.
seealso:
  - name: kubectl rollout restart
    description: The command whose effect this module reproduces.
    link: https://kubernetes.io/docs/reference/kubectl/generated/kubectl_rollout/kubectl_rollout_restart/
  - module: ceres.rollout.workload_health
"""

EXAMPLES = r"""
- name: Restart every Deployment of two namespaces once per run and wait for all of them
  ceres.rollout.rollout_restart:
    namespaces: [non-critical, important-apps]
    restart_id: "{{ ceres_run_id }}"
    wait_timeout: 300
    timeout: 360

- name: Restart the checkout StatefulSets and Deployments of every namespace, without waiting
  ceres.rollout.rollout_restart:
    selector: app=checkout
    kinds: [Deployment, StatefulSet]
    wait: false

- name: Restart two Deployments after sidecar injection was turned on
  ceres.rollout.rollout_restart:
    namespaces: [pilot-apps]
    names: [checkout-v2-9, checkout-v3-0-0]
    restart_id: "inject-{{ ceres_run_id }}"
  register: restart

- name: Show what was restarted
  ansible.builtin.debug:
    msg: "{{ restart.summary.restarted }} restarted, {{ restart.summary.ready }} of {{ restart.summary.total }} ready"
"""

RETURN = r"""
lock_lost:
  description:
    - With O(renew_lock), whether the module stopped because this run no longer holds the lock (another run took
      it, or it could not be renewed in time). The task then fails; before the patches nothing was restarted.
  returned: when O(renew_lock) is given
  type: bool
  sample: false
lock_renewals:
  description: With O(renew_lock), how many times the lock was renewed (the first before the patches).
  returned: when O(renew_lock) is given and the module was not stopped
  type: int
  sample: 1
lock:
  description: With O(renew_lock), the lock as last seen (as RV(ceres.rollout.rollout_journal#module:lock) returns it).
  returned: when O(renew_lock) is given
  type: dict
restart_id:
  description: The restart token of this run (O(restart_id)), or V(null).
  returned: success
  type: str
  sample: run-20260131-0930
restarted_at:
  description: The C(kubectl.kubernetes.io/restartedAt) value written to the workloads this run restarted (UTC).
  returned: success
  type: str
  sample: "2026-01-31T09:30:00Z"
workloads:
  description:
    - Every selected workload, sorted by namespace, kind and name. Returned on failure too, when known.
  returned: always
  type: list
  elements: dict
  contains:
    namespace:
      description: Its namespace.
      type: str
      returned: always
    kind:
      description: C(Deployment), C(StatefulSet) or C(DaemonSet).
      type: str
      returned: always
    name:
      description: Its name.
      type: str
      returned: always
    restarted:
      description: Whether this run restarted it (in check mode, whether it would).
      type: bool
      returned: always
    generation:
      description: Its C(metadata.generation) as last read.
      type: int
      returned: always
    observed_generation:
      description: The generation its controller had observed when last read.
      type: int
      returned: always
    ready:
      description: Whether it had rolled out when last read.
      type: bool
      returned: always
    message:
      description: What it was waiting for, that it rolled out, or why its restart failed.
      type: str
      returned: always
      sample: 1 of 2 updated replicas available
    replicas:
      description: The replicas wanted (for a DaemonSet, the nodes that should run its pod).
      type: int
      returned: always
    updated_replicas:
      description: Replicas running the latest template.
      type: int
      returned: always
    available_replicas:
      description: Replicas available.
      type: int
      returned: always
    current_replicas:
      description: Replicas existing, old ones included.
      type: int
      returned: always
    restarted_at:
      description: Its template's C(kubectl.kubernetes.io/restartedAt) annotation.
      type: str
      returned: always
    restart_id:
      description: Its template's C(rollout.ceres.io/restart-id) annotation.
      type: str
      returned: always
  sample:
    - namespace: non-critical
      kind: Deployment
      name: catalog-v2-9
      restarted: true
      generation: 3
      observed_generation: 3
      ready: true
      message: "rolled out: 1 of 1 replicas updated and available"
      replicas: 1
      updated_replicas: 1
      available_replicas: 1
      current_replicas: 1
      restarted_at: "2026-01-31T09:30:00Z"
      restart_id: run-20260131-0930
summary:
  description: Counts over RV(workloads).
  returned: always
  type: dict
  contains:
    total:
      description: Workloads selected.
      type: int
      returned: always
    restarted:
      description: Workloads this run restarted (in check mode, would restart).
      type: int
      returned: always
    unchanged:
      description: Workloads not restarted (they already carried O(restart_id), or their restart failed).
      type: int
      returned: always
    ready:
      description: Workloads rolled out when last read.
      type: int
      returned: always
    not_ready:
      description: Workloads not rolled out when last read.
      type: int
      returned: always
  sample: {total: 20, restarted: 20, unchanged: 0, ready: 20, not_ready: 0}
diff:
  description: The restart annotations of each restarted workload's pod template, keyed C(Kind namespace/name).
  returned: in diff mode
  type: dict
  sample:
    before:
      Deployment non-critical/catalog-v2-9: {}
    after:
      Deployment non-critical/catalog-v2-9:
        kubectl.kubernetes.io/restartedAt: "2026-01-31T09:30:00Z"
        rollout.ceres.io/restart-id: run-20260131-0930
"""

from ansible_collections.ceres.rollout.plugins.module_utils.common.module import CeresModule
from ansible_collections.ceres.rollout.plugins.module_utils.workloads.rollout_restart import ROLLOUT_RESTART

# The module's options, where tools and tests look for them.
argument_spec = ROLLOUT_RESTART.argument_spec


def main() -> None:
    CeresModule(ROLLOUT_RESTART).run()


if __name__ == "__main__":
    main()
