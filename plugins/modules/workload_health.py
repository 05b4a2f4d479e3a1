#!/usr/bin/python
# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: workload_health
short_description: Check that Deployments, StatefulSets and DaemonSets are rolled out and their pods healthy
version_added: 0.2.0
description:
  - Judges every workload of the given O(namespaces) and/or label O(selector) (optionally only the O(names) given)
    and returns RV(healthy) with the details of each workload and pod.
  - A workload is healthy when all of these hold.
  - It has rolled out - its controller observed its latest generation, every replica runs the latest template and
    is available, and no replica of an older template is left (the rules of M(ceres.rollout.rollout_restart)'s
    wait and of C(kubectl rollout status)).
  - None of its pods restarted more than O(max_restarts) times. A pod's restarts are the sum of its containers' (init
    containers included), as C(kubectl get pods) shows them. They are counted against a O(baseline), or since
    O(since), or else over each pod's life.
  - None of its containers is waiting for one of O(unhealthy_reasons) (C(CrashLoopBackOff), C(ImagePullBackOff)...).
  - A workload's pods are those its controller owns (a Deployment's through its ReplicaSets), found through owner
    references, so pods of another workload with overlapping labels never count.
  - It fails (unless O(fail_on_unhealthy=false)) with a message naming each unhealthy workload and why.
  - A namespace that does not exist, a name in O(names) that matches nothing and (unless O(allow_empty)) a
    selection that matches nothing are errors.
  - It never changes anything.
  - Runs on the controller through an action plugin, whatever the host's connection, so the Kubernetes API is
    reached from the controller and a rollout step's health check starts no module process. The C(K8S_AUTH_*)
    fallbacks (and C(KUBECONFIG)) are read from the task's C(environment), then from the controller's environment.
author:
  - CERES platform team (@ceres)
extends_documentation_fragment:
  - ceres.rollout.k8s_auth
  - ceres.rollout.k8s_auth.timeout
  - ceres.rollout.renew_lock
  - ceres.rollout.renew_lock.wait
  - ceres.rollout.attributes
  - ceres.rollout.attributes.info_module
  - ceres.rollout.attributes.k8s_action_group
  - ceres.rollout.attributes.controller_action
  - ansible.builtin.action_common_attributes.flow
