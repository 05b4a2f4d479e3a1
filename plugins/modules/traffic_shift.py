#!/usr/bin/python
# Copyright (c) 2025, CERES platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: traffic_shift
short_description: Set the canary share of one HTTP route of an Istio VirtualService
version_added: 0.1.0
description:
  - Sets the weight of the canary destination of one HTTP route of an Istio C(VirtualService) to O(weight) percent and
    the weight of the stable destination to the rest (V(100) minus O(weight)).
  - Reads the C(VirtualService), changes only the destinations of the selected route, and writes the whole object back
    with its C(resourceVersion) (never a merge patch, which would replace the whole C(http) list). When another writer
    changed the object in between (HTTP 409), it reads it again and re-applies the change, at most
    O(max_conflict_retries) times, with a jittered backoff.
  - Every other route, destination and field stays exactly as it was. The canary destination is added right after the
    stable one when it is missing (unless O(weight=0), which needs no canary destination).
  - After writing, it reads the object back and fails if the weights are not the ones asked for. Such a failure (or
    one of that read itself) reports RV(ignore:changed=true), because the write had landed.
  - When the weights change, the annotations C(rollout.ceres.io/previous-weight), C(rollout.ceres.io/weight),
    C(rollout.ceres.io/updated-at) (UTC, ISO 8601) and C(rollout.ceres.io/route) record the shift on the
    C(VirtualService). A run that changes no weight writes nothing.
  - Destinations of the route that are neither stable nor canary may remain when their weight is V(0) or unset;
    if one of them receives traffic the module fails rather than take that traffic away.
  - The whole shift, every read, write, retry and conflict re-read, fits in O(timeout), so a rollback
    (O(weight=0)) through a slow or flapping API server ends, done or failed, within it.
  - Runs on the controller through an action plugin, whatever the host's connection, so the Kubernetes API is
    reached from the controller, and a loop over many C(VirtualService)s starts no module process per item.
    The C(K8S_AUTH_*) fallbacks (and C(KUBECONFIG)) are read from the task's C(environment), then from the
    controller's environment.
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
      - Reads the C(VirtualService) and predicts the object and RV(ignore:changed) without writing.
  diff_mode:
    support: full
    details:
      - The diff ignores C(resourceVersion), C(generation) and C(managedFields).
  idempotent:
    support: full
options:
  namespace:
    description:
      - The namespace of the C(VirtualService).
    type: str
    required: true
  name:
    description:
      - The name of the C(VirtualService).
    type: str
    required: true
  route:
    description:
      - The C(name) of the HTTP route (an entry of C(spec.http)) to change.
      - May be omitted only when the C(VirtualService) has exactly one HTTP route.
    type: str
  stable:
    description:
      - The stable destination, which must already be in the route. It receives V(100) minus O(weight) percent.
    type: dict
    required: true
    suboptions: &destination
      host:
        description:
          - The destination C(host), as written in the C(VirtualService).
          - A host matching exactly is preferred; when none does, a short name (V(checkout)) also matches its fully
            qualified name in the C(VirtualService)'s namespace (V(checkout.NAMESPACE.svc.cluster.local)) and the
            other way round.
        type: str
        required: true
      subset:
        description:
          - The destination C(subset) (of the C(DestinationRule)). When given, only a destination with this subset
            matches. When omitted, a destination of the host with any subset matches; if several do, the one
            without a subset (and with the given port, or none) is meant, so a stable of only O(stable.host=checkout) keeps
            naming the plain C(checkout) entry once the canary V(checkout/v3-0-0) has been added beside it. Still
            several matches is an error asking for the subset.
          - A shift that would leave O(stable) or O(canary) not unambiguously locatable in the written object is
            refused before anything is written.
        type: str
      port:
        description:
          - The destination port number. When given, only a destination with this port matches; when omitted,
            as for O(stable.subset).
        type: int
  canary:
    description:
      - The canary destination. It receives O(weight) percent, and is added to the route when missing.
      - It must differ from O(stable) by host, subset or port, and must not also match the stable destination.
    type: dict
    required: true
    suboptions: *destination
  weight:
    description:
      - The canary's share of the route's traffic, in percent, from V(0) (all traffic to O(stable)) to V(100).
    type: int
    required: true
  api_version:
    description:
      - The API version of the C(VirtualService) resource.
      - When omitted, V(networking.istio.io/v1) is used, or V(networking.istio.io/v1beta1) when the API server does
        not serve V1 (Istio older than 1.22).
    type: str
  max_conflict_retries:
    description:
      - How many times to re-read and re-apply after another writer changed the C(VirtualService) during the update
        (HTTP 409). V(0) fails on the first conflict.
      - The re-reads also stop when O(timeout) runs out.
    type: int
    default: 5
