# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: self_test_problems
short_description: What a gate self-test against the stable version found, a sentence per check that cannot gate
version_added: 0.5.0
author:
  - CERES platform team (@ceres)
description:
  - Reads a M(ceres.rollout.metric_gate) result of one sample of the rollout's gate checks, run against the stable
    version, and returns one sentence per check that would not gate a canary - no data (a label typo, a silent app,
    a metric that is not scraped), too few requests behind the value, a query error - naming the check, the workload
    and namespace it asked about, what to fix, and the query.
  - A check that returned a real number outside its bound is no such problem (the query works); it is listed by
    O(breaches=true) instead, for a warning.
options:
  _input:
    description: The registered result of M(ceres.rollout.metric_gate).
    type: dict
    required: true
  checks:
    description: The checks the gate ran (their C(params) name the workload).
    type: list
    elements: dict
    required: true
  breaches:
    description: Return the checks whose real value was outside its bound, instead of the problems.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Every gate query once, against the stable version
  ceres.rollout.metric_gate:
    checks: "{{ stable_checks }}"
    samples: 1
    fail_on_breach: false
  register: self_test

- name: What would not gate a canary
  ansible.builtin.set_fact:
    problems: "{{ self_test | ceres.rollout.self_test_problems(checks=stable_checks) }}"
"""

RETURN = r"""
_value:
  description: One sentence per check.
  type: list
  elements: str
"""

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

HINT = (
    "does the app serve traffic, and do ceres_release.stable_subset (or the app's stable_deployment) and the namespace "
    "name its workload as Istio labels it (destination_workload)?"
)


def self_test_problems(result, checks=None, breaches=False):
    """Sentences for the checks of a one-sample gate ``result`` that cannot gate (or, with ``breaches``, that
    breached)."""
    if not isinstance(result, Mapping):
        raise AnsibleFilterError("self_test_problems: expected a metric_gate result, got %r" % (result,))
    if not isinstance(checks, list):
        raise AnsibleFilterError("self_test_problems: checks must be the list the gate ran")
    ran = result.get("checks")
    if not isinstance(ran, list):
        return [] if breaches else ["gate self-test: the gate did not run: %s" % (result.get("msg") or "no result")]
    found = []
    for index, check in enumerate(ran):
        params = (checks[index] if index < len(checks) and isinstance(checks[index], Mapping) else {}).get(
            "params"
        ) or {}
        where = "%s in %s" % (params.get("workload", "?"), params.get("namespace", "?"))
        values = [value for value in check.get("values") or [] if value is not None]
        status = check.get("status")
        if breaches:
            if status == "fail" and values:
                found.append("%s on the stable %s: %s" % (check.get("name"), where, check.get("message")))
            continue
        if status == "pass" or (status == "fail" and values):
            continue
        found.append(
            "gate self-test: %s on the stable %s has %s (%s); %s query: %s"
            % (
                check.get("name"),
                where,
                "no data" if not values else "no usable value",
                check.get("message") or status,
                HINT,
                check.get("query"),
            )
        )
    return found


class FilterModule:
    def filters(self):
        return {"self_test_problems": self_test_problems}