options:
  namespaces:
    description:
      - The namespaces whose workloads to check. Each must exist.
      - When omitted, O(selector) is required and the workloads matching it in every namespace are checked.
    type: list
    elements: str
  selector:
    description:
      - A label selector for the workloads (not their pods), as C(kubectl -l) takes it, for example
        V(app=checkout); the items of a list are joined with commas.
    type: list
    elements: str
  names:
    description:
      - Check only the workloads with these names. Each must match a workload in at least one of O(namespaces).
    type: list
    elements: str
  kinds:
    description:
      - The kinds of workload to check.
    type: list
    elements: str
    choices: [Deployment, StatefulSet, DaemonSet]
    default: [Deployment]
  max_restarts:
    description:
      - The most restarts a pod may have had (counted as O(baseline) or O(since) say) and still be healthy.
    type: int
    default: 0
  since:
    description:
      - Count only the restarts after this moment, an RFC 3339 timestamp such as V(2026-01-31T09:30:00Z).
      - Kubernetes keeps only a container's total restart count and its last termination. A pod created after
        O(since) counts all its restarts, and a container whose last termination (or current start) is before
        O(since) counts none. For a container that started before O(since) and terminated after it, the count since
        is not known - the whole restart count is taken (fail-closed) and marked RV(workloads[].pods[].exact=false).
        Use O(baseline) for exact counts.
      - Mutually exclusive with O(baseline).
    type: str
  baseline:
    description:
      - The RV(baseline) an earlier call returned - per pod (C(namespace/name)) its uid and each container's
        restart count. Only the restarts since are counted; a pod absent from it (or recreated under the same name,
        another uid) counts all its restarts.
      - Mutually exclusive with O(since).
    type: dict
  unhealthy_reasons:
    description:
      - The container waiting reasons that make a pod unhealthy.
    type: list
    elements: str
    default: [CrashLoopBackOff, ImagePullBackOff, ErrImagePull, CreateContainerConfigError, CreateContainerError,
              InvalidImageName]
  wait_timeout:
    description:
      - Look again every 2 seconds until every workload is healthy, for at most this many seconds (at most O(timeout),
        the task's whole time budget); the result is the last look's. Without it, one look.
      - With O(renew_lock), the run's lock is kept alive while the module waits.
    type: float
  fail_on_unhealthy:
    description:
      - Fail when a workload is unhealthy. With V(false) the module succeeds and reports RV(healthy=false).
    type: bool
    default: true
  allow_empty:
    description:
      - Succeed, with RV(healthy=true), when nothing matches. By default an empty selection is an error.
    type: bool
    default: false
notes:
  - The resource thresholds of the design (CPU, memory through M(ceres.rollout.metric_gate)'s machinery) are not part
    of this module; gate on them with M(ceres.rollout.metric_gate).
  - The module needs C(get) on C(namespaces) (a 403 there is not fatal) and C(list) on the selected kinds,
    C(replicasets) and C(pods).
seealso:
  - module: ceres.rollout.rollout_restart
  - module: ceres.rollout.metric_gate
"""

EXAMPLES = r"""
- name: Record the restart counts before the canary step
  ceres.rollout.workload_health:
    namespaces: [pilot-apps]
    selector: app=checkout
    fail_on_unhealthy: false
  register: before_step

- name: After the soak, no pod of checkout restarted since, none is crash-looping
  ceres.rollout.workload_health:
    namespaces: [pilot-apps]
    selector: app=checkout
    baseline: "{{ before_step.baseline }}"

- name: Tolerate two restarts per pod since the wave started
  ceres.rollout.workload_health:
    namespaces: [non-critical, important-apps]
    kinds: [Deployment, StatefulSet]
    since: "{{ wave_started_at }}"
    max_restarts: 2
"""

RETURN = r"""
looks:
  description: How many times the workloads were looked at (with O(wait_timeout)).
  returned: when O(wait_timeout) is given
  type: int
  sample: 3
lock_lost:
  description: With O(renew_lock), whether the module stopped because this run no longer holds the lock.
  returned: when O(renew_lock) is given
  type: bool
  sample: false
lock_renewals:
  description: With O(renew_lock), how many times the lock was renewed.
  returned: when O(renew_lock) is given and the module was not stopped
  type: int
  sample: 1
lock:
  description: With O(renew_lock), the lock as last seen (as RV(ceres.rollout.rollout_journal#module:lock) returns it).
  returned: when O(renew_lock) is given
  type: dict
healthy:
  description: Whether every selected workload is healthy.
  returned: always
  type: bool
  sample: false
unhealthy:
  description: One line per unhealthy workload, C(Kind namespace/name) and why.
  returned: always
  type: list
  elements: str
  sample: ["Deployment pilot-apps/checkout-v3-0-0: pod checkout-v3-0-0-7d9f-x2x: container app is CrashLoopBackOff"]
summary:
  description: Counts of workloads.
  returned: always
  type: dict
  sample: {total: 2, healthy: 1, unhealthy: 1}
baseline:
  description:
    - Per pod of the checked workloads (C(namespace/name)), its uid and each container's restart count now, to pass
      as O(baseline) to a later call.
  returned: always
  type: dict
  sample:
    pilot-apps/checkout-v3-0-0-7d9f-x2x:
      uid: 6b1e1f0a-2c49-4d0e-9b35-0c3f3c0b7a11
      containers: {app: 4}
workloads:
  description: Every selected workload, sorted by namespace, kind and name.
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
    healthy:
      description: Whether it is healthy.
      type: bool
      returned: always
    ready:
      description: Whether it has rolled out.
      type: bool
      returned: always
    rollout:
      description: Its rollout status in words.
      type: str
      returned: always
    reasons:
      description: Why it is unhealthy (empty when healthy).
      type: list
      elements: str
      returned: always
    restarts:
      description: Restarts counted over its pods.
      type: int
      returned: always
    generation:
      description: Its C(metadata.generation).
      type: int
      returned: always
    observed_generation:
      description: The generation its controller has observed.
      type: int
      returned: always
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
    pods:
      description: Its pods.
      type: list
      elements: dict
      returned: always
      contains:
        name:
          description: The pod's name.
          type: str
          returned: always
        uid:
          description: The pod's uid.
          type: str
          returned: always
        phase:
          description: The pod's phase.
          type: str
          returned: always
        ready:
          description: Whether its C(Ready) condition is true.
          type: bool
          returned: always
        restarts:
          description: Restarts counted (against O(baseline), since O(since), or in its life).
          type: int
          returned: always
        restart_count:
          description: Its containers' total restart counts.
          type: int
          returned: always
        exact:
          description: Whether RV(workloads[].pods[].restarts) is exact (see O(since)).
          type: bool
          returned: always
        healthy:
          description: Whether the pod is healthy.
          type: bool
          returned: always
        reasons:
          description: Why it is unhealthy.
          type: list
          elements: str
          returned: always
        containers:
          description:
            - Per container (init containers first) - C(name), C(init), C(ready), C(restart_count), C(restarts)
              (counted), C(exact), C(waiting_reason), C(waiting_message), C(last_termination_reason).
          type: list
          elements: dict
          returned: always
"""

from ansible_collections.ceres.rollout.plugins.module_utils.common.module import CeresModule
from ansible_collections.ceres.rollout.plugins.module_utils.workloads.workload_health import WORKLOAD_HEALTH

# The module's options, where tools and tests look for them.
argument_spec = WORKLOAD_HEALTH.argument_spec


def main() -> None:
    CeresModule(WORKLOAD_HEALTH).run()


if __name__ == "__main__":
    main()