seealso:
  - name: Istio VirtualService reference
    description: The HTTP route and destination fields this module changes.
    link: https://istio.io/latest/docs/reference/config/networking/virtual-service/
"""

EXAMPLES = r"""
- name: Send 10% of the checkout traffic to v3.0.0
  ceres.rollout.traffic_shift:
    namespace: pilot-apps
    name: checkout
    route: primary
    stable:
      host: checkout
      subset: v2-9
    canary:
      host: checkout
      subset: v3-0-0
    weight: 10

- name: Roll back, all traffic to the stable version (works while Prometheus is down)
  ceres.rollout.traffic_shift:
    namespace: pilot-apps
    name: checkout
    route: primary
    stable: {host: checkout, subset: v2-9}
    canary: {host: checkout, subset: v3-0-0}
    weight: 0

- name: Set the connection once for every Kubernetes-facing module of the collection
  module_defaults:
    group/ceres.rollout.k8s:
      kubeconfig: "{{ cluster_kubeconfig }}"
      context: "{{ cluster_context }}"
  block:
    - name: Shift the only http route of a VirtualService between two services
      ceres.rollout.traffic_shift:
        namespace: important-apps
        name: payments
        stable: {host: payments-v2.important-apps.svc.cluster.local, port: 8080}
        canary: {host: payments-v3.important-apps.svc.cluster.local, port: 8080}
        weight: 25
      register: shift

    - name: Show where the canary share came from
      ansible.builtin.debug:
        msg: "canary {{ shift.previous_weight }}% -> {{ shift.weight }}%"
"""

RETURN = r"""
previous_weight:
  description: The canary's share of the route's traffic, in percent, before the module ran (V(0) when it was absent).
  returned: success
  type: int
  sample: 10
weight:
  description: The canary's share of the route's traffic now (or, in check mode, after the change).
  returned: success
  type: int
  sample: 25
api_version:
  description: The API version the C(VirtualService) was read and written with.
  returned: success
  type: str
  sample: networking.istio.io/v1
virtual_service:
  description:
    - The C(VirtualService) as read back after the write, without C(metadata.managedFields).
    - In check mode, the object that would be written; when nothing changes, the object as it is.
  returned: success
  type: dict
  sample:
    apiVersion: networking.istio.io/v1
    kind: VirtualService
    metadata:
      name: checkout
      namespace: pilot-apps
      annotations:
        rollout.ceres.io/previous-weight: "10"
        rollout.ceres.io/weight: "25"
        rollout.ceres.io/updated-at: "2025-01-31T09:30:00Z"
        rollout.ceres.io/route: primary
    spec:
      hosts: [checkout]
      http:
        - name: primary
          route:
            - destination: {host: checkout, subset: v2-9}
              weight: 75
            - destination: {host: checkout, subset: v3-0-0}
              weight: 25
diff:
  description: The C(VirtualService) before and after, without C(resourceVersion), C(generation) and C(managedFields).
  returned: in diff mode
  type: dict
  contains:
    before:
      description: The object before the change.
      type: dict
      returned: in diff mode
    after:
      description: The object after the change (in check mode, as it would be).
      type: dict
      returned: in diff mode
"""

from ansible_collections.ceres.rollout.plugins.module_utils.common.module import CeresModule
from ansible_collections.ceres.rollout.plugins.module_utils.istio.traffic_shift import TRAFFIC_SHIFT

# The module's options, where tools and tests look for them.
argument_spec = TRAFFIC_SHIFT.argument_spec


def main() -> None:
    CeresModule(TRAFFIC_SHIFT).run()


if __name__ == "__main__":
    main()
