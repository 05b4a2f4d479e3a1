# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: smoke_problems
short_description: What keeps the Deployments or Services of a smoke check from being there and ready
version_added: 0.5.0
author:
  - CERES platform team (@ceres)
description:
  - Reads the results of a looped C(kubernetes.core.k8s_info) (O(_input)), one per object named, each with its
    C(item) (C([group, name]), the group holding C(namespace)) and C(resources), and says, in order, what is wrong
    with each - nothing for an object that is there and ready.
  - A Deployment is ready when its C(Available) condition is C(True) and every replica of its spec is updated and
    available. A Service is ready when one of its EndpointSlices (O(endpoints), the looped results of
    C(kubernetes.core.k8s_info) for C(EndpointSlice) with C(kubernetes.io/service-name), in the same order) has an
    endpoint whose C(ready) condition is not C(false).
  - A result that failed (the object could not be read) is a problem, never a pass.
options:
  _input:
    description: The looped k8s_info results, one per object.
    type: list
    elements: dict
    required: true
  kind:
    description: What the results are.
    type: str
    choices: [Deployment, Service]
    required: true
  endpoints:
    description: For O(kind=Service), the EndpointSlice results, one per Service, in the same order.
    type: list
    elements: dict
"""

EXAMPLES = r"""
- name: Every component is there and ready
  ansible.builtin.assert:
    that: problems | length == 0
    fail_msg: "smoke checks: {{ problems | join('; ') }}"
  vars:
    problems: "{{ deployments.results | ceres.rollout.smoke_problems('Deployment') }}"
"""

RETURN = r"""
_value:
  description: One sentence per object that is missing, unreadable or not ready, naming it.
  type: list
  elements: str
"""

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError


def _label(result):
    item = result.get("item")
    if isinstance(item, (list, tuple)) and len(item) == 2 and isinstance(item[0], Mapping):
        return "%s/%s" % (item[0].get("namespace"), item[1])
    raise AnsibleFilterError("smoke_problems: each result needs item [group, name], got %r" % (item,))


def _int(value):
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _deployment_problem(label, deployment):
    spec = deployment.get("spec") or {}
    status = deployment.get("status") or {}
    wanted = _int(spec.get("replicas", 1))
    available = any(
        isinstance(condition, Mapping) and condition.get("type") == "Available" and condition.get("status") == "True"
        for condition in status.get("conditions") or []
    )
    updated, ready = _int(status.get("updatedReplicas")), _int(status.get("availableReplicas"))
    if available and updated >= wanted and ready >= wanted:
        return None
    return "Deployment %s is not ready (Available %s, %d of %d replicas available, %d updated)" % (
        label,
        "True" if available else "not True",
        ready,
        wanted,
        updated,
    )


def _has_ready_endpoint(slices):
    return any(
        isinstance(endpoint, Mapping) and (endpoint.get("conditions") or {}).get("ready") is not False
        for endpoint_slice in slices
        if isinstance(endpoint_slice, Mapping)
        for endpoint in endpoint_slice.get("endpoints") or []
    )


def smoke_problems(results, kind, endpoints=None):
    """Return what is wrong with each object of ``results`` (k8s_info loop results) of ``kind``."""
    if kind not in ("Deployment", "Service"):
        raise AnsibleFilterError("smoke_problems: kind must be Deployment or Service, got %r" % (kind,))
    if not isinstance(results, list) or not all(isinstance(result, Mapping) for result in results):
        raise AnsibleFilterError("smoke_problems: the input must be a list of k8s_info results")
    if kind == "Service" and (not isinstance(endpoints, list) or len(endpoints) != len(results)):
        raise AnsibleFilterError("smoke_problems: endpoints must be the EndpointSlice results, one per Service")
    problems = []
    for index, result in enumerate(results):
        label = _label(result)
        if result.get("failed"):
            problems.append("%s %s could not be read: %s" % (kind, label, result.get("msg") or "unknown error"))
            continue
        resources = result.get("resources") or []
        if not resources:
            problems.append("%s %s does not exist" % (kind, label))
            continue
        if kind == "Deployment":
            problem = _deployment_problem(label, resources[0])
        else:
            slices = endpoints[index]
            if not isinstance(slices, Mapping) or slices.get("failed"):
                problem = "Service %s: its endpoints could not be read" % label
            elif _has_ready_endpoint(slices.get("resources") or []):
                problem = None
            else:
                problem = "Service %s has no ready endpoint" % label
        if problem:
            problems.append(problem)
    return problems


class FilterModule:
    def filters(self):
        return {"smoke_problems": smoke_problems}
